"""How fast and how lean is ``stageless train``, against XGBoost alone and against the seed?

One command, ``.venv/bin/python bench/bench_train.py [--rows N] [--repeats K] [--workdir DIR]``,
builds a table and times four ways of training the same model on it, each in a child
process of its own, so that wall time, peak memory and disk writes are per process:

``limit``
    XGBoost alone. The child loads the rows as float32 NumPy arrays (``.npy`` files), splits
    them 75/25 in memory, and times only arrays-in-memory to trained booster: two
    ``QuantileDMatrix`` (validation with ``ref=train``) and ``xgb.train``, all cores. Its
    internal seconds are the limit no warehouse reader can beat; its whole-process seconds
    add interpreter start, imports and loading the arrays. Like stageless it evaluates the
    validation set every round and the training set once at the end.
``seed``
    What the project grew from, the way a blog post does it: ``pd.read_sql`` over a DuckDB
    DB-API connection, ``dropna``, scikit-learn's ``train_test_split``, two ``xgb.DMatrix``,
    ``xgb.train`` watching train and validation every round (as SageMaker's XGBoost
    prints them), save the model.
``stageless-1`` / ``stageless-2``
    ``stageless train --source duckdb:FILE --table housing ... --workers 1|2 --quiet``, the
    whole process from interpreter start, with TMPDIR set to a fresh empty directory.

All four use the same hyperparameters (stageless's defaults, the seed's). Within each
repeat the paths run in turn (A B C D, A B C D, ...) so drift of the machine hits all of
them alike; the report gives medians.

The table is 1,000,000 rows (``--rows``) resampled with replacement from the bundled
California housing data with a little gaussian noise per column (fixed seed), stored as
DOUBLE columns in a DuckDB file (table ``housing``) and as float32 ``.npy`` files. It is
kept in the work directory and reused by later runs with the same ``--rows``.

Per child the report records wall seconds (``time.perf_counter`` around the child), peak
RSS (``ru_maxrss`` from ``os.wait4``: for a child that starts workers, such as stageless-2,
this is the largest of the process and its waited-for descendants, not their sum; a
sampled sum over the process tree is shown beside it) and file-system output
(``ru_oublock`` x 512 bytes; it counts pages as they are dirtied, so it may under-count
writes still in the page cache in rare cases). For every child it also lists what was
written to its output directory and its TMPDIR, and checks that nothing new appeared next
to the DuckDB file (DuckDB spills there, not to TMPDIR): together that shows that nothing
of the table touches a disk on the way into the model.

Each run also records how much CPU other processes used meanwhile (``/proc/stat`` less the
child's own rusage) and the report warns about disturbed runs: XGBoost's threads slow down
several times over when another process takes one of their cores.

The results go to stdout and, as markdown, to ``bench/results/train.md``. Nothing is
asserted: it is a report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO / "src" / "stageless" / "datasets" / "california_housing.csv.gz"
RESULTS = REPO / "bench" / "results" / "train.md"

FEATURES = [
    "MedInc",
    "HouseAge",
    "AveRooms",
    "AveBedrms",
    "Population",
    "AveOccup",
    "Latitude",
    "Longitude",
]
TARGET = "MedHouseVal"
TABLE = "housing"
DB_FILE = "housing.duckdb"

#: Generation: bump DATA_FORMAT whenever the way rows are made changes, so old data is remade.
DATA_FORMAT = 1
DATA_SEED = 20_240_611
NOISE = 0.02  # gaussian noise, as a fraction of each column's standard deviation
SPLIT_SEED = 42  # the seed's train_test_split random_state

#: stageless's defaults, which are the seed's (see stageless.training.hyperparams.DEFAULTS).
PARAMS: dict[str, Any] = {
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4.0,
    "min_child_weight": 6.0,
    "subsample": 0.7,
    "objective": "reg:squarederror",
    "tree_method": "hist",
}
NUM_ROUND = 50
VALIDATION_FRACTION = 0.25

PATHS = ("limit", "seed", "stageless-1", "stageless-2")
SAMPLE_SECONDS = 0.1
#: A run during which other processes used more than this many cores is flagged.
BUSY_CORES = 0.1
RMSE_LINE = re.compile(r"validation rmse=([0-9.]+)")


# -- the data ---------------------------------------------------------------------------


def _data_meta(rows: int) -> dict[str, int | float]:
    return {"rows": rows, "seed": DATA_SEED, "noise": NOISE, "format": DATA_FORMAT}


def prepare_data(workdir: Path, rows: int) -> Path:
    """The DuckDB file and .npy files for ROWS rows; made once, reused while unchanged.

    They are made in a child process: this process must stay small, because on Linux a
    child's ru_maxrss starts from the high-water mark of the process that spawned it.
    """
    data = workdir / f"housing-{rows}"
    marker = data / "meta.json"
    if marker.exists() and json.loads(marker.read_text()) == _data_meta(rows):
        print(f"reusing the {rows:,}-row table in {data}", flush=True)
        return data
    print(f"generating a {rows:,}-row table in {data} ...", flush=True)
    started = time.perf_counter()
    here = str(Path(__file__).resolve())
    subprocess.run(
        [sys.executable, here, "--child", "generate", "--rows", str(rows), "--data", str(data)],
        check=True,
    )
    print(f"generated in {time.perf_counter() - started:.1f}s", flush=True)
    return data


def child_generate(data: Path, rows: int) -> None:
    """Resample the bundled rows with noise; write the DuckDB table and the .npy files."""
    import duckdb
    import numpy as np
    import pandas as pd

    partial = data.with_name(f".{data.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    partial.mkdir(parents=True)

    base = pd.read_csv(DATASET)[[*FEATURES, TARGET]].to_numpy(np.float64)
    rng = np.random.default_rng(DATA_SEED)
    values = base[rng.integers(0, len(base), size=rows)]
    values += rng.standard_normal(values.shape) * (NOISE * base.std(axis=0))
    frame = pd.DataFrame(values, columns=[*FEATURES, TARGET])

    con = duckdb.connect(str(partial / DB_FILE))
    try:
        con.register("frame", frame)
        con.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM frame")
        con.unregister("frame")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    np.save(partial / "features.npy", values[:, : len(FEATURES)].astype(np.float32))
    np.save(partial / "target.npy", values[:, len(FEATURES)].astype(np.float32))
    (partial / "meta.json").write_text(json.dumps(_data_meta(rows)))
    partial.rename(data)


# -- the measured children: run as `bench_train.py --child limit|seed` -------------------


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def child_limit(data: Path) -> dict[str, Any]:
    """XGBoost alone, from float32 arrays already in memory; times only the training."""
    t0 = time.perf_counter()
    import numpy as np
    import xgboost as xgb

    t_imported = time.perf_counter()
    features = np.load(data / "features.npy")
    label = np.load(data / "target.npy")
    # The rows are an i.i.d. resample, so the last quarter is as random a split as any;
    # slicing keeps both parts C-contiguous views (no copy).
    cut = len(label) - round(len(label) * VALIDATION_FRACTION)
    x_train, y_train = features[:cut], label[:cut]
    x_valid, y_valid = features[cut:], label[cut:]
    cores = _cores()

    start = time.perf_counter()
    dtrain = xgb.QuantileDMatrix(x_train, label=y_train, nthread=cores)
    dvalid = xgb.QuantileDMatrix(x_valid, label=y_valid, ref=dtrain, nthread=cores)
    built = time.perf_counter()
    history: dict[str, Any] = {}
    # The same work stageless does: the validation metric every round, the training
    # metric once at the end.
    booster = xgb.train(
        {**PARAMS, "nthread": cores},
        dtrain,
        num_boost_round=NUM_ROUND,
        evals=[(dvalid, "validation")],
        evals_result=history,
        verbose_eval=False,
    )
    booster.eval_set([(dtrain, "train")])
    done = time.perf_counter()
    return {
        "internal_s": done - start,
        "phases": {
            "imports": t_imported - t0,
            "load .npy": start - t_imported,
            "QuantileDMatrix x2": built - start,
            "xgb.train": done - built,
        },
        "rmse": history["validation"]["rmse"][-1],
    }


def child_seed(data: Path, out: Path) -> dict[str, Any]:
    """The seed's path: pandas.read_sql, dropna, train_test_split, DMatrix, train, save."""
    import warnings

    t0 = time.perf_counter()
    import duckdb
    import pandas as pd
    import xgboost as xgb
    from sklearn.model_selection import train_test_split

    t_imported = time.perf_counter()
    con = duckdb.connect(str(data / DB_FILE), read_only=True)
    with warnings.catch_warnings():
        # pandas warns that a DuckDB connection is not SQLAlchemy or sqlite3; it works.
        warnings.filterwarnings("ignore", message="pandas only supports SQLAlchemy")
        frame = pd.read_sql(f"SELECT * FROM {TABLE}", con)
    con.close()
    t_read = time.perf_counter()
    frame = frame.dropna()
    x_train, x_valid, y_train, y_valid = train_test_split(
        frame.drop(columns=[TARGET]),
        frame[TARGET],
        test_size=VALIDATION_FRACTION,
        random_state=SPLIT_SEED,
    )
    t_split = time.perf_counter()
    dtrain = xgb.DMatrix(x_train, label=y_train)
    dvalid = xgb.DMatrix(x_valid, label=y_valid)
    t_built = time.perf_counter()
    history: dict[str, Any] = {}
    booster = xgb.train(
        PARAMS,
        dtrain,
        num_boost_round=NUM_ROUND,
        evals=[(dtrain, "train"), (dvalid, "validation")],
        evals_result=history,
        verbose_eval=False,
    )
    t_trained = time.perf_counter()
    booster.save_model(out / "xgboost-model.json")
    t_saved = time.perf_counter()
    return {
        "phases": {
            "imports": t_imported - t0,
            "read_sql": t_read - t_imported,
            "dropna + split": t_split - t_read,
            "DMatrix x2": t_built - t_split,
            "xgb.train": t_trained - t_built,
            "save": t_saved - t_trained,
        },
        "rmse": history["validation"]["rmse"][-1],
    }


# -- running and measuring one child --------------------------------------------------


def _descendants_rss(root: int, page: int) -> int:
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
            self.peak = max(self.peak, _descendants_rss(self.pid, self._page))
            if self._done.wait(SAMPLE_SECONDS):
                return

    def finish(self) -> int | None:
        self._done.set()
        self.join()
        return self.peak if self.available else None


def _busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (None off Linux)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Run:
    path: str
    repeat: int
    wall_s: float
    peak_rss_mib: float
    tree_rss_mib: float | None
    written_bytes: int
    other_cpu_s: float | None  # CPU used meanwhile by processes outside the measured tree
    rmse: float | None
    internal_s: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    out_files: dict[str, int] = field(default_factory=dict)
    tmp_files: list[str] = field(default_factory=list)
    data_dir_new: list[str] = field(default_factory=list)


def _listing(directory: Path) -> dict[str, int]:
    return {
        str(p.relative_to(directory)): p.stat().st_size
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _drain(stream: IO[bytes] | None, name: str, into: dict[str, bytes]) -> None:
    if stream is None:
        into[name] = b""
        return
    with stream:
        into[name] = stream.read()


def _maxrss_mib(usage: Any) -> float:
    # Linux reports KiB, macOS bytes.
    return usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _stageless_command() -> list[str]:
    script = Path(sys.executable).parent / "stageless"
    return [str(script)] if script.exists() else [sys.executable, "-m", "stageless"]


def command_for(path: str, data: Path, out: Path) -> list[str]:
    if path in ("limit", "seed"):
        here = str(Path(__file__).resolve())
        return [sys.executable, here, "--child", path, "--data", str(data), "--out", str(out)]
    workers = path.rsplit("-", 1)[1]
    return [
        *_stageless_command(),
        "train",
        "--source",
        f"duckdb:{data / DB_FILE}",
        "--table",
        TABLE,
        "--target",
        TARGET,
        "--workers",
        workers,
        "--output",
        str(out),
        "--quiet",
    ]


def run_once(path: str, repeat: int, data: Path, runs: Path) -> Run:
    """Run one child; measure wall time, rusage, and what it left on disk."""
    home = runs / f"{repeat}-{path}"
    out, tmp = home / "out", home / "tmp"
    out.mkdir(parents=True)
    tmp.mkdir()
    before = set(_listing(data))
    command = command_for(path, data, out)
    env = {**os.environ, "TMPDIR": str(tmp)}
    # Output goes through pipes, not files, so that the child's fs output is only its own.
    busy_before, own_before = _busy_cpu_seconds(), _own_cpu_seconds()
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
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
    busy_after, own_after = _busy_cpu_seconds(), _own_cpu_seconds()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    tree = sampler.finish()
    for reader in readers:
        reader.join()
    for name, content in captured.items():
        (home / name).write_bytes(content)
    text = captured["stdout"].decode()
    if proc.returncode != 0:
        tail = captured["stderr"].decode(errors="replace").strip().splitlines()[-15:]
        raise SystemExit(
            f"{path} (repeat {repeat}) exited with code {proc.returncode}:\n"
            + "\n".join(tail)
            + f"\ncommand: {shlex.join(command)}"
        )
    run = Run(
        path=path,
        repeat=repeat,
        wall_s=wall,
        peak_rss_mib=_maxrss_mib(usage),
        tree_rss_mib=tree / 2**20 if tree is not None else None,
        written_bytes=usage.ru_oublock * 512,
        other_cpu_s=(
            busy_after - busy_before - (usage.ru_utime + usage.ru_stime) - (own_after - own_before)
            if busy_before is not None and busy_after is not None
            else None
        ),
        rmse=None,
        out_files=_listing(out),
        tmp_files=sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*")),
        data_dir_new=sorted(set(_listing(data)) - before),
    )
    if path.startswith("stageless"):
        found = RMSE_LINE.search(text)
        run.rmse = float(found.group(1)) if found else None
    else:
        result = json.loads(text.strip().splitlines()[-1])
        run.rmse = result["rmse"]
        run.internal_s = result.get("internal_s")
        run.phases = result["phases"]
    return run


# -- the report -------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _machine() -> str:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{_cores()} cores ({cpu}), {ram:.1f} GiB RAM, {platform.platform()}"


def _versions() -> str:
    parts = [f"python {platform.python_version()}"]
    for name in ("stageless", "xgboost", "duckdb", "numpy", "pandas", "scikit-learn", "pyarrow"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def _source_state() -> str:
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


def _command() -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())
    return shlex.join([str(python), *sys.argv])


def _load(run: Run) -> str:
    return "n/a" if run.other_cpu_s is None else f"{max(run.other_cpu_s, 0.0) / run.wall_s:.2f}"


def _verdict(ratio: float, meets: Callable[[float], bool]) -> str:
    return "meets" if meets(ratio) else "MISSES"


def report(
    runs: list[Run], rows: int, repeats: int, data: Path, elapsed: float, source: str
) -> str:
    by_path = {p: [r for r in runs if r.path == p] for p in PATHS}
    wall = {p: _median([r.wall_s for r in rs]) for p, rs in by_path.items()}
    rss = {p: _median([r.peak_rss_mib for r in rs]) for p, rs in by_path.items()}
    limit_internal = _median([r.internal_s or 0.0 for r in by_path["limit"]])

    lines = [
        "# stageless train benchmark",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {_machine()}",
        f"- software: {_versions()}",
        f"- stageless source (at start): {source}",
        f"- command: `{_command()}`",
        f"- data: {rows:,} rows x {len(FEATURES)} features, DuckDB table `{TABLE}` in "
        f"`{data / DB_FILE}`; {repeats} repeat(s) of limit, seed, stageless-1, stageless-2 "
        f"in turn; whole benchmark {elapsed:.0f}s",
    ]
    disturbed = [r for r in runs if (r.other_cpu_s or 0.0) / r.wall_s > BUSY_CORES]
    if disturbed:
        lines += [
            "",
            f"**Warning: other processes used more than {BUSY_CORES} of a core during "
            f"{len(disturbed)} of {len(runs)} runs** ("
            + ", ".join(f"{r.path} #{r.repeat}: {_load(r)}" for r in disturbed)
            + "). XGBoost's threads slow down sharply when they must share cores: rerun on "
            "a quiet machine before trusting the times.",
        ]
    lines += [
        "",
        "## Medians per path",
        "",
    ]
    summary = []
    for p, rs in by_path.items():
        walls = [r.wall_s for r in rs]
        trees = [r.tree_rss_mib for r in rs if r.tree_rss_mib is not None]
        summary.append(
            [
                p,
                f"{wall[p]:.2f}",
                f"{min(walls):.2f} - {max(walls):.2f}",
                _mib(rss[p]),
                _mib(_median(trees) if trees else None),
                f"{_median([r.written_bytes for r in rs]):,.0f}",
                ", ".join(f"{r.rmse:.5f}" if r.rmse is not None else "n/a" for r in rs),
            ]
        )
    lines += _table(
        [
            "path",
            "wall s (median)",
            "wall s (min - max)",
            "peak RSS MiB (ru_maxrss)",
            "tree RSS MiB (sampled sum)",
            "fs output bytes (ru_oublock x 512)",
            "validation RMSE per run",
        ],
        summary,
    )
    lines += [
        "",
        f"limit, internal training time only (QuantileDMatrix x2 + xgb.train, from arrays "
        f"in memory): median {limit_internal:.2f}s "
        f"(runs: {', '.join(f'{r.internal_s or 0.0:.2f}' for r in by_path['limit'])}).",
        "",
        "Peak RSS for stageless-2 is ru_maxrss of the coordinator and its waited-for "
        "worker processes, i.e. the largest single process, not their sum; the sampled "
        "tree sum (every 0.1s, shared pages counted per process) is the better guide to "
        "what the run needs at once. On Linux a child's ru_maxrss starts from the "
        "high-water mark of the process that spawned it; this bench process peaked at "
        f"{_maxrss_mib(resource.getrusage(resource.RUSAGE_SELF)):,.0f} MiB, so no child's "
        "figure is inflated by it unless that child is smaller still.",
        "",
        "## Ratios promised (this run's medians)",
        "",
    ]
    ratios = [
        (
            "stageless-1 time / limit internal training time",
            wall["stageless-1"] / limit_internal,
            "<= 1.25",
            lambda r: r <= 1.25,
        ),
        (
            "stageless-1 time / limit whole-process time (incl. interpreter start, imports)",
            wall["stageless-1"] / wall["limit"],
            "<= 1.25",
            lambda r: r <= 1.25,
        ),
        (
            "stageless-1 time / seed time",
            wall["stageless-1"] / wall["seed"],
            "< 1",
            lambda r: r < 1,
        ),
        (
            "stageless-1 peak RSS / seed peak RSS",
            rss["stageless-1"] / rss["seed"],
            "<= 0.6",
            lambda r: r <= 0.6,
        ),
        (
            "stageless-2 time / stageless-1 time",
            wall["stageless-2"] / wall["stageless-1"],
            "<= 1.25",
            lambda r: r <= 1.25,
        ),
    ]
    lines += _table(
        ["ratio", "value", "goal", "verdict"],
        [[name, f"{value:.2f}", goal, _verdict(value, ok)] for name, value, goal, ok in ratios],
    )

    lines += ["", "## Where the reference paths spend their time (medians, s)", ""]
    for p in ("limit", "seed"):
        names = list(by_path[p][0].phases)
        lines.append(
            f"- {p}: "
            + ", ".join(f"{n} {_median([r.phases[n] for r in by_path[p]]):.2f}" for n in names)
            + f"; whole process {wall[p]:.2f}"
        )

    lines += ["", "## What the stageless runs left on disk", ""]
    for p in ("stageless-1", "stageless-2"):
        rs = by_path[p]
        sizes: dict[str, list[int]] = {}
        for r in rs:
            for name, size in r.out_files.items():
                sizes.setdefault(name, []).append(size)
        outs = [
            f"{name} ({min(s):,} - {max(s):,} B)" if min(s) != max(s) else f"{name} ({s[0]:,} B)"
            for name, s in sorted(sizes.items())
        ]
        tmp_empty = all(not r.tmp_files for r in rs)
        data_clean = all(not r.data_dir_new for r in rs)
        lines.append(
            f"- {p}: OUT held {'; '.join(outs) or 'nothing'}; "
            f"TMPDIR (fresh per run) {'stayed empty' if tmp_empty else 'NOT empty'} in all "
            f"{len(rs)} runs; nothing new next to the DuckDB file: "
            f"{'yes' if data_clean else 'NO'}; fs output per run: "
            + ", ".join(f"{r.written_bytes:,} B" for r in rs)
        )
        for r in rs:
            if r.tmp_files or r.data_dir_new:
                lines.append(
                    f"  - repeat {r.repeat}: TMPDIR {r.tmp_files}, new data files {r.data_dir_new}"
                )

    lines += ["", "## Every run", ""]
    lines += _table(
        [
            "repeat",
            "path",
            "wall s",
            "peak RSS MiB",
            "tree RSS MiB",
            "fs output bytes",
            "RMSE",
            "other processes' CPU (cores)",
        ],
        [
            [
                str(r.repeat),
                r.path,
                f"{r.wall_s:.2f}",
                _mib(r.peak_rss_mib),
                _mib(r.tree_rss_mib),
                f"{r.written_bytes:,}",
                f"{r.rmse:.5f}" if r.rmse is not None else "n/a",
                _load(r),
            ]
            for r in runs
        ],
    )
    lines += [
        "",
        "RMSEs differ a little by design: the seed splits with train_test_split, the limit "
        "takes the last quarter of the rows, stageless hashes each row; stageless-2 builds "
        "its quantile sketch from two shards. Similar values mean the paths did the same work.",
    ]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each path")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "stageless-bench",
        help="where the table and the runs' outputs go (default: %(default)s)",
    )
    parser.add_argument("--child", choices=["generate", "limit", "seed"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows < 100 or args.repeats < 1:
        parser.error("--rows must be at least 100 and --repeats at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child == "generate":
        child_generate(args.data, args.rows)
        return
    if args.child:
        result = (
            child_limit(args.data) if args.child == "limit" else child_seed(args.data, args.out)
        )
        print(json.dumps(result), flush=True)
        return

    started = time.perf_counter()
    source = _source_state()
    workdir: Path = args.workdir.absolute()
    data = prepare_data(workdir, args.rows)
    runs_dir = workdir / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs: list[Run] = []
    for repeat in range(1, args.repeats + 1):
        for path in PATHS:
            run = run_once(path, repeat, data, runs_dir)
            runs.append(run)
            rmse = f"{run.rmse:.5f}" if run.rmse is not None else "n/a"
            print(
                f"repeat {repeat}/{args.repeats} {path:<12} {run.wall_s:7.2f}s  "
                f"peak RSS {run.peak_rss_mib:7,.0f} MiB  written {run.written_bytes:>11,} B  "
                f"rmse {rmse}  other CPU {_load(run)} cores",
                flush=True,
            )
    text = report(runs, args.rows, args.repeats, data, time.perf_counter() - started, source)
    print()
    print(text, end="")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(f"\nwritten to {RESULTS.relative_to(REPO)}; run outputs in {runs_dir}")


if __name__ == "__main__":
    main()
