"""Start-up and shut-down of processes that run only stageless code (the CLI, workers).

Never used by library code: what a notebook user imports is none of our business.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def skip_unused_imports() -> None:
    """Keep XGBoost from importing scikit-learn in this process.

    XGBoost imports scikit-learn (and with it joblib and more) whenever it is installed,
    only to offer its scikit-learn-style estimators, which stageless never uses. That is
    about half a second at the start of every process, paid once per worker. Marking the
    module absent makes XGBoost take its "not installed" path.
    """
    if "xgboost" not in sys.modules:
        sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]


def exit_now(code: int) -> NoReturn:
    """Flush and leave without tearing the interpreter down.

    The work is done and every file is closed; the garbage collection of module
    teardown only costs time (about 0.25 s with XGBoost and DuckDB loaded).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
