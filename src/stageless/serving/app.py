"""The ASGI application: SageMaker's inference container contract on Starlette.

- ``GET /ping``: 200 once the model is loaded (it is loaded before the app exists).
- ``POST /invocations``: rows in CSV, JSON or JSON Lines -> predictions (see codecs).
- ``GET /execution-parameters``: what SageMaker batch transform asks a container.

Small requests (the usual single row) are decoded and predicted right on the event loop:
the prediction takes microseconds, less than a hop to a thread. Large ones go to a thread,
at most ``max_concurrent`` at a time per process, so the loop keeps answering ``/ping``
and XGBoost's threads never outnumber the cores.

Each request is logged as one line (method, path, status, rows, bytes, milliseconds),
never with its payload or an error's text (which may quote the payload).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stageless.errors import describe
from stageless.serving import codecs
from stageless.serving.model import LoadedModel

#: SageMaker's limit on an invocation's payload (6 MiB); larger bodies get 413.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: Bodies up to this size are handled on the event loop; larger ones in a thread.
INLINE_BYTES = 64 * 1024

log = logging.getLogger("stageless.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MEDIA = {
    codecs.JSON: "application/json",
    codecs.CSV: "text/csv",
    codecs.JSONLINES: "application/jsonlines",
}


def _error(status: int, message: str) -> Response:
    return Response(codecs.error_body(message), status_code=status, media_type="application/json")


class Invocations:
    """``POST /invocations``."""

    def __init__(self, model: LoadedModel, max_concurrent: int) -> None:
        self.model = model
        self.max_concurrent = max_concurrent
        self._limiter: anyio.CapacityLimiter | None = None

    def _work(self, body: bytes, fmt: str, answer: str) -> tuple[bytes, int]:
        matrix = codecs.decode(body, fmt, self.model.features)
        predictions = self.model.predict(matrix)
        return codecs.encode(np.asarray(predictions), answer), matrix.shape[0]

    async def handle(self, request: Request) -> Response:
        scope = request.scope
        try:
            headers = request.headers
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_PAYLOAD_BYTES):
                if not length.isdigit():
                    raise codecs.RequestError(400, "Content-Length is not a number")
                raise codecs.RequestError(
                    413, f"the body is {int(length):,} bytes; the limit is 6 MiB per request"
                )
            fmt = codecs.request_format(headers.get("content-type"))
            answer = codecs.response_format(headers.get("accept"))
            body = await _read_body(request)
            scope["stageless.bytes_in"] = len(body)
            if len(body) <= INLINE_BYTES:
                content, rows = self._work(body, fmt, answer)
            else:
                if self._limiter is None:
                    self._limiter = anyio.CapacityLimiter(self.max_concurrent)
                content, rows = await anyio.to_thread.run_sync(
                    self._work, body, fmt, answer, limiter=self._limiter
                )
        except codecs.RequestError as exc:
            return _error(exc.status, exc.message)
        except Exception as exc:  # keep serving; the log gets what happened, not the payload
            log.error("internal error in /invocations: %s", describe(exc))
            return _error(500, f"internal error: {describe(exc)}")
        scope["stageless.rows"] = rows
        return Response(content, media_type=_MEDIA[answer])


async def _read_body(request: Request) -> bytes:
    """The whole body, refusing (413) as soon as it grows past the limit."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        size += len(chunk)
        if size > MAX_PAYLOAD_BYTES:
            raise codecs.RequestError(413, "the body is larger than 6 MiB, the limit per request")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)  # no copy for one chunk


class RequestLog:
    """One log line per request, without payloads (a plain ASGI wrapper: cheap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            rows = scope.get("stageless.rows")
            log.info(
                "%s %s %d %.2fms%s%s",
                scope["method"],
                scope["path"],
                status or 500,
                (time.perf_counter() - start) * 1000,
                f" in={scope['stageless.bytes_in']}B" if "stageless.bytes_in" in scope else "",
                f" rows={rows}" if rows is not None else "",
            )


def create_app(
    model: LoadedModel, *, max_concurrent: int = 1, workers: int = 1, log_requests: bool = True
) -> ASGIApp:
    """The ASGI app serving MODEL in one of WORKERS processes.

    MAX_CONCURRENT bounds the large predictions running in threads in this process.
    """
    ping_body = json.dumps({"status": "ok"}).encode()
    parameters = json.dumps(
        {
            # Concurrent requests (all processes) that keep every core busy, no more.
            "MaxConcurrentTransforms": max(1, max_concurrent) * max(1, workers),
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": MAX_PAYLOAD_BYTES // (1024 * 1024),
        }
    ).encode()

    async def ping(request: Request) -> Response:
        return Response(ping_body, media_type="application/json")

    async def execution_parameters(request: Request) -> Response:
        return Response(parameters, media_type="application/json")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", Invocations(model, max_concurrent).handle, methods=["POST"]),
            Route("/execution-parameters", execution_parameters, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    return RequestLog(app) if log_requests else app
