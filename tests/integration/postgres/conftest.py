"""A real PostgreSQL server for the tests: initdb + pg_ctl on a free port in a temp dir.

Every connection is TCP with a password (scram-sha-256), so the credential paths (URL,
``--secret``) are exercised for real. As root (containers, CI) the server runs as the
``postgres`` user, because PostgreSQL refuses to run as root. Without server binaries the
tests skip locally and fail in CI (``service_unavailable``).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import stageless
from tests.integration.conftest import free_port, service_unavailable

try:  # the tests' own client, independent of stageless's driver
    import psycopg
except ModuleNotFoundError:  # pragma: no cover - it is in the test extra
    psycopg = None

DATABASE = "stageless_test"
SUPERUSER = "stageless"
HOUSING_ROWS = 20640


def _server_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, or Debian's versioned one."""
    on_path = [shutil.which("initdb"), shutil.which("pg_ctl")]
    if all(on_path):
        return Path(on_path[0]).resolve().parent  # type: ignore[arg-type]
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(found[-1]).parent if found else None


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    return None


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str

    def url(
        self,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        with_password: bool = True,
        scheme: str = "postgresql",
    ) -> str:
        """A URL to the test database; with the password in it unless told otherwise."""
        who = quote(user or self.user, safe="")
        if with_password:
            who += ":" + quote(password if password is not None else self.password, safe="")
        return f"{scheme}://{who}@{self.host}:{self.port}/{database or self.database}"

    def connect(self, database: str | None = None) -> Any:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            autocommit=True,
        )

    def sql(self, statement: str, params: Sequence[object] = ()) -> list[tuple]:
        """Run one statement with psycopg (independent of stageless's driver)."""
        with self.connect() as con, con.cursor() as cur:
            cur.execute(statement, params or None)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def secret_env(self, prefix: str = "PGTEST") -> dict[str, str]:
        """Environment variables for ``--secret env://PREFIX``."""
        return {f"{prefix}_USERNAME": self.user, f"{prefix}_PASSWORD": self.password}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    if psycopg is None:
        service_unavailable("psycopg (pip install 'stageless[test]')")
    bindir = _server_binaries()
    if bindir is None:
        service_unavailable("PostgreSQL server binaries (initdb, pg_ctl)")
    assert bindir is not None
    owner = _run_as()
    home = Path(tempfile.mkdtemp(prefix="stageless-pg-"))
    data, log, pwfile = home / "data", home / "server.log", home / "pw"
    password = "Pw-" + secrets.token_hex(10)  # unique: tests search outputs for it
    pwfile.write_text(password + "\n")
    if owner is not None:
        for path in (home, pwfile):
            os.chown(path, *owner)
    user = {"user": owner[0], "group": owner[1]} if owner else {}
    port = free_port()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), capture_output=True, text=True, check=False, cwd=home, **user
        )

    init = run(
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-U",
        SUPERUSER,
        f"--pwfile={pwfile}",
        "--auth-host=scram-sha-256",
        "--auth-local=scram-sha-256",
        "-E",
        "UTF8",
        "--no-sync",
    )
    if init.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr.strip()[-2000:]}")
    options = " ".join(
        [
            f"-p {port}",
            f"-k {home}",
            "-c listen_addresses=127.0.0.1",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            "-c max_connections=50",
        ]
    )
    start = run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(log),
        "-w",
        "-t",
        "60",
        "-o",
        options,
        "start",
    )
    if start.returncode != 0:
        tail = log.read_text()[-2000:] if log.exists() else start.stderr
        shutil.rmtree(home, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {tail}")
    server = PostgresServer("127.0.0.1", port, SUPERUSER, password, DATABASE)
    try:
        with server.connect(database="postgres") as con:
            con.execute(f"CREATE DATABASE {DATABASE}")
        yield server
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_housing(pg_server: PostgresServer) -> PostgresServer:
    """The bundled California housing data as public.california_housing (read-only)."""
    stageless.ingest("dataset:california-housing", to=pg_server.url(), table="california_housing")
    return pg_server
