"""Training from Snowflake: hash shards that cover every row once, queries, snapshots.

fakesnow runs in server mode (the real connector over HTTP; the two workers of the query
test are separate processes). Its HASH is DuckDB's hash, not Snowflake's, but the
property tested here, that MOD(ABS(HASH(...)), N) splits rows into N disjoint shards
covering them all, holds for any deterministic hash.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import stageless
from stageless.identifiers import TableName
from stageless.training.events import Reporter
from stageless.warehouses import open_warehouse
from tests.integration.snowflake.conftest import PASSWORD, USERNAME, FakeSnow

SECRET = "env://SFTRAIN"
ROWS = 400


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFTRAIN_USERNAME", USERNAME)
    monkeypatch.setenv("SFTRAIN_PASSWORD", PASSWORD)


@pytest.fixture
def points(fakesnow: FakeSnow, database: str, tmp_path: Path) -> str:
    """POINTS(ID, X, FLAG, Y): ROWS rows, the last 20 exact duplicates of the first 20."""
    lines = ["id,x,flag,y"]
    for i in range(ROWS - 20):
        lines.append(f"{i},{i * 0.5},{'true' if i % 3 else 'false'},{2.0 * i + (i % 7)}")
    lines += lines[1:21]
    source = tmp_path / "points.csv"
    source.write_text("\n".join(lines) + "\n")
    url = fakesnow.url(database)
    stageless.ingest(str(source), to=url, table="points", secret=SECRET)
    return url


def test_hash_shards_are_disjoint_and_cover_every_row(points: str) -> None:
    with open_warehouse(points, read_only=True, secret=SECRET) as wh:
        relation = wh.relation_for_table(TableName("points"))
        columns = wh.schema_of(relation).names
        shards = wh.plan_shards(relation, columns, 3)
        assert [s.strategy for s in shards] == ["hash"] * 3
        assert all("HASH(1, " in (s.predicate_sql or "") for s in shards)
        table = relation.expression.sql(dialect="snowflake")
        seen: list[int] = []
        for shard in shards:
            ids = wh.arrow_batches(f"SELECT ID FROM {table} WHERE {shard.predicate_sql}")
            seen += ids.read_all().column(0).to_pylist()
    # every row once: the 20 duplicated rows twice, each copy in the same shard
    assert len(seen) == ROWS
    assert sorted(seen) == sorted(list(range(ROWS - 20)) + list(range(20)))


def test_train_on_a_query_with_two_workers(points: str, tmp_path: Path) -> None:
    manifest = stageless.train(
        points,
        query="SELECT x, flag, y FROM points WHERE id >= 10",  # bare name: the URL's schema
        target="Y",
        workers=2,
        output=str(tmp_path / "model"),
        secret=SECRET,
        progress=Reporter(2, quiet=True),
        hyperparameters={"num_round": 5},
    )
    data = manifest.data
    assert manifest.features == ["X", "FLAG"]
    assert manifest.feature_types == ["float", "i"]
    assert data.rows_total == ROWS - 20 - 10 + 10  # ids 10..379, plus duplicates of 10..19
    assert sum(data.rows_per_worker) == data.rows_total and len(data.rows_per_worker) == 2
    assert data.snapshot is not None and data.snapshot.startswith("not pinned")
    assert data.query == "SELECT x, flag, y FROM points WHERE id >= 10"
    assert (tmp_path / "model" / "model.tar.gz").exists()
