"""``stageless sagemaker train``: the training container's program, one per host.

Every host runs this same program. Rank = index of ``current_host`` in the sorted hosts.
The first host (rank 0, the leader) plans the job, serves the plan to the others (see
:mod:`stageless.sagemaker.coordination`), runs XGBoost's tracker on a fixed port and
finally writes ``xgboost-model`` and ``manifest.json`` into the model directory, which
SageMaker packs as model.tar.gz. Each host reads only its own shard straight from the
warehouse and trains through XGBoost's collective, exactly as local workers do.

On any failure each host writes a short reason to ``output/failure`` and exits non-zero,
within a bounded time: failures travel through the leader's job board.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, NoReturn

from stageless._startup import exit_now
from stageless.errors import StagelessError, describe
from stageless.sagemaker.contract import (
    Cluster,
    ContainerPaths,
    JobConfig,
    check_membership,
    load_job_config,
    parse_resource_config,
    read_json_object,
    write_failure,
)

#: Local mode: the address of the first host, instead of resolving its name.
LEADER_ADDRESS_ENV = "STAGELESS_LEADER_ADDRESS"
#: Local mode: threads per host (N local hosts share one machine's cores).
NTHREAD_ENV = "STAGELESS_NTHREAD"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def local_threads() -> int:
    """Each host trains with all its cores, unless told otherwise (local mode)."""
    given = os.environ.get(NTHREAD_ENV, "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Guard:
    """Ends the process on the first failure, from whichever thread sees it first:
    failure file, then tell the others (board or leader), then exit."""

    def __init__(self, paths: ContainerPaths) -> None:
        self.paths = paths
        self.lock = threading.Lock()
        self.host = "?"
        self.board: Any = None  # the leader's JobBoard
        self.client: Any = None  # a follower's BoardClient
        self.linger = 10.0
        self.hidden: list[str] = []  # never shown, even if a driver's message quotes it

    def hide_credentials_of(self, url: str) -> None:
        """A source URL should carry no password (use a secret); if it does, keep it out
        of the failure file and the log anyway."""
        from urllib.parse import unquote, urlsplit

        try:
            password = urlsplit(url).password
        except ValueError:
            return
        if password:
            self.hidden += [password, unquote(password)]

    def fail(self, exc: BaseException) -> NoReturn:
        from stageless.sagemaker.coordination import PeerFailed

        if not self.lock.acquire(blocking=False):
            while True:  # another thread is already failing; it ends the process
                time.sleep(60)
        if isinstance(exc, StagelessError):
            message, code = exc.message, exc.exit_code
        else:
            message, code = describe(exc), 1
        for hidden in self.hidden:
            message = message.replace(hidden, "***")
        try:
            _log(f"error: {message}")
            write_failure(self.paths, message)
            if self.board is not None:
                # The first failure recorded wins (a follower's may already be there).
                if isinstance(exc, PeerFailed):
                    self.board.fail(exc.host, exc.reason, code)
                else:
                    self.board.fail(self.host, message, code)
                self.board.wait_until_told(self.linger)
            elif self.client is not None and not isinstance(exc, PeerFailed):
                self.client.report_failure(message, code, timeout=self.linger)
        finally:
            exit_now(code)


def main() -> NoReturn:
    """The container's ``train`` program."""
    from stageless._startup import skip_unused_imports

    skip_unused_imports()
    paths = ContainerPaths.from_env()
    guard = Guard(paths)
    try:
        config = load_job_config(read_json_object(paths.hyperparameters_file))
        guard.hide_credentials_of(config.source)
        guard.linger = min(config.connect_timeout, 30.0)
        cluster = parse_resource_config(
            read_json_object(paths.resource_config_file), str(paths.resource_config_file)
        )
        guard.host = cluster.current_host
        try:
            check_membership(cluster, str(paths.resource_config_file))
        except StagelessError:
            _tell_leader(guard, config, cluster)
            raise
        if paths.failure_file.exists():
            paths.failure_file.unlink()  # from an earlier attempt in the same folders
        _log(
            f"stageless: host {cluster.current_host} is rank {cluster.rank} of "
            f"{cluster.size} (first host {cluster.leader}); settings {describe_config(config)}"
        )
        if cluster.size == 1:
            _run_alone(config, paths)
        elif cluster.rank == 0:
            _run_leader(config, cluster, paths, guard)
        else:
            _run_follower(config, cluster, guard)
    except BaseException as exc:
        guard.fail(exc)
    exit_now(0)


def _tell_leader(guard: Guard, config: JobConfig, cluster: Cluster) -> None:
    """A host that cannot take part still tells the leader, so the job fails promptly."""
    from stageless.sagemaker.coordination import BoardClient, resolve_host

    if cluster.current_host == cluster.leader:
        return
    try:
        address = os.environ.get(LEADER_ADDRESS_ENV) or resolve_host(
            cluster.leader, time.monotonic() + min(config.connect_timeout, 10.0)
        )
    except StagelessError:
        return
    guard.client = BoardClient(cluster.leader, address, config.coordinator_port, guard.host)


def _reporter(cluster_size: int) -> Any:
    from stageless.training.events import Reporter

    return Reporter(cluster_size)


def _plan(config: JobConfig, warehouse: Any, workers: int, output: str) -> Any:
    from stageless.training.coordinator import plan_training

    return plan_training(
        warehouse,
        table=config.table,
        query=config.query,
        target=config.target,
        features=list(config.features) if config.features else None,
        exclude=list(config.exclude),
        workers=workers,
        validation_fraction=config.validation_fraction,
        split_key=config.split_key,
        hyperparameters=config.hyperparameters,
        output=output,
        secret=config.secret,
        **({"batch_rows": config.batch_rows} if config.batch_rows else {}),
    )


def _save_into(paths: ContainerPaths) -> Any:
    from stageless.artifacts import write_model_directory

    def save(model: bytes, manifest: Any) -> str:
        write_model_directory(paths.model_dir, model, manifest)
        return str(paths.model_dir)

    return save


def _summary(manifest: Any) -> None:
    data = manifest.data
    shown = "validation" if manifest.metrics.get("validation") else "train"
    metric = "  ".join(f"{k}={v:.5f}" for k, v in manifest.metrics[shown].items())
    _log(
        f"{shown} {metric}  rows={data.rows_total:,} (train {data.rows_train:,}, "
        f"validation {data.rows_validation:,}, dropped {data.rows_dropped_null_target:,})  "
        f"hosts={manifest.workers}"
    )


def _run_alone(config: JobConfig, paths: ContainerPaths) -> None:
    from stageless.training.reading import read_shard
    from stageless.training.worker import train_on_shard
    from stageless.warehouses import open_warehouse

    sink = _reporter(1)
    with open_warehouse(config.source, read_only=True, secret=config.secret) as warehouse:
        plan = _plan(config, warehouse, 1, str(paths.model_dir))
        plan = plan.model_copy(update={"nthread": local_threads()})
        shard = read_shard(plan, 0, sink, warehouse)
        manifest = train_on_shard(plan, 0, shard, sink, save=_save_into(paths))
    _summary(manifest)


def _communicator(address: str, port: int, rank: int, config: JobConfig) -> Any:
    from xgboost import collective

    return collective.CommunicatorContext(
        dmlc_tracker_uri=address,
        dmlc_tracker_port=port,
        dmlc_task_id=f"{rank:06d}",
        dmlc_timeout=config.collective_timeout,
        dmlc_retry=10,
    )


def _check_rank(rank: int) -> None:
    from xgboost import collective

    if collective.get_rank() != rank:
        raise RuntimeError(f"the tracker gave rank {collective.get_rank()} to rank {rank}")


def _run_leader(config: JobConfig, cluster: Cluster, paths: ContainerPaths, guard: Guard) -> None:
    from stageless.sagemaker.coordination import JobBoard, PeerFailed, resolve_host, start_tracker

    deadline = time.monotonic() + config.connect_timeout
    override = os.environ.get(LEADER_ADDRESS_ENV)
    address = override or resolve_host(cluster.leader, deadline)
    bind = override or "0.0.0.0"  # noqa: S104 - the job's own network; the hosts must reach it
    board = JobBoard(cluster.followers, bind, config.coordinator_port, deadline)
    guard.board = board
    tracker = start_tracker(
        bind, config.tracker_port, cluster.size, config.collective_timeout, deadline
    )

    def watch() -> None:  # a follower failed, never came, or fell silent: fail the job
        while True:
            time.sleep(0.2)
            problem = board.problem(config.connect_timeout, config.lost_after)
            if problem is not None:
                guard.fail(PeerFailed(problem.host, problem.message, problem.exit_code))

    threading.Thread(target=watch, daemon=True).start()

    from stageless.training.reading import read_shard
    from stageless.training.worker import train_on_shard
    from stageless.warehouses import open_warehouse

    sink = _reporter(cluster.size)
    # The planning connection stays open until training ends: for DuckDB its read lock
    # is what keeps the view every host reads the same.
    with open_warehouse(config.source, read_only=True, secret=config.secret) as warehouse:
        plan = _plan(config, warehouse, cluster.size, str(paths.model_dir))
        board.publish(plan.model_dump_json(), config.tracker_port)
        _log(
            f"planned {plan.rows_expected:,} rows of {len(plan.features)} features "
            f"for {cluster.size} hosts; the plan is on port {config.coordinator_port}"
        )
        plan = plan.model_copy(update={"nthread": local_threads()})
        shard = read_shard(plan, 0, sink, warehouse)
        with _communicator(address, config.tracker_port, 0, config):
            _check_rank(0)
            manifest = train_on_shard(plan, 0, shard, sink, save=_save_into(paths))
    tracker.wait_for(timeout=max(60, int(config.lost_after)))
    _summary(manifest)


def _run_follower(config: JobConfig, cluster: Cluster, guard: Guard) -> None:
    from stageless.sagemaker.coordination import BoardClient, Heartbeat, resolve_host
    from stageless.training.plan import TrainPlan

    deadline = time.monotonic() + config.connect_timeout
    address = os.environ.get(LEADER_ADDRESS_ENV) or resolve_host(cluster.leader, deadline)
    client = BoardClient(cluster.leader, address, config.coordinator_port, cluster.current_host)
    guard.client = client
    remaining = max(1.0, deadline - time.monotonic())
    offer = client.wait_for_plan(remaining, config.lost_after)
    plan = TrainPlan.model_validate(offer["plan"])
    tracker_port = int(offer["tracker_port"])
    if plan.workers != cluster.size:
        raise RuntimeError(f"the first host planned for {plan.workers} hosts, not {cluster.size}")
    plan = plan.model_copy(update={"nthread": local_threads()})
    _connect_as_configured(config, plan.source)
    heartbeat = Heartbeat(client, config.lost_after, guard.fail).start()

    from stageless.training.reading import read_shard
    from stageless.training.worker import train_on_shard

    rank = cluster.rank
    sink = _reporter(cluster.size)
    shard = read_shard(plan, rank, sink)
    with _communicator(address, tracker_port, rank, config):
        _check_rank(rank)
        train_on_shard(plan, rank, shard, sink)
        client.report_finished()
        heartbeat.finish()
    _log(f"host {cluster.current_host} finished")


def _connect_as_configured(config: JobConfig, planned: str) -> None:
    """The plan's source URL is redacted. Should this host's own settings hold the same
    URL with a password (better given as a secret), read with that, as a local worker
    does: through this process's environment, never the plan or a log."""
    from stageless.training.launcher import SOURCE_ENV
    from stageless.warehouses import redact_url

    if config.source != planned and redact_url(config.source) == planned:
        os.environ[SOURCE_ENV] = config.source


def describe_config(config: JobConfig) -> str:
    """The settings, as logged (the secret as its reference only)."""
    from stageless.warehouses import redact_url

    shown = {k: v for k, v in config.__dict__.items() if v not in (None, (), {})}
    shown["source"] = redact_url(config.source)
    return json.dumps(shown, default=str)
