"""Shared fixtures: real DuckDB files and the real `stageless` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import stageless


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


RunCli = Callable[..., Result]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run `python -m stageless ARGS...` as a user would, in TMP_PATH, with a timeout."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "stageless", *args],
            cwd=tmp_path,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture(scope="session")
def housing_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A DuckDB file holding the bundled California housing data as `california_housing`.

    Read-only for tests (training opens it read-only); tests that write use their own file.
    """
    path = tmp_path_factory.mktemp("housing") / "housing.duckdb"
    url = f"duckdb://{path}"
    stageless.ingest("dataset:california-housing", to=url, table="california_housing")
    return url
