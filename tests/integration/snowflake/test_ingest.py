"""`stageless ingest` into Snowflake: types, names, PUT + COPY INTO, atomic replace.

fakesnow runs in server mode for all of these: the load goes through the real driver's PUT
(an HTTP upload to the emulator's stage) and a real COPY INTO statement. Credentials come
from `env://` here (the AWS provider is exercised by the walkthrough and bad-input tests).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest

import stageless
from stageless.errors import TransientError, UserError
from stageless.identifiers import TableName
from stageless.warehouses import open_warehouse
from stageless.warehouses.snowflake import SnowflakeWarehouse
from tests.integration.snowflake.conftest import PASSWORD, USERNAME, FakeSnow

SECRET = "env://SFTEST"


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFTEST_USERNAME", USERNAME)
    monkeypatch.setenv("SFTEST_PASSWORD", PASSWORD)


def _csv(path: Path, text: str) -> str:
    path.write_text(text.strip() + "\n")
    return str(path)


def _tables(fakesnow: FakeSnow, database: str) -> list[str]:
    rows = fakesnow.rows(f"SELECT TABLE_NAME FROM {database}.INFORMATION_SCHEMA.TABLES ORDER BY 1")
    return [r[0] for r in rows]


def _databases(fakesnow: FakeSnow) -> set[str]:
    return {row[1] for row in fakesnow.rows("SHOW DATABASES")}


def test_types_and_names_follow_the_seed(
    fakesnow: FakeSnow, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"  # where ingest writes its temporary Parquet file
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    source = _csv(
        tmp_path / "mixed.csv",
        """
id,Price,name,seen_at,active,Median Income
1,2.5,alpha,2024-01-02 03:04:05,true,3.5
2,,beta,2024-02-03 04:05:06,false,
3,4.0,,2024-03-04 05:06:07,,1.25
""",
    )
    url = fakesnow.url(database)
    result = stageless.ingest(source, to=url, table="mixed", secret=SECRET)
    assert result.rows == 3
    assert list(scratch.iterdir()) == []  # the Parquet file is gone

    columns = fakesnow.rows(
        f"SELECT COLUMN_NAME, DATA_TYPE FROM {database}.INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_NAME = 'MIXED' ORDER BY ORDINAL_POSITION"
    )
    assert columns == [
        ("ID", "NUMBER"),  # INT
        ("PRICE", "FLOAT"),  # FLOAT8
        ("NAME", "TEXT"),  # VARCHAR
        ("SEEN_AT", "TIMESTAMP_NTZ"),
        ("ACTIVE", "BOOLEAN"),
        ("MEDIAN INCOME", "FLOAT"),  # upper-cased, and quoted: it has a space
    ]
    assert fakesnow.rows(
        f'SELECT ID, PRICE, NAME, SEEN_AT, ACTIVE, "MEDIAN INCOME" FROM {database}.PUBLIC.MIXED '
        "ORDER BY ID"
    ) == [
        (1, 2.5, "alpha", dt.datetime(2024, 1, 2, 3, 4, 5), True, 3.5),
        (2, None, "beta", dt.datetime(2024, 2, 3, 4, 5, 6), False, None),
        (3, 4.0, None, dt.datetime(2024, 3, 4, 5, 6, 7), None, 1.25),
    ]

    # Reading it back: one Arrow schema whatever the chunks were, also for an empty result.
    with open_warehouse(url, read_only=True, secret=SECRET) as wh:
        table = wh.resolve_table(TableName("mixed"))
        assert table.sql(dialect="snowflake") == f'"{database}"."PUBLIC"."MIXED"'
        expected = pa.schema(
            [
                ("ID", pa.int64()),
                ("PRICE", pa.float64()),
                ("NAME", pa.string()),
                ("SEEN_AT", pa.timestamp("us")),
                ("ACTIVE", pa.bool_()),
                ("MEDIAN INCOME", pa.float64()),
            ]
        )
        read = wh.arrow_batches(f"SELECT * FROM {table.sql(dialect='snowflake')}", batch_rows=2)
        assert read.schema == expected
        batches = list(read)
        assert [b.num_rows for b in batches] == [2, 1]
        assert sorted(v for b in batches for v in b.column(0).to_pylist()) == [1, 2, 3]
        empty = wh.arrow_batches(
            f"SELECT * FROM {table.sql(dialect='snowflake')} WHERE ID < ?", [0]
        )
        assert empty.schema == expected and empty.read_all().num_rows == 0
    assert fakesnow.staged_files(database) == []


def test_replace_leaves_exactly_the_new_rows_and_columns(
    fakesnow: FakeSnow, database: str, tmp_path: Path
) -> None:
    # A quoted name in the URL keeps its case; --table q1_numbers folds to Q1_NUMBERS.
    # (Names with spaces are quoted the same way, but fakesnow's COPY INTO cannot load
    # into such a table: it describes the table with the name unquoted.)
    url = fakesnow.url(database, '"Sales"')
    old = _csv(tmp_path / "old.csv", "a,b\n1,x\n2,y\n3,z")
    new = _csv(tmp_path / "new.csv", "a,c\n10,1.5\n20,2.5")
    stageless.ingest(old, to=url, table="q1_numbers", secret=SECRET)
    assert stageless.ingest(new, to=url, table="q1_numbers", secret=SECRET).rows == 2
    rows = fakesnow.rows(f'SELECT * FROM {database}."Sales".Q1_NUMBERS ORDER BY A')
    assert rows == [(10, 1.5), (20, 2.5)]
    names = fakesnow.rows(
        f"SELECT TABLE_SCHEMA, TABLE_NAME FROM {database}.INFORMATION_SCHEMA.TABLES"
    )
    assert names == [("Sales", "Q1_NUMBERS")]  # no load table left behind
    with open_warehouse(url, read_only=True, secret=SECRET) as wh:
        assert wh.url.startswith(f"snowflake://fakesnow/{database}/%22Sales%22?")
        table = wh.resolve_table(TableName("Q1_Numbers"))
        assert table.sql(dialect="snowflake") == f'"{database}"."Sales"."Q1_NUMBERS"'


def test_a_failed_replace_keeps_the_old_table(
    fakesnow: FakeSnow, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fakesnow.url(database)
    stageless.ingest(_csv(tmp_path / "old.csv", "a,b\n1,2\n3,4"), to=url, table="t", secret=SECRET)

    # Fault injection: the new rows are loaded, then the final statement fails.
    def broken(self: SnowflakeWarehouse, target: str, new: str, where: str) -> None:
        raise TransientError(f"{where}: injected failure")

    monkeypatch.setattr(SnowflakeWarehouse, "_replace", broken)
    with pytest.raises(TransientError, match="injected"):
        stageless.ingest(_csv(tmp_path / "new.csv", "a,b\n5,6"), to=url, table="t", secret=SECRET)
    assert fakesnow.rows(f"SELECT A, B FROM {database}.PUBLIC.T ORDER BY A") == [(1, 2), (3, 4)]
    assert _tables(fakesnow, database) == ["T"]


def test_a_failed_first_load_leaves_nothing_behind(
    fakesnow: FakeSnow, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: SnowflakeWarehouse, sql: str, where: str) -> int:
        raise TransientError(f"{where}: injected failure")

    monkeypatch.setattr(SnowflakeWarehouse, "_copied", broken)
    with pytest.raises(TransientError, match="injected"):
        stageless.ingest(
            _csv(tmp_path / "a.csv", "a\n1"), to=fakesnow.url(database), table="t", secret=SECRET
        )
    # The load created the database and its schema and drops both again. fakesnow has no
    # DROP DATABASE (Snowflake has), so there the emptied database itself remains.
    if database in _databases(fakesnow):
        schemas = fakesnow.rows(f"SELECT SCHEMA_NAME FROM {database}.INFORMATION_SCHEMA.SCHEMATA")
        assert schemas == [("INFORMATION_SCHEMA",)]


def test_a_bad_source_touches_nothing(fakesnow: FakeSnow, database: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        stageless.ingest(
            str(tmp_path / "missing.csv"), to=fakesnow.url(database), table="t", secret=SECRET
        )
    assert database not in _databases(fakesnow)


def test_append_and_create(fakesnow: FakeSnow, database: str, tmp_path: Path) -> None:
    url = fakesnow.url(database)
    stageless.ingest(_csv(tmp_path / "a.csv", "a,b\n1,2"), to=url, table="t", secret=SECRET)

    # append matches columns case-insensitively and in any order; missing ones are NULL
    more = _csv(tmp_path / "b.csv", "B,a\n4,3\n6,5")
    assert stageless.ingest(more, to=url, table="T", mode="append", secret=SECRET).rows == 2
    partial = _csv(tmp_path / "c.csv", "a\n7")
    stageless.ingest(partial, to=url, table="t", mode="append", secret=SECRET)
    assert fakesnow.rows(f"SELECT A, B FROM {database}.PUBLIC.T ORDER BY A") == [
        (1, 2),
        (3, 4),
        (5, 6),
        (7, None),
    ]

    extra = _csv(tmp_path / "d.csv", "a,zz\n8,9")
    with pytest.raises(UserError, match="has no column ZZ"):
        stageless.ingest(extra, to=url, table="t", mode="append", secret=SECRET)
    with pytest.raises(UserError, match="already exists"):
        stageless.ingest(extra, to=url, table="t", mode="create", secret=SECRET)
    assert fakesnow.rows(f"SELECT COUNT(*) FROM {database}.PUBLIC.T") == [(4,)]
    assert _tables(fakesnow, database) == ["T"]

    # append to a table that does not exist yet creates it; so does create
    assert stageless.ingest(extra, to=url, table="u", mode="append", secret=SECRET).rows == 1
    assert stageless.ingest(extra, to=url, table="v", mode="create", secret=SECRET).rows == 1
    assert _tables(fakesnow, database) == ["T", "U", "V"]
