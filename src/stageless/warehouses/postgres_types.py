"""Types between Arrow and PostgreSQL, in both directions.

Reading: the ADBC driver reports every column's PostgreSQL type in the field metadata
(``POSTGRESQL:type``) and gives ``numeric`` as an opaque string type, so
:func:`readable_schema` turns ``numeric`` into float64: a numeric column is a feature like
any other (workers cast it to ``REAL`` in SQL, so no text ever crosses the wire for it).

Writing (``ingest``): :func:`postgres_column` picks the column type for an Arrow type and
the Arrow type the ADBC ``COPY`` writer must be handed for it, so the binary ``COPY``
matches the table stageless created.
"""

from __future__ import annotations

import pyarrow as pa

from stageless.errors import UserError

#: Field metadata key where the ADBC driver names a column's PostgreSQL type.
PG_TYPE_KEY = b"POSTGRESQL:type"

#: PostgreSQL's own 64-bit hash function for a type, called as ``f(value, seed)`` (11+).
#: Row hashes use it; values of other types are hashed through their text form.
TYPED_HASH = {
    "int2": "hashint2extended",
    "int4": "hashint4extended",
    "int8": "hashint8extended",
    "float4": "hashfloat4extended",
    "float8": "hashfloat8extended",
    "numeric": "hash_numeric_extended",
    "text": "hashtextextended",
    "varchar": "hashtextextended",
    "bpchar": "hashbpcharextended",
    "name": "hashnameextended",
    "timestamp": "timestamp_hash_extended",
    "time": "time_hash_extended",
    "interval": "interval_hash_extended",
    "uuid": "uuid_hash_extended",
    "jsonb": "jsonb_hash_extended",
}

#: PostgreSQL types whose Arrow form looks numeric but which cannot be cast to REAL.
NOT_FEATURES = frozenset({"money", "oid", "xid", "xid8", "cid", "regclass", "regproc", "regtype"})


def pg_type_of(f: pa.Field) -> str | None:
    """The PostgreSQL type name the driver reported for a result column, if any."""
    if f.metadata and PG_TYPE_KEY in f.metadata:
        return f.metadata[PG_TYPE_KEY].decode()
    return None


def readable_schema(schema: pa.Schema) -> pa.Schema:
    """The schema as stageless should see it: numeric as float64, money and ids not numeric."""
    fields = []
    for f in schema:
        pg_type = pg_type_of(f)
        if pg_type == "numeric":
            f = f.with_type(pa.float64())
        elif pg_type in NOT_FEATURES:
            f = f.with_type(pa.string())
        fields.append(f)
    return pa.schema(fields, metadata=schema.metadata)


def postgres_column(arrow_type: pa.DataType) -> tuple[str, pa.DataType]:
    """(PostgreSQL column type, Arrow type to write it with) for an incoming Arrow type."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        return postgres_column(t.value_type)
    simple: dict[pa.DataType, tuple[str, pa.DataType]] = {
        pa.bool_(): ("boolean", pa.bool_()),
        pa.int8(): ("smallint", pa.int16()),
        pa.uint8(): ("smallint", pa.int16()),
        pa.int16(): ("smallint", pa.int16()),
        pa.uint16(): ("integer", pa.int32()),
        pa.int32(): ("integer", pa.int32()),
        pa.uint32(): ("bigint", pa.int64()),
        pa.int64(): ("bigint", pa.int64()),
        pa.uint64(): ("numeric(20,0)", pa.decimal128(20, 0)),
        pa.float16(): ("real", pa.float32()),
        pa.float32(): ("real", pa.float32()),
        pa.float64(): ("double precision", pa.float64()),
        pa.date32(): ("date", pa.date32()),
        pa.date64(): ("date", pa.date32()),
        pa.null(): ("text", pa.string()),
    }
    if t in simple:
        return simple[t]
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text", pa.string()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "bytea", pa.binary()
    if pa.types.is_binary_view(t):
        return "bytea", pa.binary()
    if pa.types.is_timestamp(t):
        if t.tz:
            return "timestamp with time zone", pa.timestamp("us", tz="UTC")
        return "timestamp", pa.timestamp("us")
    if pa.types.is_time(t):
        return "time", pa.time64("us")
    if pa.types.is_duration(t):
        return "interval", pa.duration("us")
    if pa.types.is_decimal(t):
        if t.precision <= 38:
            return f"numeric({t.precision},{t.scale})", pa.decimal128(t.precision, t.scale)
        # Wider than the COPY writer takes: as text, which numeric parses exactly.
        return f"numeric({t.precision},{t.scale})", pa.string()
    raise UserError(f"column type {t} cannot be stored in PostgreSQL by stageless")


def writable_batches(reader: pa.RecordBatchReader, target: pa.Schema) -> pa.RecordBatchReader:
    """READER's batches cast to TARGET (same names, the Arrow types the writer expects)."""
    if reader.schema.equals(target):
        return reader

    def cast() -> object:
        for batch in reader:
            columns = [
                # Timestamps: PostgreSQL keeps microseconds, so finer units are truncated.
                batch.column(i).cast(f.type, safe=not pa.types.is_timestamp(f.type))
                for i, f in enumerate(target)
            ]
            yield pa.RecordBatch.from_arrays(columns, schema=target)

    return pa.RecordBatchReader.from_batches(target, cast())  # type: ignore[arg-type]


class SourceGuard:
    """Passes batches through and remembers an error raised by the source while reading.

    The ADBC driver reports a failing input stream as its own (I/O) error; this tells the
    input's fault (a bad row in a file: the user's) from the server's.
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def wrap(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        def batches() -> object:
            try:
                yield from reader
            except Exception as exc:
                self.error = exc
                raise

        return pa.RecordBatchReader.from_batches(reader.schema, batches())  # type: ignore[arg-type]
