"""stageless.identifiers: table names as users type them, and matching names."""

from __future__ import annotations

import pytest

from stageless.errors import UserError
from stageless.identifiers import TableName, match_name, parse_table_name, split_list, unique


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("t", TableName("t")),
        ("s.t", TableName("t", "s")),
        ("  s . t  ", TableName("t", "s")),
        ('"My Schema"."Loan Book"', TableName("Loan Book", "My Schema")),
        ('Finance."Loan Book"', TableName("Loan Book", "Finance")),
        ('"Loan Book"', TableName("Loan Book")),
        ('"a.b"', TableName("a.b")),
        ('"x.y"."a.b"', TableName("a.b", "x.y")),
        ('"say ""hi"""', TableName('say "hi"')),
        ('"a""b".c', TableName("c", 'a"b')),
        ("MixedCase", TableName("MixedCase")),
    ],
)
def test_parse_table_name(text: str, expected: TableName) -> None:
    assert parse_table_name(text) == expected


@pytest.mark.parametrize("text", ["a.b.c", ".t", "t.", "", "   ", '""', '"".t', "s..t"])
def test_parse_table_name_rejects_bad_shapes(text: str) -> None:
    with pytest.raises(UserError, match=r"not of the form \[SCHEMA\.\]TABLE"):
        parse_table_name(text)


@pytest.mark.parametrize("text", ['"t', 't"', '"My Schema.t', '"a""'])
def test_parse_table_name_rejects_unbalanced_quotes(text: str) -> None:
    with pytest.raises(UserError, match="unbalanced double quote"):
        parse_table_name(text)


def test_table_name_str() -> None:
    assert str(TableName("t")) == "t"
    assert str(TableName("t", "s")) == "s.t"


# -- match_name -----------------------------------------------------------------------------


def test_match_exact_wins_even_when_case_insensitive_would_be_ambiguous() -> None:
    assert match_name("Price", ["price", "Price", "PRICE"]) == "Price"


def test_match_case_insensitive_when_unique() -> None:
    assert match_name("PRICE", ["id", "price"]) == "price"
    assert match_name("loan book", ["Loan Book", "other"], "table") == "Loan Book"


def test_match_ambiguous_is_an_error_listing_the_candidates() -> None:
    with pytest.raises(UserError) as info:
        match_name("PRICE", ["price", "Price", "id"])
    message = str(info.value)
    assert "ambiguous" in message
    assert "price" in message and "Price" in message
    assert "id" not in message.split("matches", 1)[1].split("when", 1)[0]


def test_match_not_found_lists_what_is_available() -> None:
    with pytest.raises(UserError) as info:
        match_name("prize", ["id", "price", "rooms"], "feature column")
    message = str(info.value)
    assert message.startswith("feature column 'prize' not found")
    assert "available: id, price, rooms" in message


def test_match_not_found_shortens_a_long_list() -> None:
    names = [f"c{i}" for i in range(30)]
    with pytest.raises(UserError) as info:
        match_name("nope", names)
    message = str(info.value)
    assert "c19" in message
    assert "c20" not in message
    assert message.endswith(", ...")


def test_match_in_nothing_is_not_found() -> None:
    with pytest.raises(UserError, match="not found"):
        match_name("x", [])


# -- split_list / unique --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, []),
        ("", []),
        ("   ", []),
        ("a", ["a"]),
        ("a, b,c", ["a", "b", "c"]),
        (" a ,, b , ", ["a", "b"]),
        ("Loan Book,x", ["Loan Book", "x"]),
    ],
)
def test_split_list(text: str | None, expected: list[str]) -> None:
    assert split_list(text) == expected


def test_unique_keeps_first_seen_order() -> None:
    assert unique(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_quotes_keep_surrounding_spaces() -> None:
    assert parse_table_name('" padded "') == TableName(" padded ")


@pytest.mark.parametrize(
    ("text", "name_quoted", "schema_quoted"),
    [
        ("t", False, False),
        ('"t"', True, False),
        ('s."Loan Book"', True, False),
        ('"S".t', False, True),
        ('"My Schema"."Loan Book"', True, True),
    ],
)
def test_parse_table_name_records_which_parts_were_quoted(
    text: str, name_quoted: bool, schema_quoted: bool
) -> None:
    parsed = parse_table_name(text)
    assert (parsed.name_quoted, parsed.schema_quoted) == (name_quoted, schema_quoted)
