"""The coordinator: resolve names, pin one view, count the rows, plan every worker's SQL.

Heavier imports (pyarrow, sqlglot, pydantic, the warehouse driver) live here, not in
:mod:`stageless.training.api`, so worker processes can start before these load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from stageless.errors import UserError
from stageless.identifiers import parse_table_name
from stageless.manifest import Manifest
from stageless.storage import is_s3_url
from stageless.training.events import EventSink
from stageless.training.plan import (
    TrainPlan,
    WorkerTask,
    choose_columns,
    count_rows,
    threads_per_worker,
    worker_select,
)
from stageless.warehouses import Warehouse, redact_url
from stageless.warehouses.base import DEFAULT_BATCH_ROWS

if TYPE_CHECKING:
    from stageless.training.launcher import LocalWorkers


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
    secret: str | None = None,
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
        secret=secret,
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
                    feature_names,
                    target_name,
                    key,
                    validation_fraction,
                    s.predicate_sql,
                    booleans={f.name for f in schema if pa.types.is_boolean(f.type)},
                ),
            )
            for s in shards
        ],
        output=output if is_s3_url(output) else str(Path(output).absolute()),
        batch_rows=batch_rows,
    )


def run_plan(
    plan: TrainPlan,
    sink: EventSink,
    warehouse: Warehouse | None = None,
    workers: LocalWorkers | None = None,
) -> Manifest:
    """One worker runs here (reusing WAREHOUSE); more run as local processes."""
    if plan.workers == 1:
        from stageless.training.reading import importing_in_background, read_shard

        with importing_in_background("xgboost"):
            shard = read_shard(plan, 0, sink, warehouse)
        from stageless.training.worker import train_on_shard

        manifest = train_on_shard(plan, 0, shard, sink)
        assert manifest is not None
        return manifest
    from stageless.training.launcher import LocalWorkers

    if workers is not None:
        return workers.run(plan, sink)
    with LocalWorkers(plan.workers) as started:
        return started.run(plan, sink)
