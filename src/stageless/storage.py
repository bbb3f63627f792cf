"""Models on S3: ``s3://bucket/prefix`` as an output, ``s3://...`` as a model to load.

An archive is uploaded only once it is complete on local disk, and S3 makes an object
visible only when its upload completes (a failed multipart upload is aborted), so a
reader never sees half a model. boto3's standard configuration applies: profiles,
roles, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stageless.errors import NotFoundError, StagelessError, TransientError, UserError

if TYPE_CHECKING:
    from stageless.manifest import Manifest

ARCHIVE_NAME = "model.tar.gz"
#: refuse to download more than this as "a model" (models are megabytes)
MAX_ARCHIVE_BYTES = 4 << 30

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")


@dataclass(frozen=True)
class S3Url:
    bucket: str
    key: str  # without a leading slash; "" for the bucket's root

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, name: str) -> S3Url:
        return S3Url(self.bucket, f"{self.key}/{name}" if self.key else name)


def is_s3_url(ref: str) -> bool:
    return ref[:5].lower() == "s3://"


def parse_s3_url(url: str, what: str = "S3 URL") -> S3Url:
    """``s3://bucket/some/prefix`` -> S3Url; a malformed URL is a UserError."""
    if not is_s3_url(url):
        raise UserError(f"{what} {url!r} must start with s3://")
    rest = url[5:]
    bucket, _, key = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IP_LIKE.fullmatch(bucket):
        raise UserError(
            f"{what} {url!r} does not name a valid S3 bucket: write s3://BUCKET/PREFIX with a "
            "bucket name of 3-63 lowercase letters, digits, dots and hyphens"
        )
    key = key.strip("/")
    if any(ch.isspace() or ord(ch) < 32 for ch in key) or "//" in key or "?" in key:
        raise UserError(f"{what} {url!r} has an invalid key prefix")
    return S3Url(bucket, key)


def output_object(output: str) -> S3Url:
    """Where ``--output s3://bucket/prefix`` puts the archive: PREFIX/model.tar.gz."""
    return parse_s3_url(output, "--output").child(ARCHIVE_NAME)


def model_object(ref: str) -> S3Url:
    """The object a model reference names: the key itself when it ends in ``.tar.gz``
    (as SageMaker's ``S3ModelArtifacts`` does), else PREFIX/model.tar.gz."""
    url = parse_s3_url(ref, "model")
    return url if url.key.endswith(".tar.gz") else url.child(ARCHIVE_NAME)


def s3_client() -> Any:
    try:
        import boto3
    except ModuleNotFoundError:
        raise UserError(
            "s3:// needs boto3, which is not installed: pip install 'stageless[aws]'"
        ) from None
    try:
        return boto3.client("s3")
    except Exception as exc:  # a broken profile or config file
        raise UserError(f"cannot configure the AWS client: {type(exc).__name__}: {exc}") from None


@contextmanager
def translate_aws_errors(where: str) -> Iterator[None]:
    """botocore's errors -> one-line stageless errors (AWS's messages hold no credentials).

    For S3 and for SageMaker alike."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    try:
        yield
    except StagelessError:
        raise
    except (NoCredentialsError, PartialCredentialsError):
        raise UserError(f"{where}: no AWS credentials found (set a profile or a role)") from None
    except NoRegionError:
        raise UserError(f"{where}: no AWS region; set AWS_REGION or a profile's region") from None
    except ClientError as exc:
        raise _client_error(where, exc) from None
    except BotoCoreError as exc:  # connection and configuration problems
        raise TransientError(f"{where}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:
        # boto3's transfer manager wraps a ClientError in S3UploadFailedError.
        cause = exc.__context__
        if isinstance(cause, ClientError):
            raise _client_error(where, cause) from None
        raise


_NOT_FOUND = {"404", "NoSuchBucket", "NoSuchKey", "NotFound"}
_DENIED = {"403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "ExpiredToken"}
_RETRY = {
    "500",
    "503",
    "SlowDown",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
}


def _client_error(where: str, exc: Any) -> StagelessError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code in _NOT_FOUND:
        return NotFoundError(f"{where}: not found ({code})")
    if code in _DENIED:
        return UserError(f"{where}: access denied ({code})")
    if code in _RETRY:
        return TransientError(f"{where}: AWS answered {code}; retry")
    return UserError(f"{where}: AWS answered {code or 'an error'}: {error.get('Message', '')}")


def check_output(output: str) -> S3Url:
    """Validate ``--output s3://...`` before any training: well formed, bucket present.

    A 403 on the bucket is not an error: a least-privilege role may write objects under
    its prefix without being allowed to look at the bucket itself.
    """
    target = output_object(output)
    client = s3_client()
    from botocore.exceptions import ClientError

    with translate_aws_errors(f"--output {output}"):
        try:
            client.head_bucket(Bucket=target.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND:
                raise NotFoundError(
                    f"--output {output}: bucket {target.bucket!r} does not exist"
                ) from None
            if code not in _DENIED:
                raise
    return target


def upload_archive(archive: Path, output: str) -> str:
    """Upload a complete local model.tar.gz to OUTPUT/model.tar.gz; returns its URL."""
    target = output_object(output)
    client = s3_client()
    with translate_aws_errors(f"uploading the model to {target}"):
        client.upload_file(str(archive), target.bucket, target.key)
    return str(target)


def save_archive(output: str, model: bytes, manifest: Manifest) -> str:
    """Write OUTPUT/model.tar.gz, OUTPUT being a directory or ``s3://bucket/prefix``.

    For S3 the archive is written to a temporary local file first and uploaded only when
    complete; the temporary file is removed either way.
    """
    from stageless.artifacts import write_model_archive

    if not is_s3_url(output):
        return str(write_model_archive(Path(output), model, manifest))
    output_object(output)  # malformed -> UserError before anything is written
    with tempfile.TemporaryDirectory(prefix="stageless-upload-") as tmp:
        archive = write_model_archive(Path(tmp), model, manifest)
        return upload_archive(archive, output)


def read_model(ref: str) -> tuple[bytes, Manifest]:
    """The booster bytes and manifest of the model.tar.gz an ``s3://`` reference names."""
    from stageless.artifacts import read_model_archive

    source = model_object(ref)
    client = s3_client()
    with tempfile.TemporaryDirectory(prefix="stageless-model-") as tmp:
        local = Path(tmp) / ARCHIVE_NAME
        with translate_aws_errors(f"model {source}"):
            size = int(client.head_object(Bucket=source.bucket, Key=source.key)["ContentLength"])
            if size > MAX_ARCHIVE_BYTES:
                raise UserError(f"model {source} is implausibly large ({size:,} bytes)")
            client.download_file(source.bucket, source.key, str(local))
        try:
            return read_model_archive(local)
        except StagelessError as exc:
            # Name the S3 object, not the temporary file, in the message.
            raise type(exc)(exc.message.replace(str(local), str(source))) from None
