"""Snowflake's types and SQL pieces, as pure functions (no driver, no connection).

- Ingest maps Arrow types to the seed's Snowflake types (integers ``INT``, floats
  ``FLOAT8``, text ``VARCHAR``, timestamps ``TIMESTAMP_NTZ``, booleans ``BOOLEAN``) and
  writes Parquet that ``COPY INTO`` reads back into exactly those types.
- Reads get one fixed Arrow schema from the result's column metadata: Snowflake sends
  every result chunk with the narrowest integer type that fits *that chunk*, so the
  chunks of one result would otherwise disagree.
- Time travel: :func:`pin_tables` adds ``AT(TIMESTAMP => ...)`` to every table a relation
  reads, so all workers see the table as it was at one instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa
from sqlglot import exp

from stageless.errors import UserError
from stageless.warehouses.base import table_expression as base_table_expression

DIALECT = "snowflake"


def snowflake_type(arrow_type: pa.DataType) -> str:
    """The Snowflake column type ingest creates for an Arrow type."""
    t = arrow_type
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "INT"  # NUMBER(38,0): holds every 64-bit value, signed or not
    if pa.types.is_floating(t):
        return "FLOAT8"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "VARCHAR"
    if pa.types.is_null(t):
        return "VARCHAR"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP_TZ" if t.tz else "TIMESTAMP_NTZ"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_decimal(t):
        return f"NUMBER({t.precision},{t.scale})" if t.precision <= 38 else "FLOAT8"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "BINARY"
    raise UserError(f"column type {t} cannot be stored in Snowflake by stageless")


def parquet_type(arrow_type: pa.DataType) -> pa.DataType:
    """The type a column is written to Parquet with, so COPY INTO reads it as intended."""
    t = arrow_type
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_null(t) or pa.types.is_string_view(t) or pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_decimal(t) and t.precision > 38:
        return pa.float64()
    return t


def ingest_names(names: Sequence[str]) -> list[str]:
    """Column names as ingest creates them: upper case, Snowflake's convention."""
    upper = [name.upper() for name in names]
    seen: dict[str, str] = {}
    for original, name in zip(names, upper, strict=True):
        if not name.strip():
            raise UserError("a column has an empty name; name every column")
        if name in seen:
            raise UserError(
                f"columns {seen[name]!r} and {original!r} are the same name in Snowflake "
                "(names are upper-cased); rename one"
            )
        seen[name] = original
    return upper


#: result column types whose Arrow type is fixed here, whatever a chunk arrived as
_FIXED_RESULT_TYPES = {
    "REAL": pa.float64(),
    "TEXT": pa.string(),
    "BOOLEAN": pa.bool_(),
    "BINARY": pa.binary(),
}
#: for the others, what an empty result (which has no chunk to look at) is given
_EMPTY_RESULT_TYPES = {
    "DATE": pa.date32(),
    "TIME": pa.time64("ns"),
    "TIMESTAMP_NTZ": pa.timestamp("us"),
    "TIMESTAMP_LTZ": pa.timestamp("us", tz="UTC"),
    "TIMESTAMP_TZ": pa.timestamp("us", tz="UTC"),
}


def result_type(type_name: str, scale: int | None) -> pa.DataType | None:
    """The Arrow type every chunk of a result column is cast to; None: keep the driver's."""
    if type_name == "FIXED":
        # The driver already turns NUMBER(p, s > 0) into float64; integers arrive as the
        # narrowest type that fits each chunk, so make them all int64.
        return pa.int64() if not scale else pa.float64()
    return _FIXED_RESULT_TYPES.get(type_name)


def empty_result_type(type_name: str, scale: int | None) -> pa.DataType:
    """The Arrow type of a column of a result with no rows (and so no chunk)."""
    return result_type(type_name, scale) or _EMPTY_RESULT_TYPES.get(type_name, pa.string())


def time_travel(timestamp: str) -> exp.HistoricalData:
    """``AT(TIMESTAMP => CAST('...' AS TIMESTAMPTZ))`` for a timestamp the server gave us."""
    return exp.HistoricalData(
        this="AT",
        kind="TIMESTAMP",
        expression=exp.cast(exp.Literal.string(timestamp), exp.DataType.build("TIMESTAMPTZ")),
    )


def pinnable_tables(expression: exp.Expression) -> list[exp.Table]:
    """The stored tables (and views) an expression reads: not CTEs, not table functions."""
    ctes = {cte.alias_or_name.upper() for cte in expression.find_all(exp.CTE)}
    tables = []
    for table in expression.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or table.args.get("when") is not None:
            continue
        if not table.db and table.name.upper() in ctes:
            continue
        tables.append(table)
    return tables


def pin_tables(tables: Iterable[exp.Table], timestamp: str) -> None:
    """Make every table read as of TIMESTAMP (Snowflake time travel)."""
    for table in tables:
        table.set("when", time_travel(timestamp))


def unpin_tables(tables: Iterable[exp.Table]) -> None:
    for table in tables:
        table.set("when", None)


def qualified(*names: str) -> str:
    """``"DB"."SCHEMA"."NAME"``: each part quoted exactly by sqlglot's Snowflake rules."""
    return ".".join(exp.to_identifier(n, quoted=True).sql(dialect=DIALECT) for n in names)


def table_expression(database: str, schema: str, name: str) -> exp.Table:
    return base_table_expression(schema, name, catalog=database)
