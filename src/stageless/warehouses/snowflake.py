"""Snowflake, through ``snowflake-connector-python``: read as Arrow, load through a stage.

Reading: every query's result comes back as Arrow chunks (``fetch_arrow_batches``), conformed
to one schema and re-sliced into record batches; nothing goes through ``fetchall`` or pandas.

Sharding and consistency: workers split rows by a salted ``HASH`` of named columns
(``MOD(ABS(HASH(1, cols...)), N) = k``: disjoint, and every row lands in exactly one shard).
The coordinator pins one instant with time travel, ``AT(TIMESTAMP => <server time>)`` on
every table the relation reads, so all workers read the same version. Where time travel
is not available (a table with ``DATA_RETENTION_TIME_IN_DAYS = 0``, or an emulator), the
manifest's ``snapshot`` says so and the exactly-once row count check guards the read.

Loading: the rows are written to a local Parquet file (deleted afterwards), ``PUT`` to a
temporary stage and bulk loaded with ``COPY INTO ... MATCH_BY_COLUMN_NAME`` into a new
table, which then replaces the old one in one statement (see :meth:`_replace`).

Credentials come only from a :class:`~stageless.secrets.Secret`; every driver error is
translated at this boundary into a one-line, credential-free stageless error.
"""

from __future__ import annotations

import itertools
import re
import secrets as random_names
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import snowflake.connector
from snowflake.connector import errors as sf_errors
from snowflake.connector.constants import FIELD_ID_TO_NAME
from sqlglot import exp

from stageless.errors import (
    DataError,
    NotFoundError,
    StagelessError,
    TransientError,
    UserError,
)
from stageless.identifiers import TableName, match_name
from stageless.secrets import Secret
from stageless.warehouses.base import (
    DEFAULT_BATCH_ROWS,
    LoadMode,
    Relation,
    Warehouse,
    int_literal,
)
from stageless.warehouses.snowflake_sql import (
    DIALECT,
    empty_result_type,
    ingest_names,
    parquet_type,
    pin_tables,
    pinnable_tables,
    qualified,
    result_type,
    snowflake_type,
    table_expression,
    unpin_tables,
)
from stageless.warehouses.snowflake_url import (
    SnowflakeTarget,
    fold_identifier,
    parse_snowflake_url,
)

#: errors meaning "no such object (or your role may not see it)" / "no such column"
_NOT_FOUND_ERRNOS = frozenset({2003, 2043, 904})
#: "No active warehouse selected in the current session"
_NO_WAREHOUSE_ERRNO = 606
#: a statement the server's SQL grammar does not know (used to detect missing features)
_SYNTAX_ERRNO = 1003
#: Parquet files are cut at about this many bytes of Arrow data, so COPY loads in parallel
_PARQUET_FILE_BYTES = 256 * 1024 * 1024
_ERROR_PREFIX = re.compile(r"^\d{6}(?: \([0-9A-Z]{5}\))?: ")
_LOGIN_PREFIX = re.compile(r"^Failed to connect to DB: \S+\. ")
_PARAMSTYLE = "qmark"  # values are bound by the server, never pasted into SQL


def _message(exc: BaseException) -> str:
    """The driver's own message on one line (it never holds the password)."""
    text = str(getattr(exc, "msg", None) or exc)
    text = _ERROR_PREFIX.sub("", text.strip())  # "002003 (42S02): " repeats the errno
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines) if lines else type(exc).__name__


def translate(exc: BaseException, what: str) -> StagelessError:
    """A driver exception as a stageless error: user mistakes exit 2, network trouble retries."""
    if isinstance(exc, StagelessError):
        return exc
    message = f"{what}: {_message(exc)}"
    if isinstance(exc, sf_errors.ProgrammingError):
        if (exc.errno or 0) in _NOT_FOUND_ERRNOS:
            return NotFoundError(message)
        if exc.errno == _NO_WAREHOUSE_ERRNO:
            return UserError(f"{message} (add warehouse=WH to the URL, or to the secret)")
        return UserError(message)
    if isinstance(exc, sf_errors.ForbiddenError):
        return UserError(f"{message} (Snowflake answered 403: check the account identifier)")
    if isinstance(exc, sf_errors.DataError | sf_errors.IntegrityError):
        return UserError(message)
    if isinstance(exc, _TRANSIENT):
        return TransientError(f"{message} (the driver retried until its timeout; retry later)")
    if isinstance(exc, sf_errors.DatabaseError) and 390000 <= (exc.errno or 0) < 391000:
        # The login service said no: wrong user or password, locked user, role not granted.
        reason = _LOGIN_PREFIX.sub("", _message(exc))
        return UserError(
            f"{what}: Snowflake rejected the login ({reason}); check the username and "
            "password in the secret, and the role and warehouse in the URL"
        )
    return StagelessError(f"{message} ({type(exc).__name__})")


_TRANSIENT = (
    sf_errors.OperationalError,
    sf_errors.InterfaceError,
    sf_errors.InternalServerError,
    sf_errors.ServiceUnavailableError,
    sf_errors.GatewayTimeoutError,
    sf_errors.BadGatewayError,
    sf_errors.RequestTimeoutError,
    sf_errors.OtherHTTPRetryableError,
)


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Translate driver exceptions at the boundary (the fakesnow idiom)."""
    try:
        yield
    except sf_errors.Error as exc:
        raise translate(exc, what) from None


def _result_schema(description: Sequence[Any], first: pa.Table | None) -> pa.Schema:
    """One schema for the whole result, from the column metadata (and the first chunk)."""
    fields = []
    for i, column in enumerate(description):
        type_name = FIELD_ID_TO_NAME[column.type_code]
        fixed = result_type(type_name, column.scale)
        if fixed is None:
            fixed = (
                first.schema.field(i).type
                if first is not None
                else empty_result_type(type_name, column.scale)
            )
        fields.append(pa.field(column.name, fixed))
    return pa.schema(fields)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """TABLE with SCHEMA's types (a chunk's narrower integers widened), without metadata."""
    if table.schema.equals(schema, check_metadata=False) and not table.schema.metadata:
        return table
    columns = [
        col if col.type == field.type else col.cast(field.type)
        for col, field in zip(table.columns, schema, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _fold(name: str, quoted: bool) -> str:
    """A table-name part as Snowflake understands it: quoted as written, else folded."""
    return name if quoted else fold_identifier(name)


class SnowflakeWarehouse(Warehouse):
    dialect = DIALECT
    # Snowflake has no 32-bit float; FLOAT is 64-bit, and the worker turns each batch
    # into a float32 matrix itself (one conversion per batch, no float64 copy kept).
    float32_type = "FLOAT"

    def __init__(
        self, target: SnowflakeTarget, con: snowflake.connector.SnowflakeConnection, read_only: bool
    ) -> None:
        self.target = target
        self.con = con
        self.read_only = read_only
        self._relations: list[Relation] = []
        self._snapshot: str | None = None
        self._clone_supported = True

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        read_only: bool = False,
        threads: int | None = None,  # Snowflake's warehouse decides its own parallelism
        secret: Secret | None = None,
    ) -> SnowflakeWarehouse:
        target = parse_snowflake_url(url)
        if secret is None:
            raise UserError(
                "Snowflake needs credentials: pass --secret aws-secretsmanager://ID (a JSON "
                "object with username and password), env://PREFIX or file:///path.json"
            )
        options = target.connect_options()
        for key in ("warehouse", "role"):  # the secret may name them when the URL does not
            if key not in options and secret.get(key):
                options[key] = secret.get(key)
        host = target.host or f"{target.account}.snowflakecomputing.com"
        what = f"cannot connect to Snowflake account {target.account!r} at {host}"
        try:
            con = snowflake.connector.connect(
                user=secret.username,
                password=secret.password,
                paramstyle=_PARAMSTYLE,
                application="stageless",
                session_parameters={
                    "QUERY_TAG": "stageless",
                    "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
                },
                **options,
            )
        except sf_errors.Error as exc:
            error = translate(exc, what)
            if isinstance(error, TransientError):
                # Also what a mistyped account looks like: its host name does not resolve.
                error = TransientError(
                    f"{what}: {_message(exc)}; check the account identifier (ORGNAME-ACCOUNTNAME"
                    " or a locator like xy12345.us-east-1) and the network, then retry"
                )
            raise error from None
        warehouse = cls(target, con, read_only)
        try:
            warehouse._use_default_schema()
        except BaseException:
            con.close()
            raise
        return warehouse

    @property
    def url(self) -> str:
        return self.target.url

    def close(self) -> None:
        with translate_errors("closing the Snowflake connection failed"):
            self.con.close()

    # -- small helpers ------------------------------------------------------------------
    def _execute(self, sql: str, params: Sequence[object] = (), what: str = "query failed") -> Any:
        """Run one statement; its cursor is returned for the caller to read and close."""
        cursor = self.con.cursor()
        try:
            with translate_errors(what):
                cursor.execute(sql, list(params) if params else None)
        except BaseException:
            cursor.close()
            raise
        return cursor

    def _status_rows(self, sql: str, what: str) -> list[dict[str, object]]:
        """A control statement (DDL, PUT, COPY) and its few status rows; never table data."""
        cursor = self._execute(sql, what=what)
        try:
            with translate_errors(what):
                names = [d.name.lower() for d in cursor.description or []]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def _names(self, sql: str, params: Sequence[object] = ()) -> list[str]:
        table = self.arrow_batches(sql, params).read_all()
        return [str(v) for v in table.column(0).to_pylist()]

    def _schemas(self, database: str) -> list[str] | None:
        """Schemas of DATABASE, or None when it does not exist (or the role cannot use it)."""
        try:
            return self._names(
                f"SELECT SCHEMA_NAME FROM {qualified(database, 'INFORMATION_SCHEMA', 'SCHEMATA')} "
                "ORDER BY SCHEMA_NAME"
            )
        except NotFoundError:
            return None

    def _tables(self, database: str, schema: str) -> list[str]:
        """Tables and views in one schema (some servers list views only in VIEWS)."""
        sql = (
            f"SELECT TABLE_NAME FROM {qualified(database, 'INFORMATION_SCHEMA', 'TABLES')} "
            "WHERE TABLE_SCHEMA = ? UNION "
            f"SELECT TABLE_NAME FROM {qualified(database, 'INFORMATION_SCHEMA', 'VIEWS')} "
            "WHERE TABLE_SCHEMA = ? ORDER BY 1"
        )
        return self._names(sql, [schema, schema])

    def _missing_database(self) -> NotFoundError:
        return NotFoundError(
            f"Snowflake database {self.target.database!r} does not exist in account "
            f"{self.target.account!r}, or the role cannot use it (it needs USAGE on it)"
        )

    def _match_schema(self, wanted: str, schemas: list[str]) -> str:
        try:
            return match_name(wanted, schemas, "schema")
        except NotFoundError as exc:
            raise NotFoundError(f"{exc} (in Snowflake database {self.target.database})") from None

    def _use_default_schema(self) -> None:
        """Make the URL's database and schema current, so a --query's bare names resolve.

        Reading needs both to exist; ingest creates them when it loads.
        """
        schemas = self._schemas(self.target.database)
        if schemas is None:
            if self.read_only:
                raise self._missing_database()
            return
        if self.target.schema not in schemas:
            if not self.read_only and not any(
                s.casefold() == self.target.schema.casefold() for s in schemas
            ):
                return
            # Case-insensitive when unambiguous, like every other name stageless matches;
            # the exact name goes into the URL the workers reconnect with.
            exact = self._match_schema(self.target.schema, schemas)
            self.target = replace(self.target, schema=exact)
        use = f"USE SCHEMA {qualified(self.target.database, self.target.schema)}"
        self._status_rows(use, "cannot use the URL's schema")

    # -- reading ------------------------------------------------------------------------
    def arrow_batches(
        self, sql: str, params: Sequence[object] = (), batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> pa.RecordBatchReader:
        cursor = self._execute(sql, params)
        try:
            with translate_errors("query failed"):
                # Microseconds for every timestamp: otherwise each chunk picks its own unit.
                chunks = cursor.fetch_arrow_batches(force_microsecond_precision=True)
                first = next(chunks, None)
                schema = _result_schema(cursor.description, first)
        except BaseException:
            cursor.close()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                with translate_errors("reading the query's result failed"):
                    for table in itertools.chain([first] if first is not None else [], chunks):
                        yield from _conform(table, schema).to_batches(max_chunksize=batch_rows)
            finally:
                cursor.close()

        return pa.RecordBatchReader.from_batches(schema, batches())

    def resolve_table(self, name: TableName) -> exp.Table:
        database = self.target.database
        schemas = self._schemas(database)
        if schemas is None:
            raise self._missing_database()
        schema = (
            self._match_schema(_fold(name.schema, name.schema_quoted), schemas)
            if name.schema is not None
            else self.target.schema
        )
        tables = self._tables(database, schema)
        where = f"Snowflake schema {database}.{schema}"
        if not tables:
            raise NotFoundError(f"table {name.name!r} not found in {where} (it has no tables)")
        try:
            # Folded first: an unquoted name means its upper-case form, as in Snowflake SQL.
            table = match_name(_fold(name.name, name.name_quoted), tables, "table")
        except NotFoundError as exc:
            raise NotFoundError(f"{exc} (in {where})") from None
        return table_expression(database, schema, table)

    def relation_for_table(self, name: TableName) -> Relation:
        relation = super().relation_for_table(name)
        self._relations.append(relation)
        return relation

    def relation_for_query(self, sql: str) -> Relation:
        relation = super().relation_for_query(sql)
        self._relations.append(relation)
        return relation

    def row_hash(self, columns: Sequence[exp.Expression], salt: int) -> exp.Expression:
        # HASH is Snowflake's deterministic signed 64-bit hash; ABS makes it non-negative
        # (NUMBER arithmetic, so ABS of the smallest value does not overflow).
        return exp.Abs(this=exp.Anonymous(this="HASH", expressions=[int_literal(salt), *columns]))

    # -- consistency --------------------------------------------------------------------
    def pin(self) -> None:
        """Pin every relation handed out so far to the server's current instant.

        The relations' table expressions get ``AT(TIMESTAMP => ...)``, so the count, the
        manifest's query and every worker's SQL read that one version. A probe query
        checks the server can do it; if not, the relations stay as they were and the
        manifest says the read was not pinned.
        """
        (now,) = self.fetch_one("SELECT CURRENT_TIMESTAMP()")
        stamp = now.isoformat(sep=" ") if hasattr(now, "isoformat") else str(now)
        tables = [t for r in self._relations for t in pinnable_tables(r.expression)]
        if not tables:  # nothing stored is read (or all of it is pinned already)
            return
        pin_tables(tables, stamp)
        try:
            for relation in self._relations:
                probe = exp.select("1").from_(relation.expression).limit(0)
                self.arrow_batches(probe.sql(dialect=DIALECT)).read_all()
        except UserError as exc:  # e.g. "Time travel data is not available for table T"
            unpin_tables(tables)
            self._snapshot = (
                f"not pinned: time travel is not available here ({exc}); the rows were "
                "read unpinned and checked by the exactly-once row count instead"
            )
            return
        self._snapshot = (
            f"Snowflake time travel AT(TIMESTAMP => '{stamp}'): the count and every worker "
            "read the tables as they were at this instant (server time when the run was planned)"
        )

    def snapshot(self) -> str | None:
        return self._snapshot

    # -- writing ------------------------------------------------------------------------
    def load_arrow(self, table: TableName, reader: pa.RecordBatchReader, mode: LoadMode) -> int:
        if self.read_only:
            raise RuntimeError("load_arrow needs a writable connection")
        names = ingest_names(reader.schema.names)
        types = [snowflake_type(f.type) for f in reader.schema]
        workdir = Path(tempfile.mkdtemp(prefix="stageless-snowflake-"))
        if "'" in str(workdir):
            shutil.rmtree(workdir, ignore_errors=True)
            raise UserError(
                f"the temporary directory {workdir} has a quote in its path; set TMPDIR"
            )
        try:
            # Read the whole source first: a bad file fails before Snowflake is touched.
            files, rows = _write_parquet(reader, names, workdir)
            return self._load_files(table, names, types, files, rows, mode)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _load_files(
        self,
        table: TableName,
        names: list[str],
        types: list[str],
        files: list[Path],
        rows: int,
        mode: LoadMode,
    ) -> int:
        database = self.target.database
        created: list[str] = []  # what this load created, dropped again if it fails
        try:
            schemas = self._schemas(database)
            if schemas is None:
                # No IF NOT EXISTS: if someone else creates it meanwhile, fail rather than
                # later drop a database that is not ours.
                self._status_rows(
                    f"CREATE DATABASE {qualified(database)}",
                    f"cannot create Snowflake database {database}",
                )
                created.append(f"DATABASE {qualified(database)}")
                schemas = self._schemas(database) or []
            wanted = (
                _fold(table.schema, table.schema_quoted) if table.schema else self.target.schema
            )
            if any(s.casefold() == wanted.casefold() for s in schemas):
                schema = self._match_schema(wanted, schemas)
            else:
                schema = wanted
                self._status_rows(
                    f"CREATE SCHEMA {qualified(database, schema)}",
                    f"cannot create Snowflake schema {database}.{schema}",
                )
                created.append(f"SCHEMA {qualified(database, schema)}")
            existing = self._tables(database, schema)
            wanted = _fold(table.name, table.name_quoted)
            exists = any(t.casefold() == wanted.casefold() for t in existing)
            name = match_name(wanted, existing, "table") if exists else wanted
            if exists and mode == "create":
                raise UserError(
                    f"table {database}.{schema}.{name} already exists; "
                    "use --mode replace or --mode append"
                )
            if exists and mode == "append":
                self._check_append_columns(database, schema, name, names)
            return self._copy(database, schema, name, exists, names, types, files, rows, mode)
        except BaseException:
            for what in reversed(created):  # only what this load created: nothing else in it
                self._drop_quietly(f"DROP {what}")
            raise

    def _copy(
        self,
        database: str,
        schema: str,
        name: str,
        exists: bool,
        names: list[str],
        types: list[str],
        files: list[Path],
        rows: int,
        mode: LoadMode,
    ) -> int:
        """Stage the files, COPY them into a new table, then put it in place in one statement.

        Appending COPYs straight into the table inside a transaction instead.
        """
        suffix = random_names.token_hex(6).upper()
        stage = qualified(database, schema) + f".STAGELESS_LOAD_{suffix}"
        target = qualified(database, schema, name)
        new = qualified(database, schema, f"{name}__STAGELESS_{suffix}")
        where = f"loading {database}.{schema}.{name} failed"
        self._status_rows(
            f"CREATE TEMPORARY STAGE {stage}",
            f"cannot create a temporary stage in {database}.{schema}",
        )
        try:
            for path in files:
                self._put(path, stage, where)
            copy = f"FROM @{stage} FILE_FORMAT=(TYPE=PARQUET) ON_ERROR=ABORT_STATEMENT PURGE=TRUE"
            if exists and mode == "append":
                self._status_rows("BEGIN", where)
                try:
                    loaded = self._copied(
                        f"COPY INTO {target} {copy} MATCH_BY_COLUMN_NAME=CASE_INSENSITIVE", where
                    )
                    _check_count(loaded, rows)
                    self._status_rows("COMMIT", where)
                except BaseException:
                    self._drop_quietly("ROLLBACK")
                    raise
                return loaded
            columns = ", ".join(f"{qualified(n)} {t}" for n, t in zip(names, types, strict=True))
            self._status_rows(f"CREATE TABLE {new} ({columns})", where)
            loaded = self._copied(
                f"COPY INTO {new} {copy} MATCH_BY_COLUMN_NAME=CASE_SENSITIVE", where
            )
            _check_count(loaded, rows)
            if exists:
                self._replace(target, new, where)
            else:
                self._status_rows(f"ALTER TABLE {new} RENAME TO {target}", where)
            return loaded
        finally:
            self._drop_quietly(f"DROP TABLE IF EXISTS {new}")
            self._drop_quietly(f"DROP STAGE IF EXISTS {stage}")

    def _put(self, path: Path, stage: str, where: str) -> None:
        """Upload one local file to the stage (already Parquet-compressed: no gzip)."""
        # The path is our own temporary file (checked to hold no quote), never user input.
        rows = self._status_rows(
            f"PUT 'file://{path}' @{stage} AUTO_COMPRESS=FALSE OVERWRITE=TRUE", where
        )
        failed = [r for r in rows if str(r.get("status", "UPLOADED")).upper() != "UPLOADED"]
        if failed or not rows:
            detail = (
                str(failed[0].get("message") or failed[0].get("status")) if failed else "no file"
            )
            raise TransientError(f"{where}: uploading to the stage failed ({detail}); retry")

    def _replace(self, target: str, new: str, where: str) -> None:
        """Replace TARGET by NEW in one statement, keeping TARGET's grants.

        Snowflake: ``CREATE OR REPLACE TABLE target CLONE new COPY GRANTS`` (zero-copy,
        atomic, and unlike ``ALTER TABLE ... SWAP WITH`` it keeps the privileges other
        roles hold on the table). A server whose grammar lacks CLONE (the fakesnow
        emulator) gets ``CREATE OR REPLACE TABLE target COPY GRANTS AS SELECT * FROM new``:
        one statement too, equally atomic, but it copies the rows.
        """
        if self._clone_supported:
            cursor = self.con.cursor()
            try:
                cursor.execute(f"CREATE OR REPLACE TABLE {target} CLONE {new} COPY GRANTS")
                return
            except sf_errors.ProgrammingError as exc:
                if exc.errno != _SYNTAX_ERRNO:
                    raise translate(exc, where) from None
                self._clone_supported = False
            except sf_errors.Error as exc:
                raise translate(exc, where) from None
            finally:
                cursor.close()
        self._status_rows(
            f"CREATE OR REPLACE TABLE {target} COPY GRANTS AS SELECT * FROM {new}", where
        )

    def _copied(self, sql: str, where: str) -> int:
        """Run a COPY INTO and return the rows it loaded (summed over its files)."""
        rows = self._status_rows(sql, where)
        return sum(int(str(r.get("rows_loaded") or 0)) for r in rows)

    def _check_append_columns(
        self, database: str, schema: str, name: str, names: list[str]
    ) -> None:
        cursor = self._execute(
            f"SELECT * FROM {qualified(database, schema, name)} LIMIT 0", what="reading columns"
        )
        try:
            have = {d.name.upper() for d in cursor.description}
        finally:
            cursor.close()
        extra = [n for n in names if n.upper() not in have]
        if extra:
            raise UserError(
                f"cannot append to {database}.{schema}.{name}: it has no column "
                f"{', '.join(extra)}; use --mode replace to change its columns"
            )

    def _drop_quietly(self, sql: str) -> None:
        """Clean-up that must not hide the error that made it necessary."""
        with suppress(StagelessError):
            self._status_rows(sql, "clean-up failed")


def _check_count(loaded: int, rows: int) -> None:
    if loaded != rows:
        raise DataError(f"Snowflake loaded {loaded:,} rows but the source had {rows:,}")


def _write_parquet(
    reader: pa.RecordBatchReader, names: list[str], workdir: Path
) -> tuple[list[Path], int]:
    """Stream READER into Parquet files under WORKDIR, named for Snowflake; returns rows."""
    schema = pa.schema(
        pa.field(n, parquet_type(f.type)) for n, f in zip(names, reader.schema, strict=True)
    )
    files: list[Path] = []
    writer: pq.ParquetWriter | None = None
    written = rows = 0
    try:
        for batch in reader:
            if writer is None or written >= _PARQUET_FILE_BYTES:
                if writer is not None:
                    writer.close()
                files.append(workdir / f"part-{len(files):05d}.parquet")
                writer = pq.ParquetWriter(files[-1], schema, compression="snappy")
                written = 0
            renamed = pa.RecordBatch.from_arrays(
                [
                    col if col.type == field.type else col.cast(field.type)
                    for col, field in zip(batch.columns, schema, strict=True)
                ],
                schema=schema,
            )
            writer.write_batch(renamed)
            written += renamed.nbytes
            rows += renamed.num_rows
        if writer is None:  # no rows at all: one empty file still creates the table
            files.append(workdir / "part-00000.parquet")
            writer = pq.ParquetWriter(files[-1], schema, compression="snappy")
    finally:
        if writer is not None:
            writer.close()
    return files, rows
