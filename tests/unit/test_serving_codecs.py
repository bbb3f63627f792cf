"""Request decoding and response encoding, each function alone (no server, no model)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from stageless.serving import codecs
from stageless.serving.codecs import RequestError

F = ["a", "b", "Cc"]


def csv(text: str) -> np.ndarray:
    return codecs.decode(text.encode(), codecs.CSV, F)


def same(got: np.ndarray, want: list[list[float]]) -> None:
    assert got.dtype == np.float32
    assert got.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.float32))


def test_csv_rows_blank_lines_crlf_bom_and_spaces() -> None:
    same(csv("1,2,3"), [[1, 2, 3]])
    same(csv("\ufeff1,2,3\r\n\r\n4, 5 ,6e1\n\n"), [[1, 2, 3], [4, 5, 60]])
    same(csv("-1.5,+2,inf\n"), [[-1.5, 2, math.inf]])


def test_csv_empty_and_blank_fields_are_missing() -> None:
    same(csv(",2,\n1,,3"), [[math.nan, 2, math.nan], [1, math.nan, 3]])
    same(csv(" ,2, \n"), [[math.nan, 2, math.nan]])  # the careful path
    same(csv('"1","2",3'), [[1, 2, 3]])  # quoted numbers, too


def test_csv_header_equal_to_the_features_is_skipped_in_any_case() -> None:
    same(csv("a,b,Cc\n1,2,3"), [[1, 2, 3]])
    same(csv('"A", "B", "cc"\n1,2,3'), [[1, 2, 3]])
    with pytest.raises(RequestError, match="header"):
        csv("a,b,zz\n1,2,3")
    with pytest.raises(RequestError, match="no rows"):
        csv("a,b,Cc\n")


def test_csv_errors_say_which_row_and_column() -> None:
    with pytest.raises(RequestError, match="row 2 has 2 values but the model takes 3") as err:
        csv("1,2,3\n4,5\n")
    assert err.value.status == 400
    with pytest.raises(RequestError, match=r"row 2, column 3 \(Cc\): 'x7' is not a number"):
        csv("1,2,3\n4,5,x7\n")
    with pytest.raises(RequestError, match="no rows"):
        csv("")


def test_json_instances_and_records_with_nulls_bools_and_names_in_any_order() -> None:
    body = json.dumps({"instances": [[1, None, True], [1e40, -2, 0.5]]}).encode()
    same(codecs.decode(body, codecs.JSON, F), [[1, math.nan, 1], [math.inf, -2, 0.5]])
    records = [{"Cc": 3, "a": 1}, {"CC": 6, "B": 5, "A": 4}]
    same(
        codecs.decode(json.dumps({"records": records}).encode(), codecs.JSON, F),
        [[1, math.nan, 3], [4, 5, 6]],
    )
    huge = json.dumps({"instances": [[10**400, 1, 2]]}).encode()
    same(codecs.decode(huge, codecs.JSON, F), [[math.inf, 1, 2]])


def test_records_prefer_exact_names_and_refuse_ambiguous_or_unknown_ones() -> None:
    features = ["x", "X", "y"]
    body = json.dumps({"records": [{"X": 2, "x": 1, "Y": 3}]}).encode()
    same(codecs.decode(body, codecs.JSON, features), [[1, 2, 3]])
    with pytest.raises(RequestError, match="unknown feature"):
        codecs.decode(b'{"records": [{"x": 1, "q": 2}]}', codecs.JSON, features)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{", "not valid JSON"),
        (b"[1, 2, 3]", "must be an object"),
        (b'{"rows": []}', '"instances"'),
        (b'{"instances": {"a": 1}}', "must be a list"),
        (b'{"instances": [[1, 2]]}', "instances[0] has 2 values"),
        (b'{"instances": [[1, 2, "3"]]}', "instances[0], feature Cc: '3' is not a number"),
        (b'{"instances": [[1, 2, {"v": 3}]]}', "not a number"),
        (b'{"records": [{"a": [1]}]}', "records[0], feature a"),
        (b'{"records": [3]}', "records[0] must be a list of values or an object"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_bad_json_bodies(body: bytes, fragment: str) -> None:
    with pytest.raises(RequestError) as err:
        codecs.decode(body, codecs.JSON, F)
    assert err.value.status == 400
    assert fragment in err.value.message


def test_jsonlines_mixes_arrays_and_objects_and_names_the_bad_line() -> None:
    body = b'[1, 2, 3]\n\n{"b": 5}\n'
    same(codecs.decode(body, codecs.JSONLINES, F), [[1, 2, 3], [math.nan, 5, math.nan]])
    with pytest.raises(RequestError, match="line 2 is not valid JSON"):
        codecs.decode(b"[1,2,3]\n[1,2\n", codecs.JSONLINES, F)
    with pytest.raises(RequestError, match="line 1 has 2 values"):
        codecs.decode(b"[1,2]\n", codecs.JSONLINES, F)


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [
        (None, codecs.CSV),
        ("text/csv", codecs.CSV),
        ("Text/CSV; charset=utf-8", codecs.CSV),
        ("application/json", codecs.JSON),
        ("application/jsonlines", codecs.JSONLINES),
        ("application/x-jsonlines", codecs.JSONLINES),
    ],
)
def test_request_formats(content_type: str | None, fmt: str) -> None:
    assert codecs.request_format(content_type) == fmt


def test_other_content_types_are_415() -> None:
    with pytest.raises(RequestError) as err:
        codecs.request_format("application/x-npy")
    assert err.value.status == 415


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [
        (None, codecs.JSON),
        ("", codecs.JSON),
        ("*/*", codecs.JSON),
        ("text/csv", codecs.CSV),
        ("application/json, text/csv", codecs.JSON),
        ("text/csv;q=0.9, application/json;q=0.5", codecs.CSV),
        ("*/*, text/csv", codecs.CSV),  # specific beats wildcard at equal quality
        ("image/png, text/*", codecs.CSV),
        ("application/jsonlines", codecs.JSONLINES),
    ],
)
def test_accept_negotiation(accept: str | None, fmt: str) -> None:
    assert codecs.response_format(accept) == fmt


def test_unanswerable_accept_is_406() -> None:
    for accept in ("image/png", "text/csv;q=0"):
        with pytest.raises(RequestError) as err:
            codecs.response_format(accept)
        assert err.value.status == 406


def test_encoding_round_trips_float32_exactly() -> None:
    predictions = np.array([0.1, 1 / 3, -2.5e-8], dtype=np.float32)
    as_json = json.loads(codecs.encode(predictions, codecs.JSON))["predictions"]
    np.testing.assert_array_equal(np.array(as_json, dtype=np.float32), predictions)
    lines = codecs.encode(predictions, codecs.CSV).decode().splitlines()
    np.testing.assert_array_equal(np.array(lines, dtype=np.float64).astype(np.float32), predictions)
    jsonl = codecs.encode(predictions, codecs.JSONLINES).decode().splitlines()
    assert len(jsonl) == 3


def test_multi_output_predictions_encode_one_row_per_line() -> None:
    probabilities = np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)
    assert codecs.encode(probabilities, codecs.CSV) == b"0.25,0.75\n0.5,0.5\n"
    assert json.loads(codecs.encode(probabilities, codecs.JSON)) == {
        "predictions": [[0.25, 0.75], [0.5, 0.5]]
    }
    assert codecs.encode(probabilities, codecs.JSONLINES) == b"[0.25, 0.75]\n[0.5, 0.5]\n"
