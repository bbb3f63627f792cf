"""Progress and results, as small JSON-able events.

Workers emit events; a :class:`Reporter` turns them into the lines a person reads. A
worker in its own process writes events as JSON lines to a pipe; a worker in the
caller's process hands them straight to the reporter. Either way the same code prints.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Protocol, TextIO


class EventSink(Protocol):
    def emit(self, event: str, **fields: Any) -> None: ...


class JsonLinesSink:
    """Events as JSON lines on a file descriptor (a worker process's channel to its parent)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode())


class Reporter:
    """Prints progress to stderr: reads per worker, metrics every few rounds."""

    def __init__(self, workers: int, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.workers = workers
        self.stream = stream or sys.stderr
        self.quiet = quiet

    def emit(self, event: str, **fields: Any) -> None:
        if self.quiet:
            return
        handler = getattr(self, f"_on_{event}", None)
        if handler is not None:
            handler(**fields)

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _on_info(self, message: str, **_: Any) -> None:
        self._print(message)

    def _on_read(self, rank: int, rows: int, seconds: float, done: bool, **_: Any) -> None:
        rate = rows / seconds if seconds > 0 else 0.0
        verb = "read" if done else "reading:"
        self._print(
            f"worker {rank + 1}/{self.workers} {verb} {rows:,} rows in {seconds:.2f}s "
            f"({_si(rate)} rows/s)"
        )

    def _on_round(self, round: int, num_round: int, metrics: dict[str, float], **_: Any) -> None:
        shown = "  ".join(f"{name}={value:.5f}" for name, value in metrics.items())
        self._print(f"round {round}/{num_round}  {shown}")


def _si(value: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"
