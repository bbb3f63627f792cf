"""Loading a model for predictions, and turning Arrow batches into its input (no services)."""

from __future__ import annotations

import decimal

import numpy as np
import pyarrow as pa
import pytest
import xgboost as xgb

from stageless.errors import NotFoundError, UserError
from stageless.manifest import Manifest
from stageless.prediction import feature_positions, features_matrix
from stageless.serving.model import model_from_bytes

NAMES = ["x1", "x2", "x3"]


def _booster(names: list[str] | None, objective: str = "reg:squarederror") -> bytes:
    rng = np.random.default_rng(0)
    x = rng.random((200, 3), dtype=np.float32)
    y = (x[:, 0] > 0.5).astype(np.float32) if "multi" not in objective else (x[:, 0] * 3) // 1
    params = {"objective": objective, "max_depth": 2}
    if "multi" in objective:
        params["num_class"] = 3
    booster = xgb.train(params, xgb.DMatrix(x, label=y, feature_names=names), num_boost_round=3)
    return bytes(booster.save_raw(raw_format="json"))


def _manifest(features: list[str], **changes: object) -> Manifest:
    document = {
        "target": "y",
        "features": features,
        "feature_types": ["float"] * len(features),
        "objective": "reg:squarederror",
        "hyperparameters": {},
        "metrics": {},
        "data": {
            "source": "duckdb:///x.duckdb",
            "query": "SELECT 1",
            "snapshot": None,
            "rows_total": 1,
            "rows_dropped_null_target": 0,
            "rows_per_worker": [1],
            "rows_train": 1,
            "rows_validation": 0,
        },
        "workers": 1,
        "versions": {},
        "created_at": "2024-01-01T00:00:00Z",
        **changes,
    }
    return Manifest.model_validate(document)


def test_a_matching_model_loads_and_predicts_like_its_booster() -> None:
    raw = _booster(NAMES)
    model = model_from_bytes(raw, _manifest(NAMES))
    assert model.n_features == 3
    assert model.outputs == 1
    x = np.array([[0.1, 0.2, 0.3], [0.9, np.nan, 0.1]], dtype=np.float32)
    reference = xgb.Booster()
    reference.load_model(bytearray(raw))
    np.testing.assert_array_equal(model.predict(x), reference.inplace_predict(x))


def test_a_booster_without_names_is_checked_by_count() -> None:
    assert model_from_bytes(_booster(None), _manifest(NAMES)).n_features == 3
    with pytest.raises(UserError, match="lists 2 features but the booster was trained on 3"):
        model_from_bytes(_booster(None), _manifest(["a", "b"]))


def test_manifests_that_do_not_describe_the_booster_are_refused() -> None:
    with pytest.raises(UserError, match="feature 2 is 'zz' in the manifest but 'x2'"):
        model_from_bytes(_booster(NAMES), _manifest(["x1", "zz", "x3"]))
    with pytest.raises(UserError, match="lists 4 features"):
        model_from_bytes(_booster(NAMES), _manifest([*NAMES, "x4"]))
    with pytest.raises(UserError, match="format_version 2 is newer"):
        model_from_bytes(_booster(NAMES), _manifest(NAMES, format_version=2))
    with pytest.raises(UserError, match="not an XGBoost model"):
        model_from_bytes(b"garbage", _manifest(NAMES))


def test_multi_class_models_report_their_outputs() -> None:
    model = model_from_bytes(_booster(NAMES, "multi:softprob"), _manifest(NAMES))
    assert model.outputs == 3
    assert model.predict(np.zeros((2, 3), dtype=np.float32)).shape == (2, 3)


def test_feature_positions_match_names_case_insensitively_and_check_types() -> None:
    schema = pa.schema(
        [("id", pa.string()), ("X2", pa.int64()), ("x1", pa.float64()), ("x3", pa.bool_())]
    )
    assert feature_positions(schema, NAMES) == [2, 1, 3]
    with pytest.raises(NotFoundError, match="needs feature column 'x4'"):
        feature_positions(schema, ["x1", "x4"])
    with pytest.raises(UserError, match="feature column 'id' is string, not a number"):
        feature_positions(schema, ["id"])
    ambiguous = pa.schema([("Ab", pa.float64()), ("aB", pa.float64())])
    with pytest.raises(UserError, match="ambiguous"):
        feature_positions(ambiguous, ["ab"])


def test_features_matrix_casts_every_numeric_type_and_nulls_become_nan() -> None:
    batch = pa.record_batch(
        {
            "name": pa.array(["p", "q", "r"]),
            "i": pa.array([1, None, 3], type=pa.int32()),
            "d": pa.array(
                [decimal.Decimal("1.50"), decimal.Decimal("2.25"), None], type=pa.decimal128(6, 2)
            ),
            "b": pa.array([True, False, None]),
            "f": pa.array([0.5, np.nan, 2.0], type=pa.float32()),
        }
    )
    matrix = features_matrix(batch, [4, 1, 2, 3])
    assert matrix.dtype == np.float32
    assert matrix.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(
        matrix,
        np.array(
            [[0.5, 1, 1.5, 1], [np.nan, np.nan, 2.25, 0], [2.0, 3, np.nan, np.nan]],
            dtype=np.float32,
        ),
    )
