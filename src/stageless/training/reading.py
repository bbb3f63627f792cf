"""Reading one worker's shard from the warehouse: Arrow batches into float32 matrices.

Imports no XGBoost, so a process can read its shard while XGBoost is still loading.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from stageless.training.data import ShardData
from stageless.training.events import EventSink
from stageless.training.launcher import SOURCE_ENV
from stageless.training.plan import TrainPlan
from stageless.warehouses import Warehouse, open_warehouse, redact_url


def worker_source(planned: str) -> str:
    """The URL a worker connects with. The plan's is redacted; a password the user put in
    the URL reaches local workers through their environment (see LocalWorkers), never
    through the plan, a command line or a log."""
    given = os.environ.get(SOURCE_ENV)
    return given if given and redact_url(given) == planned else planned


def read_shard(
    plan: TrainPlan, rank: int, sink: EventSink, warehouse: Warehouse | None = None
) -> ShardData:
    """Stream this worker's shard from the warehouse into float32 batches.

    Needs no collective: workers read while the tracker is still starting.
    """
    task = plan.tasks[rank]

    def progress(rows: int, seconds: float, done: bool) -> None:
        sink.emit("read", rank=rank, rows=rows, seconds=round(seconds, 3), done=done)

    if warehouse is not None:
        reader = warehouse.arrow_batches(task.sql, batch_rows=plan.batch_rows)
        shard = _read_batches(plan, reader, progress)
        warehouse.release_memory()  # the connection stays open; its cache is not needed
        return shard
    with open_warehouse(
        worker_source(plan.source), read_only=True, threads=plan.nthread, secret=plan.secret
    ) as own:
        own.read_at(plan.snapshot)  # e.g. adopt the coordinator's exported snapshot
        reader = own.arrow_batches(task.sql, batch_rows=plan.batch_rows)
        return _read_batches(plan, reader, progress)


def _read_batches(plan: TrainPlan, reader: Any, progress: Any) -> ShardData:
    return ShardData.read(
        reader,
        len(plan.features),
        plan.validation_fraction,
        flag_in_batch=plan.split_key is not None,
        on_progress=progress,
    )


@contextlib.contextmanager
def importing_in_background(module: str) -> Iterator[None]:
    """Import the third-party MODULE on a thread while the block runs, and wait for it at
    the end. Worth it around a read: the reading thread spends its time in the driver's C
    code, which lets the import's Python run on the core the database leaves idle. (An
    import error is not raised here but by the caller's own import of MODULE.)"""

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    loader = threading.Thread(target=load, name=f"import {module}", daemon=True)
    loader.start()
    try:
        yield
    finally:
        loader.join()
