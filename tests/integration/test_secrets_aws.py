"""`aws-secretsmanager://` against a real moto server over HTTP (no in-process mocking)."""

from __future__ import annotations

import json

import boto3
import pytest

from stageless.errors import NotFoundError, UserError
from stageless.secrets import resolve_secret

PASSWORD = "s3cr3t-Moto-Pa55"


def test_secret_from_aws_secrets_manager(aws_env: str) -> None:
    client = boto3.client("secretsmanager")
    client.create_secret(
        Name="snowflake_credentials",
        SecretString=json.dumps({"username": "alice", "password": PASSWORD}),
    )
    secret = resolve_secret("aws-secretsmanager://snowflake_credentials?region=us-east-1")
    assert (secret.username, secret.password) == ("alice", PASSWORD)
    assert PASSWORD not in repr(secret)


def test_missing_aws_secret_is_not_found(aws_env: str) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        resolve_secret("aws-secretsmanager://no_such_secret")


def test_malformed_aws_secret_is_a_user_error_without_its_content(aws_env: str) -> None:
    boto3.client("secretsmanager").create_secret(
        Name="broken", SecretString="username=alice password=" + PASSWORD
    )
    with pytest.raises(UserError, match="not valid JSON") as raised:
        resolve_secret("aws-secretsmanager://broken")
    assert PASSWORD not in str(raised.value)
