"""``manifest.json``: exactly which data, settings and software made a model."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

FORMAT_VERSION = 1


class DataProvenance(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    source: str = Field(description="warehouse URL, never with a credential")
    query: str = Field(description="the SQL that defined the rows")
    snapshot: str | None = Field(description="what pinned the read, or null")
    rows_total: int
    rows_dropped_null_target: int
    rows_per_worker: list[int]
    rows_train: int
    rows_validation: int
    shard_strategy: str | None = None
    split: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _counts_add_up(self) -> DataProvenance:
        used = self.rows_total - self.rows_dropped_null_target
        if sum(self.rows_per_worker) != used or self.rows_train + self.rows_validation != used:
            raise ValueError("row counts in the manifest do not add up")
        return self


class Manifest(BaseModel):
    """What ``stageless.train`` returns and what ``model.tar.gz`` carries."""

    model_config = ConfigDict(extra="allow", frozen=True)

    format_version: int = FORMAT_VERSION
    target: str
    features: list[str]
    feature_types: list[str]
    objective: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    data: DataProvenance
    workers: int
    versions: dict[str, str]
    created_at: str

    @model_validator(mode="after")
    def _features_match_types(self) -> Manifest:
        if len(self.features) != len(self.feature_types):
            raise ValueError("features and feature_types differ in length")
        return self

    @property
    def eval_metric(self) -> str | None:
        """The name of the (last) validation metric, e.g. ``rmse``."""
        names = list(self.metrics.get("validation") or self.metrics.get("train") or {})
        return names[-1] if names else None


def software_versions() -> dict[str, str]:
    """The versions that made a model (from the modules themselves: looking up package
    metadata costs every process ~20 ms of imports)."""
    import pyarrow
    import xgboost

    from stageless import __version__

    return {
        "stageless": __version__,
        "xgboost": xgboost.__version__,
        "pyarrow": pyarrow.__version__,
        "python": platform.python_version(),
    }


def utc_now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
