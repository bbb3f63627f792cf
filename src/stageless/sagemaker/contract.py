"""SageMaker's training-container contract: where the files are and what the job asks for.

SageMaker gives the container ``/opt/ml/input/config/hyperparameters.json`` (every value
a string), ``/opt/ml/input/config/resourceconfig.json`` (``current_host``, ``hosts``),
``/opt/ml/model`` (packed into model.tar.gz after the job) and ``/opt/ml/output/failure``
(the job's failure reason). The SageMaker toolkit's ``SM_INPUT_CONFIG_DIR``,
``SM_MODEL_DIR`` and ``SM_OUTPUT_DIR`` move them (tests point them at temporary folders).
Job settings come from hyperparameters or, failing that, ``STAGELESS_<NAME>`` variables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stageless.errors import UserError

ROOT = Path("/opt/ml")
#: SageMaker's limit on a failure reason; longer ones are cut.
MAX_FAILURE_BYTES = 1024


@dataclass(frozen=True)
class ContainerPaths:
    config_dir: Path
    model_dir: Path
    output_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ContainerPaths:
        env = os.environ if env is None else env
        return cls(
            config_dir=Path(env.get("SM_INPUT_CONFIG_DIR") or ROOT / "input" / "config"),
            model_dir=Path(env.get("SM_MODEL_DIR") or ROOT / "model"),
            output_dir=Path(env.get("SM_OUTPUT_DIR") or ROOT / "output"),
        )

    @property
    def hyperparameters_file(self) -> Path:
        return self.config_dir / "hyperparameters.json"

    @property
    def resource_config_file(self) -> Path:
        return self.config_dir / "resourceconfig.json"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"


def read_json_object(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; is this running as a SageMaker job?") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} must hold a JSON object")
    return value


def write_failure(paths: ContainerPaths, message: str) -> None:
    """The reason SageMaker shows for a failed job: one line, at most 1024 bytes.

    Callers pass stageless's own error messages, which never contain a credential.
    """
    text = " ".join(message.split()) or "training failed"
    data = text.encode()[:MAX_FAILURE_BYTES].decode(errors="ignore")
    paths.output_dir.mkdir(parents=True, exist_ok=True)
    partial = paths.output_dir / ".failure.partial"
    partial.write_text(data + "\n")
    os.replace(partial, paths.failure_file)


# -- resourceconfig.json ----------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """The job's hosts, sorted: rank = index of the current host; rank 0 leads."""

    current_host: str
    hosts: tuple[str, ...]

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def leader(self) -> str:
        return self.hosts[0]

    @property
    def followers(self) -> tuple[str, ...]:
        return self.hosts[1:]


def parse_resource_config(value: Mapping[str, Any], where: str = "resourceconfig.json") -> Cluster:
    """The hosts, even when the current host is not among them (see
    :func:`check_membership`): such a host can still tell the leader why it is failing."""
    hosts = value.get("hosts")
    current = value.get("current_host")
    if (
        not isinstance(hosts, list)
        or not hosts
        or not all(isinstance(h, str) and h.strip() for h in hosts)
    ):
        raise UserError(f"{where}: 'hosts' must be a non-empty list of host names")
    if len(set(hosts)) != len(hosts):
        raise UserError(f"{where}: 'hosts' lists a host twice")
    if not isinstance(current, str) or not current.strip():
        raise UserError(f"{where}: 'current_host' must be a host name")
    return Cluster(current_host=current, hosts=tuple(sorted(hosts)))


def check_membership(cluster: Cluster, where: str = "resourceconfig.json") -> None:
    if cluster.current_host not in cluster.hosts:
        raise UserError(
            f"{where}: current_host {cluster.current_host!r} is not among the hosts "
            f"{', '.join(cluster.hosts)}"
        )


# -- hyperparameters.json ---------------------------------------------------------------

#: Job settings (everything else in hyperparameters.json is an XGBoost hyperparameter).
JOB_SETTINGS: dict[str, type] = {
    "source": str,
    "table": str,
    "query": str,
    "target": str,
    "secret": str,
    "features": str,
    "exclude": str,
    "validation_fraction": float,
    "split_key": str,
    "batch_rows": int,
}
#: How the hosts find each other and how long they wait (seconds).
RUNTIME_SETTINGS: dict[str, type] = {
    "tracker_port": int,
    "coordinator_port": int,
    "connect_timeout": float,
    "collective_timeout": int,
    "lost_after": float,
}
SETTINGS = {**JOB_SETTINGS, **RUNTIME_SETTINGS}
#: Keys SageMaker's own SDKs add to hyperparameters; not ours to interpret.
_IGNORED_PREFIXES = ("sagemaker_", "_")


def env_name(setting: str) -> str:
    return f"STAGELESS_{setting.upper()}"


@dataclass(frozen=True)
class JobConfig:
    source: str
    target: str
    table: str | None = None
    query: str | None = None
    secret: str | None = None
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    validation_fraction: float = 0.25
    split_key: str | None = None
    batch_rows: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    tracker_port: int = 9099
    coordinator_port: int = 9098
    #: how long a host waits for the others to come up (and names to resolve)
    connect_timeout: float = 600.0
    #: XGBoost's timeout for forming the group (covers the slowest read) and per operation
    collective_timeout: int = 1800
    #: a peer silent for this long is taken for dead
    lost_after: float = 60.0


def _typed(name: str, raw: str, kind: type) -> Any:
    try:
        value = kind(raw)
    except ValueError:
        noun = {int: "an integer", float: "a number"}.get(kind, "a value")
        raise UserError(f"setting {name}={raw!r} is not valid: it must be {noun}") from None
    return value


def load_job_config(
    hyperparameters: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> JobConfig:
    """Split hyperparameters.json into job settings and XGBoost hyperparameters, and check
    both before anything is read. A setting missing there is taken from STAGELESS_<NAME>."""
    from stageless.identifiers import split_list
    from stageless.secrets import scheme_of_secret
    from stageless.training.hyperparams import parse_hyperparameters

    env = os.environ if env is None else env
    settings: dict[str, str] = {}
    xgboost: dict[str, str] = {}
    for key, value in hyperparameters.items():
        if value is None or isinstance(value, dict | list):
            raise UserError(f"hyperparameter {key!r} must be a string")
        text = str(value).strip()
        if key in SETTINGS:
            if text:
                settings[key] = text
        elif not key.startswith(_IGNORED_PREFIXES):
            xgboost[key] = text
    for name in SETTINGS:
        if name not in settings and (env.get(env_name(name)) or "").strip():
            settings[name] = env[env_name(name)].strip()

    for name in ("source", "target"):
        if name not in settings:
            raise UserError(
                f"the job has no {name}: give it as hyperparameter {name!r} or as {env_name(name)}"
            )
    if ("table" in settings) == ("query" in settings):
        raise UserError("give exactly one of the hyperparameters 'table' or 'query'")
    typed: dict[str, Any] = {
        name: _typed(name, settings[name], kind)
        for name, kind in SETTINGS.items()
        if name in settings and kind is not str
    }
    fraction = typed.get("validation_fraction", 0.25)
    if not 0 <= fraction < 1:
        raise UserError(f"validation_fraction must be at least 0 and below 1, not {fraction}")
    for port in ("tracker_port", "coordinator_port"):
        if port in typed and not 1 <= typed[port] <= 65535:
            raise UserError(f"{port} must be from 1 to 65535, not {typed[port]}")
    for name in ("connect_timeout", "collective_timeout", "lost_after", "batch_rows"):
        if name in typed and typed[name] <= 0:
            raise UserError(f"{name} must be positive, not {typed[name]}")
    if "secret" in settings:
        scheme_of_secret(settings["secret"])  # a malformed reference fails now
    features = split_list(settings.get("features"))
    return JobConfig(
        source=settings["source"],
        target=settings["target"],
        table=settings.get("table"),
        query=settings.get("query"),
        secret=settings.get("secret"),
        features=tuple(features) or None,
        exclude=tuple(split_list(settings.get("exclude"))),
        split_key=settings.get("split_key"),
        hyperparameters=parse_hyperparameters(xgboost),
        **typed,
    )


def job_hyperparameters(
    *,
    source: str,
    target: str,
    table: str | None = None,
    query: str | None = None,
    secret: str | None = None,
    features: str | None = None,
    exclude: str | None = None,
    validation_fraction: float | None = None,
    split_key: str | None = None,
    hyperparameters: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The train options as SageMaker hyperparameters (all strings), checked on the way
    exactly as the container will check them. A secret travels as its reference only."""
    given = {
        "source": source,
        "target": target,
        "table": table,
        "query": query,
        "secret": secret,
        "features": features,
        "exclude": exclude,
        "validation_fraction": None if validation_fraction is None else repr(validation_fraction),
        "split_key": split_key,
    }
    out = {k: str(v) for k, v in given.items() if v is not None and str(v).strip()}
    for key, value in (hyperparameters or {}).items():
        if key in out:
            raise UserError(f"{key} is given twice (as an option and as --hp {key}=...)")
        out[key] = str(value)
    load_job_config(out, env={})  # the same checks the container makes
    from stageless.warehouses.registry import scheme_of

    scheme_of(source)  # a warehouse stageless knows, before a job is started for it
    return out
