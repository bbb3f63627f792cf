"""``stageless sagemaker ...``: the container's programs, local rehearsal, job submission.

Only click is imported here; each command imports what it needs when it runs, so
``stageless --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from stageless.errors import UserError


def _train_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of ``stageless train`` that travel to the job as hyperparameters."""
    options = [
        click.option("--source", required=True, metavar="WAREHOUSE_URL"),
        click.option("--table", metavar="[SCHEMA.]TABLE", help="the table to train on"),
        click.option("--query", metavar="SQL", help="or one SELECT defining the rows"),
        click.option("--target", required=True, metavar="COLUMN"),
        click.option("--features", metavar="COL,COL,...", help="default: every numeric column"),
        click.option("--exclude", metavar="COL,COL,..."),
        click.option("--validation-fraction", type=float, help="default 0.25"),
        click.option("--split-key", metavar="COLUMN"),
        click.option(
            "--secret",
            metavar="SECRET_URL",
            help="credentials by reference (aws-secretsmanager://ID); only the reference "
            "travels to the job",
        ),
        click.option(
            "--hp",
            "hp",
            multiple=True,
            metavar="KEY=VALUE",
            help="XGBoost parameter or num_round; repeat, or list several after one --hp; "
            "also the container's settings such as connect_timeout=600",
        ),
        click.argument("more_hp", nargs=-1, metavar=""),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _hyperparameters(options: dict[str, Any]) -> dict[str, str]:
    from stageless.sagemaker.contract import job_hyperparameters
    from stageless.training.hyperparams import parse_assignments

    return job_hyperparameters(
        source=options["source"],
        target=options["target"],
        table=options["table"],
        query=options["query"],
        secret=options["secret"],
        features=options["features"],
        exclude=options["exclude"],
        validation_fraction=options["validation_fraction"],
        split_key=options["split_key"],
        hyperparameters=parse_assignments([*options["hp"], *options["more_hp"]]),
    )


@click.group("sagemaker")
def sagemaker() -> None:
    """Run as a SageMaker container, rehearse a job locally, or submit one."""


@sagemaker.command("train")
def train() -> None:
    """The training container's program (SageMaker runs `train`). Reads /opt/ml/..."""
    from stageless.sagemaker.container import main

    main()


@sagemaker.command("serve")
@click.option(
    "--model-dir",
    envvar="SM_MODEL_DIR",
    default="/opt/ml/model",
    show_default=True,
    help="the unpacked model (SageMaker unpacks model.tar.gz here)",
)
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 - a container
@click.option("--port", envvar="SAGEMAKER_BIND_TO_PORT", type=int, default=8080, show_default=True)
@click.option(
    "--workers", envvar="SAGEMAKER_MODEL_SERVER_WORKERS", type=int, default=1, show_default=True
)
@click.option("--threads", type=int, default=1, show_default=True, help="XGBoost threads each")
def serve(model_dir: str, host: str, port: int, workers: int, threads: int) -> None:
    """The inference container's program (SageMaker runs `serve`): HTTP on port 8080."""
    try:
        from stageless.serving import serve as run_serve
    except ModuleNotFoundError as exc:
        raise UserError(
            f"serving needs {exc.name}, which is not installed: pip install 'stageless[serve]'"
        ) from None
    run_serve(model_dir, host=host, port=port, workers=workers, threads=threads)


@sagemaker.command("local")
@click.option("--instance-count", type=int, default=1, show_default=True)
@click.option(
    "--output", required=True, metavar="DIR", help="where model.tar.gz goes (or s3://...)"
)
@click.option(
    "--job-dir",
    metavar="DIR",
    help="keep each instance's /opt/ml-like folders here (default: a temporary folder)",
)
@click.option("--timeout", type=float, metavar="SECONDS", help="give up after this long")
@_train_options
def local(
    instance_count: int, output: str, job_dir: str | None, timeout: float | None, **options: Any
) -> None:
    """Rehearse a training job: N local instances of the container's program, no Docker."""
    from stageless.sagemaker.local import run_local_job

    result = run_local_job(
        instance_count=instance_count,
        hyperparameters=_hyperparameters(options),
        output=output,
        job_dir=job_dir,
        timeout=timeout,
    )
    data = result.manifest.data
    metrics = result.manifest.metrics
    shown = "validation" if metrics.get("validation") else "train"
    metric = "  ".join(f"{k}={v:.5f}" for k, v in metrics[shown].items())
    click.echo(
        f"{shown} {metric}  rows={data.rows_total:,} (train {data.rows_train:,}, "
        f"validation {data.rows_validation:,}, dropped {data.rows_dropped_null_target:,})  "
        f"instances={result.manifest.workers}  model={result.model}"
    )


@sagemaker.command("submit")
@click.option("--job-name", required=True)
@click.option("--image", required=True, metavar="IMAGE_URI", help="the image built from infra/")
@click.option("--role", required=True, metavar="ROLE_ARN", help="the job's execution role")
@click.option(
    "--output", required=True, metavar="S3_URL", help="s3://bucket/prefix for model.tar.gz"
)
@click.option("--instance-count", type=int, default=1, show_default=True)
@click.option("--instance-type", default="ml.m5.xlarge", show_default=True)
@click.option("--volume-size", type=int, default=30, show_default=True, metavar="GB")
@click.option("--subnet", "subnets", multiple=True, metavar="SUBNET_ID", help="repeatable")
@click.option(
    "--security-group", "security_groups", multiple=True, metavar="SG_ID", help="repeatable"
)
@click.option("--max-runtime", type=int, default=86400, show_default=True, metavar="SECONDS")
@click.option("--region", help="default: boto3's (AWS_REGION, the profile)")
@click.option("--wait", is_flag=True, help="follow the job; print the model's S3 URI")
@click.option("--poll-seconds", type=float, default=30.0, hidden=True)
@_train_options
def submit(
    job_name: str,
    image: str,
    role: str,
    output: str,
    instance_count: int,
    instance_type: str,
    volume_size: int,
    subnets: tuple[str, ...],
    security_groups: tuple[str, ...],
    max_runtime: int,
    region: str | None,
    wait: bool,
    poll_seconds: float,
    **options: Any,
) -> None:
    """Create a SageMaker training job that runs this container on N instances."""
    from stageless.sagemaker import submit as jobs

    request = jobs.build_request(
        job_name=job_name,
        image=image,
        role=role,
        output=output,
        hyperparameters=_hyperparameters(options),
        instance_count=instance_count,
        instance_type=instance_type,
        volume_size=volume_size,
        subnets=subnets,
        security_groups=security_groups,
        max_runtime=max_runtime,
    )
    client = jobs.sagemaker_client(region)
    arn = jobs.submit(request, client)
    if not wait:
        click.echo(arn)
        return
    print(f"created training job {arn}", file=sys.stderr, flush=True)
    click.echo(jobs.follow(jobs.describer(client, job_name), poll_seconds, sys.stderr))
