"""How the hosts of one training job find each other, share one plan and fail together.

The first host (the leader) plans the job once, at one pinned snapshot, and serves the
plan as JSON on a small HTTP "job board" (``coordinator_port``, 9098); the other hosts
(followers) fetch it, so every host reads the shard the same plan gave it. Planning on
every host instead would not do: a snapshot (a Snowflake timestamp, an exported
PostgreSQL snapshot) is taken by one connection and only the plan can carry it.

The board is also how failure travels. A follower that fails tells the board; the
leader, on any failure, marks the job failed and every follower sees that on its next
poll (once a second) and stops. Followers poll even while XGBoost blocks in C code, and
the leader notices a follower that falls silent (``lost_after``) or never shows up
(``connect_timeout``), so a dead host never leaves the others waiting. Each follower
also holds one idle connection to the board (``/attach``): the kernel closes it when the
follower's process dies, so either side notices a dead peer's process within a poll
instead of after ``lost_after`` or XGBoost's own retries. (A host that vanishes from the
network sends nothing; ``lost_after`` still catches that.) Everything on
the board is plain JSON, validated on receipt; nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from stageless.errors import StagelessError, TransientError, describe

#: how often followers poll the board (and so how fast a failure reaches them)
POLL_SECONDS = 1.0
#: the largest request body the board reads (a failure report)
MAX_BODY = 64 << 10
#: what a follower sends on its /attach connection before closing it when it is done
FINISHED = b"finished"


def _keep_alive(connection: socket.socket) -> None:
    """TCP keepalive, so an idle connection to a host that vanished eventually errors."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


class PeerFailed(StagelessError):
    """Another host of the job failed; carries its reason and exit code."""

    def __init__(self, host: str, reason: str, exit_code: int = 1) -> None:
        super().__init__(f"host {host} failed: {reason}")
        self.host = host
        self.reason = reason
        self.exit_code = exit_code


def _peer_failed(failure: dict[str, Any]) -> PeerFailed:
    """The PeerFailed a board's failure JSON describes."""
    return PeerFailed(
        str(failure.get("host", "?")),
        str(failure.get("message", "unknown error")),
        int(failure.get("exit_code", 1)),
    )


def _retry_until(
    deadline: float, attempt: Callable[[], Any], retryable: Callable[[Exception], bool]
) -> Any:
    """Call ATTEMPT until it returns, a non-retryable error, or the deadline."""
    while True:
        try:
            return attempt()
        except Exception as exc:
            if not retryable(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(1.0)


def resolve_host(name: str, deadline: float) -> str:
    """The IPv4 address of a host name, retrying while it does not resolve yet (SageMaker
    hosts come up at different times and their names may resolve late)."""
    try:
        return _retry_until(
            deadline, lambda: socket.gethostbyname(name), lambda e: isinstance(e, OSError)
        )
    except OSError:
        raise TransientError(f"host name {name!r} did not resolve in time") from None


def start_tracker(
    host_ip: str, port: int, workers: int, timeout: int, deadline: float
) -> Any:  # xgboost.tracker.RabitTracker
    """XGBoost's tracker on a fixed port, retrying the bind: the port of an earlier job
    on this machine can linger for about a minute (TIME_WAIT)."""
    from xgboost.core import XGBoostError
    from xgboost.tracker import RabitTracker

    def attempt() -> Any:
        tracker = RabitTracker(
            n_workers=workers, host_ip=host_ip, port=port, sortby="task", timeout=timeout
        )
        tracker.start()
        return tracker

    def retryable(exc: Exception) -> bool:
        return isinstance(exc, XGBoostError) and "bind" in str(exc).lower()

    try:
        return _retry_until(deadline, attempt, retryable)
    except XGBoostError as exc:
        raise TransientError(
            f"cannot start XGBoost's tracker on port {port}: {describe(exc)}"
        ) from None


# -- the leader's side --------------------------------------------------------------------


@dataclass
class Failure:
    host: str
    message: str
    exit_code: int

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "message": self.message, "exit_code": self.exit_code}


class JobBoard:
    """The leader's HTTP endpoint: the plan, the job's state, and who was last seen when.

    ``GET /plan?host=H``: 200 with the plan, 202 while planning, 409 with the failure.
    ``GET /status?host=H``: ``{"failure": null | {...}}``; also a follower's heartbeat.
    ``POST /failure?host=H`` ``{"message": ..., "exit_code": ...}``: a follower failed.
    ``POST /finished?host=H``: a follower is done and will go quiet.
    ``GET /attach?host=H``: held open by the follower (one per follower); closing it
    without first sending ``finished`` on it means the follower is gone.
    """

    def __init__(self, followers: tuple[str, ...], bind: str, port: int, deadline: float) -> None:
        self.followers = followers
        self.lock = threading.Lock()
        self.offer: bytes | None = None
        self.failure: Failure | None = None
        self.last_seen: dict[str, float] = {}
        self.finished: set[str] = set()
        self.told: set[str] = set()  # followers that have seen the failure
        self.detached: set[str] = set()  # followers whose /attach connection closed
        self.attached: set[str] = set()  # followers holding /attach now
        self.started = time.monotonic()
        handler = type("Handler", (_BoardHandler,), {"board": self})
        try:
            self.server = _retry_until(
                deadline,
                lambda: ThreadingHTTPServer((bind, port), handler),
                lambda e: isinstance(e, OSError),
            )
        except OSError as exc:
            raise TransientError(
                f"cannot listen on port {port} for the other hosts: {exc.strerror}"
            ) from None
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def publish(self, plan_json: str, tracker_port: int) -> None:
        offer = {"plan": json.loads(plan_json), "tracker_port": tracker_port}
        with self.lock:
            self.offer = json.dumps(offer).encode()

    def fail(self, host: str, message: str, exit_code: int) -> Failure:
        """Record the job's failure (the first one wins); returns the one recorded."""
        with self.lock:
            if self.failure is None:
                self.failure = Failure(host, message, exit_code)
            return self.failure

    def touch(self, host: str) -> None:
        with self.lock:
            self.last_seen[host] = time.monotonic()

    def has_told(self, host: str, failure: Failure) -> None:
        """HOST has been sent FAILURE (called once the answer is written: the leader may
        exit as soon as every follower is told)."""
        with self.lock:
            if failure is self.failure:
                self.told.add(host)

    def attach(self, host: str) -> bool:
        """Whether HOST may hold an /attach connection: a follower, and only one at once
        (nobody else can pin a board thread, or close a connection in a follower's name)."""
        with self.lock:
            if host not in self.followers or host in self.attached:
                return False
            self.attached.add(host)
            return True

    def detach(self, host: str, finished: bool) -> None:
        """HOST's /attach connection closed: it finished, or it is gone."""
        with self.lock:
            self.attached.discard(host)
            if finished:
                self.finished.add(host)
            elif host not in self.finished:
                self.detached.add(host)

    def problem(self, connect_timeout: float, lost_after: float) -> Failure | None:
        """A follower's failure, or a follower that never came, disconnected or fell
        silent."""
        now = time.monotonic()
        with self.lock:
            if self.failure is not None:
                return self.failure
            for host in self.followers:
                if host in self.detached:
                    return Failure(
                        host,
                        "it disconnected from the first host (its process ended, or the "
                        "network between the hosts failed)",
                        1,
                    )
                seen = self.last_seen.get(host)
                if seen is None and now - self.started > connect_timeout:
                    return Failure(
                        host,
                        f"it did not contact the first host within {connect_timeout:g}s",
                        1,
                    )
                if seen is not None and host not in self.finished and now - seen > lost_after:
                    return Failure(host, f"it fell silent for more than {lost_after:g}s", 1)
        return None

    def wait_until_told(self, timeout: float) -> None:
        """After a failure: give every follower the chance to hear of it, for up to TIMEOUT.

        That includes followers that have not shown up yet (a host that starts a little
        later learns the real reason instead of timing out), but not one that stopped
        polling: it is dead or frozen.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                failure = self.failure
                recent = time.monotonic() - 3 * POLL_SECONDS
                waiting = [
                    h
                    for h in self.followers
                    if self.last_seen.get(h, recent + 1) > recent
                    and h not in self.told
                    and h not in self.finished
                    and h not in self.detached
                    and (failure is None or h != failure.host)
                ]
            if not waiting:
                return
            time.sleep(0.1)


class _BoardHandler(BaseHTTPRequestHandler):
    board: JobBoard
    protocol_version = "HTTP/1.0"
    timeout = 10  # seconds: a client that stalls mid-request frees its thread

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the board is quiet; the hosts report what matters

    def _host(self) -> str:
        return (parse_qs(urlsplit(self.path).query).get("host") or ["?"])[0][:255]

    def _reply(self, status: int, payload: bytes | dict[str, Any] | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        board, host = self.board, self._host()
        route = urlsplit(self.path).path
        board.touch(host)
        with board.lock:
            failure, offer = board.failure, board.offer
        if route == "/status":
            self._reply(200, {"failure": failure.as_json() if failure else None})
        elif route == "/attach":
            self._hold(host)
            return
        elif route == "/plan":
            if failure is not None:
                self._reply(409, {"failure": failure.as_json()})
            elif offer is not None:
                self._reply(200, offer)
            else:
                self._reply(202, {"state": "planning"})
        else:
            self._reply(404, {"error": "not found"})
            return
        if failure is not None:
            board.has_told(host, failure)

    def _hold(self, host: str) -> None:
        """Keep a follower's /attach connection until it closes; then the follower is gone
        unless it sent ``finished`` first."""
        if not self.board.attach(host):
            self._reply(409, {"error": "not a follower, or already attached"})
            return
        said = b""
        try:
            self.send_response(200)
            self.end_headers()
            self.wfile.flush()
            _keep_alive(self.connection)
            self.connection.settimeout(None)
            with contextlib.suppress(OSError):
                while chunk := self.connection.recv(64):
                    said = (said + chunk)[-len(FINISHED) :]
        finally:
            self.board.detach(host, finished=said == FINISHED)

    def do_POST(self) -> None:
        board, host = self.board, self._host()
        route = urlsplit(self.path).path
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._reply(400, {"error": "bad Content-Length"})
            return
        if length > MAX_BODY:
            self._reply(413, {"error": "too large"})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            self._reply(400, {"error": "expected a JSON object"})
            return
        if route == "/failure":
            code = body.get("exit_code")
            board.fail(
                host,
                str(body.get("message") or "unknown error")[:1024],
                code if isinstance(code, int) and 0 < code < 256 else 1,
            )
            board.touch(host)
            self._reply(200)
        elif route == "/finished":
            with board.lock:
                board.finished.add(host)
            self._reply(200)
        else:
            self._reply(404, {"error": "not found"})


# -- a follower's side --------------------------------------------------------------------


class BoardClient:
    """A follower's view of the leader's board."""

    def __init__(self, leader: str, address: str, port: int, host: str) -> None:
        self.leader = leader
        self.address, self.port = address, port
        self.base = f"http://{address}:{port}"
        self.host = host
        self.reached = False  # has the board ever answered?

    def _call(
        self, method: str, route: str, body: dict[str, Any] | None = None, timeout: float = 5.0
    ) -> tuple[int, dict[str, Any]]:
        url = f"{self.base}{route}?host={quote(self.host)}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http only
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                answer = response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            with exc:
                answer = exc.code, json.loads(exc.read() or b"{}")
        self.reached = True
        return answer

    def wait_for_plan(self, connect_timeout: float, lost_after: float) -> dict[str, Any]:
        """The leader's plan offer (``plan``, ``tracker_port``), waiting for the leader to
        come up and to finish planning; PeerFailed if the job failed meanwhile."""
        started = time.monotonic()
        last_answer: float | None = None
        while True:
            try:
                status, body = self._call("GET", "/plan", timeout=min(5.0, lost_after))
            except (OSError, ValueError):
                now = time.monotonic()
                if last_answer is None and now - started > connect_timeout:
                    raise TransientError(
                        f"cannot reach the first host {self.leader} ({self.base}) within "
                        f"{connect_timeout:g}s; did it start, and do the security groups "
                        "allow TCP between the instances?"
                    ) from None
                if last_answer is not None and now - last_answer > lost_after:
                    raise TransientError(
                        f"lost contact with the first host {self.leader} while it planned"
                    ) from None
            else:
                last_answer = time.monotonic()
                if status == 200:
                    return body
                if status == 409:
                    raise _peer_failed(body.get("failure") or {"host": self.leader})
            time.sleep(POLL_SECONDS)

    def attach(self, timeout: float) -> socket.socket | None:
        """The connection that tells the leader this process is alive (see JobBoard), or
        None if it could not be opened (then only polling watches this host)."""
        try:
            conn = socket.create_connection((self.address, self.port), timeout=timeout)
        except OSError:
            return None
        try:
            request = f"GET /attach?host={quote(self.host)} HTTP/1.0\r\n\r\n"
            conn.sendall(request.encode())
            if not conn.recv(64).startswith(b"HTTP/1.0 200"):
                raise OSError("refused")
            _keep_alive(conn)
            conn.settimeout(None)
        except OSError:
            conn.close()
            return None
        return conn

    def status(self, timeout: float) -> dict[str, Any] | None:
        """The job's state, or None if the board did not answer."""
        try:
            status, body = self._call("GET", "/status", timeout=timeout)
        except (OSError, ValueError):
            return None
        return body if status == 200 else None

    def report_failure(self, message: str, exit_code: int, timeout: float) -> bool:
        """Tell the leader this host failed, True if it was heard. Retried for up to
        TIMEOUT while the leader may still be starting; tried once if the board answered
        before (a board that stopped answering belongs to a leader that is gone)."""
        deadline = time.monotonic() + (2.0 if self.reached else timeout)
        while True:
            try:
                status, _ = self._call(
                    "POST",
                    "/failure",
                    {"message": message, "exit_code": exit_code},
                    timeout=max(0.5, min(5.0, deadline - time.monotonic())),
                )
                return status == 200
            except (OSError, ValueError):
                if time.monotonic() + POLL_SECONDS >= deadline:
                    return False
            time.sleep(POLL_SECONDS)

    def report_finished(self) -> None:
        # Best effort: the leader only uses it to stop watching this host.
        with contextlib.suppress(OSError, ValueError):
            self._call("POST", "/finished", {}, timeout=2.0)


class Heartbeat:
    """A follower's threads: one polls the board, one holds the /attach connection; they
    call ON_FAILURE (which ends the process) once, when the job failed elsewhere or the
    leader fell silent or went away."""

    def __init__(
        self,
        client: BoardClient,
        lost_after: float,
        on_failure: Callable[[StagelessError], None],
    ) -> None:
        self.client = client
        self.lost_after = lost_after
        self.on_failure = on_failure
        self.stopped = threading.Event()
        self.reported = threading.Event()
        self.report_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.connection: socket.socket | None = None

    def start(self) -> Heartbeat:
        self.connection = self.client.attach(timeout=min(5.0, self.lost_after))
        if self.connection is not None:
            threading.Thread(target=self._watch_connection, daemon=True).start()
        self.thread.start()
        return self

    def finish(self) -> None:
        """This host is done: say so on /attach (the leader must not take the closing
        connection for a death), then stop."""
        if self.connection is not None:
            with contextlib.suppress(OSError):
                self.connection.sendall(FINISHED)
        self.stop()

    def stop(self) -> None:
        self.stopped.set()
        if self.connection is not None:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()

    def _report(self, error: StagelessError) -> None:
        with self.report_lock:
            if self.reported.is_set() or self.stopped.is_set():
                return
            self.reported.set()
        self.on_failure(error)

    def _watch_connection(self) -> None:
        assert self.connection is not None
        with contextlib.suppress(OSError):
            while self.connection.recv(64):
                pass
        # The leader closed it: it failed (and told the poller why, which wins if it
        # reports within a poll) or its process ended.
        if self.stopped.is_set() or self.reported.wait(1.5 * POLL_SECONDS):
            return
        state = self.client.status(timeout=2.0)
        if state is None:
            self._report(
                TransientError(
                    f"lost contact with the first host {self.client.leader} (its connection closed)"
                )
            )
        elif state.get("failure"):
            self._report(_peer_failed(state["failure"]))

    def _run(self) -> None:
        last_answer = time.monotonic()
        while not self.stopped.wait(POLL_SECONDS):
            state = self.client.status(timeout=min(5.0, self.lost_after))
            if self.stopped.is_set():
                return
            if state is None:
                if time.monotonic() - last_answer > self.lost_after:
                    self._report(
                        TransientError(
                            f"lost contact with the first host {self.client.leader} "
                            f"(no answer for {self.lost_after:g}s)"
                        )
                    )
                    return
                continue
            last_answer = time.monotonic()
            failure = state.get("failure")
            if failure:
                self._report(_peer_failed(failure))
                return
