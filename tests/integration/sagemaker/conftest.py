"""Run the training container's program as separate processes, one per "host".

Each host gets its own /opt/ml-like folders (through SM_INPUT_CONFIG_DIR, SM_MODEL_DIR,
SM_OUTPUT_DIR) and its own host name in resourceconfig.json; the names are mapped to
this machine with STAGELESS_LEADER_ADDRESS, and the ports are free ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.conftest import free_port

# A real PostgreSQL server (started by the tests themselves) for a job whose hosts read at
# the first host's exported snapshot.
from tests.integration.postgres.conftest import pg_housing, pg_server  # noqa: F401


@dataclass
class Host:
    name: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path
    started: float
    ended: float | None = None

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def failure(self) -> str | None:
        return self.failure_file.read_text().strip() if self.failure_file.exists() else None

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def code(self) -> int | None:
        return self.proc.returncode

    @property
    def seconds(self) -> float:
        assert self.ended is not None
        return self.ended - self.started


@dataclass
class Job:
    """Starts hosts of one job; every process is killed at the end of the test."""

    folder: Path
    hosts: list[str] = field(default_factory=lambda: ["algo-1", "algo-2"])
    env: dict[str, str] = field(default_factory=dict)
    started: dict[str, Host] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = {
            "STAGELESS_LEADER_ADDRESS": "127.0.0.1",
            "STAGELESS_TRACKER_PORT": str(free_port()),
            "STAGELESS_COORDINATOR_PORT": str(free_port()),
            "STAGELESS_NTHREAD": "1",
            "STAGELESS_CONNECT_TIMEOUT": "20",
            "STAGELESS_LOST_AFTER": "10",
            **self.env,
        }

    def start(
        self,
        name: str,
        hyperparameters: Mapping[str, object],
        *,
        resource_config: Mapping[str, object] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Host:
        root = self.folder / name
        config = root / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (root / "model").mkdir(exist_ok=True)
        (root / "output").mkdir(exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters)))
        resources = resource_config or {"current_host": name, "hosts": self.hosts}
        (config / "resourceconfig.json").write_text(json.dumps(dict(resources)))
        log = root / "log.txt"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "stageless", "sagemaker", "train"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    **self.env,
                    **(env or {}),
                    "SM_INPUT_CONFIG_DIR": str(config),
                    "SM_MODEL_DIR": str(root / "model"),
                    "SM_OUTPUT_DIR": str(root / "output"),
                },
            )
        host = Host(name, root, proc, log, time.monotonic())
        self.started[name] = host
        return host

    def start_all(self, hyperparameters: Mapping[str, object]) -> list[Host]:
        return [self.start(name, hyperparameters) for name in self.hosts]

    def wait(self, timeout: float = 60) -> dict[str, Host]:
        """Wait for every started host; a host still running at TIMEOUT fails the test."""
        deadline = time.monotonic() + timeout
        for host in self.started.values():
            try:
                host.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{host.name} still runs after {timeout}s:\n{host.output}")
        now = time.monotonic()
        for host in self.started.values():
            if host.ended is None:
                host.ended = now
        return self.started

    def wait_each(self, timeout: float = 60) -> dict[str, Host]:
        """Like wait, recording when each host ended (polled every 50 ms)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for host in self.started.values():
                if host.ended is None and host.proc.poll() is not None:
                    host.ended = time.monotonic()
            if all(h.ended is not None for h in self.started.values()):
                return self.started
            time.sleep(0.05)
        return self.wait(0.1)

    def kill_all(self) -> None:
        for host in self.started.values():
            if host.proc.poll() is None:
                host.proc.kill()
            host.proc.wait()


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Job]:
    started = Job(tmp_path / "job")
    try:
        yield started
    finally:
        started.kill_all()


def housing_job(housing_db: str, **more: object) -> dict[str, str]:
    """hyperparameters.json for the housing table: every value a string, as SageMaker has it."""
    return {
        "source": housing_db,
        "table": "california_housing",
        "target": "MedHouseVal",
        "num_round": "20",
        **{k: str(v) for k, v in more.items()},
    }
