"""URL scheme -> backend class, imported only when first used (the fsspec idiom).

A missing optional dependency fails with the exact ``pip install`` that fixes it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from stageless.errors import UserError

if TYPE_CHECKING:
    from stageless.warehouses.base import Warehouse

# scheme -> (module, class, pip extra that provides its driver)
_BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "duckdb": ("stageless.warehouses.duckdb", "DuckDBWarehouse", None),
}


def supported_schemes() -> list[str]:
    return sorted(_BACKENDS)


def scheme_of(url: str) -> str:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in _BACKENDS:
        shown = url if scheme == "" else f"{scheme}:"
        raise UserError(
            f"unknown warehouse URL {redact_url(shown)!r}; "
            f"use one of: {', '.join(s + ':' for s in supported_schemes())}"
        )
    return scheme


def open_warehouse(url: str, *, read_only: bool = False, threads: int | None = None) -> Warehouse:
    """Connect to the warehouse a URL names."""
    module_name, class_name, extra = _BACKENDS[scheme_of(url)]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        hint = f"pip install 'stageless[{extra}]'" if extra else "pip install stageless"
        raise UserError(
            f"the {scheme_of(url)} backend needs {exc.name}, which is not installed: {hint}"
        ) from None
    backend: type[Warehouse] = getattr(module, class_name)
    return backend.connect(url, read_only=read_only, threads=threads)  # type: ignore[attr-defined]


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``; safe to print, log and record."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
