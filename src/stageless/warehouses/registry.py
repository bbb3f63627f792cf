"""URL scheme -> backend class, imported only when first used (the fsspec idiom).

A missing optional dependency fails with the exact ``pip install`` that fixes it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from stageless._startup import allow_import
from stageless.errors import UserError

if TYPE_CHECKING:
    from stageless.secrets import Secret
    from stageless.warehouses.base import Warehouse

# scheme -> (module, class, pip extra that provides its driver)
_BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "duckdb": ("stageless.warehouses.duckdb", "DuckDBWarehouse", None),
    "snowflake": ("stageless.warehouses.snowflake", "SnowflakeWarehouse", "snowflake"),
    "postgresql": ("stageless.warehouses.postgres", "PostgresWarehouse", "postgres"),
    "postgres": ("stageless.warehouses.postgres", "PostgresWarehouse", "postgres"),
    "redshift": ("stageless.warehouses.postgres", "RedshiftWarehouse", "postgres"),
}

#: scheme -> modules its driver needs that stageless's own processes otherwise skip
#: (see stageless._startup): the Snowflake connector fetches Arrow only if pandas imports
_DRIVER_NEEDS: dict[str, tuple[str, ...]] = {"snowflake": ("pandas",)}


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


def open_warehouse(
    url: str,
    *,
    read_only: bool = False,
    threads: int | None = None,
    secret: str | Secret | None = None,
) -> Warehouse:
    """Connect to the warehouse a URL names, with credentials from SECRET if given.

    SECRET is a reference (``env://...``, ``file://...``, ``aws-secretsmanager://...``),
    resolved here, or an already resolved :class:`~stageless.secrets.Secret`.
    """
    if isinstance(secret, str):
        from stageless.secrets import resolve_secret

        secret = resolve_secret(secret)
    scheme = scheme_of(url)
    module_name, class_name, extra = _BACKENDS[scheme]
    for needed in _DRIVER_NEEDS.get(scheme, ()):
        allow_import(needed)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        hint = f"pip install 'stageless[{extra}]'" if extra else "pip install stageless"
        raise UserError(
            f"the {scheme} backend needs {exc.name}, which is not installed: {hint}"
        ) from None
    backend: type[Warehouse] = getattr(module, class_name)
    return backend.connect(  # type: ignore[attr-defined]
        url, read_only=read_only, threads=threads, secret=secret
    )


#: query parameters that carry credentials and are masked like a URL's password
_SECRET_PARAMS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "token",
        "private_key",
        "private_key_passphrase",
        "secret",
        "sslpassword",
        "sslkey_password",
    }
)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``; safe to print, log and record."""
    scheme, sep, rest = url.partition("://")
    if sep:
        # Not urlsplit's userinfo: a password may hold "/", "?" or "#" (unescaped, as
        # people paste them), which would end urlsplit's host part early and hide the "@".
        # Everything before the last "@" is masked; masking too much is harmless.
        end = rest.rfind("@")
        if end != -1 and ":" in rest[:end]:
            user = rest[:end].split(":", 1)[0]
            url = f"{scheme}://{user}:***{rest[end:]}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    secret_query = any(
        key.lower() in _SECRET_PARAMS for key, _ in parse_qsl(parts.query, keep_blank_values=True)
    )
    if not secret_query:
        return url
    query = [
        (key, "***" if key.lower() in _SECRET_PARAMS else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))
