"""infra/: the CloudFormation template passes cfn-lint and grants no wildcard action; the
Dockerfile installs stageless with its extras and puts `train` and `serve` on PATH.

Docker cannot run here, so the image is checked as far as a test can: the Dockerfile's
instructions, and the two programs it installs, run for real from this checkout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import stageless
from stageless.artifacts import read_model_archive, write_model_directory
from tests.integration.conftest import free_port, service_unavailable, wait_for_http

REPO = Path(__file__).resolve().parents[3]
INFRA = REPO / "infra"
TEMPLATE = INFRA / "execution-role.yaml"


def test_template_passes_cfn_lint() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    if not cfn_lint.exists():
        service_unavailable("cfn-lint (pip install cfn-lint)")
    result = subprocess.run(
        [str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _statements() -> list[dict[str, Any]]:
    from cfnlint.decode import decode

    template, errors = decode(str(TEMPLATE))
    assert not errors and template is not None
    policies = template["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    found: list[dict[str, Any]] = []
    for policy in policies:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:  # [condition, statement, AWS::NoValue]
                statement = statement["Fn::If"][1]
            found.append(statement)
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_role_is_least_privilege() -> None:
    statements = _statements()
    by_sid = {s["Sid"]: s for s in statements}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"wildcard action {action}"
        if "*" in _as_list(statement["Resource"]):
            # Only actions that AWS does not scope by resource, or scoped by a condition.
            assert all(
                a in {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
                or a.startswith("ec2:Describe")
                or "Condition" in statement
                for a in _as_list(statement["Action"])
            ), statement
    secret = by_sid["ReadTheWarehouseSecret"]
    assert secret["Action"] == "secretsmanager:GetSecretValue"
    assert secret["Resource"] == {"Ref": "SecretArn"}  # the one secret, nothing else
    models = by_sid["WriteAndReadModels"]
    assert "s3:PutObject" in models["Action"]
    assert "${OutputBucket}/${OutputPrefix}/*" in models["Resource"]["Fn::Sub"]
    assert by_sid["PullTheImage"]["Resource"] == {"Ref": "ImageRepositoryArn"}
    network = by_sid["ManageJobNetworkInterfacesInTheVpc"]
    assert "ec2:CreateNetworkInterface" in network["Action"]
    assert "ec2:Vpc" in network["Condition"]["ArnEquals"]
    assert any("logs:PutLogEvents" in _as_list(s["Action"]) for s in statements)


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (INFRA / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), " ".join(rest.split())))
    return out


def test_dockerfile_installs_stageless_with_its_extras_and_both_programs() -> None:
    steps = _instructions()
    base = [rest for keyword, rest in steps if keyword == "FROM"]
    assert len(base) == 1 and re.fullmatch(r"python:3\.1[1-9]-slim", base[0])
    installs = [rest for keyword, rest in steps if keyword == "RUN" and "pip install" in rest]
    assert len(installs) == 1
    extras = re.search(r'pip install "\.\[([a-z,]+)\]"', installs[0])
    assert extras is not None
    wanted = {"snowflake", "postgres", "aws", "serve"}
    assert set(extras.group(1).split(",")) == wanted
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert wanted <= set(declared["optional-dependencies"])  # the extras exist
    copies = [rest for keyword, rest in steps if keyword == "COPY"]
    assert "infra/bin/train infra/bin/serve /usr/local/bin/" in copies
    for copied in ("pyproject.toml", "README.md", "src", "infra/bin/train", "infra/bin/serve"):
        assert (REPO / copied).exists()
    assert ("EXPOSE", "8080") in steps
    assert not any(keyword in {"ENTRYPOINT", "CMD"} for keyword, _ in steps)  # SageMaker
    # passes `train` or `serve` as the command


def _program_env(tmp_path: Path, hyperparameters: dict[str, str]) -> dict[str, str]:
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
    return {
        **os.environ,
        # PATH as in the image: `stageless` installed, the two programs beside it.
        "PATH": f"{INFRA / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
        + os.environ.get("PATH", ""),
        "SM_INPUT_CONFIG_DIR": str(config),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
    }


@pytest.mark.slow
def test_train_program_runs_the_training_container(housing_db: str, tmp_path: Path) -> None:
    env = _program_env(
        tmp_path,
        {"source": housing_db, "table": "california_housing", "target": "MedHouseVal",
         "num_round": "3"},
    )  # fmt: skip
    result = subprocess.run(
        ["train"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "manifest.json",
        "xgboost-model",
    ]


def test_train_program_writes_the_failure_file(tmp_path: Path) -> None:
    env = _program_env(tmp_path, {"table": "t", "target": "y"})
    result = subprocess.run(
        ["train"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "the job has no source" in (tmp_path / "output" / "failure").read_text()


def test_serve_program_is_the_inference_container(tmp_path: Path) -> None:
    env = _program_env(tmp_path, {})
    result = subprocess.run(
        ["serve", "--help"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "inference container" in result.stdout and "8080" in result.stdout
    for name in ("train", "serve"):
        program = INFRA / "bin" / name
        assert os.access(program, os.X_OK)
        assert program.read_text().startswith("#!/bin/sh\n")
        assert f'exec stageless sagemaker {name} "$@"' in program.read_text()


@pytest.mark.slow
def test_serve_program_answers_sagemaker_requests(housing_db: str, tmp_path: Path) -> None:
    try:
        import uvicorn  # noqa: F401
    except ModuleNotFoundError:
        service_unavailable("uvicorn (pip install 'stageless[serve]')")
    stageless.train(
        housing_db,
        table="california_housing",
        target="MedHouseVal",
        features=["MedInc", "HouseAge"],
        hyperparameters={"num_round": "3"},
        output=str(tmp_path / "trained"),
    )
    # SageMaker unpacks model.tar.gz into the model directory before starting `serve`.
    model, manifest = read_model_archive(tmp_path / "trained" / "model.tar.gz")
    write_model_directory(tmp_path / "model", model, manifest)
    port = free_port()
    env = {**_program_env(tmp_path / "serving", {}), "SM_MODEL_DIR": str(tmp_path / "model")}
    proc = subprocess.Popen(
        ["serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", proc)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=b"8.3,41\n2.1,10\n",
            headers={"Content-Type": "text/csv"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            predictions = json.loads(response.read())["predictions"]
        assert len(predictions) == 2 and predictions[0] > predictions[1]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
