"""Bad input against PostgreSQL: one `error:` line, exit 2, fast, and no password anywhere.

Also what Ctrl-C and a killed worker leave on the server: nothing (checked in
pg_stat_activity).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.integration.conftest import free_port
from tests.integration.postgres.conftest import HOUSING_ROWS, PostgresServer


def train_args(source: str, *args: str) -> list[str]:
    return ["train", "--source", source, *args, "--output", "out", "--hp", "num_round=2"]


def assert_user_error(result, message: str, password: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert password not in result.output


BAD_NAMES = {
    "missing schema": (
        ["--table", "nope.california_housing", "--target", "MedHouseVal"],
        "schema 'nope' not found",
    ),
    "missing table": (["--table", "nope", "--target", "MedHouseVal"], "table 'nope' not found"),
    "missing target": (["--table", "california_housing", "--target", "price"], "'price' not found"),
    "missing feature": (
        ["--table", "california_housing", "--target", "MedHouseVal", "--features", "MedInc,zz"],
        "feature column 'zz' not found",
    ),
    "injection 1": (
        ["--table", "california_housing; DROP TABLE california_housing", "--target", "y"],
        "not found",
    ),
    "injection 2": (
        [
            "--table",
            'california_housing" WHERE 1=1; DROP TABLE "california_housing',
            "--target",
            "y",
        ],
        "not found",
    ),
    "text feature": (
        ["--table", "labelled", "--target", "y", "--features", "x,label"],
        "features must be numeric",
    ),
    "date feature": (
        ["--table", "labelled", "--target", "y", "--features", "day"],
        "features must be numeric",
    ),
    "text target": (["--table", "labelled", "--target", "label"], "must be numeric"),
}


@pytest.fixture(scope="module")
def labelled(pg_housing: PostgresServer) -> PostgresServer:
    pg_housing.sql(
        "CREATE TABLE labelled AS SELECT i::float8 AS x, (i * 2)::float8 AS y, "
        "'n' || i AS label, DATE '2024-01-01' + i AS day FROM generate_series(1, 50) AS s(i)"
    )
    return pg_housing


@pytest.mark.parametrize("case", list(BAD_NAMES))
def test_bad_names_and_types(
    labelled: PostgresServer, run_cli: RunCli, case: str, tmp_path: Path
) -> None:
    args, message = BAD_NAMES[case]
    result = run_cli(*train_args(labelled.url(), *args))
    assert_user_error(result, message, labelled.password)
    assert not (tmp_path / "out").exists()
    assert labelled.sql("SELECT count(*) FROM california_housing") == [(HOUSING_ROWS,)]


@pytest.mark.parametrize("how", ["url", "secret"])
def test_wrong_password(pg_housing: PostgresServer, run_cli: RunCli, how: str) -> None:
    wrong = "Wr0ng-" + pg_housing.password[::-1]
    if how == "url":
        result = run_cli(
            *train_args(pg_housing.url(password=wrong), "--table", "t", "--target", "y")
        )
    else:
        result = run_cli(
            *train_args(pg_housing.url(with_password=False), "--table", "t", "--target", "y"),
            "--secret",
            "env://BADPW",
            env={"BADPW_USERNAME": pg_housing.user, "BADPW_PASSWORD": wrong},
        )
    assert_user_error(result, "password authentication failed", pg_housing.password)
    assert wrong not in result.output


@pytest.mark.parametrize("where", ["host", "port"])
def test_unknown_host_or_port_fails_within_seconds(
    pg_server: PostgresServer, run_cli: RunCli, where: str
) -> None:
    if where == "host":
        url = f"postgresql://u:pw@no-such-host.invalid:{pg_server.port}/db"
        message = "no-such-host.invalid"
    else:
        url = f"postgresql://u:pw@127.0.0.1:{free_port()}/db"
        message = "Connection refused"
    started = time.monotonic()
    result = run_cli(*train_args(url, "--table", "t", "--target", "y"), timeout=60)
    assert time.monotonic() - started < 15
    assert_user_error(result, message, "pw@")
    assert "cannot connect to postgresql://u:***@" in result.stderr


def test_a_masked_password_is_explained(pg_server: PostgresServer, run_cli: RunCli) -> None:
    url = pg_server.url(password="***")
    result = run_cli(*train_args(url, "--table", "t", "--target", "y"))
    assert_user_error(result, "is masked", pg_server.password)


def stageless_backends(server: PostgresServer, application: str) -> list[tuple]:
    return server.sql(
        "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = %s",
        [application],
    )


def wait_for(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


SLOW_QUERY = "SELECT h.* FROM california_housing h, pg_sleep(60)"

READER = """
import os
from stageless.warehouses import open_warehouse
with open_warehouse(os.environ["PG_URL"], read_only=True) as wh:
    wh.arrow_batches(os.environ["PG_QUERY"]).read_all()
"""


def test_a_killed_reader_leaves_no_query_behind(pg_housing: PostgresServer) -> None:
    # What happens to a worker that fails or is killed by the launcher: the process dies
    # mid-query, and the server must stop the query, not run it to the end.
    app = "stageless-killed"
    env = {
        **os.environ,
        "PG_URL": pg_housing.url() + f"?application_name={app}",
        "PG_QUERY": SLOW_QUERY,
    }
    proc = subprocess.Popen([sys.executable, "-c", READER], env=env)
    try:
        assert wait_for(
            lambda: any(
                r[1] == "active" and "pg_sleep" in r[2].lower()
                for r in stageless_backends(pg_housing, app)
            )
        ), "the query never started"
    finally:
        proc.kill()
        proc.wait()
    # client_connection_check_interval (1 s) makes the server notice the dead client.
    assert wait_for(lambda: not stageless_backends(pg_housing, app), timeout=10)


def test_ctrl_c_cancels_the_running_query(pg_housing: PostgresServer, tmp_path: Path) -> None:
    app = "stageless-interrupted"
    source = pg_housing.url() + f"?application_name={app}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stageless",
            *train_args(source, "--query", SLOW_QUERY, "--target", "MedHouseVal"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(
            lambda: any(
                r[1] == "active" and "pg_sleep" in r[2].lower()
                for r in stageless_backends(pg_housing, app)
            )
        ), "the query never started"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert time.monotonic() - started < 10
    assert proc.returncode == 130
    assert stderr.strip() == "error: interrupted"
    assert wait_for(lambda: not stageless_backends(pg_housing, app), timeout=5)
    assert not (tmp_path / "out").exists()
