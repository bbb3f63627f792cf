"""A model trained once per session, and `stageless serve` running as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pytest
import xgboost as xgb

import stageless
from stageless.artifacts import open_model
from stageless.datasets import CALIFORNIA_HOUSING_FEATURES
from stageless.training.events import Reporter
from tests.integration.conftest import free_port, wait_for_http

FEATURES = CALIFORNIA_HOUSING_FEATURES


@pytest.fixture(scope="session")
def housing_model(housing_db: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.tar.gz of a small model (10 rounds) trained on the bundled housing table."""
    out = tmp_path_factory.mktemp("model")
    stageless.train(
        housing_db,
        table="california_housing",
        target="MedHouseVal",
        output=str(out),
        hyperparameters={"num_round": "10"},
        progress=Reporter(1, quiet=True),
    )
    return out / "model.tar.gz"


@pytest.fixture(scope="session")
def booster(housing_model: Path) -> xgb.Booster:
    """The same model loaded straight into XGBoost: the reference for every prediction."""
    model_bytes, _ = open_model(str(housing_model))
    loaded = xgb.Booster()
    loaded.load_model(bytearray(model_bytes))
    return loaded


@pytest.fixture(scope="session")
def housing_rows(housing_db: str) -> np.ndarray:
    """300 rows of the housing features as float32 (exactly what the server will see)."""
    path = housing_db.removeprefix("duckdb://")
    columns = ", ".join(f'"{name}"' for name in FEATURES)
    with duckdb.connect(path, read_only=True) as con:
        values = con.sql(f"SELECT {columns} FROM california_housing LIMIT 300").fetchnumpy()
    return np.column_stack([values[name] for name in FEATURES]).astype(np.float32)


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then the exit code (the server must stop by itself in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


StartServer = Callable[..., Server]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start `python -m stageless serve MODEL --port FREE ...`; every server is stopped after."""
    started: list[Server] = []

    def start(model: Path | str, *args: str) -> Server:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stageless",
                    "serve",
                    str(model),
                    "--port",
                    str(port),
                    *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
                env={**os.environ},
            )
        server = Server(f"http://127.0.0.1:{port}", proc, log)
        started.append(server)
        try:
            wait_for_http(f"{server.url}/ping", proc, timeout=60)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; log:\n{server.log_text()}") from None
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture(scope="module")
def server(housing_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a whole module of request tests (starting one takes about a second)."""
    home = tmp_path_factory.mktemp("server")
    port = free_port()
    log = home / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stageless", "serve", str(housing_model), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
    running = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_for_http(f"{running.url}/ping", proc, timeout=60)
        yield running
    finally:
        running.stop()
