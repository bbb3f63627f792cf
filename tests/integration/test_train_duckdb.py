"""`stageless train` on real DuckDB files with 1, 2 and 3 worker processes."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import duckdb
import numpy as np
import pytest
import xgboost as xgb

import stageless
from stageless.artifacts import read_model_archive
from stageless.datasets import CALIFORNIA_HOUSING_FEATURES
from stageless.errors import DataError, WorkerFailed
from stageless.manifest import Manifest
from stageless.training.coordinator import plan_training, run_plan
from stageless.training.events import Reporter
from stageless.training.hyperparams import parse_hyperparameters
from stageless.warehouses import open_warehouse
from tests.conftest import RunCli

QUIET = Reporter(1, quiet=True)
CONTRACT_KEYS = {
    "format_version",
    "target",
    "features",
    "feature_types",
    "objective",
    "hyperparameters",
    "metrics",
    "data",
    "workers",
    "versions",
    "created_at",
}
CONTRACT_DATA_KEYS = {
    "source",
    "query",
    "snapshot",
    "rows_total",
    "rows_dropped_null_target",
    "rows_per_worker",
    "rows_train",
    "rows_validation",
}
HOUSING_FEATURES = CALIFORNIA_HOUSING_FEATURES


def train(source: str, output: Path, **options: object) -> Manifest:
    options.setdefault("target", "MedHouseVal")
    return stageless.train(source, output=str(output), progress=QUIET, **options)


def make_db(path: Path, *statements: str) -> str:
    with duckdb.connect(str(path)) as con:
        for sql in statements:
            con.execute(sql)
    return f"duckdb://{path}"


@pytest.fixture(scope="module")
def runs(housing_db: str, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Manifest]:
    """The same training with 1, 2 and 3 workers (the expensive part, shared)."""
    out = tmp_path_factory.mktemp("runs")
    return {
        n: train(housing_db, out / f"w{n}", table="california_housing", workers=n)
        for n in (1, 2, 3)
    }


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_every_row_is_read_exactly_once(runs: dict[int, Manifest], workers: int) -> None:
    data = runs[workers].data
    assert data.rows_total == 20640
    assert data.rows_dropped_null_target == 0
    assert len(data.rows_per_worker) == workers
    assert sum(data.rows_per_worker) == 20640
    assert min(data.rows_per_worker) > 0
    assert data.rows_train + data.rows_validation == 20640
    assert runs[workers].workers == workers


def test_split_is_identical_for_every_worker_count(runs: dict[int, Manifest]) -> None:
    splits = {(m.data.rows_train, m.data.rows_validation) for m in runs.values()}
    assert len(splits) == 1
    ((_, rows_validation),) = splits
    assert abs(rows_validation / 20640 - 0.25) < 0.01


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_model_quality_matches_the_seed(runs: dict[int, Manifest], workers: int) -> None:
    # The seed's hyperparameters give a validation RMSE of about 0.52 on this data.
    rmse = runs[workers].metrics["validation"]["rmse"]
    assert 0.45 < rmse < 0.58
    assert runs[workers].metrics["train"]["rmse"] < rmse


def test_archive_follows_the_contract(
    runs: dict[int, Manifest], tmp_path_factory: pytest.TempPathFactory
) -> None:
    archive = Path(tmp_path_factory.getbasetemp()) / "runs0" / "w2" / "model.tar.gz"
    with tarfile.open(archive) as tar:
        assert sorted(m.name for m in tar.getmembers()) == ["manifest.json", "xgboost-model"]
        stored = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        raw = tar.extractfile("xgboost-model").read()  # type: ignore[union-attr]
    assert stored.keys() >= CONTRACT_KEYS
    assert stored["data"].keys() >= CONTRACT_DATA_KEYS
    assert stored["features"] == HOUSING_FEATURES
    assert stored["feature_types"] == ["float"] * 8
    assert stored["objective"] == "reg:squarederror"
    assert stored["hyperparameters"]["num_round"] == 50
    assert stored["hyperparameters"]["max_depth"] == 5
    assert stored["data"]["query"] == 'SELECT * FROM "main"."california_housing"'
    assert stored["data"]["shard_strategy"] == "rowid-range"
    assert stored["data"]["snapshot"]
    assert set(stored["versions"]) >= {"stageless", "xgboost", "python"}
    assert stored == json.loads(runs[2].model_dump_json())

    booster = xgb.Booster()
    booster.load_model(bytearray(raw))  # XGBoost's own format, no pickle
    assert booster.num_boosted_rounds() == 50
    assert booster.feature_names == HOUSING_FEATURES
    # A median-income-heavy district should be worth more than a poor one.
    rich, poor = np.array(
        [[10.0, 20, 6, 1, 1000, 3, 37.8, -122.4], [1.5, 20, 4, 1, 1000, 3, 36.0, -119.0]],
        dtype=np.float32,
    )
    pred = booster.inplace_predict(np.stack([rich, poor]))
    assert pred[0] > pred[1] + 1.0
    assert read_model_archive(archive)[1] == runs[2]


def test_exact_duplicate_rows_are_each_read_once(tmp_path: Path, housing_db: str) -> None:
    path = housing_db.removeprefix("duckdb://")
    db = make_db(
        tmp_path / "dup.duckdb",
        f"ATTACH '{path}' AS src (READ_ONLY)",
        "CREATE TABLE twice AS SELECT * FROM src.california_housing "
        "UNION ALL SELECT * FROM src.california_housing",
    )
    for workers, source in ((2, {"table": "twice"}), (3, {"query": "SELECT * FROM twice"})):
        m = train(
            db,
            tmp_path / f"out{workers}",
            workers=workers,
            hyperparameters={"num_round": "5"},
            **source,
        )
        assert m.data.rows_total == 41280
        assert sum(m.data.rows_per_worker) == 41280
        # Both copies of a row hash alike: they land in the same split, so the split
        # of the doubled table is exactly twice the split of the original.
        assert m.data.rows_validation % 2 == 0


def test_null_targets_are_dropped_and_counted_null_features_are_missing(tmp_path: Path) -> None:
    db = make_db(
        tmp_path / "nulls.duckdb",
        "CREATE TABLE t AS SELECT i AS id, i % 7 AS a, CASE WHEN i % 3 = 0 THEN NULL "
        "ELSE i * 0.5 END AS b, CASE WHEN i % 10 = 0 THEN NULL ELSE (i % 7) * 2.0 END AS y "
        "FROM range(5000) r(i)",
    )
    m = train(
        db,
        tmp_path / "out",
        table="t",
        target="y",
        exclude=["id"],
        workers=2,
        hyperparameters={"num_round": "5"},
    )
    assert m.data.rows_total == 5000
    assert m.data.rows_dropped_null_target == 500
    assert sum(m.data.rows_per_worker) == 4500
    assert m.features == ["a", "b"]
    assert m.feature_types == ["int", "float"]


def test_a_worker_with_an_empty_shard_still_joins(tmp_path: Path) -> None:
    db = make_db(
        tmp_path / "tiny.duckdb",
        "CREATE TABLE t AS SELECT 1.0 AS x, 2.0 AS y UNION ALL SELECT 2.0, 4.0",
    )
    m = train(
        db,
        tmp_path / "out",
        table="t",
        target="y",
        workers=3,
        validation_fraction=0.0,
        hyperparameters={"num_round": "2"},
    )
    assert m.data.rows_per_worker.count(0) >= 1
    assert sum(m.data.rows_per_worker) == 2
    assert m.metrics["validation"] == {}


def test_query_source_and_split_key(tmp_path: Path, housing_db: str) -> None:
    query = "SELECT row_number() OVER () AS id, * FROM california_housing WHERE HouseAge < 30"
    split = {}
    for workers in (1, 2):
        m = train(
            housing_db,
            tmp_path / f"q{workers}",
            query=query,
            workers=workers,
            exclude=["id"],
            split_key="ID",
            hyperparameters={"num_round": "3"},
        )
        assert m.data.shard_strategy == ("all" if workers == 1 else "hash")
        assert m.data.split["key"] == "id"
        assert m.data.query.startswith("SELECT ROW_NUMBER() OVER () AS id")
        split[workers] = (m.data.rows_total, m.data.rows_train, m.data.rows_validation)
    assert split[1] == split[2]
    with duckdb.connect(housing_db.removeprefix("duckdb://"), read_only=True) as con:
        ((expected,),) = con.execute(
            "SELECT count(*) FROM california_housing WHERE HouseAge < 30"
        ).fetchall()
    assert split[1][0] == expected


@pytest.mark.parametrize(
    ("workers", "off_by", "error"), [(1, +1, DataError), (2, -1, WorkerFailed)]
)
def test_exactly_once_mismatch_fails_and_writes_nothing(
    tmp_path: Path, housing_db: str, workers: int, off_by: int, error: type[Exception]
) -> None:
    with open_warehouse(housing_db, read_only=True) as warehouse:
        plan = plan_training(
            warehouse,
            table="california_housing",
            query=None,
            target="MedHouseVal",
            features=None,
            exclude=(),
            workers=workers,
            validation_fraction=0.25,
            split_key=None,
            hyperparameters=parse_hyperparameters({"num_round": "2"}),
            output=str(tmp_path / "out"),
        )
        wrong = plan.model_copy(update={"rows_expected": plan.rows_expected + off_by})
        with pytest.raises(error, match="exactly-once check failed"):
            run_plan(wrong, QUIET, warehouse if workers == 1 else None)
    assert not (tmp_path / "out").exists()


def test_cli_prints_progress_and_a_summary_and_writes_only_the_model(
    tmp_path: Path, housing_db: str, run_cli: RunCli
) -> None:
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    result = run_cli(
        "train",
        "--source",
        housing_db,
        "--table",
        "california_housing",
        "--target",
        "medhouseval",
        "--workers",
        "2",
        "--output",
        "out",
        "--hp",
        "num_round=20",
        "max_depth=4",
        env={"TMPDIR": str(scratch), "TMP": str(scratch), "TEMP": str(scratch)},
    )
    assert result.returncode == 0, result.stderr
    assert "worker 1/2 read 10,320 rows" in result.stderr
    assert "worker 2/2 read 10,320 rows" in result.stderr
    assert "round 20/20" in result.stderr and "validation-rmse=" in result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("validation rmse=")
    assert "rows=20,640" in summary and "workers=2" in summary
    # Nothing of the table touched a disk: no temp files, only the model was written.
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.tar.gz"]
    _, manifest = read_model_archive(tmp_path / "out" / "model.tar.gz")
    assert manifest.hyperparameters["num_round"] == 20
    assert manifest.hyperparameters["max_depth"] == 4


def test_hyperparameters_reach_xgboost(tmp_path: Path, housing_db: str) -> None:
    m = train(
        housing_db,
        tmp_path / "out",
        table="california_housing",
        hyperparameters={"num_round": "7", "max_depth": "2", "eval_metric": "mae"},
    )
    raw, _ = read_model_archive(tmp_path / "out" / "model.tar.gz")
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    assert booster.num_boosted_rounds() == 7
    # Leaves of a depth-2 tree sit two tabs deep in XGBoost's text dump.
    depth = max(line.count("\t") for tree in booster.get_dump() for line in tree.splitlines())
    assert depth == 2
    assert set(m.metrics["validation"]) == {"mae"}
    assert io.BytesIO(raw).getvalue()[:1] == b"{"  # JSON model format


def _thresholds_per_feature(booster: xgb.Booster) -> dict[str, set[float]]:
    found: dict[str, set[float]] = {}
    for tree in booster.get_dump(dump_format="json"):
        stack = [json.loads(tree)]
        while stack:
            node = stack.pop()
            if "split" in node:
                found.setdefault(node["split"], set()).add(node["split_condition"])
                stack.extend(node["children"])
    return found


@pytest.mark.parametrize("workers", [1, 2])
def test_bin_boundaries_come_from_a_sample_of_sketch_rows(
    tmp_path: Path, housing_db: str, workers: int
) -> None:
    def run(sketch_rows: int) -> tuple[Manifest, dict[str, set[float]]]:
        out = tmp_path / f"s{sketch_rows}"
        m = train(
            housing_db,
            out,
            table="california_housing",
            workers=workers,
            hyperparameters={"sketch_rows": str(sketch_rows)},
        )
        booster = xgb.Booster()
        booster.load_model(bytearray(read_model_archive(out / "model.tar.gz")[0]))
        return m, _thresholds_per_feature(booster)

    every_row, every_row_cuts = run(0)
    sampled, sampled_cuts = run(40)
    assert every_row.hyperparameters["sketch_rows"] == 0
    assert sampled.hyperparameters["sketch_rows"] == 40
    # 40 sampled rows (41 with two workers, each rounding up) give a feature at most that
    # many distinct split values; every row gives the model many more to choose from.
    assert max(len(v) for v in sampled_cuts.values()) <= 40 + workers - 1
    assert max(len(v) for v in every_row_cuts.values()) > 40
    # The split and the rows are the same either way.
    assert sampled.data == every_row.data


def test_the_default_sketch_sample_is_recorded(runs: dict[int, Manifest]) -> None:
    # 20,640 rows are fewer than the default 200,000: every row is sketched.
    assert {m.hyperparameters["sketch_rows"] for m in runs.values()} == {200_000}
