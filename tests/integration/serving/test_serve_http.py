"""`stageless serve` over real HTTP: every input format, every bad request, and it keeps going."""

from __future__ import annotations

import json
import os
import threading

import httpx
import numpy as np
import pytest
import xgboost as xgb

from tests.integration.serving.conftest import FEATURES, Server

CSV = {"Content-Type": "text/csv"}
JSON = {"Content-Type": "application/json"}
JSONLINES = {"Content-Type": "application/jsonlines"}


def csv_body(rows: np.ndarray) -> bytes:
    # float(np.float32) prints a float32 exactly, so the server parses the very same values.
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode()


def expected(booster: xgb.Booster, rows: np.ndarray) -> list[float]:
    return booster.inplace_predict(np.ascontiguousarray(rows, dtype=np.float32)).tolist()


def predictions(response: httpx.Response) -> list[float]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["predictions"]


def test_ping_and_execution_parameters(server: Server) -> None:
    ping = httpx.get(f"{server.url}/ping")
    assert ping.status_code == 200
    params = httpx.get(f"{server.url}/execution-parameters").json()
    assert params["BatchStrategy"] == "MULTI_RECORD"
    assert params["MaxPayloadInMB"] == 6
    # One process: as many concurrent requests as there are cores.
    assert params["MaxConcurrentTransforms"] == len(os.sched_getaffinity(0))


def test_csv_rows_predict_exactly_like_the_booster(
    server: Server, booster: xgb.Booster, housing_rows: np.ndarray
) -> None:
    got = predictions(
        httpx.post(f"{server.url}/invocations", content=csv_body(housing_rows), headers=CSV)
    )
    assert got == expected(booster, housing_rows)
    assert len(got) == 300


def test_single_row_csv_without_newline_and_with_a_header(
    server: Server, booster: xgb.Booster, housing_rows: np.ndarray
) -> None:
    row = csv_body(housing_rows[:1]).strip()
    assert predictions(httpx.post(f"{server.url}/invocations", content=row, headers=CSV)) == (
        expected(booster, housing_rows[:1])
    )
    header = ",".join(FEATURES).lower().encode() + b"\r\n"
    with_header = header + csv_body(housing_rows[:3]).replace(b"\n", b"\r\n")
    got = predictions(httpx.post(f"{server.url}/invocations", content=with_header, headers=CSV))
    assert got == expected(booster, housing_rows[:3])


def test_empty_fields_are_missing_values(
    server: Server, booster: xgb.Booster, housing_rows: np.ndarray
) -> None:
    rows = housing_rows[:2].copy()
    rows[0, 1] = np.nan
    rows[1, [0, 7]] = np.nan
    body = csv_body(rows).replace(b"nan", b"")
    assert b",," in body and b"\n," in body
    got = predictions(httpx.post(f"{server.url}/invocations", content=body, headers=CSV))
    assert got == expected(booster, rows)
    assert got != expected(booster, housing_rows[:2])


def test_json_instances_records_and_jsonlines(
    server: Server, booster: xgb.Booster, housing_rows: np.ndarray
) -> None:
    rows = housing_rows[:20]
    want = expected(booster, rows)
    values = [[float(v) for v in row] for row in rows]
    url = f"{server.url}/invocations"

    assert predictions(httpx.post(url, json={"instances": values})) == want

    # By name, in reverse order, with names in another case.
    records = [
        {name.upper() if i % 2 else name: row[i] for i, name in reversed(list(enumerate(FEATURES)))}
        for row in values
    ]
    assert predictions(httpx.post(url, json={"records": records})) == want

    lines = b"\n".join(
        json.dumps(values[i] if i % 2 else dict(zip(FEATURES, values[i], strict=True))).encode()
        for i in range(len(values))
    )
    assert predictions(httpx.post(url, content=lines, headers=JSONLINES)) == want

    # null and a left-out name are missing values.
    sparse = [{"MedInc": values[0][0]}, [None] * 8]
    missing = np.full((2, 8), np.nan, dtype=np.float32)
    missing[0, 0] = rows[0, 0]
    assert predictions(httpx.post(url, json={"instances": sparse})) == expected(booster, missing)


def test_accept_text_csv_gives_one_prediction_per_line(
    server: Server, booster: xgb.Booster, housing_rows: np.ndarray
) -> None:
    response = httpx.post(
        f"{server.url}/invocations",
        content=csv_body(housing_rows[:5]),
        headers={**CSV, "Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().split("\n")
    assert [float(v) for v in lines] == expected(booster, housing_rows[:5])


def test_large_request_runs_off_the_event_loop_and_still_matches(
    server: Server, booster: xgb.Booster, housing_rows: np.ndarray
) -> None:
    rows = np.tile(housing_rows, (40, 1))  # 12,000 rows, about 0.5 MB: the thread path
    body = csv_body(rows)
    assert len(body) > 64 * 1024
    got = predictions(
        httpx.post(f"{server.url}/invocations", content=body, headers=CSV, timeout=60)
    )
    assert got == expected(booster, rows)


def test_concurrent_clients_each_get_their_own_answers(
    server: Server, booster: xgb.Booster, housing_rows: np.ndarray
) -> None:
    results: dict[int, list[float]] = {}

    def client(k: int) -> None:
        with httpx.Client() as http:
            for i in range(k * 10, k * 10 + 10):
                row = housing_rows[i : i + 1]
                response = http.post(
                    f"{server.url}/invocations", content=csv_body(row), headers=CSV
                )
                results[i] = predictions(response)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(80))
    for i, got in results.items():
        assert got == expected(booster, housing_rows[i : i + 1])


GOOD_ROW = "8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23"
BAD_REQUESTS = {
    "too few csv values": (CSV, b"1,2,3", 400, "row 1 has 3 values but the model takes 8"),
    "too many on row 2": (CSV, f"{GOOD_ROW}\n{GOOD_ROW},9\n".encode(), 400, "row 2 has 9"),
    "non-numeric csv": (CSV, GOOD_ROW.replace("41.0", "zebra7").encode(), 400, "not a number"),
    "wrong header": (CSV, f"a,b,c,d,e,f,g,h\n{GOOD_ROW}".encode(), 400, "header"),
    "empty csv": (CSV, b"\n\n", 400, "no rows"),
    "malformed json": (JSON, b'{"instances": [[1,2', 400, "not valid JSON"),
    "json not an object": (JSON, b"[[1,2,3,4,5,6,7,8]]", 400, "must be an object"),
    "json without rows key": (JSON, b'{"data": []}', 400, '"instances"'),
    "instances not a list": (JSON, b'{"instances": 5}', 400, "must be a list"),
    "row not a list": (JSON, b'{"instances": [5]}', 400, "must be a list of values"),
    "wrong json count": (
        JSON,
        b'{"instances": [[1,2]]}',
        400,
        "has 2 values but the model takes 8",
    ),
    "string in json": (
        JSON,
        json.dumps({"instances": [[1, 2, 3, 4, 5, 6, 7, "zebra7"]]}).encode(),
        400,
        "Longitude: 'zebra7' is not a number",
    ),
    "nested list in json": (JSON, b'{"instances": [[1,2,3,4,5,6,7,[8]]]}', 400, "not a number"),
    "unknown feature": (JSON, b'{"records": [{"MedInc": 1, "zebra7": 2}]}', 400, "unknown feature"),
    "string in record": (JSON, b'{"records": [{"MedInc": "x"}]}', 400, "MedInc"),
    "empty instances": (JSON, b'{"instances": []}', 400, "no rows"),
    "bad jsonlines": (JSONLINES, b"[1,2,3,4,5,6,7,8]\n{oops\n", 400, "line 2 is not valid JSON"),
    "jsonlines scalar": (JSONLINES, b"5\n", 400, "line 1 must be a list"),
    "not utf-8 json": (JSON, b"\xff\xfe\xfd", 400, "not valid JSON"),
    "unsupported type": ({"Content-Type": "application/x-npy"}, b"xx", 415, "unsupported"),
    "form post": (
        {"Content-Type": "application/x-www-form-urlencoded"},
        GOOD_ROW.encode(),
        415,
        "text/csv",
    ),
    "unanswerable accept": ({**CSV, "Accept": "image/png"}, GOOD_ROW.encode(), 406, "accept"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS), ids=list(BAD_REQUESTS))
def test_bad_requests_get_a_json_error_and_the_server_keeps_serving(
    server: Server, case: str, booster: xgb.Booster, housing_rows: np.ndarray
) -> None:
    headers, body, status, fragment = BAD_REQUESTS[case]
    response = httpx.post(f"{server.url}/invocations", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    assert fragment.lower() in message.lower()
    assert "\n" not in message
    # The same server answers the next good request correctly.
    good = httpx.post(f"{server.url}/invocations", content=csv_body(housing_rows[:1]), headers=CSV)
    assert predictions(good) == expected(booster, housing_rows[:1])


def test_bodies_over_6_mib_are_refused_with_413(server: Server) -> None:
    big = (GOOD_ROW + "\n").encode() * (6 * 1024 * 1024 // len(GOOD_ROW) + 10)
    assert len(big) > 6 * 1024 * 1024
    response = httpx.post(f"{server.url}/invocations", content=big, headers=CSV, timeout=60)
    assert response.status_code == 413
    assert "6 MiB" in response.json()["error"]

    # Without a Content-Length (chunked), the server stops reading at the limit.
    def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(big), 1 << 20):
            yield big[start : start + (1 << 20)]

    response = httpx.post(f"{server.url}/invocations", content=chunks(), headers=CSV, timeout=60)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert httpx.get(f"{server.url}/ping").status_code == 200


def test_unknown_paths_and_methods_get_json_errors(server: Server) -> None:
    missing = httpx.get(f"{server.url}/nowhere")
    assert missing.status_code == 404
    assert "error" in missing.json()
    wrong = httpx.get(f"{server.url}/invocations")
    assert wrong.status_code == 405
    assert "error" in wrong.json()


def test_the_log_has_a_line_per_request_and_no_payloads(server: Server) -> None:
    httpx.post(
        f"{server.url}/invocations",
        content=GOOD_ROW.replace("41.0", "zebra9").encode(),
        headers=CSV,
    )
    httpx.post(f"{server.url}/invocations", content=GOOD_ROW.encode(), headers=CSV)
    log = server.log_text()
    assert "POST /invocations 400" in log
    assert "POST /invocations 200" in log
    assert "rows=1" in log
    assert "zebra" not in log  # neither the bad value nor the error message quoting it
    assert "8.3252" not in log
    assert "Traceback" not in log
