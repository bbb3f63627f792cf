"""Start-up and shut-down of processes that run only stageless code (the CLI, workers).

Never used by library code: what a notebook user imports is none of our business.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from typing import NoReturn


class _SkipImports(importlib.abc.MetaPathFinder):
    """Makes ``import NAME`` fail as if NAME were not installed, for the names it holds.

    ``importlib.util.find_spec(NAME)`` raises ModuleNotFoundError too, instead of returning
    None (XGBoost asks that only in ``trees_to_dataframe``, which stageless never calls).
    Putting None in ``sys.modules`` instead would not do: Cython modules such as pyarrow's
    take a None found there for the module itself.
    """

    def __init__(self) -> None:
        self.names: set[str] = set()

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if any(fullname == name or fullname.startswith(f"{name}.") for name in self.names):
            raise ModuleNotFoundError(f"{fullname} is skipped in this process", name=fullname)
        return None


_skipped = _SkipImports()

#: Imported by libraries stageless uses, never needed by stageless itself: scikit-learn and
#: scipy.special (only XGBoost's scikit-learn-style estimators use them; XGBoost imports
#: those inside ``try/except ImportError``) and pandas (pyarrow.dataset imports it).
SKIPPED = ("sklearn", "scipy.special", "pandas")


def skip_unused_imports() -> None:
    """Keep XGBoost from importing scikit-learn, and pyarrow from importing pandas, in
    this process.

    XGBoost imports scikit-learn (and with it joblib and more) whenever it is installed,
    only to offer its scikit-learn-style estimators, which stageless never uses: about
    half a second at the start of every process, paid once per worker; those estimators
    also import scipy.special (50 ms). ``pyarrow.dataset`` (which the ADBC driver manager
    imports) imports pandas whenever it is installed: another 0.16 s. The libraries take
    their "not installed" path when the import fails. A backend whose driver does need one
    calls :func:`allow_import` first.
    """
    _skipped.names.update(name for name in SKIPPED if name not in sys.modules)
    if _skipped not in sys.meta_path:
        sys.meta_path.insert(0, _skipped)


def allow_import(name: str) -> None:
    """Undo :func:`skip_unused_imports` for NAME. Safe anywhere: it changes nothing unless
    this process skipped NAME."""
    _skipped.names.discard(name)


def exit_now(code: int) -> NoReturn:
    """Flush and leave without tearing the interpreter down.

    The work is done and every file is closed; the garbage collection of module
    teardown only costs time (about 0.25 s with XGBoost and DuckDB loaded).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
