"""S3 model artifacts and SageMaker job submission against a real moto server over HTTP.

moto's SageMaker keeps a job's HyperParameters (and drops Environment), marks every job
Completed at once and never runs it; what a test can see is what the job was asked to do.
"""

from __future__ import annotations

import tarfile
import tempfile
import uuid
from pathlib import Path

import boto3
import pytest

from stageless import storage
from stageless.artifacts import open_model
from stageless.errors import NotFoundError, UserError
from stageless.manifest import Manifest
from tests.conftest import RunCli

ROLE = "arn:aws:iam::123456789012:role/stageless-training"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stageless:latest"
PASSWORD = "Sup3r-Secret-Pa55"


@pytest.fixture
def bucket(aws_env: str) -> str:
    name = f"models-{uuid.uuid4().hex[:12]}"  # the moto server lives for the whole session
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def _keys(bucket: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(obj["Key"] for obj in listed.get("Contents", []))


def test_train_uploads_model_tar_gz_and_open_model_reads_it(
    run_cli: RunCli, housing_db: str, bucket: str, tmp_path: Path
) -> None:
    result = run_cli(
        "train", "--source", housing_db, "--table", "california_housing",
        "--target", "MedHouseVal", "--workers", "2", "--hp", "num_round=5",
        "--output", f"s3://{bucket}/runs/first/",
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert f"model=s3://{bucket}/runs/first/model.tar.gz" in result.stdout
    assert _keys(bucket) == ["runs/first/model.tar.gz"]  # nothing else, nothing partial
    assert not list(tmp_path.glob("**/model.tar.gz"))  # the local copy was removed

    model, manifest = open_model(f"s3://{bucket}/runs/first")
    assert manifest.data.rows_total == 20_640
    assert manifest.workers == 2
    assert model.startswith(b"{")
    same_model, _ = open_model(f"s3://{bucket}/runs/first/model.tar.gz")
    assert same_model == model


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("s3://Not_A_Bucket/x", "does not name a valid S3 bucket"),
        ("s3:///prefix", "does not name a valid S3 bucket"),
        ("s3://no-such-bucket-here/x", "bucket 'no-such-bucket-here' does not exist"),
    ],
)
def test_train_with_a_bad_s3_output_fails_up_front(
    run_cli: RunCli, housing_db: str, aws_env: str, output: str, message: str
) -> None:
    result = run_cli(
        "train", "--source", housing_db, "--table", "california_housing",
        "--target", "MedHouseVal", "--output", output,
    )  # fmt: skip
    assert result.returncode == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.output
    assert "worker" not in result.stderr  # failed before reading anything


def test_failed_upload_leaves_no_object_and_no_temporary_file(
    aws_env: str, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    manifest = _small_manifest()
    with pytest.raises(NotFoundError, match="not found"):
        storage.save_archive("s3://missing-bucket-zz/prefix", b"{}", manifest)
    assert list(tmp_path.iterdir()) == []  # the temporary archive is gone
    where = storage.save_archive(f"s3://{bucket}/p", b"{}", manifest)
    assert where == f"s3://{bucket}/p/model.tar.gz"
    assert list(tmp_path.iterdir()) == []


def test_open_model_from_s3_errors(aws_env: str, bucket: str) -> None:
    with pytest.raises(NotFoundError):
        open_model(f"s3://{bucket}/nothing/here")
    boto3.client("s3").put_object(Bucket=bucket, Key="junk/model.tar.gz", Body=b"not a tar")
    with pytest.raises(UserError, match=rf"s3://{bucket}/junk/model.tar.gz is not a model"):
        open_model(f"s3://{bucket}/junk")


def _small_manifest() -> Manifest:
    from stageless.manifest import DataProvenance

    return Manifest(
        target="y",
        features=["x"],
        feature_types=["float"],
        objective="reg:squarederror",
        hyperparameters={},
        metrics={},
        data=DataProvenance(
            source="duckdb:///x",
            query="SELECT 1",
            snapshot=None,
            rows_total=1,
            rows_dropped_null_target=0,
            rows_per_worker=[1],
            rows_train=1,
            rows_validation=0,
        ),
        workers=1,
        versions={},
        created_at="2024-01-01T00:00:00Z",
    )


SUBMIT = [
    "sagemaker", "submit", "--image", IMAGE, "--role", ROLE,
    "--source", "snowflake://acct/DB/PUBLIC?warehouse=WH", "--table", "housing",
    "--target", "MedHouseVal", "--secret", "aws-secretsmanager://snowflake_credentials",
    "--hp", "max_depth=4", "--hp", "num_round=80",
]  # fmt: skip


def test_submit_creates_a_job_whose_hyperparameters_carry_the_train_options(
    run_cli: RunCli, bucket: str
) -> None:
    result = run_cli(
        *SUBMIT, "--job-name", "housing-1", "--output", f"s3://{bucket}/jobs",
        "--instance-count", "3", "--instance-type", "ml.m5.2xlarge",
        "--subnet", "subnet-0123456789abcdef0", "--subnet", "subnet-0fedcba9876543210",
        "--security-group", "sg-0123456789abcdef0", "--max-runtime", "7200",
        env={"SNOWFLAKE_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert result.stdout.strip().endswith(":training-job/housing-1")

    job = boto3.client("sagemaker").describe_training_job(TrainingJobName="housing-1")
    assert job["HyperParameters"] == {
        "source": "snowflake://acct/DB/PUBLIC?warehouse=WH",
        "table": "housing",
        "target": "MedHouseVal",
        "secret": "aws-secretsmanager://snowflake_credentials",
        "max_depth": "4",
        "num_round": "80",
    }
    assert job["RoleArn"] == ROLE
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert job["ResourceConfig"]["InstanceCount"] == 3
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.2xlarge"
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{bucket}/jobs"
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 7200
    assert job["VpcConfig"] == {
        "Subnets": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
    }
    assert PASSWORD not in str(job)


def test_submit_wait_prints_the_model_artifact(run_cli: RunCli, bucket: str) -> None:
    result = run_cli(
        *SUBMIT, "--job-name", "housing-2", "--output", f"s3://{bucket}/jobs", "--wait",
        "--poll-seconds", "0.1",
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert result.stdout.strip() == f"s3://{bucket}/jobs/housing-2/output/model.tar.gz"
    assert "training job housing-2: Completed" in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--role", "stageless-training"], "is not an IAM role ARN"),
        (["--role", "arn:aws:iam::1234:role/x"], "is not an IAM role ARN"),
        (["--output", "s3://UPPER/jobs"], "does not name a valid S3 bucket"),
        (["--output", "https://bucket/jobs"], "must start with s3://"),
        (["--subnet", "subnet-0123456789abcdef0"], "needs both --subnet and --security-group"),
        (["--source", "postgresql://me:" + PASSWORD + "@db/x"], "carries a credential"),
        (["--hp", "max_depth=deep"], "max_depth='deep' is not valid"),
        (["--secret", "vault://x"], "unknown secret reference"),
    ],
    ids=["role-name", "role-short-account", "bucket", "not-s3", "vpc-half", "password",
         "hp-type", "secret-scheme"],
)  # fmt: skip
def test_submit_with_bad_input_creates_nothing(
    run_cli: RunCli, bucket: str, change: list[str], message: str
) -> None:
    args = [*SUBMIT, "--job-name", "bad-job", "--output", f"s3://{bucket}/jobs", *change]
    result = run_cli(*args)
    assert result.returncode == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert PASSWORD not in result.output
    jobs = boto3.client("sagemaker").list_training_jobs(NameContains="bad-job")
    assert jobs["TrainingJobSummaries"] == []


def test_model_archive_on_s3_is_a_plain_gzip_tar(aws_env: str, bucket: str, tmp_path: Path) -> None:
    storage.save_archive(f"s3://{bucket}/m", b'{"learner": {}}', _small_manifest())
    local = tmp_path / "model.tar.gz"
    boto3.client("s3").download_file(bucket, "m/model.tar.gz", str(local))
    with tarfile.open(local, "r:gz") as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "xgboost-model"]
