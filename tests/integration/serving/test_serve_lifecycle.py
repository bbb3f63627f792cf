"""Starting and stopping `stageless serve`: bad models fail at start-up, SIGTERM stops cleanly."""

from __future__ import annotations

import io
import json
import re
import socket
import tarfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import xgboost as xgb

from stageless.artifacts import open_model, write_model_directory
from tests.conftest import RunCli
from tests.integration.conftest import free_port
from tests.integration.serving.conftest import StartServer

ROW = b"8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23\n"
CSV = {"Content-Type": "text/csv"}


def _port_is_free(port: int) -> bool:
    """Nothing listens there (connections left in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_sigterm_finishes_the_request_in_flight_then_exits_0(
    housing_model: Path, start_server: StartServer, booster: xgb.Booster
) -> None:
    server = start_server(housing_model)
    port = int(server.url.rsplit(":", 1)[1])
    # A request whose body is still arriving when SIGTERM comes: it must still be answered.
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            + f"Content-Length: {len(ROW)}\r\n\r\n".encode()
            + ROW[:10]
        )
        time.sleep(0.3)
        server.proc.send_signal(15)
        time.sleep(0.5)
        assert server.proc.poll() is None, "stopped before the request in flight was answered"
        conn.sendall(ROW[10:])
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    row = np.array([[float(v) for v in ROW.split(b",")]], dtype=np.float32)
    assert json.loads(body)["predictions"] == booster.inplace_predict(row).tolist()
    assert server.proc.wait(timeout=20) == 0
    log = server.log_text()
    assert "stopped" in log
    assert "Traceback" not in log
    assert _port_is_free(port)


def test_several_workers_share_the_port_and_all_stop(
    housing_model: Path, start_server: StartServer
) -> None:
    server = start_server(housing_model, "--workers", "2")
    with httpx.Client() as http:
        for _ in range(20):
            response = http.post(f"{server.url}/invocations", content=ROW, headers=CSV)
            assert response.status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = set(re.findall(r"Started server process \[(\d+)\]", server.log_text()))
        if len(children) == 2:
            break
        time.sleep(0.1)
    assert len(children) == 2, server.log_text()
    assert server.stop() == 0
    for pid in children:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the server"
    assert "Traceback" not in server.log_text()


def test_an_unpacked_model_directory_serves_too(
    housing_model: Path, start_server: StartServer, tmp_path: Path
) -> None:
    model_bytes, manifest = open_model(str(housing_model))
    write_model_directory(tmp_path / "unpacked", model_bytes, manifest)
    server = start_server(tmp_path / "unpacked", "--no-log-requests", "--threads", "2")
    response = httpx.post(f"{server.url}/invocations", content=ROW, headers=CSV)
    assert response.status_code == 200
    assert server.stop() == 0
    assert "POST /invocations" not in server.log_text()


# -- models that must be refused at start-up --------------------------------------------


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, payload in members:
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def _bad_models(good: Path, where: Path) -> dict[str, tuple[Path, str]]:
    model_bytes, manifest = open_model(str(good))
    manifest_json = manifest.model_dump_json().encode()
    document = json.loads(manifest_json)
    renamed = {**document, "features": ["X" + f for f in document["features"]]}
    shorter = {
        **document,
        "features": document["features"][:-1],
        "feature_types": document["feature_types"][:-1],
    }
    newer = {**document, "format_version": 99}
    text = where / "notes.tar.gz"
    text.write_text("this is not an archive\n")
    no_manifest = where / "no-manifest"
    no_manifest.mkdir()
    (no_manifest / "xgboost-model").write_bytes(model_bytes)
    return {
        "missing file": (where / "nope.tar.gz", "does not exist"),
        "not a tar": (text, "not a model.tar.gz"),
        "dot-dot member": (
            _tar(
                where / "dotdot.tar.gz",
                [
                    (_file("xgboost-model"), model_bytes),
                    (_file("manifest.json"), manifest_json),
                    (_file("../evil"), b"x"),
                ],
            ),
            "unsafe member",
        ),
        "absolute member": (
            _tar(where / "abs.tar.gz", [(_file("/etc/evil"), b"x")]),
            "unsafe member",
        ),
        "symlink member": (
            _tar(
                where / "link.tar.gz",
                [(_link("xgboost-model", "/etc/passwd"), None), (_file("manifest.json"), b"{}")],
            ),
            "link",
        ),
        "renamed features": (
            _tar(
                where / "renamed.tar.gz",
                [
                    (_file("xgboost-model"), model_bytes),
                    (_file("manifest.json"), json.dumps(renamed).encode()),
                ],
            ),
            "do not match the booster",
        ),
        "one feature fewer": (
            _tar(
                where / "shorter.tar.gz",
                [
                    (_file("xgboost-model"), model_bytes),
                    (_file("manifest.json"), json.dumps(shorter).encode()),
                ],
            ),
            "lists 7 features but the booster was trained on 8",
        ),
        "newer manifest": (
            _tar(
                where / "newer.tar.gz",
                [
                    (_file("xgboost-model"), model_bytes),
                    (_file("manifest.json"), json.dumps(newer).encode()),
                ],
            ),
            "format_version 99",
        ),
        "garbage booster": (
            _tar(
                where / "garbage.tar.gz",
                [
                    (_file("xgboost-model"), b"\x80\x04 pickled? no"),
                    (_file("manifest.json"), manifest_json),
                ],
            ),
            "not an XGBoost model",
        ),
        "no manifest": (no_manifest, "lacks"),
    }


BAD_MODEL_CASES = [
    "missing file",
    "not a tar",
    "dot-dot member",
    "absolute member",
    "symlink member",
    "renamed features",
    "one feature fewer",
    "newer manifest",
    "garbage booster",
    "no manifest",
]


@pytest.mark.parametrize("case", BAD_MODEL_CASES)
def test_bad_models_are_refused_at_start_up(
    case: str, housing_model: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    path, fragment = _bad_models(housing_model, tmp_path)[case]
    port = free_port()
    result = run_cli("serve", str(path), "--port", str(port), timeout=60)
    assert result.returncode == 2, result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output
    assert _port_is_free(port)


def test_a_port_in_use_and_bad_options_are_user_errors(
    housing_model: Path, run_cli: RunCli
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", str(housing_model), "--port", str(port), timeout=60)
    assert result.returncode == 2, result.output
    assert result.stderr.startswith("error: cannot listen on 127.0.0.1:")
    result = run_cli("serve", str(housing_model), "--workers", "0", timeout=60)
    assert result.returncode == 2
    assert "--workers" in result.stderr
