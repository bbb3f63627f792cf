"""`stageless ingest` into real DuckDB files."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import stageless
from stageless.errors import NotFoundError, UserError
from tests.conftest import RunCli


def rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def column_types(db: Path, table: str, schema: str = "main") -> dict[str, str]:
    return dict(
        rows(
            db,
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = '{schema}' AND table_name = '{table}' ORDER BY ordinal_position",
        )
    )


def test_bundled_dataset_lands_with_every_row_and_the_known_means(
    tmp_path: Path, run_cli: RunCli
) -> None:
    db = tmp_path / "w.duckdb"
    result = run_cli(
        "ingest", "dataset:california-housing", "--to", f"duckdb:{db}", "--table", "housing"
    )
    assert result.returncode == 0, result.stderr
    assert "20,640 rows" in result.stdout
    ((count, med_inc, age, value),) = rows(
        db, "SELECT count(*), avg(MedInc), avg(HouseAge), avg(MedHouseVal) FROM housing"
    )
    assert count == 20640
    assert (round(med_inc, 4), round(age, 4), round(value, 4)) == (3.8707, 28.6395, 2.0686)
    assert set(column_types(db, "housing").values()) == {"DOUBLE"}


def test_csv_types_are_inferred_and_mapped(tmp_path: Path) -> None:
    csv = tmp_path / "mixed.csv.gz"
    with gzip.open(csv, "wt") as f:
        f.write("id,score,active,seen_at,name\n")
        f.write("1,0.5,true,2024-01-01 10:00:00,alice\n")
        f.write("2,1.5,false,2024-01-02 11:30:00,bob\n")
        f.write("3,,true,,carol\n")
    db = tmp_path / "w.duckdb"
    result = stageless.ingest(str(csv), to=f"duckdb:{db}", table="people")
    assert result.rows == 3
    assert column_types(db, "people") == {
        "id": "BIGINT",
        "score": "DOUBLE",
        "active": "BOOLEAN",
        "seen_at": "TIMESTAMP",
        "name": "VARCHAR",
    }
    assert rows(db, "SELECT count(score), count(seen_at) FROM people") == [(2, 2)]


def test_parquet_with_schema_qualified_mixed_case_names(tmp_path: Path) -> None:
    parquet = tmp_path / "loans.parquet"
    pq.write_table(
        pa.table({"Loan Amount": [1.0, 2.0], "select": pa.array([1, 2], pa.int32())}), parquet
    )
    db = tmp_path / "w.duckdb"
    stageless.ingest(str(parquet), to=f"duckdb:{db}", table='Finance."Loan Book"')
    assert rows(db, 'SELECT sum("Loan Amount"), sum("select") FROM Finance."Loan Book"') == [
        (3.0, 3)
    ]
    assert column_types(db, "Loan Book", schema="Finance") == {
        "Loan Amount": "DOUBLE",
        "select": "INTEGER",
    }


def test_modes_replace_append_create(tmp_path: Path) -> None:
    db = f"duckdb:{tmp_path / 'w.duckdb'}"
    csv = tmp_path / "a.csv"
    csv.write_text("x\n1\n2\n")
    stageless.ingest(str(csv), to=db, table="t")
    stageless.ingest(str(csv), to=db, table="t", mode="append")
    assert rows(tmp_path / "w.duckdb", "SELECT count(*) FROM t") == [(4,)]
    stageless.ingest(str(csv), to=db, table="t", mode="replace")
    assert rows(tmp_path / "w.duckdb", "SELECT count(*) FROM t") == [(2,)]
    with pytest.raises(UserError, match="already exists"):
        stageless.ingest(str(csv), to=db, table="t", mode="create")
    assert rows(tmp_path / "w.duckdb", "SELECT count(*) FROM t") == [(2,)]


def test_failed_replace_leaves_the_old_table_exactly_as_it_was(
    tmp_path: Path, run_cli: RunCli
) -> None:
    db = tmp_path / "w.duckdb"
    good = tmp_path / "good.csv"
    good.write_text("x,y\n1,a\n2,b\n3,c\n")
    stageless.ingest(str(good), to=f"duckdb:{db}", table="t")
    # Integers for longer than the type sniffer looks, then text: fails part-way through.
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n" + "".join(f"{i},z\n" for i in range(300_000)) + "oops,z\n")
    result = run_cli("ingest", str(bad), "--to", f"duckdb:{db}", "--table", "t")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert rows(db, "SELECT x, y FROM t ORDER BY x") == [(1, "a"), (2, "b"), (3, "c")]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing.csv", "does not exist"),
        ("notes.txt", "cannot tell the format"),
        ("dataset:nope", "unknown data set"),
    ],
)
def test_unreadable_inputs_are_user_errors(
    tmp_path: Path, run_cli: RunCli, source: str, message: str
) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = run_cli("ingest", source, "--to", "duckdb:w.duckdb", "--table", "t")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_corrupt_gzip_is_a_user_error_and_creates_no_table(tmp_path: Path) -> None:
    bad = tmp_path / "broken.csv.gz"
    bad.write_bytes(b"this is not gzip")
    db = tmp_path / "w.duckdb"
    with pytest.raises(UserError, match="cannot read"):
        stageless.ingest(str(bad), to=f"duckdb:{db}", table="t")
    if db.exists():
        assert rows(db, "SELECT count(*) FROM duckdb_tables()") == [(0,)]


def test_missing_input_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        stageless.ingest(
            str(tmp_path / "nope.parquet"), to=f"duckdb:{tmp_path}/w.duckdb", table="t"
        )
