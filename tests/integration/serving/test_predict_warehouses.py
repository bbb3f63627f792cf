"""`stageless predict` against the other backends: a real PostgreSQL server and fakesnow.

The servers come from the fixtures of tests/integration/postgres and .../snowflake
(imported here, so a session that runs both directories starts each server twice).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xgboost as xgb

from tests.conftest import RunCli
from tests.integration.postgres.conftest import (
    PostgresServer,
    pg_housing,  # noqa: F401 - a fixture
    pg_server,  # noqa: F401 - a fixture
)
from tests.integration.serving.conftest import FEATURES
from tests.integration.snowflake.conftest import PASSWORD as SF_PASSWORD
from tests.integration.snowflake.conftest import USERNAME as SF_USERNAME
from tests.integration.snowflake.conftest import (
    FakeSnow,
    database,  # noqa: F401 - a fixture
    fakesnow,  # noqa: F401 - a fixture
)


def _reference(booster: xgb.Booster, rows: list[tuple[float, ...]]) -> np.ndarray:
    matrix = np.array(rows, dtype=np.float64).astype(np.float32)
    return booster.inplace_predict(np.ascontiguousarray(matrix))


def test_postgres_scores_into_a_new_table_with_a_secret(
    pg_housing: PostgresServer,  # noqa: F811
    housing_model: Path,
    booster: xgb.Booster,
    run_cli: RunCli,
) -> None:
    env = pg_housing.secret_env("PGSCORE")
    result = run_cli(
        "predict",
        str(housing_model),
        "--source",
        pg_housing.url(with_password=False),
        "--table",
        "california_housing",
        "--into",
        "scoring.scored",
        "--secret",
        "env://PGSCORE",
        env=env,
    )
    assert result.returncode == 0, result.output
    assert pg_housing.password not in result.output
    assert "scored 20,640 rows into scoring.scored" in result.stdout
    columns = [
        r[0]
        for r in pg_housing.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'scoring' "
            "AND table_name = 'scored' ORDER BY ordinal_position"
        )
    ]
    source = [
        r[0]
        for r in pg_housing.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = 'california_housing' ORDER BY ordinal_position"
        )
    ]
    assert columns == [*source, "prediction"]
    quoted = ", ".join(f'"{f}"' for f in FEATURES)
    rows = pg_housing.sql(f"SELECT {quoted}, prediction FROM scoring.scored")
    assert len(rows) == 20_640
    got = np.array([r[-1] for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(got, _reference(booster, [r[:-1] for r in rows]))

    # A failing replace leaves the table as it was.
    failing = run_cli(
        "predict",
        str(housing_model),
        "--source",
        pg_housing.url(with_password=False),
        "--query",
        'SELECT *, CASE WHEN "MedInc" > 10 THEN 1 / 0 ELSE 0 END AS trap FROM california_housing',
        "--into",
        "scoring.scored",
        "--secret",
        "env://PGSCORE",
        env=env,
    )
    assert failing.returncode == 2, failing.output
    assert failing.stderr.startswith("error: ")
    assert "division by zero" in failing.stderr
    assert pg_housing.password not in failing.output
    assert pg_housing.sql("SELECT count(*) FROM scoring.scored")[0][0] == 20_640


def test_snowflake_emulator_scores_upper_cased_columns(
    fakesnow: FakeSnow,  # noqa: F811
    database: str,  # noqa: F811
    housing_model: Path,
    booster: xgb.Booster,
    housing_rows: np.ndarray,
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    source = tmp_path / "houses.csv"
    lines = [",".join(FEATURES)] + [",".join(repr(float(v)) for v in row) for row in housing_rows]
    source.write_text("\n".join(lines) + "\n")
    env = {"SFSCORE_USERNAME": SF_USERNAME, "SFSCORE_PASSWORD": SF_PASSWORD}
    url = fakesnow.url(database)
    loaded = run_cli(
        "ingest",
        str(source),
        "--to",
        url,
        "--table",
        "houses",
        "--secret",
        "env://SFSCORE",
        env=env,
    )
    assert loaded.returncode == 0, loaded.output
    result = run_cli(
        "predict",
        str(housing_model),
        "--source",
        url,
        "--table",
        "houses",
        "--into",
        "scored",
        "--secret",
        "env://SFSCORE",
        env=env,
    )
    assert result.returncode == 0, result.output
    assert SF_PASSWORD not in result.output
    assert "scored 300 rows" in result.stdout
    rows = fakesnow.rows(f"SELECT * FROM {database}.PUBLIC.SCORED")
    assert len(rows) == 300
    by_features = {tuple(np.float32(v) for v in r[:-1]): r[-1] for r in rows}
    want = booster.inplace_predict(housing_rows)
    for row, expected in zip(housing_rows, want, strict=True):
        assert np.float32(by_features[tuple(row)]) == expected
