"""``stageless ingest``: a file or bundled data set -> a warehouse table, atomically."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import duckdb
import pyarrow as pa

from stageless.errors import StagelessError, UserError
from stageless.identifiers import parse_table_name
from stageless.sources import open_source
from stageless.warehouses import open_warehouse
from stageless.warehouses.base import LoadMode


@dataclass(frozen=True)
class IngestResult:
    rows: int
    table: str
    warehouse: str  # URL without credentials


def ingest(
    source: str, to: str, table: str, mode: LoadMode = "replace", secret: str | None = None
) -> IngestResult:
    """Load SOURCE (``.csv``, ``.csv.gz``, ``.parquet`` or ``dataset:NAME``) into TABLE.

    ``replace`` leaves exactly the new rows, or on any failure the old table untouched;
    ``append`` adds rows (creating the table if needed); ``create`` refuses an existing table.
    """
    if mode not in get_args(LoadMode):
        raise UserError(f"unknown mode {mode!r}; use replace, append or create")
    table_name = parse_table_name(table)
    reader = open_source(source)
    with open_warehouse(to, secret=secret) as warehouse:
        try:
            rows = warehouse.load_arrow(table_name, reader, mode)
        except StagelessError:
            raise
        except (pa.ArrowException, duckdb.Error) as exc:
            # Raised while streaming the file, after the load began (it was rolled back).
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot read {source}: {first}") from None
        return IngestResult(rows=rows, table=str(table_name), warehouse=warehouse.url)
