"""How fast does ``stageless serve`` answer, and how fast does ``stageless predict`` score?

One command, ``.venv/bin/python bench/bench_serve.py [--seconds S] [--rows N] [--workdir DIR]``,
measures two things on this machine and writes a report to ``bench/results/serve.md``:

Serving
    Single-row requests from 8 concurrent keep-alive clients (``--clients``) for ``--seconds``
    seconds after ``--warmup`` seconds, against each server in turn, all serving the same
    model (the bundled California housing data, stageless's default hyperparameters):

    - ``stageless csv``: ``stageless serve MODEL`` (one process), ``text/csv`` rows;
    - ``stageless json``: the same server, ``{"instances": [[...]]}`` rows;
    - ``stageless csv, 2 workers``: ``stageless serve MODEL --workers 2``;
    - ``mlserver``: MLServer with its XGBoost runtime, default settings, V2 inference
      protocol JSON (MLServer has no CSV endpoint);
    - ``mlserver, parallel_workers=0``: MLServer predicting in its HTTP process (no
      inference worker pool, no inter-process hop), its fastest setting for small requests.

    Requests per second, latency percentiles (p50/p90/p99/max), errors, and the CPU seconds
    the server (with its child processes) and the load generator used per 1,000 requests.
    The load generator is a separate process: asyncio streams on 127.0.0.1 only, each client
    sending a prebuilt request and reading the whole response before the next, cycling
    through 1,000 different rows; it stops by itself after warm-up + ``--seconds`` (and at
    most ``MAX_REQUESTS`` requests). Each server's answer for the first row is compared with
    stageless's.

    MLServer has many dependencies of its own, so it lives in a separate virtualenv
    (``--mlserver-venv``, default ``WORKDIR/venv-mlserver``), which this script creates on
    first use with ``python -m venv`` and ``pip install mlserver==1.7.1
    mlserver-xgboost==1.7.1 'uvloop<0.22'`` (MLServer 1.7.1 fails to start its inference
    workers with uvloop 0.22 or later). ``--no-mlserver`` skips it.

Batch scoring
    ``stageless predict MODEL --source duckdb:FILE --table housing --into scored`` on a
    ``--rows``-row table (default 1,000,000; the same generated table as
    ``bench_train.py``, reused from the work directory), against XGBoost alone predicting
    the same rows already in memory (float32 ``.npy`` loaded first, then only
    ``inplace_predict`` timed, all cores). Rows per second, wall seconds and peak RSS of
    each child process; and a check that both give the same predictions.

Nothing is asserted: it is a report. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gzip
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_train  # the shared data generator
import harness  # measuring children, describing the machine, the report's pieces

REPO = harness.REPO
RESULTS = REPO / "bench" / "results" / "serve.md"
DATASET = bench_train.DATASET
FEATURES = bench_train.FEATURES
MODEL_NAME = "housing"
MLSERVER_PACKAGES = ["mlserver==1.7.1", "mlserver-xgboost==1.7.1", "uvloop<0.22"]
#: The load generator never sends more than this many requests, whatever the duration.
MAX_REQUESTS = 5_000_000
DISTINCT_ROWS = 1_000
HERE = str(Path(__file__).resolve())


# -- helpers ------------------------------------------------------------------------------


def run_quietly(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{what} failed ({result.returncode}):\n{result.stderr[-3000:]}")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} was not ready within {timeout:.0f}s")


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ROOT and its live descendants, from /proc."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        stats[pid] = fields
        children.setdefault(int(fields[1]), []).append(pid)
    ticks = os.sysconf("SC_CLK_TCK")
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        if pid in stats:
            # fields after the command: state ppid ... utime(12) stime(13) cutime cstime
            total += (int(stats[pid][11]) + int(stats[pid][12])) / ticks
        stack.extend(children.get(pid, []))
    return total


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM the server we started (its whole session if it lingers)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the session we created for it
            proc.wait()


# -- the model ----------------------------------------------------------------------------


def prepare_model(workdir: Path) -> Path:
    """model.tar.gz trained on the bundled housing table with stageless's defaults."""
    home = workdir / "serve-model"
    model = home / "model.tar.gz"
    if model.exists():
        print(f"reusing the model {model}", flush=True)
        return model
    home.mkdir(parents=True, exist_ok=True)
    db = home / "housing.duckdb"
    run_quietly(
        [
            *harness.stageless_command(),
            "ingest",
            "dataset:california-housing",
            "--to",
            f"duckdb:{db}",
            "--table",
            "california_housing",
        ],
        "ingest",
    )
    run_quietly(
        [
            *harness.stageless_command(),
            "train",
            "--source",
            f"duckdb:{db}",
            "--table",
            "california_housing",
            "--target",
            "MedHouseVal",
            "--output",
            str(home),
            "--quiet",
        ],
        "train",
    )
    print(f"trained the model {model}", flush=True)
    return model


def booster_file(model: Path, into: Path) -> Path:
    """The booster from model.tar.gz as model.json or model.ubj (what MLServer loads)."""
    import tarfile

    with tarfile.open(model, "r:gz") as tar:
        member = tar.getmember("xgboost-model")
        if not member.isfile():
            raise SystemExit("xgboost-model in the archive is not a regular file")
        handle = tar.extractfile(member)
        assert handle is not None
        payload = handle.read()
    try:
        json.loads(payload)
        name = "model.json"
    except ValueError:
        name = "model.ubj"
    into.mkdir(parents=True, exist_ok=True)
    (into / name).write_bytes(payload)
    return into / name


# -- MLServer -----------------------------------------------------------------------------


def ensure_mlserver(venv: Path) -> tuple[Path | None, str]:
    """The mlserver executable in its own virtualenv (created on first use), or why not."""
    executable = venv / "bin" / "mlserver"
    if executable.exists():
        return executable, _mlserver_version(venv)
    print(f"creating {venv} for MLServer (one time) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", *MLSERVER_PACKAGES],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(venv, ignore_errors=True)
        return None, f"could not be installed ({exc})"
    return executable, _mlserver_version(venv)


def _mlserver_version(venv: Path) -> str:
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from importlib.metadata import version as v; "
            "print(' '.join(f'{p} {v(p)}' for p in "
            "('mlserver', 'mlserver-xgboost', 'xgboost', 'uvicorn', 'uvloop', 'fastapi')))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown versions"


def mlserver_dir(model: Path, workdir: Path, parallel_workers: int | None) -> Path:
    suffix = "default" if parallel_workers is None else f"pw{parallel_workers}"
    home = workdir / f"mlserver-{suffix}"
    shutil.rmtree(home, ignore_errors=True)
    uri = booster_file(model, home / MODEL_NAME)
    (home / MODEL_NAME / "model-settings.json").write_text(
        json.dumps(
            {
                "name": MODEL_NAME,
                "implementation": "mlserver_xgboost.XGBoostModel",
                "parameters": {"uri": f"./{uri.name}"},
            }
        )
    )
    return home


# -- the load generator (a child process) ------------------------------------------------


def sample_rows() -> list[list[str]]:
    with gzip.open(DATASET, "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = []
        for row in reader:
            rows.append([row[name] for name in FEATURES])
            if len(rows) == DISTINCT_ROWS:
                break
    return rows


def build_requests(kind: str) -> list[bytes]:
    requests = []
    for row in sample_rows():
        values = [float(v) for v in row]
        if kind == "csv":
            path, ctype, body = "/invocations", "text/csv", ",".join(row).encode()
        elif kind == "json":
            path, ctype = "/invocations", "application/json"
            body = json.dumps({"instances": [values]}).encode()
        else:  # the V2 inference protocol
            path, ctype = f"/v2/models/{MODEL_NAME}/infer", "application/json"
            body = json.dumps(
                {
                    "inputs": [
                        {"name": "input-0", "shape": [1, 8], "datatype": "FP32", "data": values}
                    ]
                }
            ).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


def first_prediction(kind: str, body: bytes) -> float:
    answer = json.loads(body)
    if kind == "v2":
        return float(answer["outputs"][0]["data"][0])
    return float(answer["predictions"][0])


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"content-length:")
    if at < 0:
        raise RuntimeError("the response has no Content-Length")
    length = int(lower[at + 15 : lower.find(b"\r\n", at)])
    return status, await reader.readexactly(length)


async def _load(
    port: int, kind: str, clients: int, warmup: float, seconds: float
) -> dict[str, Any]:
    requests = build_requests(kind)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    status, body = await _exchange(reader, writer, requests[0])
    writer.close()
    if status != 200:
        raise RuntimeError(f"the first request got {status}: {body[:200]!r}")
    first = first_prediction(kind, body)

    latencies: list[float] = []
    errors = [0]
    sent = [0]
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    async def client(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k * 97
        try:
            while sent[0] < MAX_REQUESTS:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    break
                sent[0] += 1
                status, _ = await _exchange(reader, writer, requests[i % len(requests)])
                i += 1
                if t0 >= measure_from:
                    latencies.append(time.perf_counter() - t0)
                    if status != 200:
                        errors[0] += 1
        finally:
            writer.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - measure_from
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "requests": len(latencies),
        "requests_all": sent[0],
        "errors": errors[0],
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000,
        "client_cpu_s": usage.ru_utime + usage.ru_stime,
        "first_prediction": first,
    }


# -- the serving runs ---------------------------------------------------------------------


@dataclass
class ServeRun:
    name: str
    command: str
    result: dict[str, Any] = field(default_factory=dict)
    server_cpu_s: float = 0.0
    problem: str | None = None


def measure_server(
    name: str,
    command: list[str],
    ready_path: str,
    port: int,
    kind: str,
    args: argparse.Namespace,
    cwd: Path,
    log: Path,
) -> ServeRun:
    run = ServeRun(name, " ".join(command))
    print(f"{name}: starting ...", flush=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}{ready_path}", proc, timeout=120)
        cpu_before = tree_cpu_seconds(proc.pid)
        load = subprocess.run(
            [
                sys.executable,
                HERE,
                "--child",
                "load",
                "--port",
                str(port),
                "--kind",
                kind,
                "--clients",
                str(args.clients),
                "--warmup",
                str(args.warmup),
                "--seconds",
                str(args.seconds),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        run.server_cpu_s = tree_cpu_seconds(proc.pid) - cpu_before
        if load.returncode != 0:
            raise RuntimeError(load.stderr.strip().splitlines()[-1] if load.stderr else "failed")
        run.result = json.loads(load.stdout.strip().splitlines()[-1])
        r = run.result
        print(
            f"{name}: {r['rps']:,.0f} requests/s  p50 {r['p50_ms']:.2f} ms  "
            f"p99 {r['p99_ms']:.2f} ms  errors {r['errors']}",
            flush=True,
        )
    except (RuntimeError, OSError, ValueError) as exc:
        run.problem = str(exc)
        print(f"{name}: FAILED: {exc} (log: {log})", flush=True)
    finally:
        stop(proc)
    return run


def serving_runs(
    model: Path, workdir: Path, args: argparse.Namespace
) -> tuple[list[ServeRun], str]:
    logs = workdir / "serve-logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    runs = []
    for name, kind, extra in (
        ("stageless csv", "csv", []),
        ("stageless json", "json", []),
        ("stageless csv, 2 workers", "csv", ["--workers", "2"]),
    ):
        port = harness.free_port()
        command = [*harness.stageless_command(), "serve", str(model), "--port", str(port), *extra]
        runs.append(
            measure_server(name, command, "/ping", port, kind, args, workdir, logs / f"{name}.log")
        )

    mlserver_info = "skipped (--no-mlserver)"
    if not args.no_mlserver:
        executable, mlserver_info = ensure_mlserver(args.mlserver_venv.absolute())
        if executable is None:
            runs.append(ServeRun("mlserver", "", problem=mlserver_info))
        for name, workers in (("mlserver", None), ("mlserver, parallel_workers=0", 0)):
            if executable is None:
                break
            home = mlserver_dir(model, workdir, workers)
            port = harness.free_port()
            settings: dict[str, Any] = {
                "http_port": port,
                "grpc_port": harness.free_port(),
                "metrics_port": harness.free_port(),
            }
            if workers is not None:
                settings["parallel_workers"] = workers
            (home / "settings.json").write_text(json.dumps(settings))
            runs.append(
                measure_server(
                    name,
                    [str(executable), "start", str(home)],
                    f"/v2/models/{MODEL_NAME}/ready",
                    port,
                    "v2",
                    args,
                    home,
                    logs / f"{name}.log",
                )
            )
    return runs, mlserver_info


# -- batch scoring ------------------------------------------------------------------------


@dataclass
class BatchRun:
    name: str
    wall_s: float
    peak_rss_mib: float
    internal_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def run_child(name: str, command: list[str]) -> BatchRun:
    """Run COMMAND; its wall time and peak RSS (ru_maxrss from wait4) and its JSON line."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}): {stderr[-2000:]}")
    run = BatchRun(name, wall, harness.maxrss_mib(usage))
    text = stdout.strip().splitlines()
    if text and text[-1].startswith("{"):
        run.detail = json.loads(text[-1])
        run.internal_s = run.detail.get("internal_s")
    return run


def child_inmemory(data: Path, model: Path, out: Path) -> dict[str, Any]:
    """XGBoost alone: rows already in memory as float32, only inplace_predict timed."""
    sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type] - as stageless does
    import numpy as np
    import xgboost as xgb

    from stageless.artifacts import open_model

    t0 = time.perf_counter()
    features = np.load(data / "features.npy")
    model_bytes, _ = open_model(str(model))
    booster = xgb.Booster()
    booster.load_model(bytearray(model_bytes))
    booster.set_param({"nthread": harness.cores()})
    loaded = time.perf_counter()
    predictions = booster.inplace_predict(features)
    done = time.perf_counter()
    np.save(out, predictions)
    return {"internal_s": done - loaded, "load_s": loaded - t0, "rows": len(predictions)}


def child_compare(db: Path, reference: Path) -> dict[str, Any]:
    import duckdb
    import numpy as np

    expected = np.load(reference)
    with duckdb.connect(str(db), read_only=True) as con:
        got = con.sql("SELECT prediction FROM scored").fetchnumpy()["prediction"]
    same_length = len(got) == len(expected)
    return {
        "rows": len(got),
        "same_rows": same_length,
        "identical": bool(same_length and np.array_equal(got, expected)),
        "max_abs_diff": float(np.max(np.abs(got - expected))) if same_length else None,
    }


def batch_runs(model: Path, workdir: Path, rows: int) -> tuple[list[BatchRun], dict[str, Any]]:
    data = bench_train.prepare_data(workdir, rows)
    scratch = workdir / "serve-batch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    db = scratch / "scoring.duckdb"
    shutil.copy(data / bench_train.DB_FILE, db)
    print(f"batch scoring {rows:,} rows ...", flush=True)
    predict = run_child(
        "stageless predict",
        [
            *harness.stageless_command(),
            "predict",
            str(model),
            "--source",
            f"duckdb:{db}",
            "--table",
            bench_train.TABLE,
            "--into",
            "scored",
            "--quiet",
        ],
    )
    reference = scratch / "reference.npy"
    inmemory = run_child(
        "XGBoost in memory",
        [
            sys.executable,
            HERE,
            "--child",
            "inmemory",
            "--data",
            str(data),
            "--model",
            str(model),
            "--out",
            str(reference),
        ],
    )
    compare = run_child(
        "compare",
        [sys.executable, HERE, "--child", "compare", "--db", str(db), "--out", str(reference)],
    ).detail
    for run in (predict, inmemory):
        print(f"{run.name}: {run.wall_s:.2f}s, peak RSS {run.peak_rss_mib:,.0f} MiB", flush=True)
    return [predict, inmemory], compare


# -- the report ---------------------------------------------------------------------------


def report(
    serve: list[ServeRun],
    mlserver_info: str,
    batch: list[BatchRun],
    compare: dict[str, Any],
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    lines = [
        *harness.report_header(
            "stageless serve / predict benchmark",
            bench_train.PACKAGES,
            harness.source_state(),
            f"- MLServer side: {mlserver_info}",
        ),
        f"- whole benchmark {elapsed:.0f}s",
    ]
    if serve:
        lines += [
            "",
            f"## Serving: single-row requests, {args.clients} concurrent keep-alive clients, "
            f"{args.seconds:g}s measured after {args.warmup:g}s warm-up",
            "",
        ]
        lines += harness.table(
            [
                "server",
                "requests/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "errors",
                "server CPU ms / 1k req",
                "client CPU ms / 1k req",
                "first prediction",
            ],
            [_serve_row(run) for run in serve],
        )
        base = next((r for r in serve if r.name == "stageless csv" and r.result), None)
        peers = [r for r in serve if r.name.startswith("mlserver") and r.result]
        if base and peers:
            best = max(peers, key=lambda r: r.result["rps"])
            rps = base.result["rps"] / best.result["rps"]
            p99 = base.result["p99_ms"] / best.result["p99_ms"]
            verdict = "meets" if rps > 1 and p99 < 1 else "MISSES"
            lines += [
                "",
                f"Goal: more requests/s than MLServer at a lower p99. stageless csv (one "
                f"process) against the faster MLServer run ({best.name}): {rps:.2f}x the "
                f"requests/s, {p99:.2f}x the p99 latency: **{verdict}**.",
            ]
        lines += [
            "",
            "CPU per 1,000 requests counts the whole measured run including warm-up; the "
            "load generator shares the same cores, so a server that needs less CPU per "
            "request also leaves more for its clients. 'first prediction' is each server's "
            "answer for the first row: they should agree.",
        ]
    if batch:
        predict, inmemory = batch
        rows = compare.get("rows", 0)
        lines += [
            "",
            f"## Batch scoring: {args.rows:,} rows",
            "",
        ]
        lines += harness.table(
            ["path", "wall s (whole process)", "rows/s (whole process)", "peak RSS MiB", "notes"],
            [
                [
                    "stageless predict (DuckDB table -> DuckDB table)",
                    f"{predict.wall_s:.2f}",
                    f"{args.rows / predict.wall_s:,.0f}",
                    f"{predict.peak_rss_mib:,.0f}",
                    "reads, scores and writes every column plus prediction",
                ],
                [
                    "XGBoost in memory (float32 .npy -> inplace_predict)",
                    f"{inmemory.wall_s:.2f}",
                    f"{args.rows / inmemory.wall_s:,.0f}",
                    f"{inmemory.peak_rss_mib:,.0f}",
                    f"inplace_predict alone {inmemory.internal_s or 0:.2f}s "
                    f"({args.rows / (inmemory.internal_s or 1):,.0f} rows/s); loading "
                    f"{inmemory.detail.get('load_s', 0):.2f}s",
                ],
            ],
        )
        lines += [
            "",
            f"Same predictions: {rows:,} rows compared, identical: "
            f"{compare.get('identical')}, max |difference| {compare.get('max_abs_diff')}.",
            f"stageless predict / XGBoost's inplace_predict alone: "
            f"{predict.wall_s / (inmemory.internal_s or 1):.1f}x the time; whole processes: "
            f"{predict.wall_s / inmemory.wall_s:.1f}x.",
        ]
    return "\n".join(lines) + "\n"


def _serve_row(run: ServeRun) -> list[str]:
    if not run.result:
        return [run.name, "failed", "", "", "", "", "", "", "", run.problem or ""]
    r = run.result
    per_k = 1000 / max(r["requests_all"], 1)
    return [
        run.name,
        f"{r['rps']:,.0f}",
        f"{r['p50_ms']:.2f}",
        f"{r['p90_ms']:.2f}",
        f"{r['p99_ms']:.2f}",
        f"{r['max_ms']:.1f}",
        str(r["errors"]),
        f"{run.server_cpu_s * per_k * 1000:,.0f}",
        f"{r['client_cpu_s'] * per_k * 1000:,.0f}",
        f"{r['first_prediction']:.6f}",
    ]


# -- main ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = harness.parser(__doc__)
    parser.add_argument("--seconds", type=float, default=20, help="measured load per server")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured load first")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for batch scoring")
    harness.add_workdir(parser, "stageless-bench", "model, data, MLServer virtualenv and logs")
    parser.add_argument("--mlserver-venv", type=Path, help="default: WORKDIR/venv-mlserver")
    parser.add_argument("--no-mlserver", action="store_true", help="skip MLServer")
    parser.add_argument("--skip-serve", action="store_true", help="batch scoring only")
    parser.add_argument("--skip-batch", action="store_true", help="serving only")
    parser.add_argument("--child", choices=["load", "inmemory", "compare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=["csv", "json", "v2"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seconds <= 0 or args.warmup < 0 or not 1 <= args.clients <= 256 or args.rows < 100:
        parser.error("need --seconds > 0, --warmup >= 0, 1 <= --clients <= 256, --rows >= 100")
    args.workdir = args.workdir.absolute()
    if args.mlserver_venv is None:
        args.mlserver_venv = args.workdir / "venv-mlserver"
    return args


def main() -> None:
    args = parse_args()
    if args.child == "load":
        result = asyncio.run(_load(args.port, args.kind, args.clients, args.warmup, args.seconds))
        print(json.dumps(result), flush=True)
        return
    if args.child == "inmemory":
        print(json.dumps(child_inmemory(args.data, args.model, args.out)), flush=True)
        return
    if args.child == "compare":
        print(json.dumps(child_compare(args.db, args.out)), flush=True)
        return

    started = time.perf_counter()
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = prepare_model(args.workdir)
    serve, mlserver_info = (
        ([], "skipped") if args.skip_serve else serving_runs(model, args.workdir, args)
    )
    batch, compare = ([], {}) if args.skip_batch else batch_runs(model, args.workdir, args.rows)
    text = report(serve, mlserver_info, batch, compare, args, time.perf_counter() - started)
    harness.write_report(text, RESULTS)
    print(f"\nwritten to {RESULTS.relative_to(REPO)}; logs in {args.workdir / 'serve-logs'}")


if __name__ == "__main__":
    main()
