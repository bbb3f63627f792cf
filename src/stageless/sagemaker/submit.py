"""``stageless sagemaker submit``: create a SageMaker training job running this container.

Everything is checked before AWS is called, so a malformed role ARN, S3 URL or option
creates nothing. The train options travel as the job's hyperparameters (strings); a
secret travels as its reference (``aws-secretsmanager://...``), never as its value, and a
source URL that carries a password is refused, since anyone allowed to describe the job
could read it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from stageless.errors import StagelessError, TransientError, UserError

ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
SUBNET = re.compile(r"subnet-[0-9a-f]{8,17}")
SECURITY_GROUP = re.compile(r"sg-[0-9a-f]{8,17}")
INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
#: SageMaker's limits on hyperparameters
MAX_HP_VALUE = 2500
MAX_HP_COUNT = 100
MAX_RUNTIME = 28 * 24 * 3600


def build_request(
    *,
    job_name: str,
    image: str,
    role: str,
    output: str,
    hyperparameters: Mapping[str, str],
    instance_count: int = 1,
    instance_type: str = "ml.m5.xlarge",
    volume_size: int = 30,
    subnets: Sequence[str] = (),
    security_groups: Sequence[str] = (),
    max_runtime: int = 86400,
) -> dict[str, Any]:
    """The CreateTrainingJob request, every field checked (UserError when malformed)."""
    from stageless.storage import parse_s3_url
    from stageless.warehouses.registry import redact_url

    if not JOB_NAME.fullmatch(job_name):
        raise UserError(
            f"--job-name {job_name!r} is not a valid SageMaker job name: 1-63 letters, "
            "digits and hyphens, starting and ending with a letter or digit"
        )
    if not image or len(image) > 255 or any(ch.isspace() for ch in image):
        raise UserError(f"--image {image!r} is not a container image URI")
    if not ROLE_ARN.fullmatch(role):
        raise UserError(
            f"--role {role!r} is not an IAM role ARN "
            "(arn:aws:iam::123456789012:role/NAME); see infra/execution-role.yaml"
        )
    s3 = parse_s3_url(output, "--output")
    if not 1 <= instance_count <= 100:
        raise UserError("--instance-count must be from 1 to 100")
    if not INSTANCE_TYPE.fullmatch(instance_type):
        raise UserError(f"--instance-type {instance_type!r} is not a SageMaker type (ml.m5.xlarge)")
    if not 1 <= volume_size <= 16384:
        raise UserError("--volume-size must be from 1 to 16384 GB")
    if not 1 <= max_runtime <= MAX_RUNTIME:
        raise UserError(f"--max-runtime must be from 1 to {MAX_RUNTIME} seconds")
    for subnet in subnets:
        if not SUBNET.fullmatch(subnet):
            raise UserError(f"--subnet {subnet!r} is not a subnet id (subnet-0123abcd...)")
    for group in security_groups:
        if not SECURITY_GROUP.fullmatch(group):
            raise UserError(f"--security-group {group!r} is not a security group id (sg-...)")
    if bool(subnets) != bool(security_groups):
        raise UserError("a job in a VPC needs both --subnet and --security-group")
    source = hyperparameters.get("source", "")
    if redact_url(source) != source:
        raise UserError(
            "--source carries a credential, which would be readable in the job's "
            "description; give the credentials with --secret instead"
        )
    if len(hyperparameters) > MAX_HP_COUNT:
        raise UserError(f"too many hyperparameters ({len(hyperparameters)}; at most 100)")
    for key, value in hyperparameters.items():
        if len(value) > MAX_HP_VALUE:
            raise UserError(
                f"{key} is {len(value):,} characters; SageMaker takes at most 2,500 "
                "(for a long --query, make it a view and pass --table)"
            )
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": role,
        "OutputDataConfig": {"S3OutputPath": str(s3).rstrip("/")},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeSizeInGB": volume_size,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
        "HyperParameters": dict(hyperparameters),
    }
    if subnets:
        request["VpcConfig"] = {
            "Subnets": list(subnets),
            "SecurityGroupIds": list(security_groups),
        }
    return request


def sagemaker_client(region: str | None = None) -> Any:
    try:
        import boto3
    except ModuleNotFoundError:
        raise UserError(
            "stageless sagemaker submit needs boto3: pip install 'stageless[aws]'"
        ) from None
    from stageless.storage import translate_aws_errors

    with translate_aws_errors("SageMaker"):
        return boto3.client("sagemaker", region_name=region)


def submit(request: Mapping[str, Any], client: Any) -> str:
    """Create the training job; returns its ARN."""
    from stageless.storage import translate_aws_errors

    name = request["TrainingJobName"]
    with translate_aws_errors(f"creating training job {name}"):
        return str(client.create_training_job(**request)["TrainingJobArn"])


def follow(
    describe: Callable[[], Mapping[str, Any]],
    poll_seconds: float,
    log: IO[str],
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Follow a job until it ends: its model artifact URI, or an error with the reason."""
    shown = None
    transient = 0
    while True:
        try:
            job = describe()
            transient = 0
        except TransientError:
            transient += 1
            if transient > 5:
                raise
            sleep(poll_seconds)
            continue
        name = job.get("TrainingJobName", "?")
        status = job.get("TrainingJobStatus", "?")
        secondary = job.get("SecondaryStatus")
        state = f"{status} ({secondary})" if secondary and secondary != status else status
        if state != shown:
            print(f"training job {name}: {state}", file=log, flush=True)
            shown = state
        if status == "Completed":
            return str(job["ModelArtifacts"]["S3ModelArtifacts"])
        if status == "Failed":
            reason = job.get("FailureReason") or "no reason given"
            raise StagelessError(f"training job {name} failed: {reason}")
        if status == "Stopped":
            raise StagelessError(f"training job {name} was stopped before it finished")
        sleep(poll_seconds)


def describer(client: Any, job_name: str) -> Callable[[], Mapping[str, Any]]:
    from stageless.storage import translate_aws_errors

    def describe() -> Mapping[str, Any]:
        with translate_aws_errors(f"describing training job {job_name}"):
            return client.describe_training_job(TrainingJobName=job_name)  # type: ignore[no-any-return]

    return describe
