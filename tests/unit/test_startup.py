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


def test_pandas_and_sklearn_are_skipped_and_their_users_take_the_not_installed_path() -> None:
    # The dev environment has both installed (the benchmark's seed path uses them).
    out = run(
        "import importlib.util\n"
        "assert importlib.util.find_spec('pandas') and importlib.util.find_spec('sklearn')\n"
        "from stageless._startup import skip_unused_imports\n"
        "skip_unused_imports()\n"
        "import sys, numpy as np, pyarrow as pa, xgboost, adbc_driver_postgresql.dbapi\n"
        "pa.array(np.arange(3, dtype=np.float32))  # pyarrow asks for pandas here\n"
        "print('pandas' in sys.modules, 'sklearn' in sys.modules)\n"
    )
    assert out == "False False"


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
