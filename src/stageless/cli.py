"""The ``stageless`` command: parses, calls one library function, maps errors to exit codes.

Exit codes: 0 success, 2 bad input or configuration, 1 anything else. Every failure is one
``error: ...`` line on stderr; set STAGELESS_DEBUG=1 to see the traceback of an internal one.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from stageless import __version__
from stageless._startup import exit_now, skip_unused_imports
from stageless.errors import StagelessError, describe
from stageless.identifiers import split_list
from stageless.sagemaker.cli import sagemaker as sagemaker_group

_MODES = click.Choice(["replace", "append", "create"])
_secret_option = click.option(
    "--secret",
    metavar="SECRET_URL",
    help="credentials: aws-secretsmanager://ID[?region=R], env://PREFIX or file:///x.json",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="stageless")
def cli() -> None:
    """Train XGBoost straight from a data warehouse: no staging bucket, every row once."""


@cli.command()
@click.argument("source")
@click.option("--to", "to", required=True, metavar="WAREHOUSE_URL", help="e.g. duckdb:demo.duckdb")
@click.option("--table", required=True, metavar="[SCHEMA.]TABLE")
@click.option(
    "--mode",
    type=_MODES,
    default="replace",
    show_default=True,
    help="replace: exactly the new rows (atomic); append: add rows; "
    "create: fail if the table exists",
)
@_secret_option
def ingest(source: str, to: str, table: str, mode: str, secret: str | None) -> None:
    """Load SOURCE (.csv, .csv.gz, .parquet or dataset:california-housing) into a table."""
    from stageless.ingestion import ingest as run_ingest

    result = run_ingest(source, to, table, mode, secret)  # type: ignore[arg-type]
    click.echo(f"loaded {result.rows:,} rows into {result.table} ({result.warehouse})")


@cli.command()
@click.option("--source", required=True, metavar="WAREHOUSE_URL")
@click.option("--table", metavar="[SCHEMA.]TABLE", help="the table to train on")
@click.option("--query", metavar="SQL", help="or one SELECT defining the rows")
@click.option("--target", required=True, metavar="COLUMN")
@click.option("--features", metavar="COL,COL,...", help="default: every numeric column")
@click.option("--exclude", metavar="COL,COL,...", help="columns to leave out of the features")
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="data-parallel workers, each reading its own shard",
)
@click.option("--validation-fraction", type=float, default=0.25, show_default=True)
@click.option(
    "--split-key",
    metavar="COLUMN",
    help="hash this column for the train/validation split (default: the whole row)",
)
@click.option(
    "--hp",
    "hp",
    multiple=True,
    metavar="KEY=VALUE",
    help="XGBoost parameter or num_round; repeat, or list several after one --hp",
)
@click.option("--output", required=True, metavar="DIR", help="where model.tar.gz is written")
@click.option("--quiet", is_flag=True, help="print only the final summary")
@_secret_option
@click.argument("more_hp", nargs=-1, metavar="")
def train(
    source: str,
    table: str | None,
    query: str | None,
    target: str,
    features: str | None,
    exclude: str | None,
    workers: int,
    validation_fraction: float,
    split_key: str | None,
    hp: tuple[str, ...],
    output: str,
    quiet: bool,
    secret: str | None,
    more_hp: tuple[str, ...],
) -> None:
    """Train one XGBoost model with N workers reading the warehouse directly."""
    from stageless.training.api import train as run_train
    from stageless.training.events import Reporter
    from stageless.training.hyperparams import parse_assignments

    manifest = run_train(
        source,
        table=table,
        query=query,
        target=target,
        features=split_list(features) or None,
        exclude=split_list(exclude),
        workers=workers,
        validation_fraction=validation_fraction,
        split_key=split_key,
        hyperparameters=parse_assignments([*hp, *more_hp]),
        output=output,
        progress=Reporter(workers, quiet=quiet),
        secret=secret,
    )
    data = manifest.data
    shown = "validation" if manifest.metrics.get("validation") else "train"
    metric = "  ".join(f"{k}={v:.5f}" for k, v in manifest.metrics[shown].items())
    click.echo(
        f"{shown} {metric}  rows={data.rows_total:,} (train {data.rows_train:,}, "
        f"validation {data.rows_validation:,}, dropped {data.rows_dropped_null_target:,})  "
        f"workers={manifest.workers}  model={_archive_location(output)}"
    )


@cli.command()
@click.argument("model")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=int, default=8080, show_default=True)
@click.option(
    "--workers", type=int, default=1, show_default=True, help="server processes sharing the port"
)
@click.option(
    "--threads", type=int, default=1, show_default=True, help="XGBoost threads per prediction"
)
@click.option(
    "--log-requests/--no-log-requests",
    default=True,
    show_default=True,
    help="one log line per request (never its payload)",
)
def serve(model: str, host: str, port: int, workers: int, threads: int, log_requests: bool) -> None:
    """Serve MODEL (model.tar.gz or a directory) over HTTP: GET /ping, POST /invocations."""
    from stageless.serving import serve as run_serve

    run_serve(model, host, port, workers, threads=threads, log_requests=log_requests)


@cli.command()
@click.argument("model")
@click.option("--source", required=True, metavar="WAREHOUSE_URL")
@click.option("--table", metavar="[SCHEMA.]TABLE", help="the table to score")
@click.option("--query", metavar="SQL", help="or one SELECT defining the rows")
@click.option(
    "--into", required=True, metavar="[SCHEMA.]TABLE", help="input columns + prediction go here"
)
@click.option(
    "--mode",
    type=click.Choice(["replace", "append"]),
    default="replace",
    show_default=True,
    help="replace: exactly the scored rows (atomic); append: add them",
)
@click.option("--quiet", is_flag=True, help="print only the final summary")
@_secret_option
def predict(
    model: str,
    source: str,
    table: str | None,
    query: str | None,
    into: str,
    mode: str,
    quiet: bool,
    secret: str | None,
) -> None:
    """Score a table or query with MODEL into a table of the same warehouse."""
    from stageless.prediction import predict as run_predict

    def show(rows: int, seconds: float, done: bool) -> None:
        if not done:
            rate = rows / seconds if seconds > 0 else 0.0
            click.echo(f"scored {rows:,} rows in {seconds:.1f}s ({rate:,.0f} rows/s)", err=True)

    result = run_predict(
        model,
        source,
        table=table,
        query=query,
        into=into,
        mode=mode,
        secret=secret,
        progress=None if quiet else show,
    )
    rate = result.rows / result.seconds if result.seconds > 0 else 0.0
    click.echo(
        f"scored {result.rows:,} rows into {result.table} ({result.warehouse}) "
        f"in {result.seconds:.2f}s ({rate:,.0f} rows/s)"
    )


cli.add_command(sagemaker_group)


def _archive_location(output: str) -> str:
    from stageless.storage import is_s3_url

    if is_s3_url(output):
        return output.rstrip("/") + "/model.tar.gz"
    return str(Path(output) / "model.tar.gz")


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: one ``error:`` line and the right exit code on failure."""
    skip_unused_imports()
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        _fail(exc.format_message(), 2)
    except click.ClickException as exc:  # e.g. an unreadable file named by an option
        _fail(exc.format_message(), 2)
    except (click.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    except StagelessError as exc:
        _fail(exc.message, exc.exit_code)
    except Exception as exc:  # internal error: one line, traceback only on request
        if os.environ.get("STAGELESS_DEBUG"):
            traceback.print_exc()
        _fail(
            f"internal error ({describe(exc)}); "
            "rerun with STAGELESS_DEBUG=1 for details and report it",
            1,
        )
    exit_now(0)


def _fail(message: str, code: int) -> None:
    click.echo("error: " + " ".join(message.split()), err=True)
    sys.exit(code)
