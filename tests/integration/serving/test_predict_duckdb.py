"""`stageless predict` into real DuckDB files: every row, every column, exact predictions."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import xgboost as xgb

from stageless.prediction import predict
from tests.conftest import RunCli
from tests.integration.serving.conftest import FEATURES


@pytest.fixture
def db(housing_db: str, tmp_path: Path) -> Path:
    """A private, writable copy of the housing DuckDB file."""
    path = tmp_path / "scoring.duckdb"
    shutil.copy(housing_db.removeprefix("duckdb://"), path)
    return path


def _table(path: Path, sql: str) -> pa.Table:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).to_arrow_table()


def _floats(table: pa.Table, name: str) -> np.ndarray:
    """A column as float32, NULL as NaN (what XGBoost treats as missing)."""
    return pc.cast(table.column(name), pa.float32()).to_numpy(zero_copy_only=False)


def _reference(booster: xgb.Booster, table: pa.Table, names: list[str] = FEATURES) -> np.ndarray:
    matrix = np.column_stack([_floats(table, name) for name in names])
    return booster.inplace_predict(np.ascontiguousarray(matrix))


def test_cli_scores_every_row_keeps_every_column_and_matches_the_booster(
    db: Path, housing_model: Path, booster: xgb.Booster, run_cli: RunCli
) -> None:
    result = run_cli(
        "predict",
        str(housing_model),
        "--source",
        f"duckdb:{db}",
        "--table",
        "california_housing",
        "--into",
        "results.scored",
    )
    assert result.returncode == 0, result.output
    assert "scored 20,640 rows into results.scored" in result.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        source_cols = [r[0] for r in con.sql("DESCRIBE california_housing").fetchall()]
        described = con.sql("DESCRIBE results.scored").fetchall()
    assert [r[0] for r in described] == [*source_cols, "prediction"]
    assert described[-1][1] == "FLOAT"
    scored = _table(db, "SELECT * FROM results.scored")
    source = _table(db, "SELECT * FROM california_housing")
    assert scored.num_rows == 20_640
    assert scored.drop_columns(["prediction"]).equals(source)  # inputs unchanged, in order
    np.testing.assert_array_equal(_floats(scored, "prediction"), _reference(booster, scored))


def test_query_source_small_batches_case_insensitive_names_nulls_and_progress(
    db: Path, housing_model: Path, booster: xgb.Booster
) -> None:
    lower = ", ".join(f'"{f}" AS {f.lower()}' for f in FEATURES)
    query = (
        f"SELECT {lower}, CASE WHEN MedInc > 5 THEN NULL ELSE HouseAge END AS houseage_or_null "
        "FROM california_housing WHERE Latitude > 35"
    )
    seen: list[tuple[int, bool]] = []
    result = predict(
        str(housing_model),
        f"duckdb:{db}",
        query=query.replace("HouseAge END", "HouseAge::INTEGER END"),
        into="scored",
        batch_rows=1000,
        progress=lambda rows, seconds, done: seen.append((rows, done)),
        every_seconds=0,
    )
    count = "SELECT count(*) AS n FROM california_housing WHERE Latitude > 35"
    expected_rows = _table(db, count)["n"][0].as_py()
    assert 0 < expected_rows < 20_640
    assert result.rows == expected_rows
    assert seen[-1] == (expected_rows, True)
    assert len(seen) > 5  # progress after batches along the way
    scored = _table(db, "SELECT * FROM scored")
    lowered = [f.lower() for f in FEATURES]
    assert scored.column_names == [*lowered, "houseage_or_null", "prediction"]
    assert scored.column("houseage_or_null").null_count > 0
    np.testing.assert_array_equal(
        _floats(scored, "prediction"), _reference(booster, scored, lowered)
    )


def test_null_and_integer_features_are_missing_values_and_numbers(
    db: Path, housing_model: Path, booster: xgb.Booster
) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute(
            "CREATE TABLE odd AS SELECT CASE WHEN MedInc > 5 THEN NULL ELSE MedInc END AS MedInc, "
            "HouseAge::INTEGER AS HouseAge, AveRooms::DECIMAL(18,6) AS AveRooms, "
            "AveBedrms::REAL AS AveBedrms, Population::BIGINT AS Population, AveOccup, "
            "Latitude, Longitude, 'x' AS label FROM california_housing LIMIT 500"
        )
    predict(str(housing_model), f"duckdb:{db}", table="odd", into="odd_scored")
    scored = _table(db, "SELECT * FROM odd_scored")
    assert scored.num_rows == 500
    assert scored.column("MedInc").null_count > 0
    assert str(scored.schema.field("AveRooms").type) == "decimal128(18, 6)"
    np.testing.assert_array_equal(_floats(scored, "prediction"), _reference(booster, scored))
    assert scored.column("label").to_pylist()[:3] == ["x", "x", "x"]


def test_replace_into_the_source_table_itself_and_append(db: Path, housing_model: Path) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE small AS SELECT * FROM california_housing LIMIT 100")
    predict(str(housing_model), f"duckdb:{db}", table="small", into="small")
    assert _table(db, "SELECT * FROM small").num_rows == 100
    predict(
        str(housing_model),
        f"duckdb:{db}",
        query="SELECT * EXCLUDE (prediction) FROM small",
        into="small",
        mode="append",
    )
    assert _table(db, "SELECT * FROM small").num_rows == 200


def test_a_failure_part_way_keeps_the_old_table_exactly(
    db: Path, housing_model: Path, run_cli: RunCli
) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE scored AS SELECT 42 AS old_column")

    def fail_after_five_batches(rows: int, seconds: float, done: bool) -> None:
        if rows >= 5000 and not done:
            raise RuntimeError("stopped on purpose")

    # Five batches of 1,000 rows have gone into the new table when the scoring fails.
    with pytest.raises(RuntimeError, match="stopped on purpose"):
        predict(
            str(housing_model),
            f"duckdb:{db}",
            table="california_housing",
            into="scored",
            batch_rows=1000,
            progress=fail_after_five_batches,
            every_seconds=0,
        )
    assert _table(db, "SELECT * FROM scored").to_pydict() == {"old_column": [42]}

    # A query that fails while it streams, through the command line.
    query = (
        "SELECT *, CASE WHEN rowid > 15000 THEN CAST('boom' AS DOUBLE) ELSE 0 END AS trap "
        "FROM california_housing"
    )
    result = run_cli(
        "predict",
        str(housing_model),
        "--source",
        f"duckdb:{db}",
        "--query",
        query,
        "--into",
        "scored",
    )
    assert result.returncode == 2, result.output
    assert result.stderr.startswith("error: ")
    assert "boom" in result.stderr
    assert "Traceback" not in result.output
    assert _table(db, "SELECT * FROM scored").to_pydict() == {"old_column": [42]}


BAD_PREDICT = {
    "missing feature column": (
        ["--query", "SELECT MedInc, HouseAge FROM california_housing"],
        "needs feature column 'AveRooms', which the input lacks",
    ),
    "text feature column": (
        ["--query", "SELECT * REPLACE (CAST(MedInc AS VARCHAR) AS MedInc) FROM california_housing"],
        "feature column 'MedInc' is string, not a number",
    ),
    "prediction column exists": (
        ["--query", "SELECT *, 1 AS prediction FROM california_housing"],
        "already has a column named 'prediction'",
    ),
    "missing table": (["--table", "nope"], "table 'nope' not found"),
    "table and query": (
        ["--table", "california_housing", "--query", "SELECT 1"],
        "exactly one of --table or --query",
    ),
    "query not a select": (["--query", "DROP TABLE california_housing"], "SELECT"),
    "bad mode": (["--table", "california_housing", "--mode", "create"], "--mode"),
}


@pytest.mark.parametrize("case", list(BAD_PREDICT), ids=list(BAD_PREDICT))
def test_bad_predict_inputs_are_one_line_user_errors_and_write_nothing(
    case: str, db: Path, housing_model: Path, run_cli: RunCli
) -> None:
    args, fragment = BAD_PREDICT[case]
    result = run_cli(
        "predict", str(housing_model), "--source", f"duckdb:{db}", *args, "--into", "out_table"
    )
    assert result.returncode == 2, result.output
    assert result.stderr.startswith("error: ")
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {r[0] for r in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "california_housing" in tables
    assert "out_table" not in tables


def test_a_bad_model_is_refused_before_the_warehouse_is_touched(
    db: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    junk = tmp_path / "model.tar.gz"
    junk.write_bytes(b"not a tar at all")
    result = run_cli(
        "predict",
        str(junk),
        "--source",
        f"duckdb:{db}",
        "--table",
        "california_housing",
        "--into",
        "scored",
    )
    assert result.returncode == 2
    assert "not a model.tar.gz" in result.stderr
