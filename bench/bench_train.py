"""How fast and how lean is ``stageless train``, against XGBoost alone and against the seed?

One command, ``.venv/bin/python bench/bench_train.py [--rows N] [--repeats K] [--workdir DIR]``,
builds a table and times five ways of training the same model on it, each in a child
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
``stageless-1-sketch-all``
    ``--workers 1`` with ``--hp sketch_rows=0``: bin boundaries sketched from every
    training row, as XGBoost (and so ``limit``) does, instead of stageless's default
    200,000-row sample: the like-for-like comparison with ``limit``.

All five use the same hyperparameters (stageless's defaults, the seed's). Within each
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
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stageless.datasets import CALIFORNIA_HOUSING_FEATURES, CALIFORNIA_HOUSING_TARGET
from stageless.training.hyperparams import DEFAULTS

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # after the line above, so that any working directory works

REPO = harness.REPO
DATASET = REPO / "src" / "stageless" / "datasets" / "california_housing.csv.gz"
RESULTS = REPO / "bench" / "results" / "train.md"

FEATURES = CALIFORNIA_HOUSING_FEATURES
TARGET = CALIFORNIA_HOUSING_TARGET
TABLE = "housing"
DB_FILE = "housing.duckdb"

#: Generation: bump DATA_FORMAT whenever the way rows are made changes, so old data is remade.
DATA_FORMAT = 1
DATA_SEED = 20_240_611
NOISE = 0.02  # gaussian noise, as a fraction of each column's standard deviation
SPLIT_SEED = 42  # the seed's train_test_split random_state

#: stageless's defaults, which are the seed's (a light import: no numpy, no XGBoost).
PARAMS: dict[str, Any] = {
    **{k: v for k, v in DEFAULTS.items() if k != "num_round"},
    "tree_method": "hist",
}
NUM_ROUND: int = DEFAULTS["num_round"]
VALIDATION_FRACTION = 0.25

PATHS = ("limit", "seed", "stageless-1", "stageless-2", "stageless-1-sketch-all")
#: What the report's software line names.
PACKAGES = ("stageless", "xgboost", "duckdb", "numpy", "pandas", "scikit-learn", "pyarrow")
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


def resampled_rows(rows: int) -> Any:
    """ROWS rows drawn with replacement from the bundled data, plus noise (a float64 array).

    FEATURES then TARGET per row; in a child only (it imports NumPy and pandas).
    """
    import numpy as np
    import pandas as pd

    base = pd.read_csv(DATASET)[[*FEATURES, TARGET]].to_numpy(np.float64)
    rng = np.random.default_rng(DATA_SEED)
    values = base[rng.integers(0, len(base), size=rows)]
    values += rng.standard_normal(values.shape) * (NOISE * base.std(axis=0))
    return values


def child_generate(data: Path, rows: int) -> None:
    """Resample the bundled rows with noise; write the DuckDB table and the .npy files."""
    import duckdb
    import numpy as np
    import pandas as pd

    partial = data.with_name(f".{data.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    partial.mkdir(parents=True)

    values = resampled_rows(rows)
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
    cores = harness.cores()

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
    import sklearn.model_selection  # noqa: F401 - seed_fit's imports, timed here
    import xgboost  # noqa: F401

    t_imported = time.perf_counter()
    con = duckdb.connect(str(data / DB_FILE), read_only=True)
    with warnings.catch_warnings():
        # pandas warns that a DuckDB connection is not SQLAlchemy or sqlite3; it works.
        warnings.filterwarnings("ignore", message="pandas only supports SQLAlchemy")
        frame = pd.read_sql(f"SELECT * FROM {TABLE}", con)
    con.close()
    t_read = time.perf_counter()
    return seed_fit(
        frame, out, NUM_ROUND, {"imports": t_imported - t0, "read_sql": t_read - t_imported}
    )


def seed_fit(frame: Any, out: Path, num_round: int, phases: dict[str, float]) -> dict[str, Any]:
    """The seed's steps after the read: dropna, train_test_split, two DMatrix, train, save.

    PHASES holds the seconds of the steps before; the result, the child's JSON line.
    """
    import xgboost as xgb
    from sklearn.model_selection import train_test_split

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
        num_boost_round=num_round,
        evals=[(dtrain, "train"), (dvalid, "validation")],
        evals_result=history,
        verbose_eval=False,
    )
    t_trained = time.perf_counter()
    booster.save_model(out / "xgboost-model.json")
    t_saved = time.perf_counter()
    return {
        "phases": {
            **phases,
            "dropna + split": t_split - t_read,
            "DMatrix x2": t_built - t_split,
            "xgb.train": t_trained - t_built,
            "save": t_saved - t_trained,
        },
        "rmse": history["validation"]["rmse"][-1],
    }


# -- running and measuring one child --------------------------------------------------


@dataclass(kw_only=True)
class Run(harness.PathRun):
    written_bytes: int
    internal_s: float | None = None
    out_files: dict[str, int] = field(default_factory=dict)
    tmp_files: list[str] = field(default_factory=list)
    data_dir_new: list[str] = field(default_factory=list)


def _listing(directory: Path) -> dict[str, int]:
    return {
        str(p.relative_to(directory)): p.stat().st_size
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def command_for(path: str, data: Path, out: Path) -> list[str]:
    if path in ("limit", "seed"):
        here = str(Path(__file__).resolve())
        return [sys.executable, here, "--child", path, "--data", str(data), "--out", str(out)]
    return [
        *harness.stageless_command(),
        "train",
        "--source",
        f"duckdb:{data / DB_FILE}",
        "--table",
        TABLE,
        "--target",
        TARGET,
        *harness.STAGELESS_PATHS[path],
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
    child = harness.measure_child(command, env, home, f"{path} (repeat {repeat})")
    text = child.stdout.decode()
    run: Run = Run.measured(
        path,
        repeat,
        child,
        written_bytes=child.written_bytes,
        out_files=_listing(out),
        tmp_files=sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*")),
        data_dir_new=sorted(set(_listing(data)) - before),
    )
    if path.startswith("stageless"):
        found = RMSE_LINE.search(text)
        run.rmse = float(found.group(1)) if found else None
    else:
        result = harness.last_json_line(text)
        run.rmse = result["rmse"]
        run.internal_s = result.get("internal_s")
        run.phases = result["phases"]
    return run


# -- the report -------------------------------------------------------------------------


def report(
    runs: list[Run], rows: int, repeats: int, data: Path, elapsed: float, source: str
) -> str:
    by_path = harness.by_path(runs, PATHS)
    wall = harness.medians(by_path, "wall_s")
    rss = harness.medians(by_path, "peak_rss_mib")
    limit_internal = harness.median([r.internal_s or 0.0 for r in by_path["limit"]])

    lines = [
        *harness.report_header("stageless train benchmark", PACKAGES, source),
        f"- data: {rows:,} rows x {len(FEATURES)} features, DuckDB table `{TABLE}` in "
        f"`{data / DB_FILE}`; {repeats} repeat(s) of {', '.join(PATHS)} "
        f"in turn; whole benchmark {elapsed:.0f}s",
    ]
    lines += harness.disturbance_warning(
        runs,
        "XGBoost's threads slow down sharply when they must share cores: rerun on "
        "a quiet machine before trusting the times.",
    )
    lines += [
        "",
        "## Medians per path",
        "",
    ]
    summary = []
    for p, rs in by_path.items():
        trees = [r.tree_rss_mib for r in rs if r.tree_rss_mib is not None]
        summary.append(
            [
                *harness.path_cells(p, rs, wall, rss),
                harness.mib(harness.median(trees) if trees else None),
                f"{harness.median([r.written_bytes for r in rs]):,.0f}",
                ", ".join(harness.rmse(r.rmse) for r in rs),
            ]
        )
    lines += harness.table(
        [
            *harness.PATH_COLUMNS,
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
        f"{harness.own_peak_rss_mib():,.0f} MiB, so no child's "
        "figure is inflated by it unless that child is smaller still.",
        "",
        "## Ratios promised (this run's medians)",
        "",
    ]
    against_limit = [
        (
            f"{path} time / limit {what}{note}",
            wall[path] / reference,
            "<= 1.25",
            lambda r: r <= 1.25,
        )
        for path, note in (("stageless-1", ""), ("stageless-1-sketch-all", " (like for like)"))
        for what, reference in (
            ("internal training time", limit_internal),
            ("whole-process time (incl. interpreter start, imports)", wall["limit"]),
        )
    ]
    ratios = [
        *against_limit[:2],
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
        *against_limit[2:],
    ]
    lines += harness.table(
        ["ratio", "value", "goal", "verdict"],
        [
            [name, f"{value:.2f}", goal, harness.verdict(value, ok)]
            for name, value, goal, ok in ratios
        ],
    )

    lines += ["", "## Where the reference paths spend their time (medians, s)", ""]
    lines += harness.phase_lines(by_path, ("limit", "seed"), wall)

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
    lines += harness.table(
        [
            *harness.RUN_COLUMNS,
            "fs output bytes",
            "RMSE",
            "other processes' CPU (cores)",
        ],
        [
            [
                *harness.run_cells(r),
                f"{r.written_bytes:,}",
                harness.rmse(r.rmse),
                harness.load(r),
            ]
            for r in runs
        ],
    )
    lines += [
        "",
        "RMSEs differ a little by design: the seed splits with train_test_split, the limit "
        "takes the last quarter of the rows, stageless hashes each row; stageless sketches a "
        "200,000-row sample (sketch-all: every row), stageless-2 from two shards. Similar "
        "values mean the paths did the same work.",
    ]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = harness.parser(__doc__)
    harness.add_rows_repeats(parser, rows=1_000_000)
    harness.add_workdir(parser, "stageless-bench", "where the table and the runs' outputs go")
    parser.add_argument("--child", choices=["generate", "limit", "seed"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    harness.check_rows_repeats(parser, args)
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
    source = harness.source_state()
    workdir: Path = args.workdir.absolute()
    data = prepare_data(workdir, args.rows)
    runs_dir = workdir / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs: list[Run] = harness.run_all(
        PATHS,
        args.repeats,
        lambda path, repeat: run_once(path, repeat, data, runs_dir),
        lambda run: (
            f"written {run.written_bytes:>11,} B  rmse {harness.rmse(run.rmse)}  "
            f"other CPU {harness.load(run)} cores"
        ),
    )
    text = report(runs, args.rows, args.repeats, data, time.perf_counter() - started, source)
    harness.write_report(text, RESULTS)
    print(f"\nwritten to {RESULTS.relative_to(REPO)}; run outputs in {runs_dir}")


if __name__ == "__main__":
    main()
