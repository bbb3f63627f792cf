"""The training container's program, run as separate processes with their own folders and
host names (what SageMaker runs on each instance), against the real DuckDB housing table."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import xgboost as xgb

from stageless.artifacts import read_model_archive
from tests.conftest import RunCli
from tests.integration.sagemaker.conftest import Job, housing_job

pytestmark = pytest.mark.slow
ROWS = 20_640


PASSWORD = "Wh-Pa55-never-shown"
SECRET_ENV = {"WH_USERNAME": "trainer", "WH_PASSWORD": PASSWORD}


def _assert_secret_kept(hosts: dict) -> None:
    """The secret reference travels; its value is in no log, failure file or model."""
    for host in hosts.values():
        for path in host.root.rglob("*"):
            if path.is_file():
                assert PASSWORD.encode() not in path.read_bytes(), path


def test_two_hosts_train_one_model_on_the_first_host(job: Job, housing_db: str) -> None:
    job.env.update(SECRET_ENV)  # every host resolves the secret itself
    job.start_all(housing_job(housing_db, secret="env://WH"))
    hosts = job.wait(timeout=90)
    _assert_secret_kept(hosts)
    for host in hosts.values():
        assert host.code == 0, host.output
        assert host.failure is None
    leader, follower = hosts["algo-1"], hosts["algo-2"]
    assert sorted(p.name for p in leader.model_dir.iterdir()) == ["manifest.json", "xgboost-model"]
    assert list(follower.model_dir.iterdir()) == []  # only the first host writes

    manifest = json.loads((leader.model_dir / "manifest.json").read_text())
    data = manifest["data"]
    assert manifest["workers"] == 2
    assert data["rows_total"] == ROWS
    assert len(data["rows_per_worker"]) == 2
    assert sum(data["rows_per_worker"]) == ROWS  # every row exactly once, across hosts
    assert min(data["rows_per_worker"]) > 0
    assert data["rows_train"] + data["rows_validation"] == ROWS
    assert manifest["hyperparameters"]["num_round"] == 20
    booster = xgb.Booster()
    booster.load_model(bytearray((leader.model_dir / "xgboost-model").read_bytes()))
    assert booster.num_boosted_rounds() == 20
    # Each host read its own shard (its own progress line), and only one host trained the
    # metric report.
    assert "worker 1/2 read" in leader.output and "worker 2/2 read" in follower.output
    assert "validation rmse=" in leader.output


def test_local_runs_three_instances_and_packs_model_tar_gz(
    run_cli: RunCli, housing_db: str, tmp_path: Path
) -> None:
    result = run_cli(
        "sagemaker", "local", "--instance-count", "3", "--output", "out",
        "--job-dir", "job", "--source", housing_db, "--table", "california_housing",
        "--target", "medhouseval", "--hp", "num_round=10",
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert "instances=3" in result.stdout
    for host in ("algo-1", "algo-2", "algo-3"):  # each instance had its own folders
        config = json.loads(
            (tmp_path / "job" / host / "input/config/resourceconfig.json").read_text()
        )
        assert config["current_host"] == host
        assert f"{host} | " in result.stderr
    model, manifest = read_model_archive(tmp_path / "out" / "model.tar.gz")
    assert manifest.workers == 3
    assert manifest.target == "MedHouseVal"
    assert manifest.data.rows_total == ROWS
    assert sum(manifest.data.rows_per_worker) == ROWS
    assert len(manifest.data.rows_per_worker) == 3
    assert manifest.data.rows_train + manifest.data.rows_validation == ROWS
    assert model.startswith(b"{")  # JSON booster, never a pickle


def _assert_all_failed(hosts: dict, *, within: float, code: int | None = None) -> None:
    for host in hosts.values():
        assert host.code not in (0, None), host.output
        if code is not None:
            assert host.code == code, host.output
        assert host.failure, f"{host.name} wrote no failure file:\n{host.output}"
        assert "\n" not in host.failure
        assert "Traceback" not in host.output
        assert host.seconds < within, f"{host.name} took {host.seconds:.1f}s"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"max_depth": "deep"}, "max_depth='deep' is not valid"),
        ({"num_round": "1.5"}, "num_round='1.5' is not valid"),
        ({"validation_fraction": "lots"}, "validation_fraction='lots' is not valid"),
        ({"target": None}, "the job has no target"),
        ({"source": None}, "the job has no source"),
        ({"query": "SELECT 1"}, "exactly one of"),
    ],
    ids=["hp-not-an-int", "hp-not-integral", "setting-not-a-number", "no-target", "no-source",
         "table-and-query"],
)  # fmt: skip
def test_bad_settings_fail_every_host(job: Job, housing_db: str, change: dict, reason: str) -> None:
    hp = {k: v for k, v in {**housing_job(housing_db), **change}.items() if v is not None}
    job.start_all(hp)
    hosts = job.wait_each(timeout=30)
    _assert_all_failed(hosts, within=15, code=2)
    for host in hosts.values():
        assert reason in host.failure


def test_planning_error_on_the_first_host_reaches_the_others(job: Job, housing_db: str) -> None:
    job.env.update(SECRET_ENV)
    job.start_all(housing_job(housing_db, target="price", secret="env://WH"))
    hosts = job.wait_each(timeout=30)
    _assert_all_failed(hosts, within=15, code=2)
    _assert_secret_kept(hosts)
    assert "target column 'price' not found" in hosts["algo-1"].failure
    assert hosts["algo-2"].failure.startswith("host algo-1 failed: target column 'price'")


def test_resourceconfig_without_the_current_host_fails_the_job(job: Job, housing_db: str) -> None:
    # The first host waits up to connect_timeout for algo-2 to hear of the failure: algo-2
    # never shows up under that name.
    hp = housing_job(housing_db, connect_timeout="4")
    job.start("algo-1", hp)
    job.start("algo-2", hp, resource_config={"current_host": "algo-9", "hosts": job.hosts})
    hosts = job.wait_each(timeout=30)
    _assert_all_failed(hosts, within=15, code=2)
    assert "current_host 'algo-9' is not among the hosts" in hosts["algo-2"].failure
    assert hosts["algo-1"].failure.startswith("host algo-9 failed: ")


def test_unreachable_first_host_fails_in_bounded_time(job: Job, housing_db: str) -> None:
    job.start("algo-2", housing_job(housing_db), env={"STAGELESS_CONNECT_TIMEOUT": "3"})
    hosts = job.wait_each(timeout=30)
    _assert_all_failed(hosts, within=12)
    assert "cannot reach the first host algo-1" in hosts["algo-2"].failure


def test_host_that_never_comes_fails_the_first_host(job: Job, housing_db: str) -> None:
    job.start("algo-1", housing_job(housing_db), env={"STAGELESS_CONNECT_TIMEOUT": "3"})
    hosts = job.wait_each(timeout=30)
    _assert_all_failed(hosts, within=12)
    assert "host algo-2 failed: it did not contact the first host within 3s" in (
        hosts["algo-1"].failure
    )


def test_unresolvable_host_names_fail_in_bounded_time(job: Job, housing_db: str) -> None:
    # No address mapping: the names must resolve, and here they never do.
    job.env.pop("STAGELESS_LEADER_ADDRESS")
    hp = housing_job(housing_db, connect_timeout="2")
    job.hosts = ["algo-1.invalid", "algo-2.invalid"]
    job.start_all(hp)
    hosts = job.wait_each(timeout=30)
    _assert_all_failed(hosts, within=12)
    for host in hosts.values():
        assert "'algo-1.invalid' did not resolve" in host.failure


def _wait_for(host, text: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while text not in host.output:
        if host.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{host.name} never printed {text!r}:\n{host.output}")
        time.sleep(0.05)


def test_a_host_that_dies_mid_training_fails_the_others_promptly(job: Job, housing_db: str) -> None:
    job.hosts = ["algo-1", "algo-2", "algo-3"]
    leader, _, victim = job.start_all(housing_job(housing_db, num_round="100000"))
    _wait_for(leader, "round 1/")  # the collective is up and training
    victim.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    hosts = job.wait_each(timeout=40)
    survivors = {k: v for k, v in hosts.items() if k != "algo-3"}
    _assert_all_failed(survivors, within=60)
    for host in survivors.values():
        assert host.ended is not None and host.ended - killed < 8, host.output
        # Whichever noticed first: the collective broke (here, or on the other survivor,
        # which told the board), or the leader saw algo-3's board connection close.
        assert "XGBoostError: " in host.failure or host.failure.startswith(
            "host algo-3 failed: it disconnected from the first host"
        ), host.failure


def test_a_host_that_hangs_is_noticed(job: Job, housing_db: str) -> None:
    job.env["STAGELESS_LOST_AFTER"] = "2"
    leader, follower = job.start_all(housing_job(housing_db, num_round="100000"))
    _wait_for(leader, "round 1/")
    follower.proc.send_signal(signal.SIGSTOP)  # alive but silent, e.g. a frozen instance
    try:
        leader.proc.wait(timeout=20)
        leader.ended = time.monotonic()
    finally:
        follower.proc.send_signal(signal.SIGCONT)
    hosts = job.wait_each(timeout=30)
    _assert_all_failed(hosts, within=40)
    assert "host algo-2 failed: it fell silent for more than 2s" in hosts["algo-1"].failure


def test_one_host_job_writes_the_model(job: Job, housing_db: str) -> None:
    job.hosts = ["algo-1"]
    job.start("algo-1", housing_job(housing_db, features="MedInc,HouseAge"))
    host = job.wait(timeout=60)["algo-1"]
    assert host.code == 0, host.output
    _, manifest = read_model_archive(host.model_dir)
    assert manifest.features == ["MedInc", "HouseAge"]
    assert manifest.data.rows_per_worker == [ROWS]


def test_hosts_read_postgres_at_the_first_hosts_snapshot(job: Job, pg_housing) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL: the first host exports its snapshot in the plan and the other hosts
    adopt it, so every host reads the same rows (the count is checked across hosts)."""
    server = pg_housing
    job.env.update(server.secret_env("PGJOB"))
    job.start_all(
        {
            "source": server.url(with_password=False),
            "secret": "env://PGJOB",
            "table": "california_housing",
            "target": "MedHouseVal",
            "num_round": "5",
        }
    )
    hosts = job.wait(timeout=90)
    for host in hosts.values():
        assert host.code == 0, host.output
        for path in host.root.rglob("*"):
            if path.is_file():
                assert server.password.encode() not in path.read_bytes(), path
    _, manifest = read_model_archive(hosts["algo-1"].model_dir)
    assert manifest.data.rows_total == ROWS
    assert sum(manifest.data.rows_per_worker) == ROWS
    assert manifest.data.snapshot
