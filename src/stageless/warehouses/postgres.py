"""PostgreSQL (and Amazon Redshift, which speaks its protocol) through the ADBC driver.

Reading: the ADBC PostgreSQL driver runs every query as ``COPY (...) TO STDOUT (FORMAT
binary)`` and decodes the stream straight into Arrow record batches in C; workers select
their features already cast to ``REAL`` (float32), so half the bytes cross the wire and
``numeric`` never travels as text. It was measured against psycopg's binary ``COPY`` and
connectorx (see the README's "PostgreSQL and Redshift" section).

Consistency, exactly once: :meth:`PostgresWarehouse.pin` opens a ``REPEATABLE READ``
transaction on the coordinator's connection and exports its snapshot
(``pg_export_snapshot()``); that connection stays open until training ends. Each worker
begins its own ``REPEATABLE READ`` transaction and adopts the snapshot (``SET TRANSACTION
SNAPSHOT``, :meth:`read_at`) before reading, so every worker sees exactly the rows the
coordinator counted, whatever writers do meanwhile. Shards of a table are physical block
ranges (``ctid`` TID range scans, PostgreSQL 14+): each worker scans only its own blocks.
Queries, views and servers without these features fall back to the portable hash of the
row (the base class), and the manifest says which strategy ran.

Redshift (``redshift://`` or a server that says so) has neither exported snapshots nor
``ctid`` ranges: it shards by the hash of the row, and the exactly-once check (the workers'
counts must add up to the coordinator's) is what guards against concurrent writers.
"""

from __future__ import annotations

import re
import secrets as random_names
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import quote as url_quote

import adbc_driver_manager
import pyarrow as pa
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
    Shard,
    Warehouse,
    int_literal,
    quote,
    table_expression,
)
from stageless.warehouses.postgres_driver import Session
from stageless.warehouses.postgres_types import (
    TYPED_HASH,
    SourceGuard,
    pg_type_of,
    postgres_column,
    readable_schema,
    writable_batches,
)
from stageless.warehouses.postgres_url import MASK, PostgresTarget, parse_postgres_url

DIALECT = "postgres"
#: Masks a 64-bit hash to its non-negative half (the sign bit cleared).
NON_NEGATIVE = 0x7FFF_FFFF_FFFF_FFFF
#: Seeds of a row hash: salt * SEED_STRIDE + column position.
SEED_STRIDE = 1_000_003
#: An exported snapshot id, e.g. ``00000003-0000001B-1``; checked before it is inlined.
SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(?:-[0-9]+)?$")
SNAPSHOT_IN_DESCRIPTION = re.compile(r"exported snapshot ([0-9A-F]+-[0-9A-F]+(?:-[0-9]+)?)")
#: What the server says when the driver cancels a query on Ctrl-C (or an admin does).
_CANCELLED = "canceling statement due to user request"
#: Approximate bytes per row of a worker's SELECT, to turn batch_rows into the driver's
#: batch size hint (it counts bytes).
BYTES_PER_ROW_HINT = 64
#: How often a server (14+) checks that the client is still there during a long query,
#: so a killed worker's query stops within about a second even when it sends nothing.
CLIENT_CHECK_MS = 1000
_STAGING_PREFIX = "__stageless_incoming_"
#: PostgreSQL truncates longer identifiers (NAMEDATALEN - 1 bytes).
MAX_IDENTIFIER_BYTES = 63


@dataclass(frozen=True)
class Capabilities:
    """What the server supports, decided once at connect (the dlt idiom: no dialect ifs)."""

    server: str  # "PostgreSQL 15.18", "Amazon Redshift" or "unknown"
    exported_snapshots: bool  # pg_export_snapshot / SET TRANSACTION SNAPSHOT (9.2+)
    tid_range_scans: bool  # ctid >= '(b,0)' AND ctid < '(e,0)' scans only those blocks (14+)
    row_hash: str  # "typed" (per-type 64-bit hashes, 11+), "text" (older) or "fnv" (Redshift)
    client_connection_check: bool  # client_connection_check_interval (14+)

    @classmethod
    def from_version(cls, version: str, redshift: bool = False) -> Capabilities:
        """From ``SELECT version()``; Redshift says "Redshift" there (and claims 8.0.2)."""
        if redshift or "redshift" in version.lower():
            return cls("Amazon Redshift", False, False, "fnv", False)
        found = re.search(r"PostgreSQL (\d+)(?:\.(\d+))?", version)
        if found is None:
            return cls("unknown", False, False, "text", False)
        major, minor = int(found.group(1)), int(found.group(2) or 0)
        number = major * 100 if major >= 10 else major * 100 + minor  # 9.6 -> 906
        return cls(
            server=f"PostgreSQL {major}.{minor}",
            exported_snapshots=number >= 902,
            tid_range_scans=number >= 1400,
            row_hash="typed" if number >= 1100 else "text",
            client_connection_check=number >= 1400,
        )


def _message(exc: BaseException) -> str:
    """The server's own words from an ADBC or libpq error, on one line."""
    text = str(exc).strip()
    for marker in ("ERROR:", "FATAL:"):
        if marker in text:
            text = text.split(marker, 1)[1]
            break
    else:
        text = re.sub(r"^[A-Z_]+: ", "", text)  # ADBC status code prefix
        text = text.replace("[libpq] ", "")
        for prefix in ("Failed to connect: ", "Failed to execute query: "):
            text = text.split(prefix, 1)[1] if prefix in text else text
    text = text.split("\nQuery was:", 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class _Scrub:
    """Removes a password (as is, or percent-encoded) from messages, should a driver ever
    echo one. Passwords shorter than 4 characters are left alone: masking every "a" in a
    message would only garble it."""

    def __init__(self, password: str | None) -> None:
        forms = (
            {password, url_quote(password, safe="")} if password and len(password) >= 4 else set()
        )
        self.forms = sorted((f for f in forms if f), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self.forms:
            text = text.replace(form, MASK)
        return text


@contextmanager
def translate_errors(what: str, scrub: _Scrub | None = None) -> Iterator[None]:
    """ADBC and libpq errors -> stageless errors, by SQLSTATE class, at the boundary."""
    try:
        yield
    except StagelessError:
        raise
    except (adbc_driver_manager.Error, OSError, pa.ArrowException) as exc:
        if _CANCELLED in str(exc) or isinstance(exc.__cause__, KeyboardInterrupt):
            # Ctrl-C: the driver's SIGINT handler cancelled the query on the server.
            raise KeyboardInterrupt from None
        raise _translated(exc, (scrub or _Scrub(None))(f"{what}: {_message(exc)}")) from None


#: How long any statement waits for a lock before failing (SQLSTATE 55P03, retryable).
LOCK_TIMEOUT = "30s"


def _translated(exc: Exception, message: str) -> StagelessError:
    if not isinstance(exc, adbc_driver_manager.Error):
        # Met while streaming a result: the driver reports it through Arrow, without a
        # SQLSTATE. The server's own "ERROR:" is about the query; anything else is the link.
        return UserError(message) if "ERROR:" in str(exc) else TransientError(message)
    state = (getattr(exc, "sqlstate", None) or "").upper()
    if state in ("42P01", "3F000", "42703", "42883", "3D000", "42704"):
        return NotFoundError(message)
    if state[:2] in ("22", "23", "28", "42", "0A", "2B", "3F", "44"):
        return UserError(message)
    if state in ("40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03") or state[:2] in (
        "08",
        "53",
    ):
        return TransientError(message)
    if isinstance(exc, adbc_driver_manager.OperationalError):
        return TransientError(message)
    return StagelessError(message)


def _quote(name: str) -> str:
    return quote(name, DIALECT)


_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _fold(name: str, quoted: bool) -> str:
    """A name for a new table or schema as PostgreSQL would read it: a plain unquoted name
    folds to lower case (``Housing`` creates ``housing``, which ``SELECT ... FROM Housing``
    then finds); a quoted one, or one that needs quotes anyway (``Loan Book``), stays."""
    if quoted or not _PLAIN_IDENTIFIER.fullmatch(name):
        return name
    return name.lower()


def _check_identifier(name: str, what: str) -> None:
    if not name:
        raise UserError(f"{what} name is empty")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise UserError(
            f"{what} name {name!r} is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes"
        )


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database over one ADBC connection (autocommit; transactions explicit)."""

    dialect = DIALECT
    float32_type = "REAL"

    def __init__(
        self,
        target: PostgresTarget,
        conn: Session,
        capabilities: Capabilities,
        read_only: bool,
        scrub: _Scrub,
    ) -> None:
        self.target = target
        self.conn = conn
        self.capabilities = capabilities
        self.read_only = read_only
        self._scrub = scrub
        self._in_transaction = False
        self._snapshot: str | None = None
        #: (schema, table) -> relkind of what resolve_table found ('r' table, 'v' view...)
        self._relkinds: dict[tuple[str, str], str] = {}
        #: column -> PostgreSQL type, from the last schema_of (row_hash needs them)
        self._column_types: dict[str, str] = {}

    # -- connection ---------------------------------------------------------------------
    @classmethod
    def connect(
        cls,
        url: str,
        *,
        read_only: bool = False,
        threads: int | None = None,  # the server does the work; nothing to size here
        secret: Secret | None = None,
    ) -> PostgresWarehouse:
        target = parse_postgres_url(url)
        user, password = target.user, target.password
        if secret is not None:
            user, password = secret.username, secret.password
        elif password == MASK:
            raise UserError(
                f"the password in {target.display_url} is masked; pass the real one in the URL "
                "or, better, give credentials with --secret"
            )
        scrub = _Scrub(password)
        where = f"cannot connect to {target.display_url}"
        try:
            conn = Session(target.libpq_uri(user, password))
        except adbc_driver_manager.Error as exc:
            # Wrong password, unknown host or port, no such database: the user's to fix.
            raise UserError(scrub(f"{where}: {_message(exc)}")) from None
        warehouse = cls(target, conn, Capabilities.from_version(""), read_only, scrub)
        try:
            version = str(warehouse.fetch_one("SELECT version()")[0])
            warehouse.capabilities = Capabilities.from_version(version, target.is_redshift)
            warehouse._configure_session()
        except BaseException:
            warehouse.close()
            raise
        return warehouse

    def _configure_session(self) -> None:
        """Session settings, in one round trip: what makes text forms of values the same in
        every worker's session (row hashes of dates and timestamps go through text), and
        (14+) how often the server checks that the client is still there during a query,
        so a killed worker's query stops within about a second even when it sends nothing.
        """
        if self.capabilities.row_hash == "fnv":
            return  # Redshift: its own defaults
        settings = {
            "TimeZone": "UTC",
            "DateStyle": "ISO, MDY",
            "IntervalStyle": "postgres",
            # Never wait forever for a lock: a replace's DROP behind a long training
            # transaction (which pins the table) fails with a retryable error instead,
            # and does not block every new reader of the table meanwhile.
            "lock_timeout": LOCK_TIMEOUT,
        }
        if self.capabilities.client_connection_check:
            settings["client_connection_check_interval"] = str(CLIENT_CHECK_MS)
        # Our own constants, rendered as quoted literals: no parameters, so no Arrow
        # arrays built from Python values on the workers' path.
        calls = exp.select(
            *(
                exp.Anonymous(
                    this="set_config",
                    expressions=[exp.Literal.string(k), exp.Literal.string(v), exp.false()],
                )
                for k, v in settings.items()
            )
        )
        self.fetch_one(calls.sql(dialect=DIALECT))

    @property
    def url(self) -> str:
        return self.target.display_url

    def close(self) -> None:
        with suppress(Exception):
            if self._in_transaction:
                self._execute("ROLLBACK")
        self._in_transaction = False
        with suppress(Exception):
            self.conn.close()

    def _execute(
        self, sql: str, params: Sequence[object] = (), what: str = "statement failed"
    ) -> None:
        """Run a statement that returns no rows."""
        with translate_errors(what, self._scrub):
            self.conn.execute(sql, params)

    # -- reading ------------------------------------------------------------------------
    def arrow_batches(
        self, sql: str, params: Sequence[object] = (), batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> pa.RecordBatchReader:
        with translate_errors("query failed", self._scrub):
            reader = self.conn.query(sql, params, batch_rows * BYTES_PER_ROW_HINT)
        scrub = self._scrub

        def batches() -> Iterator[pa.RecordBatch]:
            with translate_errors("reading from PostgreSQL failed", scrub):
                yield from reader

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def schema_of(self, relation: Relation) -> pa.Schema:
        sql = exp.select("*").from_(relation.expression).limit(0).sql(dialect=self.dialect)
        schema = self.arrow_batches(sql).read_all().schema  # drained: frees the connection
        self._column_types = {f.name: pg_type_of(f) or "" for f in schema}
        return readable_schema(schema)

    def _catalog(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, object]]:
        return self.arrow_batches(sql, params).read_all().to_pylist()

    def resolve_table(self, name: TableName) -> exp.Table:
        if name.schema is not None:
            schemas = [
                str(r["s"])
                for r in self._catalog("SELECT nspname::text AS s FROM pg_catalog.pg_namespace")
            ]
            try:
                path = [match_name(name.schema, schemas, "schema")]
            except NotFoundError:
                raise NotFoundError(f"schema {name.schema!r} not found in {self.url}") from None
        else:
            path = [
                str(r["s"])
                for r in self._catalog(
                    "SELECT s::text AS s FROM unnest(current_schemas(false)) "
                    "WITH ORDINALITY AS p(s, i) ORDER BY i"
                )
            ]
        by_schema = {schema: self._relations_in(schema) for schema in path}
        # Like PostgreSQL's search path: an exact name first, then one that differs only
        # in case (what an unquoted name in SQL would have matched), schema by schema.
        found: tuple[str, str] | None = None
        for schema in path:
            if name.name in by_schema[schema]:
                found = (schema, name.name)
                break
        if found is None:
            for schema in path:
                tables = sorted(by_schema[schema])
                try:
                    found = (schema, match_name(name.name, tables, "table"))
                    break
                except NotFoundError:
                    continue
        if found is None:
            where = ", ".join(path) or "no schema on the search path"
            raise NotFoundError(f"table {str(name)!r} not found in {self.url} (schema {where})")
        self._relkinds[found] = by_schema[found[0]][found[1]]
        return table_expression(*found)

    # -- dialect pieces -----------------------------------------------------------------
    def row_hash(self, columns: Sequence[exp.Expression], salt: int) -> exp.Expression:
        """A deterministic non-negative 64-bit hash of the values (see the functions below)."""
        kind = self.capabilities.row_hash
        if kind == "typed":
            return typed_row_hash(columns, salt, self._column_types)
        if kind == "fnv":
            return fnv_row_hash(columns, salt)
        return text_row_hash(columns, salt)

    # -- consistency and sharding -------------------------------------------------------
    def pin(self) -> None:
        """Open the coordinator's REPEATABLE READ transaction and export its snapshot."""
        if not self.capabilities.exported_snapshots or self._in_transaction:
            return
        mode = ", READ ONLY" if self.read_only else ""
        self._execute(f"BEGIN ISOLATION LEVEL REPEATABLE READ{mode}")
        self._in_transaction = True
        try:
            snapshot_id = str(self.fetch_one("SELECT pg_export_snapshot()")[0])
        except StagelessError as exc:
            if exc.retryable:
                raise
            # A server that refuses (a standby during recovery, a pooler, a look-alike):
            # read without a shared snapshot (the exactly-once check still guards the
            # result) rather than not at all.
            self._execute("ROLLBACK")
            self._in_transaction = False
            self._execute(f"BEGIN ISOLATION LEVEL REPEATABLE READ{mode}")
            self._in_transaction = True
            return
        self._snapshot = (
            f"postgresql exported snapshot {snapshot_id} (REPEATABLE READ, held open by the "
            "coordinator until training ended)"
        )

    def snapshot(self) -> str | None:
        return self._snapshot

    def read_at(self, snapshot: str | None) -> None:
        """In a worker: begin a REPEATABLE READ transaction inside the coordinator's snapshot."""
        if snapshot is None or not self.capabilities.exported_snapshots:
            return
        found = SNAPSHOT_IN_DESCRIPTION.search(snapshot)
        if found is None or not SNAPSHOT_ID.match(found.group(1)):
            raise DataError(f"the plan's snapshot {snapshot!r} is not a PostgreSQL snapshot id")
        self._execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        self._in_transaction = True
        try:
            # SET TRANSACTION SNAPSHOT takes no parameters; the id was checked above.
            self._execute(f"SET TRANSACTION SNAPSHOT '{found.group(1)}'")
        except UserError as exc:
            raise DataError(
                f"cannot read inside the coordinator's snapshot {found.group(1)}: {exc} "
                "(did the coordinator stop?)"
            ) from None

    def plan_shards(self, relation: Relation, columns: Sequence[str], n: int) -> list[Shard]:
        table = relation.expression
        heap = (
            relation.is_table
            and isinstance(table, exp.Table)
            and self._relkinds.get((table.db, table.name)) in ("r", "m")
        )
        if n == 1 or not heap or not self.capabilities.tid_range_scans:
            return super().plan_shards(relation, columns, n)
        assert isinstance(table, exp.Table)
        # Blocks at planning time; rows added later sit beyond them, where the last shard
        # (open-ended) would read them, but the shared snapshot hides them anyway.
        (blocks,) = self.fetch_one(
            "SELECT pg_relation_size(c.oid) / current_setting('block_size')::bigint "
            "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            [table.db, table.name],
        )
        bounds = [int(blocks) * k // n for k in range(n + 1)]  # type: ignore[call-overload]
        tid = exp.DataType.build("tid", dialect=DIALECT, udt=True)
        ctid = exp.column("ctid")

        def block(b: int) -> exp.Expression:
            return exp.cast(exp.Literal.string(f"({int(b)},0)"), tid)

        shards = []
        for k in range(n):
            parts: list[exp.Expression] = []
            if k > 0:
                parts.append(exp.GTE(this=ctid.copy(), expression=block(bounds[k])))
            if k < n - 1:
                parts.append(exp.LT(this=ctid.copy(), expression=block(bounds[k + 1])))
            shards.append(Shard(k, "ctid-range", exp.and_(*parts).sql(dialect=DIALECT)))
        return shards

    # -- writing ------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._in_transaction:
            raise RuntimeError("a transaction is already open on this connection")
        self._execute("BEGIN")
        self._in_transaction = True
        try:
            yield
            self._execute("COMMIT")
        except BaseException:
            with suppress(Exception):
                self._execute("ROLLBACK")
            raise
        finally:
            self._in_transaction = False

    def _relations_in(self, schema: str) -> dict[str, str]:
        """Table-like relations of one schema: name -> relkind ('r' table, 'v' view, ...)."""
        rows = self._catalog(
            "SELECT c.relname::text AS t, c.relkind::text AS k FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            [schema],
        )
        return {str(r["t"]): str(r["k"]) for r in rows}

    def _target_schema(self, wanted: str | None) -> tuple[str, bool]:
        """(schema name, exists) for a load: matched like table names, else created."""
        if wanted is None:
            (current,) = self.fetch_one("SELECT current_schema()::text")
            if current is None:
                raise UserError(
                    "no schema on the search path to create the table in; use SCHEMA.TABLE"
                )
            return str(current), True
        schemas = [
            str(r["s"])
            for r in self._catalog("SELECT nspname::text AS s FROM pg_catalog.pg_namespace")
        ]
        try:
            return match_name(wanted, schemas, "schema"), True
        except NotFoundError:
            _check_identifier(wanted, "schema")
            return wanted, False

    def load_arrow(self, table: TableName, reader: pa.RecordBatchReader, mode: LoadMode) -> int:
        """Load into a new table, then rename it into place, all in one transaction.

        replace: the old table is dropped and the new one renamed in the same commit, so
        readers see the old rows or the new ones, never a mix (and the old table survives
        any failure). append: the rows go into the existing table by column name. Grants
        and dependent views of a replaced table are not carried over (a view that depends
        on it makes the replace fail, untouched).
        """
        if self.read_only:
            raise RuntimeError("load_arrow needs a writable connection")
        schema, schema_exists = self._target_schema(
            _fold(table.schema, table.schema_quoted) if table.schema else None
        )
        existing: tuple[str, str] | None = None
        if schema_exists:
            kinds = self._relations_in(schema)
            with suppress(NotFoundError):
                name = match_name(table.name, sorted(kinds), "table")
                existing = (name, kinds[name])
        if existing and existing[1] not in ("r", "p"):
            raise UserError(f"{schema}.{existing[0]} is a view or foreign table, not a table")
        if existing and mode == "create":
            raise UserError(f"table {table} already exists; use --mode replace or --mode append")
        target_name = existing[0] if existing else _fold(table.name, table.name_quoted)
        _check_identifier(target_name, "table")

        columns: list[tuple[str, str]] = []
        writable: list[pa.Field] = []
        for f in reader.schema:
            _check_identifier(f.name, "column")
            pg_type, arrow_type = postgres_column(f.type)
            columns.append((f.name, pg_type))
            writable.append(pa.field(f.name, arrow_type))
        if len({name for name, _ in columns}) != len(columns):
            raise UserError(f"the input has duplicate column names: {reader.schema.names}")
        source = SourceGuard()
        incoming = source.wrap(writable_batches(reader, pa.schema(writable)))

        staging = _STAGING_PREFIX + random_names.token_hex(6)
        target = table_expression(schema, target_name).sql(dialect=DIALECT)
        staged = table_expression(schema, staging).sql(dialect=DIALECT)
        ddl = ", ".join(f"{_quote(name)} {pg_type}" for name, pg_type in columns)
        what = f"loading {table} failed"
        with translate_errors(what, self._scrub), self._transaction():
            # Every name below is quoted by sqlglot for PostgreSQL; no value is inlined.
            if not schema_exists:
                self._execute(f"CREATE SCHEMA {_quote(schema)}", what=what)
            self._execute(f"CREATE TABLE {staged} ({ddl})", what=what)
            try:
                loaded = self.conn.ingest(incoming, schema, staging)
            except adbc_driver_manager.Error:
                if source.error is not None:  # the input's fault, not the server's
                    lines = str(source.error).strip().splitlines() or [type(source.error).__name__]
                    raise UserError(f"{what}: cannot read the input: {lines[0]}") from None
                raise
            if existing is None or mode == "replace":
                if existing is not None:
                    self._execute(f"DROP TABLE {target}", what=what)
                self._execute(f"ALTER TABLE {staged} RENAME TO {_quote(target_name)}", what=what)
            else:
                names = self._append_columns(schema, target_name, [n for n, _ in columns])
                listed = ", ".join(_quote(n) for n in names)
                chosen = ", ".join(_quote(n) for n, _ in columns)
                self._execute(
                    f"INSERT INTO {target} ({listed}) SELECT {chosen} FROM {staged}", what=what
                )
                self._execute(f"DROP TABLE {staged}", what=what)
        return max(loaded, 0)

    def _append_columns(self, schema: str, table: str, incoming: list[str]) -> list[str]:
        """The target table's column for each incoming one, matched like every name."""
        rows = self._catalog(
            "SELECT a.attname::text AS c FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            [schema, table],
        )
        existing = [str(r["c"]) for r in rows]
        return [match_name(name, existing, f"column of {schema}.{table}") for name in incoming]


def typed_row_hash(
    columns: Sequence[exp.Expression], salt: int, types: Mapping[str, str]
) -> exp.Expression:
    """PostgreSQL 11+: each value through its type's own 64-bit hash, combined with XOR.

    ``hashfloat8extended(c0, seed0) # hashint4extended(c1, seed1) # ...``, a different
    seed per column position (so swapped values hash differently), NULL contributing 0,
    sign bit masked. Columns of other types (from TYPES; unknown counts as other) are
    hashed as text, which the connection's pinned TimeZone and DateStyle keep stable.
    Per row this costs the server a third less than ``hash_record_extended(ROW(...))``
    and a fifth of hashing the row's text.
    """
    terms: list[exp.Expression] = []
    for position, c in enumerate(columns):
        pg_type = types.get(c.name, "")
        value: exp.Expression = c
        if pg_type == "bool":
            value, function = exp.cast(c, exp.DataType.build("INT")), "hashint4extended"
        elif pg_type in TYPED_HASH:
            function = TYPED_HASH[pg_type]
        else:
            value, function = exp.cast(c, exp.DataType.build("TEXT")), "hashtextextended"
        seed = int_literal(salt * SEED_STRIDE + position)
        hashed = exp.Anonymous(this=function, expressions=[value, seed])
        terms.append(exp.Coalesce(this=hashed, expressions=[int_literal(0)]))
    combined = terms[0]
    for term in terms[1:]:
        combined = exp.BitwiseXor(this=combined, expression=term)
    return exp.BitwiseAnd(this=exp.Paren(this=combined), expression=int_literal(NON_NEGATIVE))


def text_row_hash(columns: Sequence[exp.Expression], salt: int) -> exp.Expression:
    """PostgreSQL before 11 (no 64-bit hash functions): ``hashtext`` of the row's text.

    32 bits, salted by prefixing the salt; still deterministic and non-negative.
    """
    row_text = exp.cast(
        exp.Anonymous(this="ROW", expressions=[int_literal(salt), *columns]),
        exp.DataType.build("TEXT"),
    )
    hashed = exp.Anonymous(this="hashtext", expressions=[row_text])
    return exp.BitwiseAnd(this=hashed, expression=int_literal(0x7FFF_FFFF))


def fnv_row_hash(columns: Sequence[exp.Expression], salt: int) -> exp.Expression:
    """Redshift: its ``FNV_HASH(value, seed)`` chained over the values as text, sign masked.

    NULL and '' hash alike here, which only matters for which shard or split a row lands
    in, not for whether it is read.
    """
    hashed: exp.Expression = int_literal(salt)
    for c in columns:
        text = exp.Coalesce(
            this=exp.cast(c, exp.DataType.build("VARCHAR")),
            expressions=[exp.Literal.string("")],
        )
        hashed = exp.Anonymous(this="FNV_HASH", expressions=[text, hashed])
    return exp.BitwiseAnd(this=hashed, expression=int_literal(NON_NEGATIVE))


class RedshiftWarehouse(PostgresWarehouse):
    """Amazon Redshift (``redshift://``): no exported snapshots, no ctid ranges.

    Not tested against a live cluster here (none can run locally): the SQL it renders is
    unit-tested, and its plumbing runs against PostgreSQL in the integration tests with a
    stand-in ``fnv_hash`` function.
    """

    dialect = "redshift"


__all__ = [
    "Capabilities",
    "PostgresWarehouse",
    "RedshiftWarehouse",
    "fnv_row_hash",
    "text_row_hash",
    "typed_row_hash",
]
