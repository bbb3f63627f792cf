"""N local worker processes training one model through XGBoost's collective.

The launcher runs the tracker, starts the workers, relays their events, and watches
them: the moment one fails, the rest are killed and the run fails with the first
worker's own message. No worker is ever left waiting for a peer that is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from typing import IO, Any

from stageless.errors import WorkerFailed
from stageless.manifest import Manifest
from stageless.training.events import EventSink
from stageless.training.plan import TrainPlan

_POLL_SECONDS = 0.2
EventQueue = queue.Queue[tuple[int, dict[str, Any] | None]]


def _relay(rank: int, stream: IO[bytes], events: EventQueue) -> None:
    for line in stream:
        try:
            events.put((rank, json.loads(line)))
        except json.JSONDecodeError:
            continue
    events.put((rank, None))


def start_tracker(workers: int, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, str]:
    """Start the tracker process; returns it and the JSON line of worker arguments."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "stageless.training.tracker", str(workers), host, str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line:
        proc.kill()
        _, err = proc.communicate()
        last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise WorkerFailed(f"the XGBoost tracker did not start: {last}")
    return proc, line


def stop_tracker(tracker: subprocess.Popen[bytes]) -> None:
    """The tracker exits once every worker has left; after a failure it may not."""
    try:
        tracker.wait(timeout=5)
    except subprocess.TimeoutExpired:
        tracker.kill()
        tracker.wait()


def run_local_workers(plan: TrainPlan, sink: EventSink) -> Manifest:
    events: EventQueue = queue.Queue()
    procs: list[subprocess.Popen[bytes]] = []
    tracker: subprocess.Popen[bytes] | None = None
    try:
        # Workers start (imports, reading their shard) while this process starts the
        # tracker; they need its address only when they join the collective.
        for rank in range(plan.workers):
            proc = subprocess.Popen(
                [sys.executable, "-m", "stageless.training.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, "STAGELESS_RANK": str(rank)},
            )
            procs.append(proc)
            assert proc.stdin is not None and proc.stdout is not None
            threading.Thread(target=_relay, args=(rank, proc.stdout, events), daemon=True).start()
            _send_line(proc, plan.model_dump_json())
        tracker, tracker_args = start_tracker(plan.workers)
        for proc in procs:
            _send_line(proc, tracker_args, last=True)
        return _supervise(plan, procs, events, sink)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait()
        if tracker is not None:
            if any(proc.returncode for proc in procs):
                tracker.kill()
            stop_tracker(tracker)


def _send_line(proc: subprocess.Popen[bytes], line: str, last: bool = False) -> None:
    """Write one line to a worker's stdin; a worker that already died is noticed later."""
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, OSError):
        proc.stdin.write(line.encode() + b"\n")
        proc.stdin.flush()
        if last:
            proc.stdin.close()


def _supervise(
    plan: TrainPlan,
    procs: list[subprocess.Popen[bytes]],
    events: EventQueue,
    sink: EventSink,
) -> Manifest:
    manifest: Manifest | None = None
    closed: set[int] = set()
    while len(closed) < len(procs):
        try:
            rank, event = events.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            continue
        finally:
            _fail_if_any_died(procs, closed)
        if event is None:
            closed.add(rank)
            continue
        kind = event.pop("event", "")
        if kind == "error":
            raise WorkerFailed(
                f"worker {rank + 1}/{plan.workers} failed: {event.get('message', 'unknown error')}",
                exit_code=int(event.get("exit_code", 1)),
            )
        if kind == "done":
            if event.get("manifest"):
                manifest = Manifest.model_validate(event["manifest"])
            continue
        sink.emit(kind, **event)
    for rank, proc in enumerate(procs):
        code = proc.wait()
        if code != 0:
            raise WorkerFailed(f"worker {rank + 1}/{plan.workers} exited with code {code}")
    if manifest is None:
        raise WorkerFailed("the workers finished but rank 0 reported no model")
    return manifest


def _fail_if_any_died(procs: list[subprocess.Popen[bytes]], closed: set[int]) -> None:
    for rank, proc in enumerate(procs):
        code = proc.poll()
        if code not in (None, 0) and rank in closed:
            raise WorkerFailed(
                f"worker {rank + 1}/{len(procs)} died with exit code {code} "
                "before reporting why (killed, or out of memory?)"
            )
