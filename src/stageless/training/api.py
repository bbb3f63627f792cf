"""``stageless.train``: the coordinator's whole job, callable from a notebook or the CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stageless.errors import UserError
from stageless.identifiers import parse_table_name
from stageless.manifest import Manifest
from stageless.training.events import EventSink, Reporter
from stageless.training.hyperparams import parse_hyperparameters
from stageless.training.plan import (
    TrainPlan,
    WorkerTask,
    choose_columns,
    count_rows,
    threads_per_worker,
    worker_select,
)
from stageless.warehouses import Warehouse, open_warehouse, redact_url
from stageless.warehouses.base import DEFAULT_BATCH_ROWS

MAX_WORKERS = 64


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
) -> Manifest:
    """Train one XGBoost model on a warehouse table or query; write OUTPUT/model.tar.gz.

    Each of WORKERS workers reads its own disjoint shard straight from the warehouse;
    together they read every row exactly once (checked), and the train/validation split
    depends only on each row, never on the number of workers.
    """
    hp = parse_hyperparameters(hyperparameters or {})  # before anything is read
    _check_options(table, query, workers, validation_fraction, output)
    sink = progress or Reporter(workers)

    # The coordinator's read-only connection stays open until training ends: for DuckDB
    # its file lock is what keeps the view every worker reads the same.
    with open_warehouse(source, read_only=True) as warehouse:
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
        )
        sink.emit(
            "info",
            message=f"training on {plan.rows_expected:,} rows of {len(plan.features)} features "
            f"with {workers} worker{'s' if workers > 1 else ''} ({plan.nthread} threads each)",
        )
        return run_plan(plan, sink, warehouse)


def plan_training(
    warehouse: Warehouse,
    *,
    table: str | None,
    query: str | None,
    target: str,
    features: Sequence[str] | None,
    exclude: Sequence[str],
    workers: int,
    validation_fraction: float,
    split_key: str | None,
    hyperparameters: dict[str, Any],
    output: str,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> TrainPlan:
    """Resolve names, pin the view, count the rows and give every worker its SQL."""
    relation = (
        warehouse.relation_for_table(parse_table_name(table))
        if table is not None
        else warehouse.relation_for_query(query or "")
    )
    schema = warehouse.schema_of(relation)
    target_name, feature_names, feature_types, key = choose_columns(
        schema, target, list(features) if features else None, list(exclude), split_key
    )
    warehouse.pin()
    rows, labelled = count_rows(warehouse, relation, target_name)
    what = f"table {table}" if table is not None else "--query"
    if rows == 0:
        raise UserError(f"{what} has no rows to train on")
    if labelled == 0:
        raise UserError(f"target column {target_name!r} has no non-NULL values in {what}")
    shards = warehouse.plan_shards(relation, schema.names, workers)
    return TrainPlan(
        source=redact_url(warehouse.url),
        query=relation.select_all_sql(warehouse.dialect),
        snapshot=warehouse.snapshot(),
        target=target_name,
        features=feature_names,
        feature_types=feature_types,
        split_key=key,
        validation_fraction=validation_fraction,
        hyperparameters=hyperparameters,
        workers=workers,
        nthread=threads_per_worker(workers),
        rows_expected=rows,
        tasks=[
            WorkerTask(
                rank=s.index,
                strategy=s.strategy,
                sql=worker_select(
                    warehouse,
                    relation,
                    schema.names,
                    feature_names,
                    target_name,
                    key,
                    validation_fraction,
                    s.predicate_sql,
                ),
            )
            for s in shards
        ],
        output=str(Path(output).absolute()),
        batch_rows=batch_rows,
    )


def run_plan(plan: TrainPlan, sink: EventSink, warehouse: Warehouse | None = None) -> Manifest:
    """One worker runs here (reusing WAREHOUSE); more run as local processes."""
    if plan.workers == 1:
        from stageless.training.worker import train_shard

        manifest = train_shard(plan, 0, sink, warehouse=warehouse)
        assert manifest is not None
        return manifest
    from stageless.training.launcher import run_local_workers

    return run_local_workers(plan, sink)
