"""The machinery the benchmarks share: run a child, measure it, describe the machine, report.

Standard library only, and nothing heavy imported at module level: a bench process must
stay small, because on Linux a child's ``ru_maxrss`` starts from the high-water mark of
the process that spawned it (see ``bench_train.py``). Anything that needs NumPy, pandas
or XGBoost runs in a child process.

The scripts are run as files (``.venv/bin/python bench/bench_X.py``), so Python puts
``bench/`` first on ``sys.path`` and ``import harness`` finds this module; each script
also inserts its own folder explicitly, so importing it from elsewhere works too.

What is here:

- ``measure_child``: spawn a command with its output in pipes, and return its wall time,
  rusage from ``os.wait4`` (peak RSS, ``ru_oublock``, CPU), a sampled sum of RSS over its
  process tree (``TreeRssSampler``) and the CPU other processes used meanwhile
  (``/proc/stat`` less the child's and this process's own);
- ``PathRun`` (a measured run, which each bench extends) and ``run_all`` (every path in
  turn, once per repeat, with a progress line each);
- small probes: ``cores``, ``maxrss_mib``, ``own_peak_rss_mib``, ``busy_cpu_seconds``,
  ``own_cpu_seconds``, ``free_port``, ``stageless_command``, ``last_json_line``;
- the report's pieces: ``by_path``, ``median``, ``medians``, ``mib``, ``rmse``, ``table``,
  ``PATH_COLUMNS``/``path_cells``, ``RUN_COLUMNS``/``run_cells``, ``verdict``, ``load``,
  ``disturbance_warning``, ``phase_lines``, ``report_header`` (date, ``machine``,
  ``versions``, ``source_state``, ``command_line``) and ``write_report``;
- command-line helpers: ``parser``, ``add_rows_repeats``, ``check_rows_repeats``,
  ``add_workdir``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
#: How often TreeRssSampler reads the process tree's RSS.
SAMPLE_SECONDS = 0.1
#: A run during which other processes used more than this many cores is flagged.
BUSY_CORES = 0.1


# -- probes -------------------------------------------------------------------------------


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def maxrss_mib(usage: Any) -> float:
    """``ru_maxrss`` of a rusage in MiB (Linux reports KiB, macOS bytes)."""
    return usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def own_peak_rss_mib() -> float:
    """This process's own peak RSS in MiB: what a child's ru_maxrss starts from."""
    return maxrss_mib(resource.getrusage(resource.RUSAGE_SELF))


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (None off Linux)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stageless_command() -> list[str]:
    """How to run the ``stageless`` command of this virtualenv."""
    script = Path(sys.executable).parent / "stageless"
    return [str(script)] if script.exists() else [sys.executable, "-m", "stageless"]


#: The ``stageless train`` options of each stageless path the benchmarks time.
STAGELESS_PATHS: dict[str, list[str]] = {
    "stageless-1": ["--workers", "1"],
    "stageless-2": ["--workers", "2"],
    # XGBoost's own sketch of every training row, instead of stageless's 200,000-row sample
    "stageless-1-sketch-all": ["--workers", "1", "--hp", "sketch_rows=0"],
}


def last_json_line(text: str) -> Any:
    """The JSON document on the last line of a child's stdout."""
    return json.loads(text.strip().splitlines()[-1])


# -- the process tree's RSS ---------------------------------------------------------------


def descendants_rss(root: int, page: int) -> int:
    """Resident bytes of ROOT and every descendant (parent links read from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
        stack.extend(children.get(pid, []))
    return total


class TreeRssSampler(threading.Thread):
    """Every SAMPLE_SECONDS, the summed RSS of a process and its descendants; keeps the peak.

    Shared pages (libraries) count once per process, and peaks between samples are missed:
    a rough cross-check of ru_maxrss for multi-process runs, not a replacement.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.available = Path("/proc/self/statm").exists()
        self._done = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE") if self.available else 0

    def run(self) -> None:
        while self.available:
            self.peak = max(self.peak, descendants_rss(self.pid, self._page))
            if self._done.wait(SAMPLE_SECONDS):
                return

    def finish(self) -> int | None:
        self._done.set()
        self.join()
        return self.peak if self.available else None


# -- running and measuring one child ------------------------------------------------------


@dataclass
class Measured:
    """What ``measure_child`` saw of one child process."""

    wall_s: float
    usage: Any  # resource.struct_rusage of the child and its waited-for descendants
    tree_rss: int | None  # sampled peak bytes over the process tree
    stdout: bytes
    stderr: bytes
    busy_cpu_s: float | None  # the whole machine's busy CPU meanwhile
    own_cpu_s: float  # this process's CPU meanwhile
    extra_cpu_s: float | None  # the extra_cpu probe's difference (e.g. a server's CPU)

    @property
    def peak_rss_mib(self) -> float:
        return maxrss_mib(self.usage)

    @property
    def tree_rss_mib(self) -> float | None:
        return self.tree_rss / 2**20 if self.tree_rss is not None else None

    @property
    def written_bytes(self) -> int:
        """File-system output: ``ru_oublock`` x 512."""
        return self.usage.ru_oublock * 512

    @property
    def other_cpu_s(self) -> float | None:
        """CPU used meanwhile by processes outside the measured tree (and the extra probe)."""
        if self.busy_cpu_s is None:
            return None
        child = self.usage.ru_utime + self.usage.ru_stime
        return self.busy_cpu_s - child - self.own_cpu_s - (self.extra_cpu_s or 0.0)


def _drain(stream: IO[bytes] | None, name: str, into: dict[str, bytes]) -> None:
    if stream is None:
        into[name] = b""
        return
    with stream:
        into[name] = stream.read()


def _difference(after: float | None, before: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def measure_child(
    command: Sequence[str],
    env: Mapping[str, str],
    home: Path,
    label: str,
    *,
    settle: float = 0.0,
    extra_cpu: Callable[[], float | None] | None = None,
) -> Measured:
    """Run COMMAND to its end and measure it; its stdout and stderr go to HOME/stdout|stderr.

    Output goes through pipes, not files, so that the child's fs output is only its own.
    The child is reaped with ``os.wait4`` (not by Popen) for its rusage. The machine's busy
    CPU is read right after the child exits, or, with SETTLE seconds, that long after
    (for a server to reap the backends the child used); EXTRA_CPU, if given, is read
    beside it and its difference subtracted from the other processes' CPU. A child that
    fails ends the benchmark (SystemExit, LABEL and the tail of its stderr).
    """

    def cpu_now() -> tuple[float | None, float, float | None]:
        return busy_cpu_seconds(), own_cpu_seconds(), extra_cpu() if extra_cpu else None

    before = cpu_now()
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
    )
    sampler = TreeRssSampler(proc.pid)
    sampler.start()
    captured: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=_drain, args=(stream, name, captured), daemon=True)
        for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    after = None if settle else cpu_now()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    tree = sampler.finish()
    for reader in readers:
        reader.join()
    if after is None:
        time.sleep(settle)
        after = cpu_now()
    for name, content in captured.items():
        (home / name).write_bytes(content)
    if proc.returncode != 0:
        tail = captured["stderr"].decode(errors="replace").strip().splitlines()[-15:]
        raise SystemExit(
            f"{label} exited with code {proc.returncode}:\n"
            + "\n".join(tail)
            + f"\ncommand: {shlex.join(command)}"
        )
    return Measured(
        wall_s=wall,
        usage=usage,
        tree_rss=tree,
        stdout=captured["stdout"],
        stderr=captured["stderr"],
        busy_cpu_s=_difference(after[0], before[0]),
        own_cpu_s=after[1] - before[1],
        extra_cpu_s=_difference(after[2], before[2]),
    )


@dataclass(kw_only=True)
class PathRun:
    """One measured run of one path; each benchmark adds the fields of its own."""

    path: str
    repeat: int
    wall_s: float
    peak_rss_mib: float
    tree_rss_mib: float | None
    other_cpu_s: float | None  # CPU used meanwhile by processes outside the measured tree
    rmse: float | None = None
    phases: dict[str, float] = field(default_factory=dict)

    @classmethod
    def measured(cls, path: str, repeat: int, child: Measured, **fields: Any) -> Any:
        """A run of PATH from what measure_child saw, plus the subclass's FIELDS."""
        return cls(
            path=path,
            repeat=repeat,
            wall_s=child.wall_s,
            peak_rss_mib=child.peak_rss_mib,
            tree_rss_mib=child.tree_rss_mib,
            other_cpu_s=child.other_cpu_s,
            **fields,
        )


def run_all(
    paths: Sequence[str],
    repeats: int,
    run_once: Callable[[str, int], Any],
    progress: Callable[[Any], str],
) -> list[Any]:
    """Every path once per repeat, in turn (A B C, A B C, ...), printing a line per run.

    Running in turn lets drift of the machine hit all paths alike.
    """
    runs = []
    for repeat in range(1, repeats + 1):
        for path in paths:
            run = run_once(path, repeat)
            runs.append(run)
            print(
                f"repeat {repeat}/{repeats} {path:<12} {run.wall_s:7.2f}s  "
                f"peak RSS {run.peak_rss_mib:7,.0f} MiB  {progress(run)}",
                flush=True,
            )
    return runs


# -- describing the run -------------------------------------------------------------------


def machine() -> str:
    """Cores, CPU model, RAM and platform."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cores()} cores ({cpu}), {ram:.1f} GiB RAM, {platform.platform()}"


def versions(packages: Iterable[str]) -> str:
    """Python's version and each package's installed version."""
    parts = [f"python {platform.python_version()}"]
    for name in packages:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def source_state() -> str:
    """Which stageless was measured: the commit, and whether src/ had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"commit {head}" + (
        f" with uncommitted changes to {len(changed)} file(s) under src/" if changed else ""
    )


def command_line() -> str:
    """This process's command line, the interpreter relative to the working directory."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())
    return shlex.join([str(python), *sys.argv])


def report_header(title: str, packages: Iterable[str], source: str, *extra: str) -> list[str]:
    """A report's title and its date, machine, software, EXTRA, source and command lines."""
    return [
        f"# {title}",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {machine()}",
        f"- software: {versions(packages)}",
        *extra,
        f"- stageless source (at start): {source}",
        f"- command: `{command_line()}`",
    ]


# -- the report's pieces ------------------------------------------------------------------


#: The first columns of a report's table of medians per path (path_cells fills them).
PATH_COLUMNS = (
    "path",
    "wall s (median)",
    "wall s (min - max)",
    "peak RSS MiB (ru_maxrss)",
    "tree RSS MiB (sampled sum)",
)
#: The first columns of a report's table of every run (run_cells fills them).
RUN_COLUMNS = ("repeat", "path", "wall s", "peak RSS MiB", "tree RSS MiB")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def by_path(runs: Iterable[PathRun], paths: Iterable[str]) -> dict[str, list[Any]]:
    """RUNS grouped by their path, in the order of PATHS."""
    runs = list(runs)
    return {p: [r for r in runs if r.path == p] for p in paths}


def medians(grouped: Mapping[str, Sequence[Any]], attribute: str) -> dict[str, float]:
    """Per path, the median of one attribute of its runs."""
    return {p: median([getattr(r, attribute) for r in rs]) for p, rs in grouped.items()}


def mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def rmse(value: float | None) -> str:
    return f"{value:.5f}" if value is not None else "n/a"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def verdict(ratio: float, meets: Callable[[float], bool]) -> str:
    return "meets" if meets(ratio) else "MISSES"


def load(run: PathRun) -> str:
    """How many cores other processes used during RUN, on average."""
    return "n/a" if run.other_cpu_s is None else f"{max(run.other_cpu_s, 0.0) / run.wall_s:.2f}"


def disturbance_warning(runs: Sequence[PathRun], advice: str) -> list[str]:
    """A warning paragraph naming the runs other processes disturbed (none: no lines)."""
    disturbed = [r for r in runs if (r.other_cpu_s or 0.0) / r.wall_s > BUSY_CORES]
    if not disturbed:
        return []
    return [
        "",
        f"**Warning: other processes used more than {BUSY_CORES} of a core during "
        f"{len(disturbed)} of {len(runs)} runs** ("
        + ", ".join(f"{r.path} #{r.repeat}: {load(r)}" for r in disturbed)
        + f"). {advice}",
    ]


def phase_lines(
    by_path: Mapping[str, Sequence[PathRun]], paths: Iterable[str], wall: Mapping[str, float]
) -> list[str]:
    """One line per path: the median seconds of each phase its child reported."""
    lines = []
    for p in paths:
        names = list(by_path[p][0].phases)
        lines.append(
            f"- {p}: "
            + ", ".join(f"{n} {median([r.phases[n] for r in by_path[p]]):.2f}" for n in names)
            + f"; whole process {wall[p]:.2f}"
        )
    return lines


def path_cells(
    path: str, runs: Sequence[PathRun], wall: Mapping[str, float], rss: Mapping[str, float]
) -> list[str]:
    """PATH_COLUMNS but the tree RSS: the path, its wall medians and range, its peak RSS."""
    return [
        path,
        f"{wall[path]:.2f}",
        f"{min(r.wall_s for r in runs):.2f} - {max(r.wall_s for r in runs):.2f}",
        mib(rss[path]),
    ]


def run_cells(run: PathRun) -> list[str]:
    """RUN_COLUMNS for one run."""
    return [
        str(run.repeat),
        run.path,
        f"{run.wall_s:.2f}",
        mib(run.peak_rss_mib),
        mib(run.tree_rss_mib),
    ]


def write_report(text: str, results: Path) -> None:
    """Print the report and write it to RESULTS."""
    print()
    print(text, end="")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(text)


# -- the command line ---------------------------------------------------------------------


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first line of a script's docstring."""
    return argparse.ArgumentParser(description=doc.split("\n", 1)[0])


def add_rows_repeats(parser: argparse.ArgumentParser, rows: int) -> None:
    parser.add_argument("--rows", type=int, default=rows, help="rows in the table")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each path")


def check_rows_repeats(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.rows < 100 or args.repeats < 1:
        parser.error("--rows must be at least 100 and --repeats at least 1")


def add_workdir(parser: argparse.ArgumentParser, name: str, what: str) -> None:
    """--workdir, by default $TMPDIR/NAME; WHAT it holds goes into the help."""
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / name,
        help=f"{what} (default: %(default)s)",
    )
