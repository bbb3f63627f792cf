"""The CreateTrainingJob request and following a job (no AWS needed; moto tests the calls)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import pytest

from stageless.errors import StagelessError, TransientError, UserError
from stageless.sagemaker.submit import build_request, follow

ROLE = "arn:aws:iam::123456789012:role/service-role/stageless"
HP = {"source": "snowflake://a/DB/S?warehouse=W", "table": "t", "target": "y"}


def request(**changes: Any) -> dict[str, Any]:
    given: dict[str, Any] = {
        "job_name": "housing-2024-01-01",
        "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/stageless:1",
        "role": ROLE,
        "output": "s3://my-models/jobs/",
        "hyperparameters": HP,
    }
    return build_request(**{**given, **changes})


def test_request_has_what_sagemaker_needs() -> None:
    built = request(instance_count=4, max_runtime=3600)
    assert built["TrainingJobName"] == "housing-2024-01-01"
    assert built["AlgorithmSpecification"] == {
        "TrainingImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/stageless:1",
        "TrainingInputMode": "File",
    }
    assert built["RoleArn"] == ROLE
    assert built["OutputDataConfig"] == {"S3OutputPath": "s3://my-models/jobs"}
    assert built["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 4,
        "VolumeSizeInGB": 30,
    }
    assert built["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert built["HyperParameters"] == HP
    assert "VpcConfig" not in built
    assert "InputDataConfig" not in built  # the data is read from the warehouse


def test_subnets_and_security_groups_make_the_vpc_config() -> None:
    built = request(subnets=["subnet-0a1b2c3d"], security_groups=["sg-0a1b2c3d", "sg-1a1b2c3d"])
    assert built["VpcConfig"] == {
        "Subnets": ["subnet-0a1b2c3d"],
        "SecurityGroupIds": ["sg-0a1b2c3d", "sg-1a1b2c3d"],
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"role": "arn:aws:iam::123456789012:user/alice"}, "is not an IAM role ARN"),
        ({"role": "arn:aws:iam::12345:role/x"}, "is not an IAM role ARN"),
        ({"output": "s3://a/b"}, "does not name a valid S3 bucket"),
        ({"output": "s3://my..bucket/b"}, "does not name a valid S3 bucket"),
        ({"output": "s3://192.168.1.1/b"}, "does not name a valid S3 bucket"),
        ({"output": "/local/dir"}, "must start with s3://"),
        ({"job_name": "has_underscore"}, "not a valid SageMaker job name"),
        ({"job_name": "-starts-with-hyphen"}, "not a valid SageMaker job name"),
        ({"image": ""}, "not a container image URI"),
        ({"instance_count": 0}, "--instance-count"),
        ({"instance_type": "m5.xlarge"}, "not a SageMaker type"),
        ({"max_runtime": 0}, "--max-runtime"),
        ({"subnets": ["subnet-0a1b2c3d"]}, "needs both"),
        ({"security_groups": ["sg-0a1b2c3d"]}, "needs both"),
        ({"subnets": ["vpc-0a1b2c3d"], "security_groups": ["sg-0a1b2c3d"]}, "not a subnet id"),
        ({"hyperparameters": {**HP, "source": "postgresql://u:pw@h/db"}}, "carries a credential"),
        ({"hyperparameters": {**HP, "query": "x" * 2501}}, "at most 2,500"),
    ],
)
def test_malformed_requests_are_user_errors(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        request(**changes)


def _describe(*responses: Mapping[str, Any] | Exception):  # type: ignore[no-untyped-def]
    remaining = list(responses)

    def describe() -> Mapping[str, Any]:
        response = remaining.pop(0)
        if isinstance(response, Exception):
            raise response
        return response

    return describe


def _job(status: str, secondary: str | None = None, **more: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": "j",
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary or status,
        **more,
    }


def test_follow_reports_changes_and_returns_the_model_uri() -> None:
    log = io.StringIO()
    sleeps: list[float] = []
    uri = follow(
        _describe(
            _job("InProgress", "Starting"),
            _job("InProgress", "Starting"),
            TransientError("throttled"),
            _job("InProgress", "Training"),
            _job(
                "Completed", ModelArtifacts={"S3ModelArtifacts": "s3://b/p/j/output/model.tar.gz"}
            ),
        ),
        poll_seconds=5,
        log=log,
        sleep=sleeps.append,
    )
    assert uri == "s3://b/p/j/output/model.tar.gz"
    assert log.getvalue().splitlines() == [
        "training job j: InProgress (Starting)",
        "training job j: InProgress (Training)",
        "training job j: Completed",
    ]
    assert sleeps == [5, 5, 5, 5]


def test_follow_raises_the_failure_reason() -> None:
    describe = _describe(
        _job("InProgress"), _job("Failed", FailureReason="AlgorithmError: host algo-1 failed: x")
    )
    with pytest.raises(StagelessError, match="training job j failed: AlgorithmError: host algo-1"):
        follow(describe, poll_seconds=0, log=io.StringIO(), sleep=lambda _s: None)


def test_follow_raises_when_stopped() -> None:
    with pytest.raises(StagelessError, match="was stopped"):
        follow(_describe(_job("Stopped")), 0, io.StringIO(), sleep=lambda _s: None)
