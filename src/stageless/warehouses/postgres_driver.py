"""A thin session over the ADBC PostgreSQL driver's own API (not its DB-API module).

``adbc_driver_manager.dbapi`` imports ``pyarrow.dataset``, which imports pandas: 0.2 s and
tens of MiB in every process that connects (the coordinator and each worker), for nothing
stageless uses. The driver manager's statement API is all that is needed: a query gives an
Arrow C stream, imported into pyarrow without a copy; a load binds a record batch stream.

Blocking calls go through the driver manager's ``_blocking_call`` (as its DB-API module
does), so Ctrl-C cancels the statement on the server instead of waiting for it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

import adbc_driver_manager as adbc
import adbc_driver_postgresql
import pyarrow as pa

try:  # what the driver manager's DB-API module uses: Ctrl-C cancels the statement
    from adbc_driver_manager._lib import _blocking_call
except ImportError:  # pragma: no cover - a driver manager without it

    def _blocking_call(func, args, kwargs, cancel):  # type: ignore[no-untyped-def]
        return func(*args, **kwargs)


#: The driver's option for the size of the record batches it builds (in bytes).
BATCH_SIZE_HINT = "adbc.postgresql.batch_size_hint_bytes"


def parameter(value: object) -> pa.Array:
    """A one-value Arrow array for a bind parameter (a str or an int).

    Built from buffers: ``pa.array([value])`` would import pandas (pyarrow checks every
    Python sequence for pandas types), which costs each process 0.15 s and tens of MiB.
    """
    if isinstance(value, str):
        data = value.encode()
        offsets = struct.pack("<ii", 0, len(data))
        return pa.Array.from_buffers(
            pa.string(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return pa.Array.from_buffers(pa.int64(), 1, [None, pa.py_buffer(struct.pack("<q", value))])
    raise TypeError(f"stageless binds only str and int parameters, not {type(value).__name__}")


class Session:
    """One connection. Autocommit, so transactions are explicit ``BEGIN`` ... ``COMMIT``."""

    def __init__(self, uri: str) -> None:
        self._db = adbc_driver_postgresql.connect(uri)
        try:
            self._conn = adbc.AdbcConnection(self._db)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._db.close()

    def _statement(self, sql: str, params: Sequence[object]) -> adbc.AdbcStatement:
        stmt = adbc.AdbcStatement(self._conn)
        try:
            stmt.set_sql_query(sql)
            if params:
                # One row of parameters, $1, $2, ...: the driver binds them, never inlines.
                stmt.bind(
                    pa.RecordBatch.from_arrays(
                        [parameter(value) for value in params],
                        names=[str(i) for i in range(len(params))],
                    )
                )
        except BaseException:
            stmt.close()
            raise
        return stmt

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        """Run a statement that returns no rows."""
        stmt = self._statement(sql, params)
        try:
            _blocking_call(stmt.execute_update, (), {}, stmt.cancel)
        finally:
            stmt.close()

    def query(
        self, sql: str, params: Sequence[object] = (), batch_bytes: int | None = None
    ) -> pa.RecordBatchReader:
        """Run a query; its rows stream as Arrow record batches (the driver uses binary COPY).

        The statement is closed once the stream is exhausted (or fails).
        """
        stmt = self._statement(sql, params)
        try:
            if batch_bytes:
                stmt.set_options(**{BATCH_SIZE_HINT: str(batch_bytes)})
            handle, _ = _blocking_call(stmt.execute_query, (), {}, stmt.cancel)
            reader = pa.RecordBatchReader._import_from_c(handle.address)
        except BaseException:
            stmt.close()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            finally:
                reader.close()
                stmt.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def ingest(self, reader: pa.RecordBatchReader, schema: str, table: str) -> int:
        """Append a stream of batches to an existing table with binary ``COPY FROM STDIN``."""
        stmt = adbc.AdbcStatement(self._conn)
        try:
            stmt.set_options(
                **{
                    adbc.StatementOptions.INGEST_TARGET_TABLE.value: table,
                    adbc.StatementOptions.INGEST_TARGET_DB_SCHEMA.value: schema,
                    adbc.StatementOptions.INGEST_MODE.value: adbc.INGEST_OPTION_MODE_APPEND,
                }
            )
            stream = adbc.ArrowArrayStreamHandle()
            reader._export_to_c(stream.address)
            stmt.bind_stream(stream)
            return int(_blocking_call(stmt.execute_update, (), {}, stmt.cancel))
        finally:
            stmt.close()
