"""Every bad input is one `error:` line, exit code 2, no traceback, and nothing written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from stageless.training.split import validation_rows
from tests.conftest import RunCli


@pytest.fixture(scope="module")
def odd_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("odd") / "odd.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE empty (x DOUBLE, y DOUBLE)")
        con.execute(
            "CREATE TABLE no_target AS SELECT i * 1.0 AS x, NULL::DOUBLE AS y, "
            "'name' || i AS label, TIMESTAMP '2024-01-01' AS at FROM range(10) r(i)"
        )
        # Twenty copies of one row whose values hash into validation at fraction 0.5.
        x = next(v for v in range(1000) if _validates(v, 1.0, 0.5))
        con.execute(f"CREATE TABLE repeated AS SELECT {x}.0 AS x, 1.0 AS y FROM range(20)")
    return f"duckdb://{path}"


def _validates(x: float, y: float, fraction: float) -> bool:
    one = np.array([x], dtype=np.float32)
    return bool(validation_rows([one], np.array([y], dtype=np.float32), fraction)[0])


BAD_TRAIN_INPUTS = {
    "missing table": (["--table", "nope", "--target", "y"], "table 'nope' not found"),
    "missing target": (["--table", "no_target", "--target", "price"], "'price' not found"),
    "missing feature": (
        ["--table", "no_target", "--target", "y", "--features", "x,zz"],
        "feature column 'zz' not found",
    ),
    "text feature": (
        ["--table", "no_target", "--target", "y", "--features", "x,label"],
        "features must be numeric",
    ),
    "timestamp feature": (
        ["--table", "no_target", "--target", "y", "--features", "at"],
        "features must be numeric",
    ),
    "text target": (["--table", "no_target", "--target", "label"], "must be numeric"),
    "target all NULL": (["--table", "no_target", "--target", "y"], "no non-NULL values"),
    "empty table": (["--table", "empty", "--target", "y"], "has no rows"),
    "empty query": (
        ["--query", "SELECT * FROM no_target WHERE x > 100", "--target", "y"],
        "has no rows",
    ),
    "query not a select": (["--query", "DROP TABLE empty", "--target", "y"], "SELECT"),
    "two statements": (
        ["--query", "SELECT * FROM empty; DROP TABLE empty", "--target", "y"],
        "exactly one SELECT",
    ),
    "table and query": (
        ["--table", "empty", "--query", "SELECT 1", "--target", "y"],
        "exactly one of --table or --query",
    ),
    "unknown hp": (
        ["--table", "empty", "--target", "y", "--hp", "depth=3"],
        "unknown hyperparameter",
    ),
    "ill-typed hp": (
        ["--table", "empty", "--target", "y", "--hp", "max_depth=deep"],
        "max_depth='deep' is not valid",
    ),
    "malformed hp": (["--table", "empty", "--target", "y", "--hp", "max_depth"], "KEY=VALUE"),
    "fraction too big": (
        ["--table", "empty", "--target", "y", "--validation-fraction", "1.5"],
        "--validation-fraction",
    ),
    "fraction negative": (
        ["--table", "empty", "--target", "y", "--validation-fraction", "-0.1"],
        "--validation-fraction",
    ),
    "fraction not a number": (
        ["--table", "empty", "--target", "y", "--validation-fraction", "lots"],
        "lots",
    ),
    "zero workers": (["--table", "empty", "--target", "y", "--workers", "0"], "--workers"),
}


@pytest.mark.parametrize("case", BAD_TRAIN_INPUTS, ids=list(BAD_TRAIN_INPUTS))
def test_bad_train_input(case: str, odd_db: str, run_cli: RunCli, tmp_path: Path) -> None:
    args, message = BAD_TRAIN_INPUTS[case]
    result = run_cli("train", "--source", odd_db, *args, "--output", "out")
    assert result.returncode == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_split_that_leaves_nothing_to_train_on_is_refused(
    odd_db: str, run_cli: RunCli, tmp_path: Path
) -> None:
    # Known only once the rows are read: progress lines come first, then the one error.
    result = run_cli(
        "train", "--source", odd_db, "--table", "repeated", "--target", "y",
        "--validation-fraction", "0.5", "--output", "out",
    )  # fmt: skip
    assert result.returncode == 2, result.output
    assert result.stderr.splitlines()[-1].startswith("error: no rows left to train on")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("oracle://db", "unknown warehouse URL"),
        ("duckdb:missing.duckdb", "does not exist"),
        ("duckdb://host/x.duckdb", "has a host part"),
    ],
)
def test_bad_source_url(source: str, message: str, run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("train", "--source", source, "--table", "t", "--target", "y", "--output", "o")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert not (tmp_path / "missing.duckdb").exists()  # reading never creates a database


def test_output_that_is_a_file_is_refused(odd_db: str, run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("precious")
    result = run_cli(
        "train", "--source", odd_db, "--table", "no_target", "--target", "x", "--output", "out"
    )
    assert result.returncode == 2 and "not a directory" in result.stderr
    assert (tmp_path / "out").read_text() == "precious"


def test_usage_errors_are_one_line_too(run_cli: RunCli) -> None:
    result = run_cli("train", "--source", "duckdb:x.duckdb")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "--target" in result.stderr
    assert result.stderr.count("\n") == 1


def _worker_pids(parent: int) -> list[int]:
    """Worker processes of PARENT (children whose command line is the worker module)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"stageless.training.worker" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find worker processes")
def test_a_dying_worker_fails_the_whole_run_promptly(tmp_path: Path, housing_db: str) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stageless",
            "train",
            "--source",
            housing_db,
            "--table",
            "california_housing",
            "--target",
            "MedHouseVal",
            "--workers",
            "2",
            "--output",
            str(tmp_path / "out"),
            "--hp",
            "num_round=100000",
            "max_depth=8",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = _worker_pids(proc.pid)
        assert len(workers) == 2, "workers did not start"
        time.sleep(3)  # let them connect and start training
        killed_at = time.monotonic()
        os.kill(workers[1], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - killed_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: worker ") and ("failed" in last or "died" in last), last
    assert took < 60
    assert not (tmp_path / "out" / "model.tar.gz").exists()
    assert not any(p.name.endswith(".partial") for p in tmp_path.rglob("*"))
    assert _worker_pids(proc.pid) == []
