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
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench_train import (
    DATA_SEED,
    DATASET,
    FEATURES,
    NOISE,
    PARAMS,
    SPLIT_SEED,
    TARGET,
    VALIDATION_FRACTION,
    TreeRssSampler,
    _busy_cpu_seconds,
    _command,
    _cores,
    _drain,
    _machine,
    _maxrss_mib,
    _median,
    _mib,
    _own_cpu_seconds,
    _source_state,
    _stageless_command,
    _table,
    _verdict,
)

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "postgres.md"
TABLE = "housing"
DATABASE = "bench"
#: Bump whenever the way rows are made changes, so an old table is remade.
DATA_FORMAT = 1
NUM_ROUND = 10
PATHS = ("seed", "peer", "stageless-1", "stageless-2")
BUSY_CORES = 0.1
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A PostgreSQL server of the bench's own, in WORKDIR/pg (kept between runs)."""

    def __init__(self, workdir: Path) -> None:
        self.home = workdir / "pg"
        self.data = self.home / "data"
        self.port = _free_port()
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
    import numpy as np
    import pandas as pd
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
    base = pd.read_csv(DATASET)[[*FEATURES, TARGET]].to_numpy(np.float64)
    rng = np.random.default_rng(DATA_SEED)
    values = base[rng.integers(0, len(base), size=rows)]
    values += rng.standard_normal(values.shape) * (NOISE * base.std(axis=0))
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
    import xgboost as xgb
    from sklearn.model_selection import train_test_split

    t_imported = time.perf_counter()
    with psycopg.connect(dsn) as con, warnings.catch_warnings():
        # pandas warns that a psycopg 3 connection is not SQLAlchemy; it works.
        warnings.filterwarnings("ignore", message="pandas only supports SQLAlchemy")
        frame = pd.read_sql(f"SELECT * FROM {TABLE}", con)
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
    return {
        "phases": {
            "imports": t_imported - t0,
            "read_sql": t_read - t_imported,
            "dropna + split": t_split - t_read,
            "DMatrix x2": t_built - t_split,
            "xgb.train": t_trained - t_built,
            "save": time.perf_counter() - t_trained,
        },
        "rmse": history["validation"]["rmse"][-1],
    }


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
    cores = _cores()
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


@dataclass
class Run:
    path: str
    repeat: int
    wall_s: float
    peak_rss_mib: float
    tree_rss_mib: float | None
    server_cpu_s: float | None
    other_cpu_s: float | None
    rmse: float | None
    phases: dict[str, float] = field(default_factory=dict)
    out_files: list[str] = field(default_factory=list)


def command_for(path: str, dsn: str, out: Path) -> list[str]:
    if path in ("seed", "peer"):
        here = str(Path(__file__).resolve())
        return [sys.executable, here, "--child", path, "--out", str(out)]
    return [
        *_stageless_command(),
        "train",
        "--source",
        dsn,
        "--table",
        TABLE,
        "--target",
        TARGET,
        "--workers",
        path.rsplit("-", 1)[1],
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
    busy_before, own_before = _busy_cpu_seconds(), _own_cpu_seconds()
    server_before = _server_cpu(server_pid)
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
    proc.returncode = os.waitstatus_to_exitcode(status)
    tree = sampler.finish()
    for reader in readers:
        reader.join()
    # Backends exit when their client disconnects; give the postmaster a moment to reap
    # them, so their CPU shows in its children's total.
    time.sleep(0.3)
    busy_after, own_after = _busy_cpu_seconds(), _own_cpu_seconds()
    server_after = _server_cpu(server_pid)
    for name, content in captured.items():
        (home / name).write_bytes(content)
    if proc.returncode != 0:
        tail = captured["stderr"].decode(errors="replace").strip().splitlines()[-15:]
        raise SystemExit(
            f"{path} (repeat {repeat}) exited with code {proc.returncode}:\n"
            + "\n".join(tail)
            + f"\ncommand: {shlex.join(command)}"
        )
    server_cpu = (
        server_after - server_before
        if server_before is not None and server_after is not None
        else None
    )
    other = None
    if busy_before is not None and busy_after is not None:
        child = usage.ru_utime + usage.ru_stime
        other = busy_after - busy_before - child - (own_after - own_before) - (server_cpu or 0.0)
    run = Run(
        path=path,
        repeat=repeat,
        wall_s=wall,
        peak_rss_mib=_maxrss_mib(usage),
        tree_rss_mib=tree / 2**20 if tree is not None else None,
        server_cpu_s=server_cpu,
        other_cpu_s=other,
        rmse=None,
        out_files=sorted(p.name for p in out.iterdir()),
    )
    text = captured["stdout"].decode()
    if path.startswith("stageless"):
        found = [w for w in text.split() if w.startswith("rmse=")]
        run.rmse = float(found[0].split("=", 1)[1]) if found else None
    else:
        result = json.loads(text.strip().splitlines()[-1])
        run.rmse, run.phases = result["rmse"], result["phases"]
    return run


# -- the report -------------------------------------------------------------------------


def _versions() -> str:
    parts = [f"python {sys.version.split()[0]}"]
    for name in (
        "stageless",
        "xgboost",
        "adbc-driver-postgresql",
        "connectorx",
        "psycopg",
        "pandas",
        "numpy",
        "pyarrow",
    ):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def _load(run: Run) -> str:
    return "n/a" if run.other_cpu_s is None else f"{max(run.other_cpu_s, 0.0) / run.wall_s:.2f}"


def _cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def report(
    runs: list[Run], rows: int, repeats: int, server: str, elapsed: float, source: str
) -> str:
    by_path = {p: [r for r in runs if r.path == p] for p in PATHS}
    wall = {p: _median([r.wall_s for r in rs]) for p, rs in by_path.items()}
    rss = {p: _median([r.peak_rss_mib for r in rs]) for p, rs in by_path.items()}
    tree = {
        p: _median([r.tree_rss_mib for r in rs if r.tree_rss_mib is not None] or [0.0])
        for p, rs in by_path.items()
    }
    lines = [
        "# stageless PostgreSQL benchmark",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {_machine()}",
        f"- software: {_versions()}",
        f"- server: {server}",
        f"- stageless source (at start): {source}",
        f"- command: `{_command()}`",
        f"- data: {rows:,} rows x {len(FEATURES) + 1} double precision columns, table "
        f"`{TABLE}`; {NUM_ROUND} boosting rounds; {repeats} repeat(s) of "
        f"{', '.join(PATHS)} in turn; whole benchmark {elapsed:.0f}s",
    ]
    disturbed = [r for r in runs if (r.other_cpu_s or 0.0) / r.wall_s > BUSY_CORES]
    if disturbed:
        lines += [
            "",
            f"**Warning: other processes used more than {BUSY_CORES} of a core during "
            f"{len(disturbed)} of {len(runs)} runs** ("
            + ", ".join(f"{r.path} #{r.repeat}: {_load(r)}" for r in disturbed)
            + "). Rerun on a quiet machine before trusting the times.",
        ]
    lines += ["", "## Medians per path", ""]
    lines += _table(
        [
            "path",
            "wall s (median)",
            "wall s (min - max)",
            "peak RSS MiB (ru_maxrss)",
            "tree RSS MiB (sampled sum)",
            "server CPU s",
            "validation RMSE per run",
        ],
        [
            [
                p,
                f"{wall[p]:.2f}",
                f"{min(r.wall_s for r in rs):.2f} - {max(r.wall_s for r in rs):.2f}",
                _mib(rss[p]),
                _mib(tree[p] or None),
                _cpu(
                    _median([r.server_cpu_s for r in rs])
                    if all(r.server_cpu_s is not None for r in rs)
                    else None
                ),
                ", ".join(f"{r.rmse:.5f}" if r.rmse is not None else "n/a" for r in rs),
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
            f"{s2} tree RSS (all its processes together) / peer peak RSS",
            (tree[s2] or rss[s2]) / rss["peer"],
            "(shown, no goal)",
        ),
    ]
    lines += _table(
        ["ratio", "value", "goal", "verdict"],
        [
            [
                name,
                f"{value:.2f}",
                goal,
                _verdict(value, lambda r, g=goal: r <= float(g.split()[-1]))
                if goal.startswith("<=")
                else "",
            ]
            for name, value, goal in ratios
        ],
    )
    lines += ["", "## Where the reference paths spend their time (medians, s)", ""]
    for p in ("seed", "peer"):
        names = list(by_path[p][0].phases)
        lines.append(
            f"- {p}: "
            + ", ".join(f"{n} {_median([r.phases[n] for r in by_path[p]]):.2f}" for n in names)
            + f"; whole process {wall[p]:.2f}"
        )
    lines += ["", "## Every run", ""]
    lines += _table(
        [
            "repeat",
            "path",
            "wall s",
            "peak RSS MiB",
            "tree RSS MiB",
            "server CPU s",
            "RMSE",
            "other processes' CPU (cores)",
            "output",
        ],
        [
            [
                str(r.repeat),
                r.path,
                f"{r.wall_s:.2f}",
                _mib(r.peak_rss_mib),
                _mib(r.tree_rss_mib),
                _cpu(r.server_cpu_s),
                f"{r.rmse:.5f}" if r.rmse is not None else "n/a",
                _load(r),
                ", ".join(r.out_files),
            ]
            for r in runs
        ],
    )
    lines += [
        "",
        "RMSEs differ a little by design: the seed splits with train_test_split, the peer "
        "with a seeded random mask, stageless by a hash of each row; stageless-2 builds its "
        "quantile sketch from two shards. Similar values mean the paths did the same work.",
    ]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in the table")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each path")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "stageless-bench-pg",
        help="the server's data directory and the runs' outputs (default: %(default)s)",
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
    if args.rows < 100 or args.repeats < 1:
        parser.error("--rows must be at least 100 and --repeats at least 1")
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
    source = _source_state()
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
        runs: list[Run] = []
        for repeat in range(1, args.repeats + 1):
            for path in PATHS:
                run = run_once(path, repeat, dsn, runs_dir, server_pid)
                runs.append(run)
                rmse = f"{run.rmse:.5f}" if run.rmse is not None else "n/a"
                print(
                    f"repeat {repeat}/{args.repeats} {path:<12} {run.wall_s:7.2f}s  "
                    f"peak RSS {run.peak_rss_mib:7,.0f} MiB  server CPU "
                    f"{_cpu(run.server_cpu_s)}s  rmse {rmse}  other CPU {_load(run)} cores",
                    flush=True,
                )
    finally:
        if server is not None:
            server.stop()
    text = report(runs, args.rows, args.repeats, described, time.perf_counter() - started, source)
    print()
    print(text, end="")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text)
    print(f"\nwritten to {args.results}; run outputs in {runs_dir}")
    print(f"this process peaked at {_maxrss_mib(resource.getrusage(resource.RUSAGE_SELF)):.0f} MiB")


if __name__ == "__main__":
    main()
