"""DuckDB, the embedded default: a local file that N worker processes read at once.

Consistency: the coordinator opens the file read-only before planning and keeps it open
until training ends. DuckDB's file lock then lets other readers in (the workers) but no
writer, so every worker sees the same rows the coordinator counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlglot import exp

from stageless.errors import NotFoundError, StagelessError, TransientError, UserError
from stageless.identifiers import TableName, match_name
from stageless.secrets import Secret
from stageless.warehouses.base import (
    DEFAULT_BATCH_ROWS,
    LoadMode,
    Relation,
    Shard,
    Warehouse,
    int_literal,
    quote,
    table_expression,
)

DIALECT = "duckdb"
_INCOMING = "__stageless_incoming"


def parse_duckdb_url(url: str) -> Path:
    """``duckdb:///abs/file.duckdb`` or ``duckdb:rel/file.duckdb`` -> a path."""
    rest = url.split(":", 1)[1]
    if rest.startswith("///"):
        path = rest[2:]
    elif rest.startswith("//"):
        raise UserError(
            f"DuckDB URL {url!r} has a host part; write duckdb:///absolute/path.duckdb "
            "or duckdb:relative/path.duckdb"
        )
    else:
        path = rest
    if path.startswith("//"):  # duckdb:////abs/path: one leading slash is enough
        path = "/" + path.lstrip("/")
    if not path or path == ":memory:":
        raise UserError(f"DuckDB URL {url!r} names no file; workers need a file to share")
    return Path(path)


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB column type for an Arrow type (what ingest creates tables with)."""
    t = arrow_type
    simple = {
        pa.bool_(): "BOOLEAN",
        pa.int8(): "TINYINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.uint8(): "UTINYINT",
        pa.uint16(): "USMALLINT",
        pa.uint32(): "UINTEGER",
        pa.uint64(): "UBIGINT",
        pa.float16(): "REAL",
        pa.float32(): "REAL",
        pa.float64(): "DOUBLE",
        pa.date32(): "DATE",
        pa.date64(): "DATE",
        pa.null(): "VARCHAR",
    }
    if t in simple:
        return simple[t]
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "VARCHAR"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "BLOB"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})" if t.precision <= 38 else "DOUBLE"
    if pa.types.is_duration(t):
        return "INTERVAL"
    raise UserError(f"column type {t} cannot be stored in DuckDB by stageless")


def _readable_by_duckdb(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """Cast what DuckDB cannot scan from Arrow (decimals wider than 38 digits) to float64."""
    wide = [
        i
        for i, f in enumerate(reader.schema)
        if pa.types.is_decimal(f.type) and f.type.precision > 38
    ]
    if not wide:
        return reader
    schema = reader.schema
    for i in wide:
        schema = schema.set(i, schema.field(i).with_type(pa.float64()))
    return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in reader))


def _quote(name: str) -> str:
    return quote(name, DIALECT)


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """DuckDB's exceptions -> stageless errors, at the boundary (the fakesnow idiom)."""
    try:
        yield
    except StagelessError:
        raise
    except duckdb.CatalogException as exc:
        raise NotFoundError(f"{what}: {_first_line(exc)}") from None
    except (
        duckdb.BinderException,
        duckdb.ParserException,
        duckdb.ConversionException,
        duckdb.InvalidInputException,
        duckdb.ConstraintException,
        duckdb.TypeMismatchException,
        duckdb.NotImplementedException,
    ) as exc:
        raise UserError(f"{what}: {_first_line(exc)}") from None
    except duckdb.IOException as exc:
        message = _first_line(exc)
        if "lock" in message.lower():
            raise TransientError(
                f"{what}: the DuckDB file is in use by another process; retry when it has finished"
            ) from None
        raise UserError(f"{what}: {message}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class DuckDBWarehouse(Warehouse):
    dialect = DIALECT
    float32_type = "FLOAT"

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        self.path = path
        self.con = con
        self.read_only = read_only
        self._base_tables: set[tuple[str, str]] = set()
        self._snapshot: str | None = None

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        read_only: bool = False,
        threads: int | None = None,
        secret: Secret | None = None,  # a local file needs no credentials
    ) -> DuckDBWarehouse:
        path = parse_duckdb_url(url).expanduser().absolute()
        if read_only and not path.exists():
            raise NotFoundError(f"DuckDB file {path} does not exist; load a table first")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, object] = {}
        if threads:
            config["threads"] = threads
        with translate_errors(f"cannot open DuckDB file {path}"):
            try:
                con = duckdb.connect(str(path), read_only=read_only, config=config)
            except duckdb.Error as exc:
                if "lock" in str(exc).lower():
                    raise TransientError(
                        f"DuckDB file {path} is open for writing in another process; "
                        "retry when it has finished"
                    ) from None
                raise UserError(f"cannot open DuckDB file {path}: {_first_line(exc)}") from None
        return cls(path, con, read_only)

    @property
    def url(self) -> str:
        return f"duckdb://{self.path}"

    def close(self) -> None:
        self.con.close()

    # -- reading ------------------------------------------------------------------------
    def arrow_batches(
        self, sql: str, params: Sequence[object] = (), batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> pa.RecordBatchReader:
        with translate_errors("query failed"):
            return self.con.sql(sql, params=list(params) or None).to_arrow_reader(batch_rows)

    def resolve_table(self, name: TableName) -> exp.Table:
        catalog = (
            self.arrow_batches(
                "SELECT schema_name, table_name, true AS is_base FROM duckdb_tables() "
                "WHERE database_name = current_database() "
                "UNION ALL SELECT schema_name, view_name, false FROM duckdb_views() "
                "WHERE database_name = current_database() AND NOT internal"
            )
            .read_all()
            .to_pylist()
        )
        schemas = sorted({row["schema_name"] for row in catalog})
        if name.schema is not None:
            schema = match_name(name.schema, schemas, "schema") if schemas else None
            if schema is None:
                raise NotFoundError(f"schema {name.schema!r} not found in {self.path}")
        else:
            schema = str(self.fetch_one("SELECT current_schema()")[0])
        in_schema = [row for row in catalog if row["schema_name"] == schema]
        if not in_schema:
            raise NotFoundError(f"table {str(name)!r} not found in {self.path} (no tables)")
        table = match_name(name.name, [row["table_name"] for row in in_schema], "table")
        if any(r["table_name"] == table and r["is_base"] for r in in_schema):
            self._base_tables.add((schema, table))
        return table_expression(schema, table)

    def row_hash(self, columns: Sequence[exp.Expression], salt: int) -> exp.Expression:
        return exp.Anonymous(this="hash", expressions=[int_literal(salt), *columns])

    # -- consistency and sharding -------------------------------------------------------
    def pin(self) -> None:
        if not self.read_only:
            raise RuntimeError("pin() needs a read-only connection (it relies on the file lock)")
        stat = os.stat(self.path)
        modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC).isoformat(timespec="seconds")
        self._snapshot = (
            f"duckdb file held read-only for the whole run (no writer can change it); "
            f"modified {modified}, {stat.st_size} bytes"
        )

    def snapshot(self) -> str | None:
        return self._snapshot

    def twin(self) -> DuckDBWarehouse:
        # A cursor shares the open database: a second open of the file would fail.
        return DuckDBWarehouse(self.path, self.con.cursor(), read_only=self.read_only)

    def release_memory(self) -> None:
        # Lowering the limit evicts the table's blocks from DuckDB's buffer pool: they
        # would otherwise sit beside the quantised matrices for the whole training.
        self.con.execute("SET memory_limit = '64MB'")

    def plan_shards(self, relation: Relation, columns: Sequence[str], n: int) -> list[Shard]:
        table = relation.expression
        is_base = (
            relation.is_table
            and isinstance(table, exp.Table)
            and (table.db, table.name) in self._base_tables
        )
        # A user column named rowid hides DuckDB's row id: then hash the rows instead.
        shadowed = any(c.lower() == "rowid" for c in columns)
        if n == 1 or not is_base or shadowed:
            return super().plan_shards(relation, columns, n)
        # A base table: split its row ids into N contiguous ranges. Each worker scans only
        # its own range (DuckDB pushes rowid filters into the scan), and row ids are unique,
        # so duplicate rows are still each read exactly once.
        low, high = self.fetch_one(
            exp.select("min(rowid)", "max(rowid)").from_(table).sql(dialect=DIALECT)
        )
        low = int(low) if low is not None else 0
        span = (int(high) + 1 - low) if high is not None else 0
        bounds = [low + (span * k) // n for k in range(n + 1)]
        rowid = exp.column("rowid")
        return [
            Shard(
                k,
                "rowid-range",
                exp.and_(
                    exp.GTE(this=rowid, expression=int_literal(bounds[k])),
                    exp.LT(this=rowid, expression=int_literal(bounds[k + 1])),
                ).sql(dialect=DIALECT),
            )
            for k in range(n)
        ]

    # -- writing ------------------------------------------------------------------------
    def load_arrow(self, table: TableName, reader: pa.RecordBatchReader, mode: LoadMode) -> int:
        if self.read_only:
            raise RuntimeError("load_arrow needs a writable connection")
        schema = table.schema or str(self.fetch_one("SELECT current_schema()")[0])
        target = table_expression(schema, table.name).sql(dialect=DIALECT)
        exists = bool(
            self.fetch_one(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                "AND lower(schema_name) = lower($1) AND lower(table_name) = lower($2)",
                [schema, table.name],
            )[0]
        )
        if exists and mode == "create":
            raise UserError(f"table {table} already exists; use --mode replace or --mode append")
        columns = ", ".join(f"{_quote(f.name)} {duckdb_type(f.type)}" for f in reader.schema)
        reader = _readable_by_duckdb(reader)
        self.con.register(_INCOMING, reader)
        try:
            with translate_errors(f"loading {table} failed"):
                # One transaction: a load that fails part-way rolls back to the old table.
                self.con.execute("BEGIN TRANSACTION")
                try:
                    # Every name below is quoted by sqlglot for DuckDB; no value is inlined.
                    self.con.execute("CREATE SCHEMA IF NOT EXISTS " + _quote(schema))
                    if mode == "replace" or not exists:
                        create = f"CREATE OR REPLACE TABLE {target} ({columns})"
                        self.con.execute(create)
                        insert = f"INSERT INTO {target} SELECT * FROM {_INCOMING}"
                    else:
                        insert = f"INSERT INTO {target} BY NAME SELECT * FROM {_INCOMING}"
                    inserted = self.con.execute(insert).fetchone()
                    self.con.execute("COMMIT")
                except BaseException:
                    self.con.execute("ROLLBACK")
                    raise
        finally:
            self.con.unregister(_INCOMING)
        return int(inserted[0]) if inserted else 0
