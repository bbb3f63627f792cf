"""The job board (the leader's plan and failure channel) and the tracker's bind retry,
with real sockets on the loopback interface."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from stageless.errors import StagelessError, TransientError
from stageless.sagemaker.coordination import (
    BoardClient,
    Heartbeat,
    JobBoard,
    PeerFailed,
    resolve_host,
    start_tracker,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def board() -> Iterator[JobBoard]:
    started = JobBoard(("algo-2", "algo-3"), "127.0.0.1", _free_port(), time.monotonic() + 5)
    try:
        yield started
    finally:
        started.close()


def client(board: JobBoard, host: str = "algo-2") -> BoardClient:
    return BoardClient("algo-1", "127.0.0.1", board.server.server_address[1], host)


def test_followers_wait_for_the_plan_and_get_it(board: JobBoard) -> None:
    got: list[dict] = []
    waiter = threading.Thread(target=lambda: got.append(client(board).wait_for_plan(10, 10)))
    waiter.start()
    time.sleep(0.3)
    assert not got  # still planning
    board.publish('{"workers": 3, "sql": "SELECT 1"}', tracker_port=9099)
    waiter.join(timeout=5)
    assert got == [{"plan": {"workers": 3, "sql": "SELECT 1"}, "tracker_port": 9099}]
    assert "algo-2" in board.last_seen


def test_a_failed_job_answers_the_plan_request_with_the_failure(board: JobBoard) -> None:
    board.fail("algo-1", "target column 'price' not found", 2)
    with pytest.raises(PeerFailed, match="host algo-1 failed: target column 'price'") as raised:
        client(board).wait_for_plan(5, 5)
    assert raised.value.exit_code == 2


def test_a_follower_failure_reaches_the_board_and_the_first_one_wins(board: JobBoard) -> None:
    assert client(board, "algo-3").report_failure("cannot connect to the warehouse", 1, 5)
    assert client(board, "algo-2").report_failure("later failure", 2, 5)
    problem = board.problem(connect_timeout=60, lost_after=60)
    assert problem is not None
    assert (problem.host, problem.message, problem.exit_code) == (
        "algo-3",
        "cannot connect to the warehouse",
        1,
    )
    assert client(board).status(timeout=2) == {
        "failure": {"host": "algo-3", "message": "cannot connect to the warehouse", "exit_code": 1}
    }


def test_the_board_notices_followers_that_never_come_or_fall_silent(board: JobBoard) -> None:
    assert board.problem(connect_timeout=60, lost_after=60) is None
    never = board.problem(connect_timeout=0, lost_after=60)
    assert never is not None and never.host == "algo-2"
    assert "did not contact the first host" in never.message
    client(board, "algo-2").status(timeout=2)
    client(board, "algo-3").status(timeout=2)
    time.sleep(0.2)
    silent = board.problem(connect_timeout=0, lost_after=0.1)
    assert silent is not None and "fell silent" in silent.message
    client(board, "algo-2").report_finished()
    client(board, "algo-3").report_finished()
    assert board.problem(connect_timeout=0, lost_after=0.1) is None  # finished hosts go quiet


def test_heartbeat_ends_the_follower_when_the_job_failed(board: JobBoard) -> None:
    seen: list[StagelessError] = []
    beat = Heartbeat(client(board), lost_after=10, on_failure=seen.append).start()
    board.fail("algo-3", "out of memory", 1)
    beat.thread.join(timeout=5)
    assert [str(e) for e in seen] == ["host algo-3 failed: out of memory"]


def test_heartbeat_notices_a_leader_that_is_gone() -> None:
    seen: list[StagelessError] = []
    gone = BoardClient("algo-1", "127.0.0.1", _free_port(), "algo-2")
    beat = Heartbeat(gone, lost_after=0.5, on_failure=seen.append).start()
    beat.thread.join(timeout=10)
    assert len(seen) == 1 and "lost contact with the first host algo-1" in str(seen[0])


def _wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_follower_whose_connection_closes_is_gone_at_once(board: JobBoard) -> None:
    # lost_after is an hour: only the closed /attach connection can tell.
    dying = Heartbeat(client(board, "algo-2"), lost_after=3600, on_failure=print).start()
    finishing = Heartbeat(client(board, "algo-3"), lost_after=3600, on_failure=print).start()
    try:
        assert dying.connection is not None and finishing.connection is not None
        finishing.finish()  # said so on the connection, then closed it: not a death
        _wait_until(lambda: "algo-3" in board.finished)
        assert board.problem(connect_timeout=3600, lost_after=3600) is None
        # What the kernel does when the process dies (a bare close() from this thread
        # would not send the FIN while the heartbeat's thread still blocks in recv on it).
        dying.connection.shutdown(socket.SHUT_RDWR)
        _wait_until(lambda: board.problem(3600, 3600) is not None)
        gone = board.problem(connect_timeout=3600, lost_after=3600)
        assert gone is not None and gone.host == "algo-2"
        assert "disconnected from the first host" in gone.message
    finally:
        dying.stop()
        finishing.stop()


def test_only_a_follower_may_attach_and_only_once(board: JobBoard) -> None:
    first = client(board, "algo-2").attach(timeout=2)
    try:
        assert first is not None
        assert client(board, "algo-2").attach(timeout=2) is None  # already attached
        assert client(board, "intruder").attach(timeout=2) is None  # not a follower
        assert board.problem(connect_timeout=3600, lost_after=3600) is None
    finally:
        if first is not None:
            first.close()


def test_heartbeat_notices_at_once_a_leader_whose_process_ended() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def leader_that_dies() -> None:
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n")
        time.sleep(0.3)
        listener.close()  # the board is gone too: /status is refused
        conn.close()

    threading.Thread(target=leader_that_dies, daemon=True).start()
    seen: list[StagelessError] = []
    started = time.monotonic()
    Heartbeat(BoardClient("algo-1", "127.0.0.1", port, "algo-2"), 3600, seen.append).start()
    _wait_until(lambda: bool(seen))
    assert time.monotonic() - started < 3
    assert [str(e) for e in seen] == [
        "lost contact with the first host algo-1 (its connection closed)"
    ]


def test_unreachable_leader_fails_after_the_connect_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(TransientError, match="cannot reach the first host algo-1"):
        BoardClient("algo-1", "127.0.0.1", _free_port(), "algo-2").wait_for_plan(1.5, 10)
    assert time.monotonic() - started < 5


def test_host_names_that_never_resolve_fail_in_time() -> None:
    with pytest.raises(TransientError, match="did not resolve"):
        resolve_host("algo-1.invalid", deadline=time.monotonic() + 1)
    assert resolve_host("localhost", deadline=time.monotonic()) == "127.0.0.1"


def test_tracker_waits_for_a_port_still_in_use() -> None:
    """The port of an earlier job can linger; binding is retried, not failed."""
    port = _free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    threading.Timer(1.5, blocker.close).start()
    started = time.monotonic()
    tracker = start_tracker("127.0.0.1", port, 1, timeout=5, deadline=time.monotonic() + 20)
    assert time.monotonic() - started >= 1.0
    assert tracker.worker_args()["dmlc_tracker_port"] == port
    from xgboost import collective

    with collective.CommunicatorContext(**tracker.worker_args(), dmlc_task_id="000000"):
        assert collective.get_rank() == 0
    tracker.wait_for(timeout=10)


def test_tracker_gives_up_at_the_deadline() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(TransientError, match=f"cannot start XGBoost's tracker on port {port}"):
            start_tracker("127.0.0.1", port, 1, timeout=5, deadline=time.monotonic() + 1)


def test_job_board_refuses_a_negative_content_length(board: JobBoard) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", board.server.server_address[1], timeout=5)
    conn.putrequest("POST", "/failure?host=algo-2")
    conn.putheader("Content-Length", "-1")
    conn.endheaders()
    assert conn.getresponse().status == 400
    conn.close()
