"""s3:// URLs for model outputs and model references (parsing only; moto tests the I/O)."""

from __future__ import annotations

import pytest

from stageless.errors import UserError
from stageless.storage import S3Url, is_s3_url, model_object, output_object, parse_s3_url


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://my-bucket/a/b/") == S3Url("my-bucket", "a/b")
    assert parse_s3_url("S3://my.bucket.v2") == S3Url("my.bucket.v2", "")
    assert str(S3Url("b12", "x")) == "s3://b12/x"
    assert is_s3_url("s3://x") and not is_s3_url("local/s3://x")


@pytest.mark.parametrize(
    "url",
    ["s3://", "s3:///x", "s3://ab/x", "s3://Upper/x", "s3://-bucket/x", "s3://bucket-/x",
     "s3://a..b/x", "s3://10.0.0.1/x", "s3://bucket/a//b", "s3://bucket/has space",
     "s3://bucket/x?versionId=1", "http://bucket/x"],
)  # fmt: skip
def test_malformed_s3_urls(url: str) -> None:
    with pytest.raises(UserError):
        parse_s3_url(url)


def test_output_and_model_objects() -> None:
    assert output_object("s3://b12/runs/1") == S3Url("b12", "runs/1/model.tar.gz")
    assert output_object("s3://b12") == S3Url("b12", "model.tar.gz")
    assert model_object("s3://b12/runs/1") == S3Url("b12", "runs/1/model.tar.gz")
    # SageMaker's S3ModelArtifacts names the object itself.
    assert model_object("s3://b12/j/output/model.tar.gz") == S3Url("b12", "j/output/model.tar.gz")
