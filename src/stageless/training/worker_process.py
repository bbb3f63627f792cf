"""A worker process: ``python -m stageless.training.worker_process``, started by the launcher.

Protocol, all JSON lines: stdin line 1 is the plan; rank 0 starts XGBoost's tracker and
announces its address as a ``tracker`` event; the launcher passes that address to the
other ranks as their stdin line 2. Events go out on what was this process's stdout.
Every worker reads its shard before it needs the tracker, so reading overlaps start-up.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from stageless._startup import exit_now, skip_unused_imports

TRACKER_HOST = "127.0.0.1"


def _start_tracker(workers: int) -> tuple[Any, dict[str, Any]]:
    from xgboost.tracker import RabitTracker

    tracker = RabitTracker(n_workers=workers, host_ip=TRACKER_HOST, port=0, sortby="task")
    tracker.start()
    return tracker, tracker.worker_args()


def main() -> None:
    skip_unused_imports()
    events_fd = os.dup(1)
    # What libraries print to stdout (XGBoost's "Task 0 got rank 0") must not enter the
    # event channel, and is noise to the user; warnings and errors still reach stderr.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)

    from stageless.errors import StagelessError, describe
    from stageless.training.events import JsonLinesSink

    sink = JsonLinesSink(events_fd)
    rank = int(os.environ["STAGELESS_RANK"])
    try:
        from xgboost import collective

        from stageless.training.plan import TrainPlan
        from stageless.training.reading import read_shard
        from stageless.training.worker import train_on_shard

        plan = TrainPlan.model_validate_json(sys.stdin.readline())
        tracker = None
        if rank == 0:
            tracker, address = _start_tracker(plan.workers)
            sink.emit("tracker", address=address)
        shard = read_shard(plan, rank, sink)
        if rank != 0:
            address = json.loads(sys.stdin.readline())
        trained: list[tuple[bytes, Any]] = []

        def hold(model: bytes, manifest: Any) -> str:
            trained.append((model, manifest))
            return "(saved once every worker has finished)"

        with collective.CommunicatorContext(dmlc_task_id=f"{rank:06d}", **address):
            if collective.get_rank() != rank:
                raise RuntimeError(f"tracker gave rank {collective.get_rank()} to worker {rank}")
            manifest = train_on_shard(plan, rank, shard, sink, save=hold)
        if tracker is not None:
            # Every worker has left the collective cleanly: only now may the model replace
            # whatever OUTPUT held (a run whose peer died publishes nothing).
            tracker.wait_for(timeout=60)
            from stageless.storage import save_archive

            for model, trained_manifest in trained:
                sink.emit("saved", path=save_archive(plan.output, model, trained_manifest))
        sink.emit("done", rank=rank, manifest=manifest.model_dump() if manifest else None)
    except StagelessError as exc:
        sink.emit("error", rank=rank, message=exc.message, exit_code=exc.exit_code)
        exit_now(exc.exit_code)  # skip the collective's orderly shutdown: peers are gone
    except BaseException as exc:  # report anything, then die at once
        sink.emit("error", rank=rank, message=describe(exc), exit_code=1)
        exit_now(1)
    exit_now(0)


if __name__ == "__main__":
    main()
