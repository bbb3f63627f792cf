"""Where secrets come from. Each provider returns a :class:`Secret` or raises a
one-line, secret-free :class:`~stageless.errors.StagelessError`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from stageless.errors import NotFoundError, StagelessError, TransientError, UserError
from stageless.secrets.secret import Secret

SCHEMES = ("aws-secretsmanager", "env", "file")


def scheme_of_secret(ref: str) -> str:
    scheme = ref.split("://", 1)[0].lower() if "://" in ref else ""
    if scheme not in SCHEMES:
        raise UserError(
            f"unknown secret reference {ref.split('://', 1)[0]!r}; use "
            "aws-secretsmanager://SECRET_ID[?region=R], env://PREFIX or file:///path.json"
        )
    return scheme


def resolve_secret(ref: str) -> Secret:
    """Fetch the secret a reference names."""
    providers: dict[str, Callable[[str], Secret]] = {
        "aws-secretsmanager": _from_aws,
        "env": _from_env,
        "file": _from_file,
    }
    return providers[scheme_of_secret(ref)](ref)


def _parse_json_object(text: str, where: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        # The decoder's message can quote the text: say nothing about the content.
        raise UserError(f"{where} is not valid JSON") from None
    if not isinstance(value, dict):
        raise UserError(f"{where} is not a JSON object")
    return value


def _from_env(ref: str) -> Secret:
    prefix = ref.split("://", 1)[1].strip().rstrip("_")
    if not prefix:
        raise UserError("env:// needs a prefix: env://PREFIX reads PREFIX_USERNAME, ...")
    start = prefix.upper() + "_"
    values = {
        k[len(start) :].lower(): v for k, v in os.environ.items() if k.upper().startswith(start)
    }
    if not values:
        raise NotFoundError(f"no environment variables {start}USERNAME, {start}PASSWORD, ...")
    return Secret(values, source=f"env://{prefix}")


def _from_file(ref: str) -> Secret:
    parts = urlsplit(ref)
    if parts.netloc not in ("", "localhost"):
        raise UserError(f"file secret {ref!r} names a host; write file:///absolute/path.json")
    path = Path(parts.path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NotFoundError(f"secret file {path} does not exist") from None
    except OSError as exc:
        raise UserError(f"cannot read secret file {path}: {exc.strerror}") from None
    return Secret(_parse_json_object(text, f"secret file {path}"), source=f"file://{path}")


def _from_aws(ref: str) -> Secret:
    parts = urlsplit(ref)
    secret_id = (parts.netloc + parts.path).strip("/")
    if not secret_id:
        raise UserError("aws-secretsmanager:// needs a secret id or ARN")
    region = (parse_qs(parts.query).get("region") or [None])[0]
    try:
        import boto3
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            NoRegionError,
        )
    except ModuleNotFoundError:
        raise UserError(
            "aws-secretsmanager:// needs boto3, which is not installed: "
            "pip install 'stageless[aws]'"
        ) from None
    where = f"AWS secret {secret_id!r}"
    try:
        client = boto3.client("secretsmanager", region_name=region)
        response = client.get_secret_value(SecretId=secret_id)
    except NoRegionError:
        raise UserError(f"{where}: no AWS region; add ?region=REGION or set AWS_REGION") from None
    except NoCredentialsError:
        raise UserError(f"{where}: no AWS credentials found (set a profile or role)") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise NotFoundError(f"{where} does not exist in AWS Secrets Manager") from None
        if code in ("AccessDeniedException", "UnrecognizedClientException"):
            raise UserError(f"{where}: access denied ({code})") from None
        if code in ("ThrottlingException", "InternalServiceError"):
            raise TransientError(f"{where}: AWS answered {code}; retry") from None
        raise UserError(f"{where}: AWS answered {code or 'an error'}") from None
    except BotoCoreError as exc:
        # Connection and configuration problems; their text holds no secret.
        raise TransientError(f"{where}: {type(exc).__name__}: {exc}") from None
    except StagelessError:
        raise
    if "SecretString" not in response:
        raise UserError(f"{where} holds binary data, not a JSON object")
    return Secret(_parse_json_object(response["SecretString"], where), source=where)
