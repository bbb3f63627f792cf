"""The Snowflake backend's logic that needs no emulator: pinning, errors, connecting.

Time travel cannot run here (fakesnow has no AT clause), so the pinning tests give the
backend a stand-in for its one I/O method, `arrow_batches`, answering as Snowflake does:
the current timestamp, then the probe query either succeeding or failing.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from snowflake.connector import errors as sf_errors

from stageless.errors import NotFoundError, StagelessError, TransientError, UserError
from stageless.identifiers import TableName
from stageless.secrets import Secret
from stageless.warehouses import open_warehouse
from stageless.warehouses.snowflake import SnowflakeWarehouse, translate
from stageless.warehouses.snowflake_sql import table_expression
from stageless.warehouses.snowflake_url import parse_snowflake_url

NOW = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


class ScriptedWarehouse(SnowflakeWarehouse):
    """The backend with its queries answered by a script instead of a server."""

    def __init__(self, time_travel: bool) -> None:
        super().__init__(parse_snowflake_url("snowflake://acct/DB"), con=None, read_only=True)  # type: ignore[arg-type]
        self.time_travel = time_travel
        self.queries: list[str] = []

    def arrow_batches(
        self, sql: str, params: Sequence[object] = (), batch_rows: int = 1
    ) -> pa.RecordBatchReader:
        self.queries.append(sql)
        if sql == "SELECT CURRENT_TIMESTAMP()":
            table = pa.table({"CURRENT_TIMESTAMP()": pa.array([NOW])})
        elif "AT (TIMESTAMP" in sql and not self.time_travel:
            raise UserError(
                "query failed: Time travel data is not available for table T. The requested "
                "time is either beyond the allowed time travel period or before the object "
                "creation time."
            )
        else:
            table = pa.table({"1": pa.array([], pa.int64())})
        return table.to_reader()

    def resolve_table(self, name: TableName) -> object:  # type: ignore[override]
        return table_expression("DB", "PUBLIC", name.name.upper())


def test_pin_reads_every_table_at_the_servers_instant() -> None:
    wh = ScriptedWarehouse(time_travel=True)
    table = wh.relation_for_table(TableName("sales"))
    query = wh.relation_for_query("WITH c AS (SELECT * FROM ref) SELECT * FROM c, sales")
    wh.pin()
    at = "AT (TIMESTAMP => CAST('2026-03-04 05:06:07.891011+00:00' AS TIMESTAMPTZ))"
    assert table.select_all_sql("snowflake") == f'SELECT * FROM "DB"."PUBLIC"."SALES" {at}'
    assert query.select_all_sql("snowflake") == (
        f"WITH c AS (SELECT * FROM ref {at}) SELECT * FROM c, sales {at}"
    )
    assert (wh.snapshot() or "").startswith(
        "Snowflake time travel AT(TIMESTAMP => '2026-03-04 05:06:07.891011+00:00'): the count "
        "and every worker read the tables as they were at this instant"
    )
    assert sum("LIMIT 0" in q for q in wh.queries) == 2  # each relation probed once


def test_without_time_travel_the_read_is_unpinned_and_says_so() -> None:
    wh = ScriptedWarehouse(time_travel=False)
    table = wh.relation_for_table(TableName("sales"))
    wh.pin()
    assert table.select_all_sql("snowflake") == 'SELECT * FROM "DB"."PUBLIC"."SALES"'
    snapshot = wh.snapshot() or ""
    assert snapshot.startswith("not pinned: time travel is not available here")
    assert "Time travel data is not available for table T" in snapshot
    assert "exactly-once row count" in snapshot


def test_row_hash_is_snowflakes_hash_made_non_negative() -> None:
    wh = ScriptedWarehouse(time_travel=True)
    relation = wh.relation_for_table(TableName("t"))
    shards = wh.plan_shards(relation, ["A", "b c"], 2)
    assert [s.predicate_sql for s in shards] == [
        '(ABS(HASH(1, "A", "b c"))) % 2 = 0',
        '(ABS(HASH(1, "A", "b c"))) % 2 = 1',
    ]
    assert wh.float32_type == "FLOAT"


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (
            sf_errors.ProgrammingError(msg="Object 'T' does not exist", errno=2003),
            NotFoundError,
            "T",
        ),
        (
            sf_errors.ProgrammingError(msg="invalid identifier 'NOPE'", errno=904),
            NotFoundError,
            "NOPE",
        ),
        (sf_errors.ProgrammingError(msg="syntax error", errno=1003), UserError, "syntax"),
        (
            sf_errors.ProgrammingError(msg="No active warehouse selected", errno=606),
            UserError,
            "add warehouse=WH to the URL",
        ),
        (
            sf_errors.DatabaseError(
                msg="Failed to connect to DB: acct.snowflakecomputing.com:443. Incorrect "
                "username or password was specified.",
                errno=390100,
            ),
            UserError,
            "rejected the login (Incorrect username or password was specified.)",
        ),
        (
            sf_errors.OperationalError(msg="Could not connect", errno=250001),
            TransientError,
            "retry",
        ),
        (sf_errors.ForbiddenError(msg="HTTP 403"), UserError, "account identifier"),
        (sf_errors.InternalError(msg="boom", errno=1), StagelessError, "boom"),
    ],
)
def test_driver_errors_become_one_line_stageless_errors(
    error: Exception, kind: type[Exception], text: str
) -> None:
    translated = translate(error, "doing it")
    assert type(translated) is kind
    message = str(translated)
    assert message.startswith("doing it: ") and text in message and "\n" not in message


def test_no_secret_is_a_user_error() -> None:
    with pytest.raises(UserError, match="Snowflake needs credentials: pass --secret"):
        open_warehouse("snowflake://acct/DB")


def test_an_unreachable_account_fails_fast_with_a_clear_transient_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = Secret({"username": "u", "password": "unreachable-Pa55"})
    start = time.monotonic()
    with pytest.raises(TransientError) as info:
        open_warehouse(
            f"snowflake://acct/DB?host=127.0.0.1&port={port}&protocol=http&login_timeout=2",
            secret=secret,
        )
    assert time.monotonic() - start < 20  # the driver retried only until login_timeout
    message = str(info.value)
    assert message.startswith("cannot connect to Snowflake account 'acct' at 127.0.0.1:")
    assert "check the account identifier" in message
    assert "unreachable-Pa55" not in message
