"""Training from PostgreSQL: stageless against the seed's path and the best peer library.

One command, ``.venv/bin/python bench/bench_postgres.py [--rows N] [--repeats K]``, starts a
PostgreSQL server of its own (initdb + pg_ctl in the work directory, on a free port; as
the ``postgres`` user when run as root), loads a table into it once, and times four ways of
training the same model from it, each in a child process of its own:

``seed``
    What the project grew from: ``pd.read_sql("SELECT * FROM housing", psycopg
    connection)``, ``dropna``, scikit-learn's ``train_test_split``, two ``xgb.DMatrix``,
    ``xgb.train`` watching train and validation every round, save the model.
``peer``
    The best path with peer libraries: connectorx ``read_sql(..., return_type="arrow")``
    (Rust, binary COPY), the columns into one float32 matrix, a random 75/25 split,
    ``QuantileDMatrix`` for train and validation (``ref=train``), ``xgb.train`` watching
    validation every round and train once at the end (the same work stageless does).
``stageless-1`` / ``stageless-2``
    ``stageless train --source postgresql://... --table housing ... --workers 1|2 --quiet``,
    the whole process from interpreter start.
``stageless-1-sketch-all``
    ``--workers 1`` with ``--hp sketch_rows=0``: bin boundaries sketched from every
    training row, as XGBoost does on its own, instead of stageless's default 200,000-row
    sample. It shows what the sample saves and that the model does not suffer from it.

All four train 10 rounds (``--num-round``) with stageless's default hyperparameters, so the
data path (the read, the split, the matrices) dominates. Within each repeat the paths run in
turn, so drift of the machine hits all of them alike; the report gives medians.

The table is ``--rows`` rows (default 2,000,000) resampled with replacement from the bundled
California housing data with 2% gaussian noise per column (fixed seed; the same generator as
``bench_train.py``): 9 ``double precision`` columns. It is kept in the server's data
directory under ``--workdir`` and reused by later runs with the same ``--rows``.

Per child the report records wall seconds, peak RSS (``ru_maxrss`` from ``os.wait4``: for a
child that starts workers, the largest of its processes; a sampled sum over the process
tree is shown beside it), the CPU seconds the PostgreSQL server spent meanwhile (its
postmaster's own and reaped children's CPU: every backend the run used), and the CPU other
processes used (a run disturbed by them is flagged). ``--dsn URL`` uses an existing server
instead of starting one (then the server's CPU is not measured).

The results go to stdout and, as markdown, to ``bench/results/postgres.md``. Nothing is
asserted: it is a report.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # after the line above, so that any working directory works
from bench_train import (
    DATA_SEED,
    FEATURES,
    NOISE,
    PARAMS,
    TARGET,
    VALIDATION_FRACTION,
    resampled_rows,
    seed_fit,
)

REPO = harness.REPO
RESULTS = REPO / "bench" / "results" / "postgres.md"
TABLE = "housing"
DATABASE = "bench"
#: Bump whenever the way rows are made changes, so an old table is remade.
DATA_FORMAT = 1
NUM_ROUND = 10
PATHS = ("seed", "peer", "stageless-1", "stageless-2", "stageless-1-sketch-all")
#: What the report's software line names.
PACKAGES = (
    "stageless",
    "xgboost",
    "adbc-driver-postgresql",
    "connectorx",
    "psycopg",
    "pandas",
    "numpy",
    "pyarrow",
)
PEER_SPLIT_SEED = 7


# -- the server ---------------------------------------------------------------------------


def _server_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if versions:
        return str(versions[-1])
    raise SystemExit(f"{name} not found: install PostgreSQL (apt-get install postgresql)")


class Server:
    """A PostgreSQL server of the bench's own, in WORKDIR/pg (kept between runs)."""

    def __init__(self, workdir: Path) -> None:
        self.home = workdir / "pg"
        self.data = self.home / "data"
        self.port = harness.free_port()
        self.owner: dict[str, int] = {}
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            entry = pwd.getpwnam("postgres")
            self.owner = {"user": entry.pw_uid, "group": entry.pw_gid}

    def _run(self, *args: str) -> None:
        subprocess.run(list(args), check=True, cwd=self.home, capture_output=True, **self.owner)

    def start(self) -> str:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.owner:
            os.chown(self.home, self.owner["user"], self.owner["group"])
        if not (self.data / "PG_VERSION").exists():
            self._run(_server_bin("initdb"), "-D", str(self.data), "-U", "bench", "--auth=trust")
        options = f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1"
        self._run(
            _server_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.home / "log"),
            "-w", "-o", options, "start",
        )  # fmt: skip
        return f"postgresql://bench@127.0.0.1:{self.port}/{DATABASE}"

    def stop(self) -> None:
        self._run(_server_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])


def _tree_cpu_seconds(pid: int) -> float | None:
    """CPU of a process plus its reaped children: for the postmaster, every backend."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


# -- the data ---------------------------------------------------------------------------


def _data_meta(rows: int) -> dict[str, int | float]:
    return {"rows": rows, "seed": DATA_SEED, "noise": NOISE, "format": DATA_FORMAT}


def prepare_data(dsn: str, rows: int) -> None:
    """The table, made once in a child (so this process stays small) and reused."""
    started = time.perf_counter()
    here = str(Path(__file__).resolve())
    subprocess.run(
        [sys.executable, here, "--child", "generate", "--rows", str(rows)],
        check=True,
        env={**os.environ, "BENCH_DSN": dsn},
    )
    print(f"table ready in {time.perf_counter() - started:.1f}s", flush=True)


def child_generate(dsn: str, rows: int) -> None:
    import psycopg
    import pyarrow as pa

    from stageless.identifiers import TableName
    from stageless.warehouses import open_warehouse

    meta = json.dumps(_data_meta(rows))
    try:
        psycopg.connect(dsn).close()
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
        admin = psycopg.conninfo.make_conninfo(dsn, dbname="postgres")
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {DATABASE}")
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute("CREATE TABLE IF NOT EXISTS bench_meta (tbl text PRIMARY KEY, meta text)")
        found = con.execute("SELECT meta FROM bench_meta WHERE tbl = %s", [TABLE]).fetchone()
        if found and found[0] == meta:
            print(f"reusing the {rows:,}-row table", flush=True)
            return
    print(f"generating a {rows:,}-row table ...", flush=True)
    values = resampled_rows(rows)
    table = pa.table({name: values[:, i] for i, name in enumerate([*FEATURES, TARGET])})
    with open_warehouse(dsn) as wh:
        wh.load_arrow(TableName(TABLE), table.to_reader(max_chunksize=131_072), "replace")
    with psycopg.connect(dsn, autocommit=True) as con:
        # Set hint bits and the visibility map now, not during the first measured read.
        con.execute(f"VACUUM (FREEZE, ANALYZE) {TABLE}")
        con.execute(
            "INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (tbl) DO UPDATE SET meta = %s",
            [TABLE, meta, meta],
        )


# -- the measured children: `bench_postgres.py --child seed|peer` -------------------------


def child_seed(dsn: str, out: Path) -> dict[str, Any]:
    """The seed's path: pandas.read_sql over psycopg, dropna, train_test_split, DMatrix."""
    import warnings

    t0 = time.perf_counter()
    import pandas as pd
    import psycopg
    import sklearn.model_selection  # noqa: F401 - seed_fit's imports, timed here
    import xgboost  # noqa: F401

    t_imported = time.perf_counter()
    with psycopg.connect(dsn) as con, warnings.catch_warnings():
        # pandas warns that a psycopg 3 connection is not SQLAlchemy; it works.
        warnings.filterwarnings("ignore", message="pandas only supports SQLAlchemy")
        frame = pd.read_sql(f"SELECT * FROM {TABLE}", con)
    t_read = time.perf_counter()
    return seed_fit(
        frame, out, NUM_ROUND, {"imports": t_imported - t0, "read_sql": t_read - t_imported}
    )


def child_peer(dsn: str, out: Path) -> dict[str, Any]:
    """connectorx into Arrow, one float32 matrix, QuantileDMatrix: the best peer path."""
    t0 = time.perf_counter()
    import connectorx as cx
    import numpy as np
    import xgboost as xgb

    t_imported = time.perf_counter()
    table = cx.read_sql(dsn, f"SELECT * FROM {TABLE}", return_type="arrow")
    t_read = time.perf_counter()
    label = table.column(TARGET).to_numpy().astype(np.float32)
    keep = ~np.isnan(label)
    features = np.empty((table.num_rows, len(FEATURES)), dtype=np.float32)
    for j, name in enumerate(FEATURES):
        features[:, j] = table.column(name).to_numpy()
    del table
    valid = np.random.default_rng(PEER_SPLIT_SEED).random(len(label)) < VALIDATION_FRACTION
    train_rows, valid_rows = keep & ~valid, keep & valid
    x_train, y_train = features[train_rows], label[train_rows]
    x_valid, y_valid = features[valid_rows], label[valid_rows]
    del features
    t_split = time.perf_counter()
    cores = harness.cores()
    dtrain = xgb.QuantileDMatrix(x_train, label=y_train, nthread=cores)
    dvalid = xgb.QuantileDMatrix(x_valid, label=y_valid, ref=dtrain, nthread=cores)
    del x_train, x_valid
    t_built = time.perf_counter()
    history: dict[str, Any] = {}
    booster = xgb.train(
        {**PARAMS, "nthread": cores},
        dtrain,
        num_boost_round=NUM_ROUND,
        evals=[(dvalid, "validation")],
        evals_result=history,
        verbose_eval=False,
    )
    booster.eval_set([(dtrain, "train")])
    t_trained = time.perf_counter()
    booster.save_model(out / "xgboost-model.json")
    return {
        "phases": {
            "imports": t_imported - t0,
            "read_sql (arrow)": t_read - t_imported,
            "to float32 + split": t_split - t_read,
            "QuantileDMatrix x2": t_built - t_split,
            "xgb.train": t_trained - t_built,
            "save": time.perf_counter() - t_trained,
        },
        "rmse": history["validation"]["rmse"][-1],
    }


# -- running and measuring one child ------------------------------------------------------


@dataclass(kw_only=True)
class Run(harness.PathRun):
    server_cpu_s: float | None
    out_files: list[str] = field(default_factory=list)


def command_for(path: str, dsn: str, out: Path) -> list[str]:
    if path in ("seed", "peer"):
        here = str(Path(__file__).resolve())
        return [sys.executable, here, "--child", path, "--out", str(out)]
    return [
        *harness.stageless_command(),
        "train",
        "--source",
        dsn,
        "--table",
        TABLE,
        "--target",
        TARGET,
        *harness.STAGELESS_PATHS[path],
        "--hp",
        f"num_round={NUM_ROUND}",
        "--output",
        str(out),
        "--quiet",
    ]


def _server_cpu(server_pid: int | None) -> float | None:
    return _tree_cpu_seconds(server_pid) if server_pid else None


def run_once(path: str, repeat: int, dsn: str, runs: Path, server_pid: int | None) -> Run:
    home = runs / f"{repeat}-{path}"
    out, tmp = home / "out", home / "tmp"
    out.mkdir(parents=True)
    tmp.mkdir()
    command = command_for(path, dsn, out)
    env = {**os.environ, "TMPDIR": str(tmp), "BENCH_DSN": dsn}
    # Backends exit when their client disconnects; give the postmaster a moment to reap
    # them, so their CPU shows in its children's total.
    child = harness.measure_child(
        command,
        env,
        home,
        f"{path} (repeat {repeat})",
        settle=0.3,
        extra_cpu=lambda: _server_cpu(server_pid),
    )
    run: Run = Run.measured(
        path,
        repeat,
        child,
        server_cpu_s=child.extra_cpu_s,
        out_files=sorted(p.name for p in out.iterdir()),
    )
    text = child.stdout.decode()
    if path.startswith("stageless"):
        found = [w for w in text.split() if w.startswith("rmse=")]
        run.rmse = float(found[0].split("=", 1)[1]) if found else None
    else:
        result = harness.last_json_line(text)
        run.rmse, run.phases = result["rmse"], result["phases"]
    return run


# -- the report -------------------------------------------------------------------------


def _cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def report(
    runs: list[Run], rows: int, repeats: int, server: str, elapsed: float, source: str
) -> str:
    by_path = harness.by_path(runs, PATHS)
    wall = harness.medians(by_path, "wall_s")
    rss = harness.medians(by_path, "peak_rss_mib")
    tree = {
        p: harness.median([r.tree_rss_mib for r in rs if r.tree_rss_mib is not None] or [0.0])
        for p, rs in by_path.items()
    }
    lines = [
        *harness.report_header(
            "stageless PostgreSQL benchmark", PACKAGES, source, f"- server: {server}"
        ),
        f"- data: {rows:,} rows x {len(FEATURES) + 1} double precision columns, table "
        f"`{TABLE}`; {NUM_ROUND} boosting rounds; {repeats} repeat(s) of "
        f"{', '.join(PATHS)} in turn; whole benchmark {elapsed:.0f}s",
    ]
    lines += harness.disturbance_warning(
        runs, "Rerun on a quiet machine before trusting the times."
    )
    lines += ["", "## Medians per path", ""]
    lines += harness.table(
        [
            *harness.PATH_COLUMNS,
            "server CPU s",
            "validation RMSE per run",
        ],
        [
            [
                *harness.path_cells(p, rs, wall, rss),
                harness.mib(tree[p] or None),
                _cpu(
                    harness.median([r.server_cpu_s for r in rs])
                    if all(r.server_cpu_s is not None for r in rs)
                    else None
                ),
                ", ".join(harness.rmse(r.rmse) for r in rs),
            ]
            for p, rs in by_path.items()
        ],
    )
    lines += ["", "## Ratios promised (this run's medians)", ""]
    s1, s2 = "stageless-1", "stageless-2"
    ratios = [
        (f"{s1} time / seed time", wall[s1] / wall["seed"], "<= 0.33"),
        (f"{s1} peak RSS / seed peak RSS", rss[s1] / rss["seed"], "<= 0.35"),
        (f"{s1} time / peer time", wall[s1] / wall["peer"], "<= 1"),
        (f"{s1} peak RSS / peer peak RSS", rss[s1] / rss["peer"], "<= 1"),
        (f"{s2} time / {s1} time", wall[s2] / wall[s1], "<= 1.25"),
        (
            f"{s1} time / stageless-1-sketch-all time (what the sketch sample saves)",
            wall[s1] / wall["stageless-1-sketch-all"],
            "(shown, no goal)",
        ),
        (
            "stageless-1-sketch-all time / seed time",
            wall["stageless-1-sketch-all"] / wall["seed"],
            "(shown, no goal)",
        ),
        (
            f"{s2} tree RSS (all its processes together) / peer peak RSS",
            (tree[s2] or rss[s2]) / rss["peer"],
            "(shown, no goal)",
        ),
    ]
    lines += harness.table(
        ["ratio", "value", "goal", "verdict"],
        [
            [
                name,
                f"{value:.2f}",
                goal,
                harness.verdict(value, lambda r, g=goal: r <= float(g.split()[-1]))
                if goal.startswith("<=")
                else "",
            ]
            for name, value, goal in ratios
        ],
    )
    lines += ["", "## Where the reference paths spend their time (medians, s)", ""]
    lines += harness.phase_lines(by_path, ("seed", "peer"), wall)
    lines += ["", "## Every run", ""]
    lines += harness.table(
        [
            *harness.RUN_COLUMNS,
            "server CPU s",
            "RMSE",
            "other processes' CPU (cores)",
            "output",
        ],
        [
            [
                *harness.run_cells(r),
                _cpu(r.server_cpu_s),
                harness.rmse(r.rmse),
                harness.load(r),
                ", ".join(r.out_files),
            ]
            for r in runs
        ],
    )
    lines += [
        "",
        "RMSEs differ a little by design: the seed splits with train_test_split, the peer "
        "with a seeded random mask, stageless by a hash of each row; stageless sketches a "
        "200,000-row sample (sketch-all: every row), stageless-2 from two shards. Similar "
        "values mean the paths did the same work.",
    ]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = harness.parser(__doc__)
    harness.add_rows_repeats(parser, rows=2_000_000)
    harness.add_workdir(
        parser, "stageless-bench-pg", "the server's data directory and the runs' outputs"
    )
    parser.add_argument(
        "--dsn", help="use this PostgreSQL server (postgresql://...) instead of starting one"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="markdown report (default: %(default)s)"
    )
    parser.add_argument("--child", choices=["generate", "seed", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    harness.check_rows_repeats(parser, args)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        dsn = os.environ["BENCH_DSN"]
        if args.child == "generate":
            child_generate(dsn, args.rows)
            return
        result = child_seed(dsn, args.out) if args.child == "seed" else child_peer(dsn, args.out)
        print(json.dumps(result), flush=True)
        return

    started = time.perf_counter()
    source = harness.source_state()
    workdir: Path = args.workdir.absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    server = None if args.dsn else Server(workdir)
    dsn = args.dsn or server.start()  # type: ignore[union-attr]
    try:
        server_pid = server.postmaster_pid() if server else None
        described = "given by --dsn" if args.dsn else f"started by the bench on port {server.port}"  # type: ignore[union-attr]
        prepare_data(dsn, args.rows)
        runs_dir = workdir / "runs"
        shutil.rmtree(runs_dir, ignore_errors=True)
        runs: list[Run] = harness.run_all(
            PATHS,
            args.repeats,
            lambda path, repeat: run_once(path, repeat, dsn, runs_dir, server_pid),
            lambda run: (
                f"server CPU {_cpu(run.server_cpu_s)}s  rmse {harness.rmse(run.rmse)}  "
                f"other CPU {harness.load(run)} cores"
            ),
        )
    finally:
        if server is not None:
            server.stop()
    text = report(runs, args.rows, args.repeats, described, time.perf_counter() - started, source)
    harness.write_report(text, args.results)
    print(f"\nwritten to {args.results}; run outputs in {runs_dir}")
    print(f"this process peaked at {harness.own_peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
