"""Input files for ``ingest``, read as a stream of Arrow record batches.

DuckDB (always installed) reads CSV, gzipped CSV and Parquet: its CSV sniffer infers
integers, floats, booleans, timestamps and text well, and it streams, so a file larger
than memory loads in bounded memory into any warehouse.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from stageless.datasets import dataset_path
from stageless.errors import NotFoundError, UserError
from stageless.warehouses.base import DEFAULT_BATCH_ROWS

#: rows the CSV sniffer looks at to infer column types
CSV_SAMPLE_ROWS = 100_000


def source_path(source: str) -> Path:
    if source.startswith("dataset:"):
        return dataset_path(source.removeprefix("dataset:"))
    path = Path(source).expanduser()
    if not path.exists():
        raise NotFoundError(f"input file {source} does not exist")
    if not path.is_file():
        raise UserError(f"input {source} is not a file")
    return path


def file_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise UserError(f"cannot tell the format of {path.name}: use a .csv, .csv.gz or .parquet file")


def open_source(source: str, batch_rows: int = DEFAULT_BATCH_ROWS) -> pa.RecordBatchReader:
    """Stream SOURCE (a file path or ``dataset:NAME``) as Arrow record batches."""
    path = source_path(source)
    fmt = file_format(path)
    con = duckdb.connect()  # in memory: only reads the file
    if fmt == "csv":
        sql = f"SELECT * FROM read_csv($1, sample_size = {CSV_SAMPLE_ROWS})"
    else:
        sql = "SELECT * FROM read_parquet($1)"
    try:
        # The path is bound as a parameter; DuckDB never sees it as SQL.
        reader = con.sql(sql, params=[str(path)]).to_arrow_reader(batch_rows)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read {source}: {first}") from None
    if not reader.schema.names:
        raise UserError(f"{source} has no columns")
    return reader
