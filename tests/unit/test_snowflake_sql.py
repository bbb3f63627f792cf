"""Snowflake types, names and SQL pieces (pure functions, no server)."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from stageless.errors import UserError
from stageless.warehouses.snowflake_sql import (
    empty_result_type,
    ingest_names,
    parquet_type,
    pin_tables,
    pinnable_tables,
    result_type,
    snowflake_type,
    table_expression,
    unpin_tables,
)


@pytest.mark.parametrize(
    ("arrow", "snowflake"),
    [
        (pa.int8(), "INT"),
        (pa.int64(), "INT"),
        (pa.uint64(), "INT"),
        (pa.float32(), "FLOAT8"),
        (pa.float64(), "FLOAT8"),
        (pa.string(), "VARCHAR"),
        (pa.large_string(), "VARCHAR"),
        (pa.null(), "VARCHAR"),
        (pa.timestamp("us"), "TIMESTAMP_NTZ"),
        (pa.timestamp("ns", tz="UTC"), "TIMESTAMP_TZ"),
        (pa.bool_(), "BOOLEAN"),
        (pa.date32(), "DATE"),
        (pa.time64("us"), "TIME"),
        (pa.decimal128(12, 2), "NUMBER(12,2)"),
        (pa.decimal256(50, 2), "FLOAT8"),
        (pa.binary(), "BINARY"),
    ],
)
def test_the_seeds_type_mapping(arrow: pa.DataType, snowflake: str) -> None:
    assert snowflake_type(arrow) == snowflake


def test_unsupported_types_are_user_errors() -> None:
    with pytest.raises(UserError, match="cannot be stored in Snowflake"):
        snowflake_type(pa.list_(pa.int64()))


@pytest.mark.parametrize(
    ("arrow", "written"),
    [
        (pa.float16(), pa.float32()),
        (pa.null(), pa.string()),
        (pa.large_string(), pa.string()),
        (pa.date64(), pa.date32()),
        (pa.decimal256(50, 2), pa.float64()),
        (pa.int64(), pa.int64()),
        (pa.timestamp("us"), pa.timestamp("us")),
    ],
)
def test_parquet_types_copy_into_can_read(arrow: pa.DataType, written: pa.DataType) -> None:
    assert parquet_type(arrow) == written


def test_ingest_upper_cases_names_and_refuses_clashes() -> None:
    assert ingest_names(["MedInc", "house age", "x"]) == ["MEDINC", "HOUSE AGE", "X"]
    with pytest.raises(UserError, match="'price' and 'Price' are the same name"):
        ingest_names(["price", "Price"])


def test_result_types_are_fixed_per_column_not_per_chunk() -> None:
    assert result_type("FIXED", 0) == pa.int64()  # chunks may arrive as int8/16/32
    assert result_type("FIXED", 2) == pa.float64()
    assert result_type("REAL", None) == pa.float64()
    assert result_type("BOOLEAN", None) == pa.bool_()
    assert result_type("TIMESTAMP_NTZ", 9) is None  # the driver's (microseconds) is kept
    assert empty_result_type("TIMESTAMP_NTZ", 9) == pa.timestamp("us")
    assert empty_result_type("VARIANT", None) == pa.string()


def test_table_names_are_quoted_exactly() -> None:
    table = table_expression("My Db", "PUBLIC", 'odd "name"')
    assert table.sql(dialect="snowflake") == '"My Db"."PUBLIC"."odd ""name"""'


def test_pinning_adds_time_travel_to_stored_tables_only() -> None:
    query = sqlglot.parse_one(
        "WITH recent AS (SELECT * FROM sales WHERE d > '2024-01-01') "
        "SELECT * FROM recent JOIN ref.regions r ON recent.region = r.id, "
        "TABLE(FLATTEN(input => PARSE_JSON('[1]')))",
        read="snowflake",
    )
    tables = pinnable_tables(query)
    assert sorted(t.sql(dialect="snowflake") for t in tables) == ["ref.regions AS r", "sales"]
    pin_tables(tables, "2026-01-02 03:04:05.123456+00:00")
    sql = query.sql(dialect="snowflake")
    at = "AT (TIMESTAMP => CAST('2026-01-02 03:04:05.123456+00:00' AS TIMESTAMPTZ))"
    assert f"FROM sales {at}" in sql
    assert f"ref.regions {at} AS r" in sql
    assert f"recent {at}" not in sql  # a CTE has no history
    assert pinnable_tables(query) == []  # already pinned
    unpin_tables(tables)
    assert "AT (" not in query.sql(dialect="snowflake")


def test_pinned_sql_parses_back_as_snowflake() -> None:
    table = table_expression("DB", "PUBLIC", "T")
    pin_tables([table], "2026-01-02 03:04:05+00:00")
    sql = exp.select("*").from_(table).sql(dialect="snowflake")
    assert sqlglot.parse_one(sql, read="snowflake").find(exp.HistoricalData) is not None
