"""stageless.training.events: the lines a person reads, and the JSON lines workers send."""

from __future__ import annotations

import io
import json
import os

from stageless.training.events import JsonLinesSink, Reporter


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_read_progress_lines() -> None:
    out = io.StringIO()
    reporter = Reporter(workers=3, stream=out)
    reporter.emit("read", rank=0, rows=1_234_567, seconds=2.0, done=False)
    reporter.emit("read", rank=2, rows=5_000, seconds=2.5, done=True)
    reporter.emit("read", rank=1, rows=999, seconds=1.0, done=True)
    assert lines(out) == [
        "worker 1/3 reading: 1,234,567 rows in 2.00s (617.28k rows/s)",
        "worker 3/3 read 5,000 rows in 2.50s (2.00k rows/s)",
        "worker 2/3 read 999 rows in 1.00s (999 rows/s)",
    ]


def test_read_rate_in_millions_and_zero_seconds() -> None:
    out = io.StringIO()
    reporter = Reporter(workers=1, stream=out)
    reporter.emit("read", rank=0, rows=30_000_000, seconds=10.0, done=True)
    reporter.emit("read", rank=0, rows=10, seconds=0.0, done=True)
    assert lines(out) == [
        "worker 1/1 read 30,000,000 rows in 10.00s (3.00M rows/s)",
        "worker 1/1 read 10 rows in 0.00s (0 rows/s)",
    ]


def test_round_metrics_line() -> None:
    out = io.StringIO()
    reporter = Reporter(workers=2, stream=out)
    reporter.emit(
        "round",
        round=10,
        num_round=50,
        metrics={"train-rmse": 0.123456789, "validation-rmse": 1.5},
        rank=0,
    )
    assert lines(out) == ["round 10/50  train-rmse=0.12346  validation-rmse=1.50000"]


def test_info_and_unknown_events() -> None:
    out = io.StringIO()
    reporter = Reporter(workers=1, stream=out)
    reporter.emit("info", message="training on 10 rows")
    reporter.emit("saved", path="/x/model.tar.gz")  # no handler: ignored
    reporter.emit("no-such-event", anything=1)
    assert lines(out) == ["training on 10 rows"]


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    reporter = Reporter(workers=2, stream=out, quiet=True)
    reporter.emit("info", message="hello")
    reporter.emit("read", rank=0, rows=10, seconds=1.0, done=True)
    reporter.emit("round", round=1, num_round=2, metrics={"rmse": 1.0})
    assert out.getvalue() == ""


def test_reporter_defaults_to_stderr(capsys) -> None:  # type: ignore[no-untyped-def]
    Reporter(workers=1).emit("info", message="to stderr")
    captured = capsys.readouterr()
    assert captured.err == "to stderr\n"
    assert captured.out == ""


def test_json_lines_sink_round_trips_through_a_pipe() -> None:
    read_fd, write_fd = os.pipe()
    try:
        sink = JsonLinesSink(write_fd)
        sink.emit("read", rank=1, rows=5, seconds=0.5, done=True)
        sink.emit("round", round=1, num_round=3, metrics={"rmse": 0.25})
        os.close(write_fd)
        write_fd = -1
        with os.fdopen(read_fd, "r") as pipe:
            read_fd = -1
            events = [json.loads(line) for line in pipe]
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
    assert events == [
        {"event": "read", "rank": 1, "rows": 5, "seconds": 0.5, "done": True},
        {"event": "round", "round": 1, "num_round": 3, "metrics": {"rmse": 0.25}},
    ]
    # and the reporter prints what came through the pipe
    out = io.StringIO()
    reporter = Reporter(workers=2, stream=out)
    for event in events:
        reporter.emit(**event)
    assert lines(out) == [
        "worker 2/2 read 5 rows in 0.50s (10 rows/s)",
        "round 1/3  rmse=0.25000",
    ]


def test_describe_keeps_the_causes_of_a_multi_line_xgboost_error() -> None:
    from stageless.errors import describe

    text = (
        "[11:16:36] /xgboost/src/collective/result.cc:83: [quantile_dmatrix.cc:127|11:16:36]:\n"
        "\n"
        "- [allreduce.cc:39|11:16:36]: Ring allreduce small failed.\n"
        "- [socket.h:79|11:16:36]: Poll error condition:Success code:0\n"
        "Stack trace:\n  [bt] (0) libxgboost.so(+0x2c1a8c) [0x7f]\n"
    )
    assert describe(RuntimeError(text)) == (
        "RuntimeError: Ring allreduce small failed.; Poll error condition:Success code:0"
    )
    assert describe(ValueError("plain\nsecond")) == "ValueError: plain"
    assert describe(KeyError()) == "KeyError"


def test_parse_eval_reads_xgboosts_eval_line() -> None:
    from stageless.training.worker import parse_eval

    line = "[49]\ttrain-rmse:0.475\ttrain-ndcg@5-:0.25\ttrain-aft-nloglik:1.5"
    assert parse_eval(line) == {"rmse": 0.475, "ndcg@5-": 0.25, "aft-nloglik": 1.5}
