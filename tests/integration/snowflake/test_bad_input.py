"""Bad input with Snowflake: one `error:` line, exit 2, nothing written, nothing echoed.

Services: fakesnow in server mode (the real connector over HTTP) and the moto server for
AWS Secrets Manager. fakesnow accepts any login, so the wrong-password case talks to a
small HTTP server of this file that answers the login exactly as Snowflake does for a
wrong password (code 390100); it is the only stand-in, and the real driver parses it.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import Result, RunCli
from tests.integration.snowflake.conftest import PASSWORD, USERNAME, FakeSnow, store_secret


@pytest.fixture(scope="module")
def small_table(fakesnow: FakeSnow) -> str:
    """A database with PUBLIC.SMALL (A, B): enough to get past every check but the bad one."""
    database = f"ERRORS_{uuid.uuid4().hex[:8].upper()}"
    con = fakesnow.connect()
    try:
        cur = con.cursor()
        cur.execute(f"CREATE DATABASE {database}")
        cur.execute(f"CREATE SCHEMA {database}.PUBLIC")
        cur.execute(f"CREATE TABLE {database}.PUBLIC.SMALL (A FLOAT, B FLOAT)")
        cur.execute(f"INSERT INTO {database}.PUBLIC.SMALL VALUES (1, 2), (3, 4), (5, 6)")
    finally:
        con.close()
    return database


class _WrongPassword(BaseHTTPRequestHandler):
    """Answers every login as Snowflake answers a wrong password."""

    logins = 0

    def do_POST(self) -> None:
        type(self).logins += 1
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps(
            {
                "data": None,
                "code": "390100",
                "message": "Incorrect username or password was specified.",
                "success": False,
                "headers": None,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def rejecting_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WrongPassword)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _assert_user_error(result: Result, expected: str) -> None:
    assert result.returncode == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert PASSWORD not in result.output  # nothing echoed


def _train(run_cli: RunCli, source: str, secret: str, *options: str) -> Result:
    return run_cli("train", "--source", source, "--secret", secret, "--output", "out", *options)


TRAIN_CASES = {
    # name: (database or None for small_table's, schema, options, expected)
    "unknown database": ("NO_SUCH_DB", None, ["--table", "small", "--target", "b"], "NO_SUCH_DB"),
    "unknown schema": (None, "nope", ["--table", "small", "--target", "b"], "schema 'NOPE'"),
    "unknown schema in --table": (
        None,
        None,
        ["--table", "nope.small", "--target", "b"],
        "schema 'NOPE' not found",
    ),
    "unknown table": (None, None, ["--table", "missing", "--target", "b"], "'MISSING' not found"),
    "unknown target column": (
        None,
        None,
        ["--table", "small", "--target", "price"],
        "target column 'price' not found",
    ),
    "unknown feature column": (
        None,
        None,
        ["--table", "small", "--target", "b", "--features", "a,zz"],
        "feature column 'zz' not found",
    ),
    "unknown column in --query": (
        None,
        None,
        ["--query", "SELECT a, nope FROM small", "--target", "a"],
        "NOPE",
    ),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_unknown_names(
    case: str,
    fakesnow: FakeSnow,
    small_table: str,
    secret_ref: str,
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    database, schema, options, expected = TRAIN_CASES[case]
    result = _train(run_cli, fakesnow.url(database or small_table, schema), secret_ref, *options)
    _assert_user_error(result, expected)
    assert not (tmp_path / "out" / "model.tar.gz").exists()


SECRET_CASES = {
    "secret that does not exist": (None, "aws-secretsmanager://no_such_secret", "does not exist"),
    "malformed secret": ("username=x password=" + PASSWORD, None, "not valid JSON"),
    "secret without password": ({"username": USERNAME}, None, "lacks password"),
    "secret without username": ({"password": PASSWORD}, None, "lacks username"),
    "unknown secret scheme": (None, "vault://snowflake_credentials", "unknown secret reference"),
}


@pytest.mark.parametrize("case", list(SECRET_CASES))
def test_bad_secrets(
    case: str,
    fakesnow: FakeSnow,
    small_table: str,
    aws_env: str,
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    value, ref, expected = SECRET_CASES[case]
    if ref is None:
        ref = store_secret(f"bad-{uuid.uuid4().hex[:8]}", value)  # type: ignore[arg-type]
    result = _train(run_cli, fakesnow.url(small_table), ref, "--table", "small", "--target", "b")
    _assert_user_error(result, expected)
    assert not (tmp_path / "out").exists()


def test_ingest_with_a_missing_secret_creates_nothing(
    fakesnow: FakeSnow, aws_env: str, run_cli: RunCli
) -> None:
    database = f"NEVER_{uuid.uuid4().hex[:8].upper()}"
    result = run_cli(
        "ingest", "dataset:california-housing", "--to", fakesnow.url(database),
        "--table", "t", "--secret", "aws-secretsmanager://no_such_secret",
    )  # fmt: skip
    _assert_user_error(result, "does not exist in AWS Secrets Manager")
    assert database not in {row[1] for row in fakesnow.rows("SHOW DATABASES")}


def test_wrong_password(rejecting_port: int, aws_env: str, run_cli: RunCli, tmp_path: Path) -> None:
    ref = store_secret("wrong_password", {"username": USERNAME, "password": PASSWORD})
    url = f"snowflake://myorg-myaccount/DB?host=127.0.0.1&port={rejecting_port}&protocol=http"
    before = _WrongPassword.logins
    for result in (
        _train(run_cli, url, ref, "--table", "t", "--target", "y"),
        run_cli(
            "ingest", "dataset:california-housing", "--to", url, "--table", "t", "--secret", ref
        ),
    ):
        _assert_user_error(result, "rejected the login (Incorrect username or password")
        assert "myorg-myaccount" in result.stderr
    assert _WrongPassword.logins == before + 2  # one attempt each: a rejection is not retried
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("snowflake:///DB/PUBLIC", "names no account"),
        ("snowflake://myorg-myaccount", "names no database"),
        ("snowflake://u:" + PASSWORD + "@myorg-myaccount/DB", "must not carry credentials"),
    ],
)
def test_bad_urls(
    url: str, expected: str, secret_ref: str, run_cli: RunCli, tmp_path: Path
) -> None:
    result = _train(run_cli, url, secret_ref, "--table", "t", "--target", "y")
    _assert_user_error(result, expected)
    assert not (tmp_path / "out").exists()
