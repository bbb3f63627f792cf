"""`stageless ingest` into a real PostgreSQL server: types, modes, atomic replace."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import stageless
from stageless.errors import UserError
from tests.conftest import RunCli
from tests.integration.postgres.conftest import HOUSING_ROWS, PostgresServer


def column_types(server: PostgresServer, table: str, schema: str = "public") -> dict[str, str]:
    rows = server.sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        [schema, table],
    )
    return dict(rows)


def leftovers(server: PostgresServer) -> list[str]:
    """Staging tables a load may have left behind (there must never be any)."""
    return [
        r[0] for r in server.sql("SELECT relname FROM pg_class WHERE relname LIKE '%%incoming%%'")
    ]


def test_bundled_dataset_over_the_cli_with_a_secret(
    pg_server: PostgresServer, run_cli: RunCli
) -> None:
    result = run_cli(
        "ingest",
        "dataset:california-housing",
        "--to",
        pg_server.url(with_password=False),
        "--table",
        "housing_cli",
        "--secret",
        "env://PGLOAD",
        env=pg_server.secret_env("PGLOAD"),
    )
    assert result.returncode == 0, result.stderr
    assert "20,640 rows" in result.stdout
    assert pg_server.password not in result.output
    ((count, med_inc, value),) = pg_server.sql(
        'SELECT count(*), avg("MedInc"), avg("MedHouseVal") FROM housing_cli'
    )
    assert count == HOUSING_ROWS
    assert (round(med_inc, 4), round(value, 4)) == (3.8707, 2.0686)
    assert set(column_types(pg_server, "housing_cli").values()) == {"double precision"}


def test_arrow_types_land_as_postgres_types(pg_server: PostgresServer, tmp_path: Path) -> None:
    parquet = tmp_path / "types.parquet"
    pq.write_table(
        pa.table(
            {
                "i8": pa.array([1, None], pa.int8()),
                "i32": pa.array([2, 3], pa.int32()),
                "i64": pa.array([2**40, 4], pa.int64()),
                "u64": pa.array([2**63 + 5, 0], pa.uint64()),
                "f32": pa.array([1.5, None], pa.float32()),
                "f64": pa.array([2.25, 3.0], pa.float64()),
                "dec": pa.array([decimal.Decimal("1.25"), None], pa.decimal128(10, 2)),
                "flag": pa.array([True, None]),
                "name": pa.array(["a", None], pa.large_string()),
                "day": pa.array([dt.date(2024, 1, 2), None], pa.date32()),
                "at": pa.array(
                    [dt.datetime(2024, 1, 2, 3, 4, 5, 678901), None], pa.timestamp("ns")
                ),
                "at_tz": pa.array([0, None], pa.timestamp("us", tz="UTC")),
                "raw": pa.array([b"\x00\x01", None], pa.binary()),
            }
        ),
        parquet,
    )
    assert stageless.ingest(str(parquet), to=pg_server.url(), table="typed").rows == 2
    assert column_types(pg_server, "typed") == {
        "i8": "smallint",
        "i32": "integer",
        "i64": "bigint",
        "u64": "numeric",
        "f32": "real",
        "f64": "double precision",
        "dec": "numeric",
        "flag": "boolean",
        "name": "text",
        "day": "date",
        "at": "timestamp without time zone",
        "at_tz": "timestamp with time zone",
        "raw": "bytea",
    }
    row = pg_server.sql("SELECT u64::text, dec::text, at::text, raw FROM typed WHERE i32 = 2")[0]
    assert row == ("9223372036854775813", "1.25", "2024-01-02 03:04:05.678901", b"\x00\x01")


def test_modes_replace_append_create(pg_server: PostgresServer, tmp_path: Path) -> None:
    url = pg_server.url()
    first = tmp_path / "a.csv"
    first.write_text("x,label\n1,a\n2,b\n")
    assert stageless.ingest(str(first), to=url, table="modes").rows == 2
    # append matches columns by name, in any order and case
    second = tmp_path / "b.csv"
    second.write_text("LABEL,X\nc,3\n")
    assert stageless.ingest(str(second), to=url, table="Modes", mode="append").rows == 1
    assert pg_server.sql("SELECT x, label FROM modes ORDER BY x") == [(1, "a"), (2, "b"), (3, "c")]
    stageless.ingest(str(second), to=url, table="modes", mode="replace")
    assert pg_server.sql('SELECT "X", "LABEL" FROM modes') == [(3, "c")]
    with pytest.raises(UserError, match="already exists"):
        stageless.ingest(str(first), to=url, table="modes", mode="create")
    assert pg_server.sql("SELECT count(*) FROM modes") == [(1,)]
    # append into a table that does not exist yet creates it
    stageless.ingest(str(first), to=url, table="fresh.appended", mode="append")
    assert pg_server.sql("SELECT count(*) FROM fresh.appended") == [(2,)]
    assert leftovers(pg_server) == []


def test_append_of_an_unknown_column_fails_and_adds_nothing(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    url = pg_server.url()
    good = tmp_path / "good.csv"
    good.write_text("x\n1\n")
    stageless.ingest(str(good), to=url, table="narrow")
    wide = tmp_path / "wide.csv"
    wide.write_text("x,extra\n2,3\n")
    with pytest.raises(UserError, match="'extra' not found"):
        stageless.ingest(str(wide), to=url, table="narrow", mode="append")
    assert pg_server.sql("SELECT x FROM narrow") == [(1,)]
    assert leftovers(pg_server) == []


def test_failed_replace_leaves_the_old_table_exactly_as_it_was(
    pg_server: PostgresServer, tmp_path: Path, run_cli: RunCli
) -> None:
    url = pg_server.url()
    good = tmp_path / "good.csv"
    good.write_text("x,y\n1,a\n2,b\n3,c\n")
    stageless.ingest(str(good), to=url, table="precious")
    # Integers for longer than the type sniffer looks, then text: fails part-way through,
    # after rows went into the new table.
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n" + "".join(f"{i},z\n" for i in range(300_000)) + "oops,z\n")
    result = run_cli("ingest", str(bad), "--to", url, "--table", "precious")
    assert result.returncode == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert pg_server.password not in result.output
    assert pg_server.sql("SELECT x, y FROM precious ORDER BY x") == [(1, "a"), (2, "b"), (3, "c")]
    assert leftovers(pg_server) == []


def test_replace_swaps_in_one_commit(pg_server: PostgresServer, tmp_path: Path) -> None:
    url = pg_server.url()
    csv = tmp_path / "v.csv"
    csv.write_text("v\n1\n")
    stageless.ingest(str(csv), to=url, table="swapped")
    # A reader holding a snapshot from before the replace keeps seeing the old rows;
    # a new one sees only the new rows: no moment without the table, no mix.
    with pg_server.connect() as reader:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        assert reader.execute("SELECT v FROM swapped").fetchall() == [(1,)]
        reader.execute("COMMIT")
        csv.write_text("v\n2\n3\n")
        stageless.ingest(str(csv), to=url, table="swapped")
        assert reader.execute("SELECT v FROM swapped ORDER BY v").fetchall() == [(2,), (3,)]


def test_a_view_is_not_replaced(pg_server: PostgresServer, tmp_path: Path) -> None:
    pg_server.sql("CREATE VIEW a_view AS SELECT 1 AS x")
    csv = tmp_path / "x.csv"
    csv.write_text("x\n5\n")
    with pytest.raises(UserError, match="view"):
        stageless.ingest(str(csv), to=pg_server.url(), table="a_view")
    assert pg_server.sql("SELECT x FROM a_view") == [(1,)]
