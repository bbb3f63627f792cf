"""Serving a model over HTTP with the SageMaker inference container contract.

``serve`` is the entry point (the CLI's ``stageless serve`` and the SageMaker container
call it). Importing this package is cheap: the web framework and XGBoost load on use.
"""

from __future__ import annotations

__all__ = ["serve"]


def serve(
    model: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    *,
    threads: int = 1,
    log_requests: bool = True,
) -> None:
    """Serve MODEL (a model.tar.gz or unpacked model directory) until SIGTERM or SIGINT.

    Blocks. The model is loaded once and checked before anything listens: a missing or
    unsafe archive, or a manifest that does not describe the booster, raises
    :class:`~stageless.errors.UserError`. WORKERS processes share the port; each runs
    predictions with THREADS XGBoost threads. On SIGTERM the server stops accepting,
    finishes the requests in flight and returns. LOG_REQUESTS logs one line per request
    (never its payload).
    """
    from stageless.serving.server import serve as _serve

    _serve(model, host, port, workers, threads=threads, log_requests=log_requests)
