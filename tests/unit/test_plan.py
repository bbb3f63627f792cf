"""stageless.training.plan: feature types, column choice and thread sharing."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

from stageless.errors import UserError
from stageless.training import plan
from stageless.training.plan import choose_columns, feature_type, threads_per_worker


@pytest.mark.parametrize(
    ("arrow_type", "expected"),
    [
        (pa.bool_(), "i"),
        (pa.int8(), "int"),
        (pa.int16(), "int"),
        (pa.int32(), "int"),
        (pa.int64(), "int"),
        (pa.uint8(), "int"),
        (pa.uint64(), "int"),
        (pa.float16(), "float"),
        (pa.float32(), "float"),
        (pa.float64(), "float"),
        (pa.decimal128(10, 2), "float"),
        (pa.decimal256(50, 4), "float"),
        (pa.string(), None),
        (pa.large_string(), None),
        (pa.binary(), None),
        (pa.timestamp("us"), None),
        (pa.timestamp("ns", tz="UTC"), None),
        (pa.date32(), None),
        (pa.null(), None),
        (pa.list_(pa.float64()), None),
    ],
)
def test_feature_type(arrow_type: pa.DataType, expected: str | None) -> None:
    assert feature_type(arrow_type) == expected


SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("Rooms", pa.int32()),
        ("price", pa.float64()),
        ("area", pa.decimal128(9, 2)),
        ("sold_at", pa.timestamp("us")),
        ("has_garden", pa.bool_()),
        ("score", pa.float32()),
    ]
)


def test_default_features_are_every_numeric_column_but_the_target_in_schema_order() -> None:
    target, features, types, key = choose_columns(SCHEMA, "price", None, [], None)
    assert target == "price"
    assert features == ["id", "Rooms", "area", "has_garden", "score"]
    assert types == ["int", "int", "float", "i", "float"]
    assert key is None


def test_target_is_matched_case_insensitively() -> None:
    target, features, _, _ = choose_columns(SCHEMA, "PRICE", None, [], None)
    assert target == "price"
    assert "price" not in features


def test_given_features_keep_their_order_and_match_case_insensitively() -> None:
    _, features, types, _ = choose_columns(
        SCHEMA, "price", ["score", "rooms", "ID", "score"], [], None
    )
    assert features == ["score", "Rooms", "id"]
    assert types == ["float", "int", "int"]


def test_a_non_numeric_feature_is_refused() -> None:
    with pytest.raises(UserError) as info:
        choose_columns(SCHEMA, "price", ["id", "name"], [], None)
    message = str(info.value)
    assert "'name'" in message
    assert "string" in message
    assert "numeric" in message


def test_a_timestamp_feature_is_refused() -> None:
    with pytest.raises(UserError, match="'sold_at'"):
        choose_columns(SCHEMA, "price", ["sold_at"], [], None)


@pytest.mark.parametrize("target", ["name", "sold_at"])
def test_a_non_numeric_target_is_refused(target: str) -> None:
    with pytest.raises(UserError) as info:
        choose_columns(SCHEMA, target, None, [], None)
    assert f"target column {target!r}" in str(info.value)
    assert "must be numeric" in str(info.value)


def test_a_boolean_target_is_allowed() -> None:
    target, features, _, _ = choose_columns(SCHEMA, "has_garden", None, [], None)
    assert target == "has_garden"
    assert "has_garden" not in features


def test_unknown_target_is_not_found() -> None:
    with pytest.raises(UserError, match="target column 'nope' not found; available: id, name"):
        choose_columns(SCHEMA, "nope", None, [], None)


def test_unknown_feature_is_not_found() -> None:
    with pytest.raises(UserError, match="feature column 'nope' not found"):
        choose_columns(SCHEMA, "price", ["id", "nope"], [], None)


def test_exclude_removes_default_features() -> None:
    _, features, types, _ = choose_columns(SCHEMA, "price", None, ["ID", "area"], None)
    assert features == ["Rooms", "has_garden", "score"]
    assert types == ["int", "i", "float"]


def test_exclude_removes_given_features() -> None:
    _, features, _, _ = choose_columns(SCHEMA, "price", ["id", "score"], ["score"], None)
    assert features == ["id"]


def test_unknown_exclude_is_not_found() -> None:
    with pytest.raises(UserError, match="--exclude column 'nope' not found"):
        choose_columns(SCHEMA, "price", None, ["nope"], None)


def test_the_target_named_as_a_feature_is_refused() -> None:
    with pytest.raises(UserError, match="target 'price' cannot also be a feature"):
        choose_columns(SCHEMA, "price", ["id", "Price"], [], None)


def test_nothing_left_is_an_error() -> None:
    with pytest.raises(UserError, match="no numeric feature columns"):
        choose_columns(SCHEMA, "price", ["id"], ["id"], None)
    only_text = pa.schema([("y", pa.float64()), ("a", pa.string()), ("b", pa.timestamp("s"))])
    with pytest.raises(UserError, match="no numeric feature columns"):
        choose_columns(only_text, "y", None, [], None)


def test_split_key_is_resolved_and_may_be_any_type() -> None:
    _, _, _, key = choose_columns(SCHEMA, "price", None, [], "ID")
    assert key == "id"
    _, features, _, key = choose_columns(SCHEMA, "price", None, [], "NAME")
    assert key == "name"
    assert "name" not in features


def test_unknown_split_key_is_not_found() -> None:
    with pytest.raises(UserError, match="--split-key column 'nope' not found"):
        choose_columns(SCHEMA, "price", None, [], "nope")


# -- threads --------------------------------------------------------------------------------


def _cores(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(plan.os, "sched_getaffinity", lambda _pid: set(range(n)), raising=False)


def test_threads_on_two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    _cores(monkeypatch, 2)
    assert threads_per_worker(1) == 2
    assert threads_per_worker(2) == 1
    assert threads_per_worker(3) == 1
    assert threads_per_worker(64) == 1


def test_threads_on_eight_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    _cores(monkeypatch, 8)
    assert [threads_per_worker(w) for w in (1, 2, 3, 4, 8, 9, 64)] == [8, 4, 2, 2, 1, 1, 1]


def test_threads_without_sched_getaffinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(plan.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(plan.os, "cpu_count", lambda: 6)
    assert threads_per_worker(1) == 6
    assert threads_per_worker(4) == 1
    monkeypatch.setattr(plan.os, "cpu_count", lambda: None)
    assert threads_per_worker(1) == 1


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_threads_on_this_machine() -> None:
    cores = len(os.sched_getaffinity(0))
    assert threads_per_worker(1) == cores
    assert threads_per_worker(2) == max(1, cores // 2)
    assert threads_per_worker(1000) == 1
