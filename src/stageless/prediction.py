"""``stageless predict``: score a warehouse table or query in place, batch by batch.

The rows stream out of the warehouse as Arrow record batches; each batch's feature columns
become one float32 matrix for ``inplace_predict``, and the batch goes back into the same
warehouse with a ``prediction`` column added, through the backend's atomic ``load_arrow``.
Memory is bounded by the batch size, never by the table: nothing is collected, no pandas.

Reading and writing need two connections (a connection streaming a result cannot run the
INSERT that consumes it): the warehouse's ``twin()`` where it has one (DuckDB: a cursor on
the same database, since one process cannot open the file twice), else a second open.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from stageless.errors import NotFoundError, UserError
from stageless.identifiers import match_name, parse_table_name
from stageless.limits import DEFAULT_BATCH_ROWS
from stageless.serving.model import LoadedModel, load_model, usable_cores
from stageless.warehouses.base import Relation, Warehouse

if TYPE_CHECKING:
    from stageless.secrets import Secret

PREDICTION_COLUMN = "prediction"
_MODES = ("replace", "append")

#: progress(rows_so_far, seconds, done)
Progress = Callable[[int, float, bool], None]


@dataclass(frozen=True)
class PredictResult:
    rows: int
    table: str
    warehouse: str  # URL without credentials
    seconds: float


def predict(
    model: str,
    source: str,
    *,
    into: str,
    table: str | None = None,
    query: str | None = None,
    mode: str = "replace",
    secret: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    every_seconds: float = 1.0,
) -> PredictResult:
    """Write every row of TABLE (or QUERY) plus a ``prediction`` column into INTO.

    ``replace`` leaves INTO with exactly the scored rows, or on any failure as it was;
    ``append`` adds them (creating INTO if needed). Feature columns are found by the
    model's feature names (case-insensitively when that is unambiguous).
    """
    from stageless.secrets import resolve_secret
    from stageless.warehouses import open_warehouse

    if (table is None) == (query is None):
        raise UserError("give exactly one of --table or --query")
    if mode not in _MODES:
        raise UserError(f"unknown mode {mode!r}; use replace or append")
    if batch_rows < 1:
        raise UserError("batch_rows must be positive")
    into_name = parse_table_name(into)
    loaded = load_model(model, nthread=usable_cores())
    if loaded.outputs != 1:
        raise UserError(
            f"the model gives {loaded.outputs} values per row ({loaded.manifest.objective}); "
            "predict writes one prediction column, so it scores single-output models only"
        )
    credentials = resolve_secret(secret) if secret else None
    start = time.perf_counter()
    with (
        open_warehouse(source, secret=credentials) as warehouse,
        _reading_connection(warehouse, source, credentials) as reading,
    ):
        relation: Relation = (
            reading.relation_for_table(parse_table_name(table))
            if table is not None
            else reading.relation_for_query(query)  # type: ignore[arg-type]
        )
        schema = reading.schema_of(relation)
        positions = feature_positions(schema, loaded.features)
        if any(name.casefold() == PREDICTION_COLUMN for name in schema.names):
            raise UserError(
                f"the input already has a column named {PREDICTION_COLUMN!r}; leave it out "
                "with --query (SELECT ... without it) or rename it"
            )
        sql = exp.select("*").from_(relation.expression).sql(dialect=reading.dialect)
        batches = reading.arrow_batches(sql, batch_rows=batch_rows)
        out_schema = batches.schema.append(pa.field(PREDICTION_COLUMN, pa.float32()))
        failures: list[BaseException] = []
        scored = _score(batches, out_schema, loaded, positions, start, progress, every_seconds)
        try:
            rows = warehouse.load_arrow(
                into_name,
                pa.RecordBatchReader.from_batches(out_schema, _noting(scored, failures)),
                mode,  # type: ignore[arg-type]
            )
        except Exception:
            # The backend saw our failure only as "reading the stream failed": raise our own.
            if failures:
                raise failures[0] from None
            raise
        finally:
            # Let go of the read now: an open result keeps the database file in use.
            scored.close()
            batches.close()
        seconds = time.perf_counter() - start
        if progress is not None:
            progress(rows, seconds, True)
        return PredictResult(rows, str(into_name), warehouse.url, seconds)


def feature_positions(schema: pa.Schema, features: list[str]) -> list[int]:
    """Where each of the model's features is in SCHEMA; UserError if missing or not numeric."""
    names = list(schema.names)
    positions = []
    for feature in features:
        try:
            name = match_name(feature, names, "feature column")
        except NotFoundError:
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise NotFoundError(
                f"the model needs feature column {feature!r}, which the input lacks "
                f"(it has: {shown})"
            ) from None
        index = names.index(name)
        arrow_type = schema.field(index).type
        if not (
            pa.types.is_integer(arrow_type)
            or pa.types.is_floating(arrow_type)
            or pa.types.is_decimal(arrow_type)
            or pa.types.is_boolean(arrow_type)
        ):
            raise UserError(
                f"feature column {name!r} is {arrow_type}, not a number; the model needs "
                "numbers (cast it with --query)"
            )
        positions.append(index)
    return positions


def features_matrix(batch: pa.RecordBatch, positions: list[int]) -> np.ndarray:
    """The feature columns as a C-ordered float32 matrix; NULL becomes NaN (missing)."""
    matrix = np.empty((batch.num_rows, len(positions)), dtype=np.float32)
    for j, i in enumerate(positions):
        column = batch.column(i)
        if column.type != pa.float32():
            column = pc.cast(column, pa.float32(), safe=False)
        matrix[:, j] = column.to_numpy(zero_copy_only=False)
    return matrix


def _score(
    batches: pa.RecordBatchReader,
    out_schema: pa.Schema,
    model: LoadedModel,
    positions: list[int],
    start: float,
    progress: Progress | None,
    every_seconds: float,
) -> Iterator[pa.RecordBatch]:
    rows = 0
    last = start
    while True:
        try:
            batch = batches.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:  # the query failed as it ran
            text = str(exc).strip().splitlines()
            raise UserError(f"reading the input failed: {text[0] if text else exc!r}") from None
        if batch.num_rows == 0:
            continue
        predictions = np.asarray(model.predict(features_matrix(batch, positions)))
        yield pa.RecordBatch.from_arrays(
            [*batch.columns, pa.array(predictions.astype(np.float32, copy=False))],
            schema=out_schema,
        )
        rows += batch.num_rows
        now = time.perf_counter()
        if progress is not None and now - last >= every_seconds:
            progress(rows, now - start, False)
            last = now


def _noting(
    batches: Iterator[pa.RecordBatch], into: list[BaseException]
) -> Iterator[pa.RecordBatch]:
    """Pass BATCHES through, keeping any exception they raise."""
    try:
        yield from batches
    except BaseException as exc:
        into.append(exc)
        raise


@contextmanager
def _reading_connection(
    warehouse: Warehouse, source: str, secret: Secret | None
) -> Iterator[Warehouse]:
    """A second connection to read from while WAREHOUSE writes."""
    from stageless.warehouses import open_warehouse

    twin = warehouse.twin() or open_warehouse(source, secret=secret)
    try:
        yield twin
    finally:
        twin.close()
