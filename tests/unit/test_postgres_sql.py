"""The PostgreSQL backend's pure parts: URLs, capabilities, types, the SQL it renders.

The parts that need a server are in tests/integration/postgres/.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from sqlglot import exp

from stageless.errors import UserError
from stageless.warehouses.base import column
from stageless.warehouses.postgres import (
    Capabilities,
    _message,
    _Scrub,
    fnv_row_hash,
    text_row_hash,
    typed_row_hash,
)
from stageless.warehouses.postgres_types import postgres_column, readable_schema
from stageless.warehouses.postgres_url import parse_postgres_url
from stageless.warehouses.registry import scheme_of


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "redshift", "PostgreSQL"])
def test_schemes_are_registered(scheme: str) -> None:
    assert scheme_of(f"{scheme}://h/db") == scheme.lower()


def test_url_with_credentials_is_split_and_masked() -> None:
    target = parse_postgres_url("postgresql://al%40ce:p%40ss%3Aw0rd@db.example:6543/sales")
    assert (target.user, target.password) == ("al@ce", "p@ss:w0rd")
    assert (target.host, target.port, target.database) == ("db.example", 6543, "sales")
    assert target.display_url == "postgresql://al%40ce:***@db.example:6543/sales"
    assert "p@ss" not in repr(target) and "p%40ss" not in repr(target)
    uri = target.libpq_uri("al@ce", "p@ss:w0rd")
    assert uri.startswith("postgresql://al%40ce:p%40ss%3Aw0rd@db.example:6543/sales?")
    assert "connect_timeout=10" in uri and "application_name=stageless" in uri


def test_url_parameters_pass_through_and_override_defaults() -> None:
    target = parse_postgres_url(
        "postgresql://u@h/db?sslmode=require&connect_timeout=3&password=hunter22"
    )
    assert target.password == "hunter22"
    assert "hunter22" not in target.display_url
    uri = target.libpq_uri("u", None)
    assert "sslmode=require" in uri and "connect_timeout=3" in uri
    assert "connect_timeout=10" not in uri and "hunter22" not in uri


def test_default_ports_and_ipv6() -> None:
    assert ":5432/" in parse_postgres_url("postgresql://h/db").libpq_uri(None, None)
    assert ":5439/" in parse_postgres_url("redshift://cluster.example/dev").libpq_uri(None, None)
    assert parse_postgres_url("redshift://h/db").is_redshift
    target = parse_postgres_url("postgresql://u:pw@[::1]:5433/db")
    assert (target.host, target.port) == ("[::1]", 5433)
    assert "@[::1]:5433/db?" in target.libpq_uri("u", "pw")


@pytest.mark.parametrize(
    "url", ["postgresql://u:sekrit@h:notaport/db", "postgresql://u:sekrit@h/a/b", "postgresql://"]
)
def test_bad_urls_are_user_errors_without_the_password(url: str) -> None:
    with pytest.raises(UserError) as info:
        parse_postgres_url(url)
    assert "sekrit" not in str(info.value)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (
            "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu",
            ("PostgreSQL 15.18", True, True, "typed"),
        ),
        ("PostgreSQL 13.4 on x86_64", ("PostgreSQL 13.4", True, False, "typed")),
        ("PostgreSQL 9.6.24 on x86_64", ("PostgreSQL 9.6", True, False, "text")),
        ("PostgreSQL 9.1.2", ("PostgreSQL 9.1", False, False, "text")),
        (
            "PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC 3.4.2, Redshift 1.0.7",
            ("Amazon Redshift", False, False, "fnv"),
        ),
    ],
)
def test_capabilities_follow_the_server_version(version: str, expected: tuple) -> None:
    caps = Capabilities.from_version(version)
    assert (caps.server, caps.exported_snapshots, caps.tid_range_scans, caps.row_hash) == expected


def test_redshift_scheme_forces_the_fallbacks() -> None:
    caps = Capabilities.from_version("PostgreSQL 16.1", redshift=True)
    assert not caps.exported_snapshots and not caps.tid_range_scans and caps.row_hash == "fnv"


def test_row_hashes_render_for_their_servers() -> None:
    cols = [column("Loan Amount"), column("flag"), column("note")]
    types = {"Loan Amount": "float8", "flag": "bool", "note": "json"}
    typed = typed_row_hash(cols, 7, types).sql("postgres")
    assert typed == (
        '(COALESCE(HASHFLOAT8EXTENDED("Loan Amount", 7000021), 0) '
        '# COALESCE(HASHINT4EXTENDED(CAST("flag" AS INT), 7000022), 0) '
        '# COALESCE(HASHTEXTEXTENDED(CAST("note" AS TEXT), 7000023), 0)) '
        "& 9223372036854775807"
    )
    text = text_row_hash(cols[:1], 0).sql("postgres")
    assert text == 'HASHTEXT(CAST(ROW(0, "Loan Amount") AS TEXT)) & 2147483647'
    fnv = fnv_row_hash(cols[::2], 1).sql("redshift")
    assert fnv == (
        "FNV_HASH(COALESCE(CAST(\"note\" AS VARCHAR), ''), "
        "FNV_HASH(COALESCE(CAST(\"Loan Amount\" AS VARCHAR), ''), 1)) & 9223372036854775807"
    )


@pytest.mark.parametrize(
    ("arrow_type", "pg_type", "written_as"),
    [
        (pa.bool_(), "boolean", pa.bool_()),
        (pa.int8(), "smallint", pa.int16()),
        (pa.uint16(), "integer", pa.int32()),
        (pa.int32(), "integer", pa.int32()),
        (pa.uint32(), "bigint", pa.int64()),
        (pa.int64(), "bigint", pa.int64()),
        (pa.uint64(), "numeric(20,0)", pa.decimal128(20, 0)),
        (pa.float16(), "real", pa.float32()),
        (pa.float64(), "double precision", pa.float64()),
        (pa.decimal128(12, 4), "numeric(12,4)", pa.decimal128(12, 4)),
        (pa.decimal256(50, 2), "numeric(50,2)", pa.string()),
        (pa.large_string(), "text", pa.string()),
        (pa.dictionary(pa.int32(), pa.string()), "text", pa.string()),
        (pa.binary(), "bytea", pa.binary()),
        (pa.date64(), "date", pa.date32()),
        (pa.timestamp("ns"), "timestamp", pa.timestamp("us")),
        (pa.timestamp("s", tz="Europe/Paris"), "timestamp with time zone", None),
        (pa.time32("ms"), "time", pa.time64("us")),
        (pa.duration("ms"), "interval", pa.duration("us")),
        (pa.null(), "text", pa.string()),
    ],
)
def test_arrow_types_map_to_postgres(
    arrow_type: pa.DataType, pg_type: str, written_as: pa.DataType | None
) -> None:
    got_type, got_arrow = postgres_column(arrow_type)
    assert got_type == pg_type
    if written_as is not None:
        assert got_arrow == written_as


def test_nested_types_cannot_be_stored() -> None:
    with pytest.raises(UserError, match="cannot be stored in PostgreSQL"):
        postgres_column(pa.list_(pa.int32()))


def test_numeric_reads_as_a_number_and_money_does_not() -> None:
    opaque = pa.string()  # how the driver hands numeric over: an opaque string
    schema = pa.schema(
        [
            pa.field("n", opaque, metadata={"POSTGRESQL:type": "numeric"}),
            pa.field("m", pa.int64(), metadata={"POSTGRESQL:type": "money"}),
            pa.field("i", pa.int32(), metadata={"POSTGRESQL:type": "int4"}),
        ]
    )
    readable = readable_schema(schema)
    assert [f.type for f in readable] == [pa.float64(), pa.string(), pa.int32()]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            'NOT_FOUND: Failed to prepare query: ERROR:  relation "nope" does not exist\n'
            "LINE 1: SELECT * FROM nope\n\nQuery was: SELECT * FROM nope. SQLSTATE: 42P01",
            'relation "nope" does not exist',
        ),
        (
            'IO: [libpq] Failed to connect: connection to server at "127.0.0.1", port 1 failed: '
            "Connection refused\n\tIs the server running on that host?\n",
            'connection to server at "127.0.0.1", port 1 failed: Connection refused',
        ),
        (
            'IO: [libpq] Failed to connect: connection to server at "h", port 5432 failed: '
            'FATAL:  password authentication failed for user "u"\n',
            'password authentication failed for user "u"',
        ),
    ],
)
def test_driver_messages_become_one_line(raw: str, expected: str) -> None:
    assert _message(RuntimeError(raw)) == expected


def test_ctid_literals_survive_the_worker_select_parse() -> None:
    # The coordinator renders shard predicates; worker_select parses them back with sqlglot.
    predicate = "ctid >= CAST('(10,0)' AS tid) AND ctid < CAST('(20,0)' AS tid)"
    select = exp.select("x").from_("t").where(predicate, dialect="postgres")
    assert select.sql("postgres") == f"SELECT x FROM t WHERE {predicate}"


def test_messages_never_carry_the_password() -> None:
    scrub = _Scrub("p@ss word")
    assert (
        scrub("uri postgresql://u:p%40ss%20word@h and p@ss word")
        == "uri postgresql://u:***@h and ***"
    )
    assert _Scrub("ab")("ab cab") == "ab cab"  # too short to mask meaningfully


def test_workers_take_a_url_password_from_their_environment_only_if_it_matches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stageless.training.launcher import SOURCE_ENV
    from stageless.training.reading import worker_source

    planned = "postgresql://u:***@h:5432/db"
    monkeypatch.setenv(SOURCE_ENV, "postgresql://u:s3cret@h:5432/db")
    assert worker_source(planned) == "postgresql://u:s3cret@h:5432/db"
    assert worker_source("postgresql://u:***@other:5432/db") == "postgresql://u:***@other:5432/db"
    monkeypatch.delenv(SOURCE_ENV)
    assert worker_source(planned) == planned


def test_bind_parameters_are_built_without_pandas() -> None:
    from stageless.warehouses.postgres_driver import parameter

    assert parameter("Loan Book ü").to_pylist() == ["Loan Book ü"]
    assert parameter(-(2**40)).to_pylist() == [-(2**40)]
    with pytest.raises(TypeError):
        parameter(1.5)


@pytest.mark.parametrize(
    ("name", "quoted", "expected"),
    [
        ("Housing", False, "housing"),
        ("Housing", True, "Housing"),
        ("Loan Book", False, "Loan Book"),
        ("sales_2024", False, "sales_2024"),
        ("Ünïcode", False, "Ünïcode"),
    ],
)
def test_new_table_names_fold_like_postgresql(name: str, quoted: bool, expected: str) -> None:
    from stageless.warehouses.postgres import _fold

    assert _fold(name, quoted) == expected
