"""snowflake:// URLs and Snowflake's identifier rules (pure functions, no server)."""

from __future__ import annotations

import pytest

from stageless.errors import UserError
from stageless.warehouses.snowflake_url import (
    DEFAULT_LOGIN_TIMEOUT,
    SnowflakeTarget,
    fold_identifier,
    parse_snowflake_url,
    url_identifier,
)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("california_housing", "CALIFORNIA_HOUSING"),
        ("MedHouseVal", "MEDHOUSEVAL"),
        ("_x$1", "_X$1"),
        ('"MedHouseVal"', "MedHouseVal"),
        ('"say ""hi"""', 'say "hi"'),
        ("loan book", "loan book"),  # cannot be unquoted: kept as written
        ("1st", "1st"),
    ],
)
def test_unquoted_names_fold_to_upper_case(text: str, name: str) -> None:
    assert fold_identifier(text) == name


@pytest.mark.parametrize("name", ["SALES", "Sales", "loan book", 'say "hi"', "A/B", "ÉTÉ"])
def test_url_identifier_round_trips(name: str) -> None:
    from urllib.parse import unquote

    assert fold_identifier(unquote(url_identifier(name))) == name


def test_a_full_url() -> None:
    target = parse_snowflake_url(
        "snowflake://myorg-myaccount/analytics/ml?warehouse=TRAIN_WH&role=TRAINER"
        "&host=127.0.0.1&port=8443&protocol=HTTP&login_timeout=5&network_timeout=30"
    )
    assert target == SnowflakeTarget(
        account="myorg-myaccount",
        database="ANALYTICS",
        schema="ML",
        warehouse="TRAIN_WH",
        role="TRAINER",
        host="127.0.0.1",
        port=8443,
        protocol="http",
        login_timeout=5,
        network_timeout=30,
    )
    assert parse_snowflake_url(target.url) == target
    options = target.connect_options()
    assert options["account"] == "myorg-myaccount" and options["port"] == 8443
    assert "user" not in options and "password" not in options


def test_defaults_and_canonical_form() -> None:
    target = parse_snowflake_url("snowflake://xy12345.us-east-1/%22Mixed%20Db%22/")
    assert (target.database, target.schema) == ("Mixed Db", "PUBLIC")
    assert target.login_timeout == DEFAULT_LOGIN_TIMEOUT
    assert target.url == "snowflake://xy12345.us-east-1/%22Mixed%20Db%22/PUBLIC"
    assert parse_snowflake_url(target.url) == target


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("snowflake:///DB", "names no account"),
        ("snowflake://acct", "names no database"),
        ("snowflake://acct/", "names no database"),
        ("snowflake://acct//S", "names no database"),
        ("snowflake://acct/DB/S/T", "/DATABASE or /DATABASE/SCHEMA"),
        ("snowflake://acc t/DB", "not an account identifier"),
        ("snowflake://acct/DB?warehose=WH", "unknown Snowflake URL option 'warehose'"),
        ("snowflake://acct/DB?port=http", "port must be a whole number"),
        ("snowflake://acct/DB?port=70000", "port must be a whole number"),
        ("snowflake://acct/DB?protocol=ftp", "must be http or https"),
        ("snowflake://acct/DB?login_timeout=0", "login_timeout must be a whole number"),
        ("snowflake://acct/DB?warehouse=", "warehouse is empty"),
        ("snowflake://acct/%22DB", "unbalanced"),
    ],
)
def test_bad_urls_are_user_errors(url: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_snowflake_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "snowflake://alice:hunter2-secret@acct/DB",
        "snowflake://acct/DB?password=hunter2-secret",
        "snowflake://acct/DB?token=hunter2-secret",
    ],
)
def test_credentials_in_the_url_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(UserError, match="must not carry credentials") as info:
        parse_snowflake_url(url)
    assert "hunter2" not in str(info.value)


def test_a_quoted_table_name_keeps_its_case_and_an_unquoted_one_folds() -> None:
    from stageless.identifiers import parse_table_name
    from stageless.warehouses.snowflake import _fold

    quoted, plain = parse_table_name('"sales"'), parse_table_name("sales")
    assert _fold(quoted.name, quoted.name_quoted) == "sales"
    assert _fold(plain.name, plain.name_quoted) == "SALES"
