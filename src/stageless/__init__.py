"""stageless: train XGBoost straight from a data warehouse, with no staging bucket.

Public API::

    import stageless
    stageless.ingest("dataset:california-housing", to="duckdb:demo.duckdb", table="housing")
    manifest = stageless.train("duckdb:demo.duckdb", table="housing",
                               target="MedHouseVal", workers=2, output="out/")
    manifest.metrics["validation"]["rmse"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stageless.errors import NotFoundError, StagelessError, TransientError, UserError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from stageless.ingestion import IngestResult
    from stageless.manifest import Manifest

__all__ = [
    "IngestResult",
    "Manifest",
    "NotFoundError",
    "StagelessError",
    "TransientError",
    "UserError",
    "ingest",
    "predict",
    "train",
]


def ingest(
    source: str, to: str, table: str, mode: str = "replace", secret: str | None = None
) -> IngestResult:
    """Load a .csv/.csv.gz/.parquet file or ``dataset:NAME`` into a warehouse table."""
    from stageless.ingestion import ingest as _ingest

    return _ingest(source, to, table, mode, secret)  # type: ignore[arg-type]


def train(source: str, **options: Any) -> Manifest:
    """Train XGBoost on a warehouse table or query; see :func:`stageless.training.api.train`."""
    from stageless.training.api import train as _train

    return _train(source, **options)


def predict(model: str, source: str, **options: Any) -> Any:
    """Score a warehouse table or query into a new table; see
    :func:`stageless.prediction.predict`."""
    from stageless.prediction import predict as _predict

    return _predict(model, source, **options)


def __getattr__(name: str) -> Any:
    if name == "Manifest":
        from stageless.manifest import Manifest

        return Manifest
    if name == "IngestResult":
        from stageless.ingestion import IngestResult

        return IngestResult
    raise AttributeError(name)
