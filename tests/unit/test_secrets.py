"""Secret references: env://, file:// (AWS Secrets Manager is tested against moto)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from stageless.errors import NotFoundError, UserError
from stageless.secrets import Secret, resolve_secret, scheme_of_secret

PASSWORD = "hunter2-Pa55!"


def test_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_USERNAME", "alice")
    monkeypatch.setenv("SF_PASSWORD", PASSWORD)
    monkeypatch.setenv("SF_ROLE", "analyst")
    secret = resolve_secret("env://SF")
    assert (secret.username, secret.password, secret.get("role")) == ("alice", PASSWORD, "analyst")


def test_file_secret(tmp_path: Path) -> None:
    path = tmp_path / "creds.json"
    path.write_text(json.dumps({"username": "bob", "password": PASSWORD, "account": "xy123"}))
    secret = resolve_secret(f"file://{path}")
    assert (secret.username, secret.password, secret.get("account")) == ("bob", PASSWORD, "xy123")


def test_a_secret_never_shows_its_values() -> None:
    secret = Secret({"username": "carol", "password": PASSWORD}, source="test")
    for text in (repr(secret), str(secret), f"{secret}", str([secret]), str({"s": secret})):
        assert PASSWORD not in text and "carol" not in text
        assert "***" in text
    with pytest.raises(TypeError):
        pickle.dumps(secret)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json " + PASSWORD, "not valid JSON"),
        (json.dumps([PASSWORD]), "not a JSON object"),
        (json.dumps({"username": "dave"}), "lacks password"),
        (json.dumps({"password": PASSWORD}), "lacks username"),
        (json.dumps({"username": "", "password": PASSWORD}), "lacks username"),
    ],
)
def test_malformed_secret_files_say_why_without_echoing(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "creds.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as raised:
        resolve_secret(f"file://{path}")
    assert PASSWORD not in str(raised.value)


def test_missing_secrets_are_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotFoundError):
        resolve_secret(f"file://{tmp_path / 'nope.json'}")
    monkeypatch.delenv("NOPE_USERNAME", raising=False)
    with pytest.raises(NotFoundError):
        resolve_secret("env://NOPE")


@pytest.mark.parametrize("ref", ["vault://x", "s3://bucket/creds.json", "snowflake_credentials"])
def test_unknown_secret_schemes(ref: str) -> None:
    with pytest.raises(UserError, match="unknown secret reference"):
        scheme_of_secret(ref)


def test_file_secret_with_a_host_is_refused() -> None:
    with pytest.raises(UserError, match="names a host"):
        resolve_secret("file://server/creds.json")
