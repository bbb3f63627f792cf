"""Start-up tricks of stageless's own processes, each checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_pandas_sklearn_and_scipy_special_are_skipped_and_their_users_carry_on() -> None:
    # The dev environment has both installed (the benchmark's seed path uses them).
    out = run(
        "import importlib.util\n"
        "assert importlib.util.find_spec('pandas') and importlib.util.find_spec('sklearn')\n"
        "from stageless._startup import skip_unused_imports\n"
        "skip_unused_imports()\n"
        "import sys, numpy as np, pyarrow as pa, xgboost, adbc_driver_postgresql.dbapi\n"
        "pa.array(np.arange(3, dtype=np.float32))  # pyarrow asks for pandas here\n"
        "xgboost.QuantileDMatrix(np.ones((4, 2), np.float32), np.ones(4, np.float32))\n"
        "print(*(m in sys.modules for m in ('pandas', 'sklearn', 'scipy.special')))\n"
    )
    assert out == "False False False"


def test_allow_import_lets_a_driver_have_pandas_back() -> None:
    out = run(
        "from stageless._startup import allow_import, skip_unused_imports\n"
        "skip_unused_imports()\n"
        "try:\n"
        "    import pandas\n"
        "except ImportError:\n"
        "    print('skipped')\n"
        "allow_import('pandas')\n"
        "import pandas\n"
        "print(pandas.__name__)\n"
    )
    assert out.splitlines() == ["skipped", "pandas"]


def test_the_version_comes_from_the_package_itself() -> None:
    # One source of truth: pyproject.toml reads it from stageless.__version__.
    from importlib.metadata import version

    import stageless

    assert version("stageless") == stageless.__version__
    out = run("from stageless.cli import main; main(['--version'])")
    assert out == f"stageless, version {stageless.__version__}"
