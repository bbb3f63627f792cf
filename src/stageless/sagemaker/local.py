"""``stageless sagemaker local``: a training job as N local "instances", without Docker.

Each instance is the container's own program (``stageless sagemaker train``) in its own
process, with its own ``/opt/ml``-like folders under the job folder (``algo-1/input/
config``, ``algo-1/model``, ``algo-1/output``, ...) and its own host name in
``resourceconfig.json``. Host names are mapped to this machine by telling every
instance the first host's address (``STAGELESS_LEADER_ADDRESS=127.0.0.1``), and the
ports are free ones, so several local jobs can run at once. At the end the first host's
model directory is packed as model.tar.gz, as SageMaker does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from stageless.errors import UserError, WorkerFailed
from stageless.sagemaker.container import LEADER_ADDRESS_ENV, NTHREAD_ENV
from stageless.sagemaker.contract import ContainerPaths, env_name
from stageless.storage import is_s3_url
from stageless.warehouses.registry import redact_url

if TYPE_CHECKING:
    from stageless.manifest import Manifest

#: the most local instances (each is a full process with its own share of the cores)
MAX_INSTANCES = 16
#: after the first host fails, how long the others get to fail on their own
_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class LocalResult:
    manifest: Manifest
    model: str  # where model.tar.gz went


def host_names(count: int) -> list[str]:
    return [f"algo-{i}" for i in range(1, count + 1)]


def prepare_host(job_dir: Path, host: str, hosts: list[str], hp: Mapping[str, str]) -> Path:
    """One instance's folder tree, laid out as SageMaker lays out /opt/ml."""
    root = job_dir / host
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (root / "model").mkdir(exist_ok=True)
    (root / "output").mkdir(exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(dict(hp), indent=2))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": host, "hosts": hosts, "network_interface_name": "lo"})
    )
    return root


def container_env(root: Path) -> dict[str, str]:
    """The SageMaker toolkit's variables pointing one instance at its folders."""
    return {
        "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DIR": str(root / "output"),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _relay(host: str, stream: IO[bytes], out: IO[str]) -> None:
    """Each instance's output, prefixed with its host name (like `docker compose`)."""
    for raw in stream:
        out.write(f"{host} | {raw.decode(errors='replace').rstrip()}\n")
        out.flush()


@contextlib.contextmanager
def _job_folder(job_dir: str | None) -> Iterator[Path]:
    if job_dir is not None:
        path = Path(job_dir).expanduser().absolute()
        if path.exists() and any(path.iterdir()):
            raise UserError(f"--job-dir {job_dir} is not empty; give a new or empty folder")
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    tmp = Path(tempfile.mkdtemp(prefix="stageless-local-job-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_local_job(
    *,
    instance_count: int,
    hyperparameters: Mapping[str, str],
    output: str,
    job_dir: str | None = None,
    timeout: float | None = None,
    log: IO[str] | None = None,
) -> LocalResult:
    """Run the training container's program as INSTANCE_COUNT local processes."""
    if not 1 <= instance_count <= MAX_INSTANCES:
        raise UserError(f"--instance-count must be from 1 to {MAX_INSTANCES}")
    source = hyperparameters.get("source", "")
    if redact_url(source) != source:
        # hyperparameters.json is a file on disk, as in a real job's description.
        raise UserError(
            "--source carries a credential, which would be written to hyperparameters.json; "
            "give the credentials with --secret instead"
        )
    if not is_s3_url(output):
        out = Path(output)
        if out.exists() and not out.is_dir():
            raise UserError(f"--output {output} exists and is not a directory")
    else:
        from stageless.storage import output_object

        output_object(output)
    log = log or sys.stderr
    hosts = host_names(instance_count)
    with _job_folder(job_dir) as folder:
        roots = [prepare_host(folder, h, hosts, hyperparameters) for h in hosts]
        shared = {
            LEADER_ADDRESS_ENV: "127.0.0.1",
            env_name("tracker_port"): str(_free_port()),
            env_name("coordinator_port"): str(_free_port()),
            NTHREAD_ENV: str(max(1, (os.cpu_count() or 1) // instance_count)),
        }
        codes = _run_hosts(hosts, roots, shared, timeout, log)
        if any(codes):
            raise _job_failure(hosts, roots, codes)
        return _pack(roots[0], output)


def _run_hosts(
    hosts: list[str],
    roots: list[Path],
    shared: dict[str, str],
    timeout: float | None,
    log: IO[str],
) -> list[int]:
    """Start every instance, wait for all; a straggler is killed after a failure's grace
    period (the instances normally stop on their own within seconds)."""
    procs: list[subprocess.Popen[bytes]] = []
    relays: list[threading.Thread] = []
    try:
        for host, root in zip(hosts, roots, strict=True):
            proc = subprocess.Popen(
                [sys.executable, "-m", "stageless", "sagemaker", "train"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, **shared, **container_env(root)},
            )
            procs.append(proc)
            assert proc.stdout is not None
            relay = threading.Thread(target=_relay, args=(host, proc.stdout, log), daemon=True)
            relay.start()
            relays.append(relay)
        started = time.monotonic()
        first_failure: float | None = None
        while any(p.poll() is None for p in procs):
            now = time.monotonic()
            if first_failure is None and any(p.poll() not in (None, 0) for p in procs):
                first_failure = now
            if first_failure is not None and now - first_failure > _GRACE_SECONDS:
                break
            if timeout is not None and now - started > timeout:
                raise WorkerFailed(f"the local job did not finish within {timeout:g}s")
            time.sleep(0.1)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait()
        for relay in relays:
            relay.join(timeout=5)
    return [int(p.returncode) for p in procs]


def _job_failure(hosts: list[str], roots: list[Path], codes: list[int]) -> WorkerFailed:
    """The job's error: the earliest failure file (the origin; the others relay it)."""
    reasons: list[tuple[int, str, str, int]] = []
    for host, root, code in zip(hosts, roots, codes, strict=True):
        failure = ContainerPaths.from_env(container_env(root)).failure_file
        if failure.exists():
            text = failure.read_text().strip()
            reasons.append((failure.stat().st_mtime_ns, host, text, code if code > 0 else 1))
    if not reasons:
        failed = [f"{h} (exit code {c})" for h, c in zip(hosts, codes, strict=True) if c]
        return WorkerFailed(f"the local job failed on {', '.join(failed)} without a reason")
    _, host, text, code = min(reasons)
    return WorkerFailed(f"the local job failed on {host}: {text}", exit_code=code)


def _pack(leader_root: Path, output: str) -> LocalResult:
    """model.tar.gz from the first host's model directory, as SageMaker packs it."""
    from stageless.artifacts import read_model_archive
    from stageless.storage import save_archive

    model, manifest = read_model_archive(leader_root / "model")
    return LocalResult(manifest=manifest, model=save_archive(output, model, manifest))
