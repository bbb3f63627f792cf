"""stageless.warehouses.duckdb: Arrow -> DuckDB types and ``duckdb:`` URLs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from stageless.errors import UserError
from stageless.identifiers import TableName
from stageless.warehouses import open_warehouse
from stageless.warehouses.duckdb import duckdb_type, parse_duckdb_url


@pytest.mark.parametrize(
    ("arrow_type", "expected"),
    [
        (pa.bool_(), "BOOLEAN"),
        (pa.int8(), "TINYINT"),
        (pa.int16(), "SMALLINT"),
        (pa.int32(), "INTEGER"),
        (pa.int64(), "BIGINT"),
        (pa.uint8(), "UTINYINT"),
        (pa.uint16(), "USMALLINT"),
        (pa.uint32(), "UINTEGER"),
        (pa.uint64(), "UBIGINT"),
        (pa.float16(), "REAL"),
        (pa.float32(), "REAL"),
        (pa.float64(), "DOUBLE"),
        (pa.date32(), "DATE"),
        (pa.date64(), "DATE"),
        (pa.null(), "VARCHAR"),
        (pa.string(), "VARCHAR"),
        (pa.large_string(), "VARCHAR"),
        (pa.string_view(), "VARCHAR"),
        (pa.binary(), "BLOB"),
        (pa.large_binary(), "BLOB"),
        (pa.binary(16), "BLOB"),
        (pa.timestamp("s"), "TIMESTAMP"),
        (pa.timestamp("us"), "TIMESTAMP"),
        (pa.timestamp("ns"), "TIMESTAMP"),
        (pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ"),
        (pa.timestamp("ms", tz="Europe/Berlin"), "TIMESTAMPTZ"),
        (pa.time32("s"), "TIME"),
        (pa.time64("us"), "TIME"),
        (pa.duration("s"), "INTERVAL"),
        (pa.decimal128(10, 2), "DECIMAL(10,2)"),
        (pa.decimal128(38, 0), "DECIMAL(38,0)"),
        (pa.decimal128(1, 1), "DECIMAL(1,1)"),
        (pa.decimal256(38, 10), "DECIMAL(38,10)"),
        (pa.decimal256(39, 2), "DOUBLE"),
        (pa.decimal256(76, 0), "DOUBLE"),
    ],
)
def test_duckdb_type(arrow_type: pa.DataType, expected: str) -> None:
    assert duckdb_type(arrow_type) == expected


@pytest.mark.parametrize(
    "arrow_type",
    [
        pa.list_(pa.int64()),
        pa.large_list(pa.string()),
        pa.struct([("a", pa.int32())]),
        pa.map_(pa.string(), pa.int32()),
        pa.dictionary(pa.int32(), pa.string()),
    ],
)
def test_unsupported_types_are_user_errors(arrow_type: pa.DataType) -> None:
    with pytest.raises(UserError, match="cannot be stored in DuckDB"):
        duckdb_type(arrow_type)


@pytest.mark.parametrize(
    "values",
    [
        pa.array([-5, None], pa.int8()),
        pa.array([2**64 - 1, 0], pa.uint64()),
        pa.array([1.5, None], pa.float32()),
        pa.array([Decimal("123456789.123"), None], pa.decimal128(12, 3)),
        pa.array([Decimal("9" * 38), None], pa.decimal128(38, 0)),
        pa.array([datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), None], pa.timestamp("us", "UTC")),
        pa.array([True, False], pa.bool_()),
        pa.array(["a", None], pa.large_string()),
    ],
)
def test_the_type_names_create_columns_that_hold_the_values(values: pa.Array) -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE x (c {duckdb_type(values.type)})")
    incoming = pa.table({"c": values})
    con.register("incoming", incoming)
    con.execute("INSERT INTO x SELECT c FROM incoming")
    back = con.sql("SELECT c FROM x").to_arrow_table().column("c").to_pylist()
    assert back == values.to_pylist()


def test_load_arrow_stores_a_wide_decimal_as_double(tmp_path: Path) -> None:
    table = pa.table({"c": pa.array([Decimal("1.5"), None], pa.decimal256(40, 1))})
    with open_warehouse(f"duckdb://{tmp_path / 'd.duckdb'}") as wh:
        loaded = wh.load_arrow(TableName("d"), table.to_reader(), "replace")
        assert loaded == 2
        assert wh.fetch_one("SELECT any_value(typeof(c)), sum(c) FROM d") == ("DOUBLE", 1.5)


# -- parse_duckdb_url ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("duckdb:///abs/dir/x.duckdb", Path("/abs/dir/x.duckdb")),
        ("duckdb:///x.duckdb", Path("/x.duckdb")),
        ("duckdb:rel/x.duckdb", Path("rel/x.duckdb")),
        ("duckdb:x.duckdb", Path("x.duckdb")),
        ("duckdb:~/x.duckdb", Path("~/x.duckdb")),
    ],
)
def test_parse_duckdb_url(url: str, expected: Path) -> None:
    assert parse_duckdb_url(url) == expected


def test_absolute_url_is_absolute_and_relative_is_relative() -> None:
    assert parse_duckdb_url("duckdb:///a/b.duckdb").is_absolute()
    assert not parse_duckdb_url("duckdb:a/b.duckdb").is_absolute()


@pytest.mark.parametrize("url", ["duckdb://host/x.duckdb", "duckdb://x.duckdb"])
def test_a_host_part_is_refused(url: str) -> None:
    with pytest.raises(UserError, match="has a host part"):
        parse_duckdb_url(url)


@pytest.mark.parametrize("url", ["duckdb::memory:", "duckdb:"])
def test_no_file_is_refused(url: str) -> None:
    with pytest.raises(UserError, match="names no file"):
        parse_duckdb_url(url)
