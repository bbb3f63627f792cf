"""Names as users type them, and matching them against what the warehouse has.

Users write ``schema.table`` or ``"My Schema"."Loan Book"``; the warehouse reports exact
names. Matching is exact first, then case-insensitive when that is unambiguous, which is
what people expect from warehouses that fold unquoted names (DuckDB, PostgreSQL, Snowflake).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from stageless.errors import NotFoundError, UserError


@dataclass(frozen=True)
class TableName:
    """A table reference split into its parts; quoting happens later, per dialect."""

    name: str
    schema: str | None = None
    #: whether the user double-quoted that part: warehouses that fold unquoted names
    #: (Snowflake to upper case) must keep a quoted one exactly as written
    name_quoted: bool = field(default=False, compare=False)
    schema_quoted: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def parse_table_name(text: str) -> TableName:
    """Split ``[schema.]table`` on dots outside double quotes; quotes keep dots and case."""
    # Each part is a list of (character, was it quoted): unquoted blanks around a part
    # are dropped, quoted ones are part of the name.
    parts: list[list[tuple[str, bool]]] = [[]]
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if quoted and i + 1 < len(text) and text[i + 1] == '"':
                parts[-1].append(('"', True))  # "" inside quotes is a literal quote
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append([])
        else:
            parts[-1].append((ch, quoted))
        i += 1
    if quoted:
        raise UserError(f"table name {text!r} has an unbalanced double quote")
    names = [_strip_unquoted(part) for part in parts]
    quoted = [any(was_quoted for _, was_quoted in part) for part in parts]
    if any(not name for name in names) or len(names) > 2:
        raise UserError(f"table name {text!r} is not of the form [SCHEMA.]TABLE")
    if len(names) == 2:
        return TableName(
            name=names[1], schema=names[0], name_quoted=quoted[1], schema_quoted=quoted[0]
        )
    return TableName(name=names[0], name_quoted=quoted[0])


def _strip_unquoted(part: list[tuple[str, bool]]) -> str:
    start, end = 0, len(part)
    while start < end and part[start][0].isspace() and not part[start][1]:
        start += 1
    while end > start and part[end - 1][0].isspace() and not part[end - 1][1]:
        end -= 1
    return "".join(ch for ch, _ in part[start:end])


def match_name(wanted: str, available: Sequence[str], what: str = "column") -> str:
    """Return the one name in ``available`` that ``wanted`` means, or raise a UserError."""
    if wanted in available:
        return wanted
    folded = [a for a in available if a.casefold() == wanted.casefold()]
    if len(folded) == 1:
        return folded[0]
    if len(folded) > 1:
        raise UserError(
            f"{what} {wanted!r} is ambiguous: it matches {', '.join(folded)} "
            "when case is ignored; write it exactly"
        )
    shown = ", ".join(available[:20]) + (", ..." if len(available) > 20 else "")
    raise NotFoundError(f"{what} {wanted!r} not found; available: {shown}")


def split_list(text: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; ``None`` or blank -> ``[]``."""
    if not text:
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


def unique(names: Iterable[str]) -> list[str]:
    """Names in first-seen order, each once."""
    return list(dict.fromkeys(names))
