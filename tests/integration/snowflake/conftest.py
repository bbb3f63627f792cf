"""The fakesnow Snowflake emulator, started by the tests themselves, and helpers around it.

Mode: fakesnow runs in **server mode** (`fakesnow -s -p PORT`, its own process), so the real
snowflake-connector-python talks HTTP to it exactly as it talks to Snowflake: login, query
requests, Arrow results, and PUT uploads. Training workers are separate processes and reach
it the same way. Patch mode (fakesnow replacing `snowflake.connector.connect` in-process)
is not used: it would bypass the driver's HTTP, Arrow and PUT code, and it lacks the same
features server mode lacks (time travel, CLONE, SWAP; see the README's Snowflake section).

Its storage is one in-memory database shared by all sessions, so each test uses its own
database name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import free_port, service_unavailable

#: The password every test stores in its secret; tests search all output for it.
PASSWORD = "Sn0w-Pa55-7f3c91e2"
USERNAME = "stageless_tester"


@dataclass(frozen=True)
class FakeSnow:
    port: int
    home: Path  # the server's TMPDIR: its internal stages' files live under it
    log: Path

    def url(self, database: str, schema: str | None = None, **options: str) -> str:
        path = f"{database}/{schema}" if schema else database
        query = "&".join(
            f"{k}={v}"
            for k, v in {
                "warehouse": "COMPUTE_WH",
                "role": "TRAINER",
                "host": "127.0.0.1",
                "port": str(self.port),
                "protocol": "http",
                **options,
            }.items()
        )
        return f"snowflake://fakesnow/{path}?{query}"

    def connect(self) -> Any:
        """A plain driver connection, to check results independently of stageless."""
        import snowflake.connector

        return snowflake.connector.connect(
            user="checker",
            password="checker",  # fakesnow accepts any login
            account="fakesnow",
            host="127.0.0.1",
            port=self.port,
            protocol="http",
            network_timeout=10,
            session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        )

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        con = self.connect()
        try:
            cur = con.cursor()
            cur.execute(sql)
            return list(cur.fetchall())  # small check queries only
        finally:
            con.close()

    def staged_files(self, database: str) -> list[Path]:
        """Files in DATABASE's internal stages (fakesnow keeps them under its TMPDIR)."""
        return [p for p in self.home.glob(f"fakesnow_bucket_*/{database}/**/*") if p.is_file()]


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fakesnow exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"fakesnow did not listen on port {port} within {timeout}s")


@pytest.fixture(scope="session")
def fakesnow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSnow]:
    """`fakesnow -s` on a free port, for the whole session."""
    exe = Path(sys.executable).with_name("fakesnow")
    if not exe.exists():
        service_unavailable("fakesnow (pip install 'fakesnow[server]')")
    try:
        import snowflake.connector  # noqa: F401
    except ModuleNotFoundError:
        service_unavailable("snowflake-connector-python (pip install 'stageless[snowflake]')")
    home = tmp_path_factory.mktemp("fakesnow")
    log = home / "fakesnow.log"
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(exe), "-s", "-p", str(port), "--host", "127.0.0.1"],
            stdout=out,
            stderr=out,
            env={**os.environ, "TMPDIR": str(home)},
        )
    try:
        _wait_for_port(port, proc)
        yield FakeSnow(port, home, log)
    finally:
        proc.send_signal(signal.SIGINT)  # fakesnow's CLI stops cleanly on SIGINT
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def database() -> str:
    """A database name of this test's own (fakesnow shares one store across sessions)."""
    return f"TEST_{uuid.uuid4().hex[:10].upper()}"


def store_secret(name: str, value: dict[str, object] | str) -> str:
    """Put a secret into the moto server (create, or overwrite); returns its reference."""
    import boto3

    client = boto3.client("secretsmanager")
    text = value if isinstance(value, str) else json.dumps(value)
    try:
        client.create_secret(Name=name, SecretString=text)
    except client.exceptions.ResourceExistsException:
        client.put_secret_value(SecretId=name, SecretString=text)
    return f"aws-secretsmanager://{name}"


@pytest.fixture
def secret_ref(aws_env: str) -> Iterator[str]:
    """`aws-secretsmanager://snowflake_credentials` in moto, as the seed keeps it.

    Deleted afterwards: the moto server lives for the whole session, and other tests
    create a secret of the same name.
    """
    import boto3

    yield store_secret("snowflake_credentials", {"username": USERNAME, "password": PASSWORD})
    boto3.client("secretsmanager").delete_secret(
        SecretId="snowflake_credentials", ForceDeleteWithoutRecovery=True
    )
