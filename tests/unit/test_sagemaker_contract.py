"""SageMaker's container contract: paths, hyperparameters.json, resourceconfig.json, failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stageless.errors import UserError
from stageless.sagemaker.contract import (
    MAX_FAILURE_BYTES,
    ContainerPaths,
    check_membership,
    job_hyperparameters,
    load_job_config,
    parse_resource_config,
    read_json_object,
    write_failure,
)

BASE = {"source": "duckdb:///data/h.duckdb", "table": "housing", "target": "MedHouseVal"}


def test_paths_default_to_opt_ml_and_follow_the_toolkit_variables(tmp_path: Path) -> None:
    default = ContainerPaths.from_env({})
    assert default.hyperparameters_file == Path("/opt/ml/input/config/hyperparameters.json")
    assert default.resource_config_file == Path("/opt/ml/input/config/resourceconfig.json")
    assert default.model_dir == Path("/opt/ml/model")
    assert default.failure_file == Path("/opt/ml/output/failure")
    moved = ContainerPaths.from_env(
        {
            "SM_INPUT_CONFIG_DIR": str(tmp_path / "c"),
            "SM_MODEL_DIR": str(tmp_path / "m"),
            "SM_OUTPUT_DIR": str(tmp_path / "o"),
        }
    )
    assert moved.hyperparameters_file == tmp_path / "c" / "hyperparameters.json"
    assert moved.model_dir == tmp_path / "m"
    assert moved.failure_file == tmp_path / "o" / "failure"


def test_settings_and_xgboost_hyperparameters_are_split_and_typed() -> None:
    config = load_job_config(
        {
            **BASE,
            "features": "MedInc, HouseAge",
            "validation_fraction": "0.2",
            "max_depth": "3",
            "eta": "0.1",
            "num_round": "7",
            "secret": "aws-secretsmanager://creds?region=eu-west-1",
            "tracker_port": "9199",
            "sagemaker_job_name": "added-by-the-sdk",
        },
        env={},
    )
    assert config.features == ("MedInc", "HouseAge")
    assert config.validation_fraction == 0.2
    assert config.hyperparameters["max_depth"] == 3
    assert config.hyperparameters["eta"] == 0.1
    assert config.hyperparameters["num_round"] == 7
    assert config.hyperparameters["subsample"] == 0.7  # the seed's defaults fill the rest
    assert config.tracker_port == 9199
    assert config.coordinator_port == 9098
    assert config.secret == "aws-secretsmanager://creds?region=eu-west-1"
    assert "sagemaker_job_name" not in config.hyperparameters


def test_settings_fall_back_to_stageless_environment_variables() -> None:
    env = {
        "STAGELESS_SOURCE": "duckdb:///from/env.duckdb",
        "STAGELESS_QUERY": "SELECT * FROM t",
        "STAGELESS_TARGET": "y",
        "STAGELESS_SECRET": "env://WAREHOUSE",
        "STAGELESS_CONNECT_TIMEOUT": "30",
    }
    config = load_job_config({}, env=env)
    assert (config.source, config.query, config.target) == ("duckdb:///from/env.duckdb",
                                                          "SELECT * FROM t", "y")  # fmt: skip
    assert config.table is None
    assert config.secret == "env://WAREHOUSE"
    assert config.connect_timeout == 30.0
    # A hyperparameter wins over the environment.
    assert load_job_config({"target": "z"}, env=env).target == "z"


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"max_depth": "deep"}, "max_depth='deep' is not valid"),
        ({"subsample": "2"}, "subsample='2' is not valid"),
        ({"depth": "3"}, "unknown hyperparameter 'depth'"),
        ({"validation_fraction": "1"}, "validation_fraction must be at least 0 and below 1"),
        ({"validation_fraction": "lots"}, "validation_fraction='lots' is not valid"),
        ({"tracker_port": "70000"}, "tracker_port must be from 1 to 65535"),
        ({"connect_timeout": "-1"}, "connect_timeout must be positive"),
        ({"collective_timeout": "1.5"}, "collective_timeout='1.5' is not valid"),
        ({"secret": "vault://x"}, "unknown secret reference"),
        ({"target": ""}, "the job has no target"),
        ({"query": "SELECT 1"}, "exactly one of"),
        ({"max_depth": ["3"]}, "must be a string"),
    ],
)
def test_bad_settings_are_user_errors(hyperparameters: dict, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        load_job_config({**BASE, **hyperparameters}, env={})


def test_missing_source_names_both_ways_to_give_it() -> None:
    with pytest.raises(UserError, match="hyperparameter 'source' or as STAGELESS_SOURCE"):
        load_job_config({"table": "t", "target": "y"}, env={})


def test_resource_config_gives_rank_by_sorted_host_name() -> None:
    cluster = parse_resource_config(
        {"current_host": "algo-2", "hosts": ["algo-3", "algo-1", "algo-2"]}
    )
    assert cluster.hosts == ("algo-1", "algo-2", "algo-3")
    assert (cluster.rank, cluster.size, cluster.leader) == (1, 3, "algo-1")
    assert cluster.followers == ("algo-2", "algo-3")
    check_membership(cluster)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"current_host": "algo-1"}, "'hosts' must be a non-empty list"),
        ({"current_host": "algo-1", "hosts": []}, "'hosts' must be a non-empty list"),
        ({"current_host": "algo-1", "hosts": ["algo-1", "algo-1"]}, "lists a host twice"),
        ({"hosts": ["algo-1"]}, "'current_host' must be a host name"),
    ],
)
def test_malformed_resource_config(value: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_resource_config(value)


def test_current_host_must_be_listed() -> None:
    cluster = parse_resource_config({"current_host": "algo-9", "hosts": ["algo-1", "algo-2"]})
    assert cluster.leader == "algo-1"  # still known, so the host can tell it
    with pytest.raises(UserError, match="'algo-9' is not among the hosts algo-1, algo-2"):
        check_membership(cluster)


def test_json_files_are_read_with_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        read_json_object(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="is not valid JSON"):
        read_json_object(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(UserError, match="must hold a JSON object"):
        read_json_object(tmp_path / "list.json")


def test_failure_file_is_one_line_and_at_most_1024_bytes(tmp_path: Path) -> None:
    paths = ContainerPaths(tmp_path / "c", tmp_path / "m", tmp_path / "o")
    write_failure(paths, "first line\nsecond   line")
    assert paths.failure_file.read_text() == "first line second line\n"
    write_failure(paths, "é" * 2000)
    text = paths.failure_file.read_text().strip()
    assert len(text.encode()) <= MAX_FAILURE_BYTES
    assert set(text) == {"é"}  # cut on a character boundary
    assert [p.name for p in paths.output_dir.iterdir()] == ["failure"]


def test_job_hyperparameters_are_strings_checked_like_the_container_does() -> None:
    hp = job_hyperparameters(
        source="duckdb:///x.duckdb",
        table="t",
        target="y",
        secret="env://WH",
        validation_fraction=0.1,
        hyperparameters={"max_depth": "3"},
    )
    assert hp == {
        "source": "duckdb:///x.duckdb",
        "table": "t",
        "target": "y",
        "secret": "env://WH",
        "validation_fraction": "0.1",
        "max_depth": "3",
    }
    assert all(isinstance(v, str) for v in hp.values())
    assert load_job_config(json.loads(json.dumps(hp)), env={}).hyperparameters["max_depth"] == 3
    with pytest.raises(UserError, match="max_depth='x' is not valid"):
        job_hyperparameters(
            source="duckdb:x", table="t", target="y", hyperparameters={"max_depth": "x"}
        )
    with pytest.raises(UserError, match="unknown warehouse URL"):
        job_hyperparameters(source="mysql://h/db", table="t", target="y")
    with pytest.raises(UserError, match="target is given twice"):
        job_hyperparameters(
            source="duckdb:x", table="t", target="y", hyperparameters={"target": "z"}
        )
