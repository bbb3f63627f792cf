"""N local worker processes training one model through XGBoost's collective.

:class:`LocalWorkers` starts the processes first, before the coordinator has planned
anything: they spend that time importing XGBoost and DuckDB. Then it hands them the plan
(rank 0 runs XGBoost's tracker and the others learn its address through us), relays
their events, and watches them: the moment one fails, the rest are killed and the run
fails with the first worker's own message. No worker is left waiting for a peer that
is gone. This module imports only the standard library, so starting is quick.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from typing import IO, TYPE_CHECKING, Any

from stageless.errors import WorkerFailed

if TYPE_CHECKING:
    from stageless.manifest import Manifest
    from stageless.training.events import EventSink
    from stageless.training.plan import TrainPlan

_POLL_SECONDS = 0.2
#: The source URL as the user gave it. It may hold a password, which the plan (and every
#: log, manifest and command line) only shows masked, so it reaches the workers in their
#: environment: private to this user's processes, unlike a command line.
SOURCE_ENV = "STAGELESS_SOURCE_URL"
EventQueue = queue.Queue[tuple[int, dict[str, Any] | None]]


def _relay(rank: int, stream: IO[bytes], events: EventQueue) -> None:
    for line in stream:
        try:
            events.put((rank, json.loads(line)))
        except json.JSONDecodeError:
            continue
    events.put((rank, None))


class LocalWorkers:
    """N worker processes on this machine; use as a context manager (it kills leftovers)."""

    def __init__(self, workers: int, source: str | None = None) -> None:
        self.events: EventQueue = queue.Queue()
        self.procs: list[subprocess.Popen[bytes]] = []
        env = {**os.environ}
        if source is not None:
            env[SOURCE_ENV] = source
        try:
            for rank in range(workers):
                proc = subprocess.Popen(
                    [sys.executable, "-m", "stageless.training.worker_process"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env={**env, "STAGELESS_RANK": str(rank)},
                )
                self.procs.append(proc)
                assert proc.stdout is not None
                threading.Thread(
                    target=_relay, args=(rank, proc.stdout, self.events), daemon=True
                ).start()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> LocalWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill whatever still runs and reap every process."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait()

    def run(self, plan: TrainPlan, sink: EventSink) -> Manifest:
        if plan.workers != len(self.procs):
            raise ValueError(f"plan is for {plan.workers} workers, {len(self.procs)} started")
        payload = plan.model_dump_json()
        for rank, proc in enumerate(self.procs):
            _send_line(proc, payload, last=rank == 0)
        try:
            return self._supervise(plan, sink)
        finally:
            self.close()

    def _share_tracker(self, address: dict[str, Any]) -> None:
        # Rank 0 runs the tracker; the others learn where it is from us.
        for proc in self.procs[1:]:
            _send_line(proc, json.dumps(address), last=True)

    def _supervise(self, plan: TrainPlan, sink: EventSink) -> Manifest:
        from stageless.manifest import Manifest

        manifest: Manifest | None = None
        closed: set[int] = set()
        while len(closed) < len(self.procs):
            try:
                rank, event = self.events.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            finally:
                self._fail_if_any_died(closed)
            if event is None:
                closed.add(rank)
                continue
            kind = event.pop("event", "")
            if kind == "error":
                raise WorkerFailed(
                    f"worker {rank + 1}/{plan.workers} failed: "
                    f"{event.get('message', 'unknown error')}",
                    exit_code=int(event.get("exit_code", 1)),
                )
            if kind == "tracker":
                self._share_tracker(event["address"])
            elif kind == "done":
                if event.get("manifest"):
                    manifest = Manifest.model_validate(event["manifest"])
            else:
                sink.emit(kind, **event)
        for rank, proc in enumerate(self.procs):
            code = proc.wait()
            if code != 0:
                raise WorkerFailed(f"worker {rank + 1}/{plan.workers} exited with code {code}")
        if manifest is None:
            raise WorkerFailed("the workers finished but rank 0 reported no model")
        return manifest

    def _fail_if_any_died(self, closed: set[int]) -> None:
        for rank, proc in enumerate(self.procs):
            code = proc.poll()
            if code not in (None, 0) and rank in closed:
                raise WorkerFailed(
                    f"worker {rank + 1}/{len(self.procs)} died with exit code {code} "
                    "before reporting why (killed, or out of memory?)"
                )


def _send_line(proc: subprocess.Popen[bytes], line: str, last: bool = False) -> None:
    """Write one line to a worker's stdin; a worker that already died is noticed later."""
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, OSError):
        proc.stdin.write(line.encode() + b"\n")
        proc.stdin.flush()
        if last:
            proc.stdin.close()
