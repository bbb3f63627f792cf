"""stageless.warehouses.registry: URL scheme -> backend, and URLs safe to print."""

from __future__ import annotations

from pathlib import Path

import pytest

from stageless.errors import UserError
from stageless.warehouses.duckdb import DuckDBWarehouse
from stageless.warehouses.registry import (
    open_warehouse,
    redact_url,
    scheme_of,
    supported_schemes,
)


def test_duckdb_is_supported() -> None:
    assert "duckdb" in supported_schemes()
    assert scheme_of("duckdb:///x.duckdb") == "duckdb"
    assert scheme_of("DuckDB:x.duckdb") == "duckdb"


@pytest.mark.parametrize(
    "url", ["oracle://acct/db", "sqlite:///x.db", "x.duckdb", "/data/x.duckdb", ""]
)
def test_unknown_scheme_lists_the_supported_ones(url: str) -> None:
    with pytest.raises(UserError) as info:
        open_warehouse(url)
    message = str(info.value)
    assert message.startswith("unknown warehouse URL")
    assert "duckdb:" in message


def test_unknown_scheme_error_shows_no_credential() -> None:
    with pytest.raises(UserError) as info:
        scheme_of("mysql://user:secret@host:5432/db")
    message = str(info.value)
    assert "secret" not in message
    assert "'mysql:'" in message


def test_open_warehouse_gives_a_duckdb_backend(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "w.duckdb"
    with open_warehouse(f"duckdb://{path}") as wh:
        assert isinstance(wh, DuckDBWarehouse)
        assert wh.fetch_one("SELECT 41 + 1") == (42,)
        assert wh.url == f"duckdb://{path}"
    assert path.exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:secret@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
        ("postgresql://:secret@h/db", "postgresql://:***@h/db"),
        ("snowflake://u:p%40ss@acct/db", "snowflake://u:***@acct/db"),
        ("postgresql://u:se@cret@h/db", "postgresql://u:***@h/db"),
    ],
)
def test_redact_url_hides_the_password(url: str, expected: str) -> None:
    redacted = redact_url(url)
    assert redacted == expected
    assert "secret" not in redacted
    assert "cret" not in redacted
    assert "p%40ss" not in redacted


@pytest.mark.parametrize(
    "url",
    [
        "duckdb:///tmp/x.duckdb",
        "duckdb:rel/x.duckdb",
        "postgresql://u@h:5432/db",
        "postgresql://h/db",
        "snowflake://acct/db?warehouse=wh",
    ],
)
def test_redact_url_leaves_password_less_urls_alone(url: str) -> None:
    assert redact_url(url) == url


@pytest.mark.parametrize(
    "url", ["postgresql://u:secret@h:notaport/db", "postgresql://u:secret@h:99999/db"]
)
def test_redact_url_never_raises_for_a_bad_port(url: str) -> None:
    assert "secret" not in redact_url(url)


def test_redact_url_keeps_ipv6_brackets() -> None:
    assert redact_url("postgresql://u:pw@[::1]:5432/db") == "postgresql://u:***@[::1]:5432/db"


def test_redact_url_hides_a_password_query_parameter() -> None:
    assert "secret" not in redact_url("postgresql://u@h/db?password=secret")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://alice:S3cr/etPass@db.example.com/prod",
        "postgresql://alice:12#S3cretPass@127.0.0.1:1/prod",
        "postgresql://alice:S3cr?etPass@db.example.com/prod",
        "postgresql://alice:p@S3cretPass@db.example.com/prod",
        "snowflake://user:S3cr/etPass@acct/db",
    ],
)
def test_redact_url_masks_passwords_with_url_delimiters(url: str) -> None:
    shown = redact_url(url)
    assert "S3cr" not in shown and "etPass" not in shown
    assert ":***@" in shown


def test_redact_url_masks_ssl_key_passwords() -> None:
    shown = redact_url("postgresql://alice@h/db?sslpassword=KeyPass123&sslmode=require")
    assert "KeyPass123" not in shown and "sslmode=require" in shown
