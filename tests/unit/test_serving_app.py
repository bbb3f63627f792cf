"""The ASGI app in-process (httpx's ASGI transport): what no real model can be made to do."""

from __future__ import annotations

import asyncio
import logging

import httpx
import numpy as np
import pytest

from stageless.manifest import Manifest
from stageless.serving.app import create_app
from stageless.serving.model import LoadedModel
from tests.unit.test_serving_model import _manifest


class FlakyBooster:
    """Fails on demand, like a booster hitting an internal error; otherwise sums each row."""

    def __init__(self) -> None:
        self.fail = False

    def inplace_predict(self, matrix: np.ndarray) -> np.ndarray:
        if self.fail:
            raise RuntimeError("the booster broke")
        return np.nansum(matrix, axis=1, dtype=np.float32)


def _post(app: object, body: bytes, **headers: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                "/invocations", content=body, headers={"Content-Type": "text/csv", **headers}
            )

    return asyncio.run(go())


def test_an_internal_failure_is_a_json_500_and_the_next_request_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    booster = FlakyBooster()
    manifest: Manifest = _manifest(["x1", "x2", "x3"])
    app = create_app(LoadedModel(booster=booster, manifest=manifest), log_requests=True)
    booster.fail = True
    with caplog.at_level(logging.INFO, logger="stageless.serve"):
        broken = _post(app, b"1,2,31337")
    assert broken.status_code == 500
    assert broken.json()["error"] == "internal error: RuntimeError: the booster broke"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /invocations 500" in logged
    assert "31337" not in logged  # never the payload
    booster.fail = False
    good = _post(app, b"1,2,3\n4,,6\n")
    assert good.status_code == 200
    assert good.json() == {"predictions": [6.0, 10.0]}


def test_large_bodies_go_through_the_thread_path_with_the_same_answers() -> None:
    booster = FlakyBooster()
    app = create_app(
        LoadedModel(booster=booster, manifest=_manifest(["x1", "x2", "x3"])),
        max_concurrent=2,
        log_requests=False,
    )
    rows = np.arange(30_000, dtype=np.float32).reshape(10_000, 3)
    body = "".join(f"{a:g},{b:g},{c:g}\n" for a, b, c in rows.tolist()).encode()
    assert len(body) > 64 * 1024
    answer = _post(app, body, Accept="text/csv")
    assert answer.status_code == 200
    got = np.array(answer.text.split(), dtype=np.float32)
    np.testing.assert_array_equal(got, rows.sum(axis=1))
