"""A model loaded once for predictions: the booster, its manifest, and checks that they agree.

Shared by the HTTP server and batch scoring. The booster is read from XGBoost's own format
(never pickle) through :func:`stageless.artifacts.open_model`, which refuses unsafe tar
members; here we check that the manifest describes the booster we got, so a mismatch is an
error at start-up rather than wrong predictions later.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

from stageless.errors import UserError
from stageless.manifest import FORMAT_VERSION, Manifest


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class LoadedModel:
    """A booster ready for ``inplace_predict`` and the manifest that describes it.

    ``inplace_predict`` is thread-safe and caches nothing, so one instance serves every
    request of a process.
    """

    booster: object  # xgboost.Booster (typed loosely: xgboost is imported lazily)
    manifest: Manifest
    #: values per prediction: 1 for regression and binary models, k for multi:softprob
    outputs: int = 1
    features: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.features = list(self.manifest.features)

    @property
    def n_features(self) -> int:
        return len(self.features)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Predictions for a C-ordered float32 matrix (NaN = missing), without copies."""
        return self.booster.inplace_predict(matrix)  # type: ignore[attr-defined]


def load_model(ref: str, nthread: int = 1) -> LoadedModel:
    """Load and check the model REF names (a model.tar.gz or an unpacked directory)."""
    from stageless.artifacts import open_model

    model_bytes, manifest = open_model(ref)
    return model_from_bytes(model_bytes, manifest, nthread=nthread, where=ref)


def model_from_bytes(
    model_bytes: bytes, manifest: Manifest, nthread: int = 1, where: str = "the model"
) -> LoadedModel:
    """A checked :class:`LoadedModel` from the booster's bytes and its manifest.

    UserError when the bytes are not an XGBoost model or the manifest does not describe
    them (feature count or names differ), or the manifest is from a newer format.
    """
    import xgboost as xgb

    if manifest.format_version > FORMAT_VERSION:
        raise UserError(
            f"{where}: manifest format_version {manifest.format_version} is newer than this "
            f"stageless understands ({FORMAT_VERSION}); upgrade stageless"
        )
    booster = xgb.Booster()
    try:
        # A bytearray is parsed as XGBoost's JSON/UBJSON model format, never unpickled.
        booster.load_model(bytearray(model_bytes))
    except xgb.core.XGBoostError as exc:
        raise UserError(
            f"{where}: xgboost-model is not an XGBoost model ({_xgboost_reason(exc)})"
        ) from None
    _check_agreement(booster, manifest, where)
    booster.set_param({"nthread": max(1, nthread)})
    probe = booster.inplace_predict(np.full((1, len(manifest.features)), np.nan, np.float32))
    outputs = int(np.prod(probe.shape[1:])) if probe.ndim > 1 else 1
    return LoadedModel(booster=booster, manifest=manifest, outputs=outputs)


def _xgboost_reason(exc: Exception) -> str:
    """XGBoost's message without its ``[time] /build/path/file.cc:line:`` prefix."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
    return re.sub(r"^\[[0-9:]+\] \S+:\d+: ", "", first)


def _check_agreement(booster: object, manifest: Manifest, where: str) -> None:
    n_booster = booster.num_features()  # type: ignore[attr-defined]
    n_manifest = len(manifest.features)
    if n_manifest == 0:
        raise UserError(f"{where}: manifest.json lists no features")
    if n_booster != n_manifest:
        raise UserError(
            f"{where}: manifest.json lists {n_manifest} features but the booster was "
            f"trained on {n_booster}; the two files do not belong together"
        )
    names = booster.feature_names  # type: ignore[attr-defined]
    if names is not None and list(names) != list(manifest.features):
        differ = next(
            (i for i, (a, b) in enumerate(zip(names, manifest.features, strict=True)) if a != b),
            0,
        )
        raise UserError(
            f"{where}: manifest.json's features do not match the booster's: feature "
            f"{differ + 1} is {manifest.features[differ]!r} in the manifest but "
            f"{names[differ]!r} in the booster"
        )
    if len(set(manifest.features)) != n_manifest:
        raise UserError(f"{where}: manifest.json lists a feature name twice")
