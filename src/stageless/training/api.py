"""``stageless.train``: callable from a notebook or the CLI.

Deliberately light to import: worker processes are started before the coordinator's
heavier modules (pyarrow, sqlglot, the warehouse driver) load.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stageless.errors import UserError
from stageless.limits import DEFAULT_BATCH_ROWS, MAX_WORKERS
from stageless.storage import is_s3_url
from stageless.training.events import EventSink, Reporter
from stageless.training.hyperparams import parse_hyperparameters
from stageless.training.launcher import LocalWorkers

if TYPE_CHECKING:
    from stageless.manifest import Manifest


def _check_options(
    table: str | None, query: str | None, workers: int, validation_fraction: float, output: str
) -> None:
    if (table is None) == (query is None):
        raise UserError("give exactly one of --table or --query")
    if not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise UserError(f"--workers must be an integer from 1 to {MAX_WORKERS}")
    if not 0 <= validation_fraction < 1:
        raise UserError(
            f"--validation-fraction must be at least 0 and below 1, not {validation_fraction}"
        )
    if is_s3_url(output):
        from stageless.storage import check_output

        check_output(output)  # malformed URL or missing bucket: fail before reading
        return
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise UserError(f"--output {output} exists and is not a directory")


def train(
    source: str,
    *,
    target: str,
    output: str,
    table: str | None = None,
    query: str | None = None,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    workers: int = 1,
    validation_fraction: float = 0.25,
    split_key: str | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: EventSink | None = None,
    secret: str | None = None,
) -> Manifest:
    """Train one XGBoost model on a warehouse table or query; write OUTPUT/model.tar.gz.

    OUTPUT is a directory or ``s3://bucket/prefix`` (uploaded once the archive is complete).

    Each of WORKERS workers reads its own disjoint shard straight from the warehouse;
    together they read every row exactly once (checked), and the train/validation split
    depends only on each row, never on the number of workers.
    """
    hp = parse_hyperparameters(hyperparameters or {})  # before anything is read
    _check_options(table, query, workers, validation_fraction, output)
    sink = progress or Reporter(workers)

    # Worker processes start now and import XGBoost while the coordinator plans.
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(LocalWorkers(workers, source)) if workers > 1 else None
        from stageless.training.coordinator import plan_training, run_plan
        from stageless.warehouses import open_warehouse

        # The coordinator's read-only connection stays open until training ends: for
        # DuckDB its file lock is what keeps the view every worker reads the same.
        warehouse = stack.enter_context(open_warehouse(source, read_only=True, secret=secret))
        plan = plan_training(
            warehouse,
            table=table,
            query=query,
            target=target,
            features=features,
            exclude=exclude,
            workers=workers,
            validation_fraction=validation_fraction,
            split_key=split_key,
            hyperparameters=hp,
            output=output,
            batch_rows=batch_rows,
            secret=secret,
        )
        sink.emit(
            "info",
            message=f"training on {plan.rows_expected:,} rows of {len(plan.features)} features "
            f"with {_count(workers, 'worker')} ({_count(plan.nthread, 'thread')} each)",
        )
        return run_plan(plan, sink, warehouse, pool)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
