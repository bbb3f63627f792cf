"""Shard planning and the worker SELECT, run against a real DuckDB file.

Every row must be read exactly once for any number of workers, and the train/validation
flag of a row must not depend on how many workers there are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from stageless.errors import NotFoundError, UserError
from stageless.identifiers import parse_table_name
from stageless.training.data import float32_columns
from stageless.training.plan import LABEL_ALIAS, VALIDATION_ALIAS, worker_select
from stageless.training.split import validation_rows
from stageless.warehouses import Relation, open_warehouse
from stageless.warehouses.base import Warehouse

DISTINCT = 10_000  # distinct rows; the table holds each one twice
FRACTION = 0.25
WORKER_COUNTS = (1, 2, 3, 5)
QUERY_WHERE = "id % 7 <> 3"


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("shards") / "shards.duckdb"
    con = duckdb.connect(str(path))
    # id, a feature with some NULLs, a label; every row inserted twice (exact duplicates).
    con.execute(
        f"""
        CREATE TABLE t AS
        SELECT i AS id,
               CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 37 % 1000) / 10.0 END AS x,
               (i % 13)::DOUBLE AS y,
               'name ' || i AS label_text
        FROM range(1, {DISTINCT} + 1) r(i), range(2) d(copy)
        ORDER BY random()
        """
    )
    con.execute("CREATE VIEW v AS SELECT * FROM t WHERE id % 2 = 0")
    con.execute('CREATE SCHEMA "My Schema"')
    con.execute('CREATE TABLE "My Schema"."Loan Book" AS SELECT * FROM t')
    con.close()
    return f"duckdb://{path}"


@pytest.fixture(scope="module")
def warehouse(db_url: str) -> Iterator[Warehouse]:
    with open_warehouse(db_url, read_only=True) as wh:
        yield wh


def split_flags(table: pa.Table, n_features: int, fraction: float = FRACTION) -> list[bool]:
    """The split a worker computes for the rows it read (features, then the label)."""
    batch = table.combine_chunks().to_batches()[0] if table.num_rows else None
    if batch is None:
        return []
    *features, label = float32_columns(batch, n_features + 1)
    return validation_rows(features, label, fraction).tolist()


def read_flags(
    wh: Warehouse, relation: Relation, n: int, features: tuple[str, ...] = ("id", "x")
) -> tuple[list[str], Counter, dict]:
    """Run every worker's SELECT; return strategies, reads per id and each id's split flag."""
    columns = wh.schema_of(relation).names
    shards = wh.plan_shards(relation, columns, n)
    assert [s.index for s in shards] == list(range(n))
    reads: Counter[int] = Counter()
    flags: dict[int, bool] = {}
    for shard in shards:
        sql = worker_select(wh, relation, list(features), "y", None, FRACTION, shard.predicate_sql)
        table = wh.arrow_batches(sql).read_all()
        assert table.column_names == [*features, LABEL_ALIAS]
        for row_id, flag in zip(
            table.column("id").to_pylist(), split_flags(table, len(features)), strict=True
        ):
            row_id = int(row_id)
            reads[row_id] += 1
            # exact duplicates have the same flag
            assert flags.setdefault(row_id, flag) == flag
    return [s.strategy for s in shards], reads, flags


def expected_reads(ids: list[int]) -> Counter:
    return Counter({i: 2 for i in ids})


SOURCES = {
    "table": (lambda wh: wh.relation_for_table(parse_table_name("t")), "rowid-range"),
    "quoted table": (
        lambda wh: wh.relation_for_table(parse_table_name('"my schema"."LOAN BOOK"')),
        "rowid-range",
    ),
    "view": (lambda wh: wh.relation_for_table(parse_table_name("V")), "hash"),
    "query": (
        lambda wh: wh.relation_for_query(f"SELECT * FROM t WHERE {QUERY_WHERE}"),
        "hash",
    ),
}


def source_ids(name: str) -> list[int]:
    if name == "view":
        return [i for i in range(1, DISTINCT + 1) if i % 2 == 0]
    if name == "query":
        return [i for i in range(1, DISTINCT + 1) if i % 7 != 3]
    return list(range(1, DISTINCT + 1))


@pytest.fixture(scope="module")
def table_flags_one_worker(warehouse: Warehouse) -> dict:
    _, _, flags = read_flags(warehouse, warehouse.relation_for_table(parse_table_name("t")), 1)
    return flags


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_row_read_exactly_once_and_the_split_does_not_depend_on_workers(
    warehouse: Warehouse, source: str, table_flags_one_worker: dict
) -> None:
    make, strategy = SOURCES[source]
    relation = make(warehouse)
    want = expected_reads(source_ids(source))
    first_flags: dict | None = None
    for n in WORKER_COUNTS:
        strategies, reads, flags = read_flags(warehouse, relation, n)
        assert strategies == (["all"] if n == 1 else [strategy] * n)
        # disjoint and covering: every row (both copies of each) read once, none twice
        assert reads == want, f"{source} with {n} workers"
        assert sum(reads.values()) == 2 * len(want)
        if first_flags is None:
            first_flags = flags
        assert flags == first_flags, f"split changed with {n} workers for {source}"
    assert first_flags is not None
    # the flag depends only on the row: the same rows get the same flag in every source
    assert first_flags == {i: table_flags_one_worker[i] for i in first_flags}
    share = sum(first_flags.values()) / len(first_flags)
    assert share == pytest.approx(FRACTION, abs=0.02)


def test_rowid_shards_split_a_base_table_evenly(warehouse: Warehouse) -> None:
    relation = warehouse.relation_for_table(parse_table_name("t"))
    columns = warehouse.schema_of(relation).names
    shards = warehouse.plan_shards(relation, columns, 3)
    sizes = [
        warehouse.fetch_one(f"SELECT count(*) FROM t WHERE {s.predicate_sql}")[0] for s in shards
    ]
    assert sum(sizes) == 2 * DISTINCT
    assert max(sizes) - min(sizes) <= 1


def test_hash_shards_put_exact_duplicates_together(warehouse: Warehouse) -> None:
    relation = warehouse.relation_for_table(parse_table_name("v"))
    columns = warehouse.schema_of(relation).names
    for shard in warehouse.plan_shards(relation, columns, 3):
        sql = worker_select(warehouse, relation, ["id"], "y", None, 0.0, shard.predicate_sql)
        ids = Counter(warehouse.arrow_batches(sql).read_all().column("id").to_pylist())
        assert ids, "a shard of 5000 distinct rows should not be empty"
        assert set(ids.values()) == {2}


@pytest.mark.parametrize(("fraction", "low", "high"), [(0.0, 0.0, 0.0), (0.1, 0.08, 0.12)])
def test_validation_fraction(
    warehouse: Warehouse, fraction: float, low: float, high: float
) -> None:
    relation = warehouse.relation_for_table(parse_table_name("t"))
    sql = worker_select(warehouse, relation, ["id"], "y", None, fraction, None)
    flags = split_flags(warehouse.arrow_batches(sql).read_all(), 1, fraction)
    assert len(flags) == 2 * DISTINCT
    assert low <= sum(flags) / len(flags) <= high


def test_split_key_makes_the_flag_a_function_of_that_column(warehouse: Warehouse) -> None:
    # Rows with the same key value share a flag even when the rest of the row differs.
    relation = warehouse.relation_for_query("SELECT id % 100 AS k, id, y FROM t")
    sql = worker_select(warehouse, relation, ["k"], "y", "k", FRACTION, None)
    table = warehouse.arrow_batches(sql).read_all()
    by_key: dict[float, set[bool]] = {}
    for k, flag in zip(
        table.column("k").to_pylist(), table.column(VALIDATION_ALIAS).to_pylist(), strict=True
    ):
        by_key.setdefault(k, set()).add(flag)
    assert len(by_key) == 100
    assert all(len(flags) == 1 for flags in by_key.values())
    assert 0 < sum(flags == {True} for flags in by_key.values()) < 100


def test_worker_select_casts_to_float32_and_labels(warehouse: Warehouse) -> None:
    relation = warehouse.relation_for_table(parse_table_name("t"))
    sql = worker_select(warehouse, relation, ["id", "x"], "y", None, FRACTION, None)
    schema = warehouse.arrow_batches(sql).schema
    assert [str(f.type) for f in schema] == ["float", "float", "float"]
    assert schema.names == ["id", "x", LABEL_ALIAS]
    # With a split key the warehouse adds the key's flag.
    sql = worker_select(warehouse, relation, ["id", "x"], "y", "id", FRACTION, None)
    schema = warehouse.arrow_batches(sql).schema
    assert [str(f.type) for f in schema] == ["float", "float", "float", "bool"]
    assert schema.names == ["id", "x", LABEL_ALIAS, VALIDATION_ALIAS]


# -- relation_for_query -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE t",
        "SELECT * FROM t; SELECT * FROM t",
        "",
        "   ;  ",
    ],
)
def test_query_must_be_exactly_one_statement(warehouse: Warehouse, sql: str) -> None:
    with pytest.raises(UserError, match="exactly one SELECT"):
        warehouse.relation_for_query(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE t",
        "DELETE FROM t",
        "INSERT INTO t SELECT * FROM t",
        "CREATE TABLE u AS SELECT * FROM t",
        "UPDATE t SET y = 0",
    ],
)
def test_query_must_be_a_select(warehouse: Warehouse, sql: str) -> None:
    with pytest.raises(UserError, match="must be a SELECT"):
        warehouse.relation_for_query(sql)


def test_query_that_does_not_parse_is_a_user_error(warehouse: Warehouse) -> None:
    with pytest.raises(UserError, match="not valid duckdb SQL"):
        warehouse.relation_for_query("SELECT FROM WHERE (")


def test_query_with_cte_and_trailing_semicolon_is_accepted(warehouse: Warehouse) -> None:
    relation = warehouse.relation_for_query("WITH a AS (SELECT * FROM t) SELECT id, y FROM a;")
    assert not relation.is_table
    assert warehouse.schema_of(relation).names == ["id", "y"]


# -- table names that try to be SQL ---------------------------------------------------------


INJECTIONS = ["t; DROP TABLE t", 't" ; DROP TABLE t; --', '"t""; DROP TABLE t; --"', "t --"]


@pytest.fixture
def writable(tmp_path: Path) -> Iterator[Warehouse]:
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT range AS id, 1.0 AS y FROM range(10)")
    con.close()
    # Writable, so an injected DROP would really drop the table.
    with open_warehouse(f"duckdb://{path}") as wh:
        yield wh


@pytest.mark.parametrize("name", INJECTIONS)
def test_sql_in_a_table_name_is_just_a_name_that_is_not_found(
    writable: Warehouse, name: str
) -> None:
    with pytest.raises(UserError):
        writable.relation_for_table(parse_table_name(name))
    assert writable.fetch_one("SELECT count(*) FROM t") == (10,)
    relation = writable.relation_for_table(parse_table_name("t"))
    assert writable.fetch_one(f"SELECT count(*) FROM ({relation.select_all_sql('duckdb')})") == (
        10,
    )


@pytest.mark.parametrize("name", ["t; DROP TABLE t", "nope", "nope.t"])
def test_missing_table_is_not_found_error(writable: Warehouse, name: str) -> None:
    with pytest.raises(NotFoundError):
        writable.relation_for_table(parse_table_name(name))


def test_missing_table_in_an_empty_database_is_not_found_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with (
        open_warehouse(f"duckdb://{path}", read_only=True) as wh,
        pytest.raises(NotFoundError, match="no tables"),
    ):
        wh.relation_for_table(parse_table_name("t"))


def test_read_only_open_of_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        open_warehouse(f"duckdb://{tmp_path / 'missing.duckdb'}", read_only=True)


# -- a user column that is called rowid -----------------------------------------------------


def test_a_column_named_rowid_does_not_break_sharding(tmp_path: Path) -> None:
    path = tmp_path / "rowid.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE r (rowid INTEGER, id INTEGER, y DOUBLE)")
    con.execute("INSERT INTO r VALUES (1, 1, 0), (NULL, 2, 0), (5, 3, 0), (2, 4, 0), (7, 5, 0)")
    con.close()
    with open_warehouse(f"duckdb://{path}", read_only=True) as wh:
        relation = wh.relation_for_table(parse_table_name("r"))
        _, reads, _ = read_flags(wh, relation, 2, features=("id",))
    assert reads == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1})
