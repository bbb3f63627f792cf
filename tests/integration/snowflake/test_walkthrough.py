"""The seed's walkthrough, end to end through the `stageless` command.

Services: the moto server (AWS Secrets Manager over HTTP) holds the credentials, and
fakesnow in server mode plays Snowflake (server mode: the real connector, its HTTP, Arrow
results and PUT uploads are exercised; the two training workers are separate processes
reaching it over HTTP too).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import stageless
from stageless.training.events import Reporter
from tests.conftest import RunCli
from tests.integration.snowflake.conftest import PASSWORD, FakeSnow


def _archive_bytes(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as archive:
        return {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }


def test_ingest_then_train_with_two_workers_from_a_secret(
    fakesnow: FakeSnow,
    database: str,
    secret_ref: str,
    run_cli: RunCli,
    tmp_path: Path,
    housing_db: str,
) -> None:
    url = fakesnow.url(database.lower())  # unquoted: folds to upper case like Snowflake
    assert secret_ref == "aws-secretsmanager://snowflake_credentials"

    ingest = run_cli(
        "ingest",
        "dataset:california-housing",
        "--to",
        url,
        "--table",
        "california_housing",
        "--secret",
        secret_ref,
    )
    assert ingest.returncode == 0, ingest.output
    assert "loaded 20,640 rows into california_housing" in ingest.stdout

    # What Snowflake holds, checked with a plain driver connection.
    columns = fakesnow.rows(
        f"SELECT COLUMN_NAME, DATA_TYPE FROM {database}.INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_NAME = 'CALIFORNIA_HOUSING' ORDER BY ORDINAL_POSITION"
    )
    assert [c[0] for c in columns][-1] == "MEDHOUSEVAL"
    assert {c[1] for c in columns} == {"FLOAT"}
    assert fakesnow.rows(f"SELECT COUNT(*) FROM {database}.PUBLIC.CALIFORNIA_HOUSING") == [(20640,)]
    tables = fakesnow.rows(f"SELECT TABLE_NAME FROM {database}.INFORMATION_SCHEMA.TABLES")
    assert tables == [("CALIFORNIA_HOUSING",)]  # the load table was renamed into place
    assert fakesnow.staged_files(database) == []  # COPY ... PURGE=TRUE emptied the stage

    train = run_cli(
        "train",
        "--source",
        url,
        "--table",
        "california_housing",
        "--target",
        "medhouseval",
        "--workers",
        "2",
        "--secret",
        secret_ref,
        "--output",
        "model",
    )
    assert train.returncode == 0, train.output
    archive = tmp_path / "model" / "model.tar.gz"
    members = _archive_bytes(archive)
    assert set(members) == {"xgboost-model", "manifest.json"}
    manifest = json.loads(members["manifest.json"])

    data = manifest["data"]
    assert manifest["workers"] == 2
    assert manifest["target"] == "MEDHOUSEVAL"
    assert manifest["features"][0] == "MEDINC" and len(manifest["features"]) == 8
    assert len(data["rows_per_worker"]) == 2
    assert all(rows > 0 for rows in data["rows_per_worker"])
    assert sum(data["rows_per_worker"]) == data["rows_total"] == 20640
    assert data["shard_strategy"] == "hash"
    assert data["query"] == f'SELECT * FROM "{database}"."PUBLIC"."CALIFORNIA_HOUSING"'
    # fakesnow has no time travel: the manifest says the read was not pinned.
    assert data["snapshot"].startswith("not pinned: time travel is not available")
    assert data["source"].startswith(f"snowflake://fakesnow/{database}/PUBLIC?")

    # The same data in DuckDB gives nearly the same model quality.
    duck = stageless.train(
        housing_db,
        table="california_housing",
        target="MedHouseVal",
        output=str(tmp_path / "duck"),
        progress=Reporter(1, quiet=True),
    )
    rmse = manifest["metrics"]["validation"]["rmse"]
    assert abs(rmse - duck.metrics["validation"]["rmse"]) < 0.03, (rmse, duck.metrics)

    # The password appears nowhere: not in any output, not in the model.
    for text in (ingest.stdout, ingest.stderr, train.stdout, train.stderr):
        assert PASSWORD not in text
    for name, content in members.items():
        assert PASSWORD.encode() not in content, name
    assert PASSWORD.encode() not in archive.read_bytes()
