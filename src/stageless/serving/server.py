"""Run the app on uvicorn: one process, or N worker processes sharing one socket.

The model is loaded and checked in this process before anything listens, so a bad model
is an ``error:`` line and exit code 2 at start-up. With several workers, each worker
process (started fresh, never forked after XGBoost's threads exist) receives the already
checked model bytes through uvicorn's process start-up rather than reading the model
reference again (which may be a download).

SIGTERM (and SIGINT) stop the server gracefully: it stops accepting, finishes the requests
in flight (up to ``GRACEFUL_SECONDS``), and ``serve`` returns.
"""

from __future__ import annotations

import functools
import logging
import logging.config
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from stageless.errors import UserError
from stageless.manifest import Manifest
from stageless.serving.model import LoadedModel, load_model, model_from_bytes, usable_cores

#: Seconds a stopping server waits for requests in flight.
GRACEFUL_SECONDS = 30
#: Idle keep-alive connections stay open this long (longer than SageMaker's front end's
#: 60 s idle timeout, so the server never closes a connection the client is about to use).
KEEP_ALIVE_SECONDS = 75
MAX_WORKERS = 64

log = logging.getLogger("stageless.serve")

LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def log_config() -> dict[str, Any]:
    """Logging for the server processes: one line per event on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "stageless.serve": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


def _check(workers: int, threads: int, port: int) -> None:
    if not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise UserError(f"--workers must be an integer from 1 to {MAX_WORKERS}")
    if not isinstance(threads, int) or threads < 1:
        raise UserError("--threads must be a positive integer")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise UserError(f"--port must be from 0 to 65535, not {port}")


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on HOST:PORT; UserError when that address is unusable."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    # The protocol must be IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on such
    # sockets, and without it Nagle's algorithm holds each response back for ~40 ms.
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UserError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "choose another --port or stop what is using it"
        ) from None
    sock.set_inheritable(True)
    return sock


def worker_app(
    model_bytes: bytes,
    manifest_json: str,
    threads: int,
    max_concurrent: int,
    workers: int,
    log_requests: bool,
) -> Any:
    """The app in a worker process (uvicorn calls this factory after starting the process)."""
    from stageless._startup import skip_unused_imports

    skip_unused_imports()  # a process that runs only stageless code: no scikit-learn
    from stageless.serving.app import create_app

    model = model_from_bytes(model_bytes, Manifest.model_validate_json(manifest_json), threads)
    return create_app(
        model, max_concurrent=max_concurrent, workers=workers, log_requests=log_requests
    )


@contextmanager
def _stop_signals_call(request_stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM/SIGINT call REQUEST_STOP for as long as the server has not taken them over.

    While it serves, uvicorn handles these signals itself (a graceful stop); afterwards it
    restores the handlers it found and re-raises the signal to them. Ours then only asks
    for a stop that is already under way, so a graceful stop ends in a plain return (exit
    code 0) rather than death by the re-raised signal; and a signal that arrives before
    uvicorn took over still stops the server as soon as it has started.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: request_stop()) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(
    model: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    *,
    threads: int = 1,
    log_requests: bool = True,
) -> None:
    """Serve MODEL over HTTP until SIGTERM/SIGINT; see :func:`stageless.serving.serve`."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ModuleNotFoundError as exc:
        raise UserError(
            f"serving needs {exc.name}, which is not installed: pip install 'stageless[serve]'"
        ) from None

    _check(workers, threads, port)
    cores = usable_cores()
    # Large requests run in threads: per process, as many at once as keep the cores busy.
    max_concurrent = max(1, cores // workers)
    loaded: LoadedModel = load_model(model, nthread=threads)
    sock = bind(host, port)
    shown_host = f"[{host}]" if ":" in host else host
    config_args: dict[str, Any] = {
        "log_config": log_config(),
        "access_log": False,
        "lifespan": "off",
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
        "server_header": False,
        "workers": workers,
    }
    # Configure logging here too, so our own lines look like the workers'.
    logging.config.dictConfig(log_config())
    log.info(
        "serving %s (%d features, %s) on http://%s:%d with %d worker(s), %d thread(s) each",
        model,
        loaded.n_features,
        loaded.manifest.objective,
        shown_host,
        sock.getsockname()[1],
        workers,
        threads,
    )
    try:
        if workers == 1:
            from stageless.serving.app import create_app

            app = create_app(loaded, max_concurrent=max_concurrent, log_requests=log_requests)
            server = uvicorn.Server(uvicorn.Config(app, **config_args))

            def stop() -> None:
                server.should_exit = True

            with _stop_signals_call(stop):
                server.run(sockets=[sock])
        else:
            from uvicorn.supervisors import Multiprocess

            factory = functools.partial(
                worker_app,
                _model_bytes(loaded),
                loaded.manifest.model_dump_json(),
                threads,
                max_concurrent,
                workers,
                log_requests,
            )
            config = uvicorn.Config(factory, factory=True, **config_args)
            # The supervisor handles SIGTERM/SIGINT itself (stops the workers, returns).
            Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
    log.info("stopped")
    sys.stderr.flush()


def _model_bytes(model: LoadedModel) -> bytes:
    """The booster as UBJSON bytes, for the worker processes to load."""
    return bytes(model.booster.save_raw(raw_format="ubj"))  # type: ignore[attr-defined]
