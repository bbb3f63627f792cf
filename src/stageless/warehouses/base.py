"""The interface every warehouse backend implements, and the SQL they share.

Dialect differences live in a few small methods (how to hash a row, what a 32-bit float
is called, how to shard a table physically) instead of ``if dialect == ...`` branches.
All SQL is built as sqlglot expressions, so identifiers are quoted by the dialect's rules;
values that come from users are bound as parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import sqlglot
from sqlglot import exp

from stageless.errors import UserError
from stageless.identifiers import TableName
from stageless.limits import DEFAULT_BATCH_ROWS

LoadMode = Literal["replace", "append", "create"]


@dataclass(frozen=True)
class Relation:
    """What a training run reads: a table or a user's query, as a FROM-able expression."""

    expression: exp.Expression  # exp.Table or exp.Subquery
    is_table: bool

    def select_all_sql(self, dialect: str) -> str:
        """The SQL that defines the rows, as recorded in the manifest."""
        if self.is_table:
            return exp.select("*").from_(self.expression).sql(dialect=dialect)
        return self.expression.this.sql(dialect=dialect)


@dataclass(frozen=True)
class Shard:
    """One worker's part of the rows, as plain data a worker process can receive as JSON.

    ``predicate_sql`` is rendered by the coordinator for the worker's dialect, so the plan
    shows exactly which rows each worker reads.
    """

    index: int
    strategy: str  # "all", "rowid-range", "hash", ... (recorded in the manifest)
    predicate_sql: str | None


def column(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def quote(name: str, dialect: str) -> str:
    """An identifier quoted by DIALECT's rules, ready to stand in SQL text."""
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def table_expression(schema: str | None, name: str, catalog: str | None = None) -> exp.Table:
    """``[catalog.][schema.]name`` with every part quoted."""
    return exp.Table(
        this=exp.to_identifier(name, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
        catalog=exp.to_identifier(catalog, quoted=True) if catalog else None,
    )


def int_literal(value: int) -> exp.Expression:
    """A literal for an integer we computed ourselves (never user input)."""
    if not isinstance(value, int):
        raise TypeError("only integers computed by stageless may be inlined")
    return exp.Literal.number(value)


class Warehouse(ABC):
    """A connection to one warehouse, with what stageless needs from it."""

    #: sqlglot dialect name used to render SQL for this warehouse.
    dialect: str
    #: SQL type that is a 32-bit float (what XGBoost trains on).
    float32_type: str = "REAL"

    # -- connection ---------------------------------------------------------------------
    @property
    @abstractmethod
    def url(self) -> str:
        """The warehouse URL without any credential, safe to print and to record."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------
    @abstractmethod
    def arrow_batches(
        self, sql: str, params: Sequence[object] = (), batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> pa.RecordBatchReader:
        """Run a query and stream its result as Arrow record batches."""

    @abstractmethod
    def resolve_table(self, name: TableName) -> exp.Table:
        """The exact, quoted table for a name as the user typed it; NotFoundError if none."""

    def relation_for_table(self, name: TableName) -> Relation:
        return Relation(self.resolve_table(name), is_table=True)

    def relation_for_query(self, sql: str) -> Relation:
        """Wrap a user's query as a subquery, refusing anything but one SELECT."""
        try:
            statements = [s for s in sqlglot.parse(sql, read=self.dialect) if s is not None]
        except sqlglot.errors.ParseError as exc:
            first = str(exc).splitlines()[0]
            raise UserError(f"--query is not valid {self.dialect} SQL: {first}") from None
        if len(statements) != 1:
            raise UserError("--query must be exactly one SELECT statement")
        query = statements[0]
        if not isinstance(query, exp.Query):
            raise UserError("--query must be a SELECT statement (or WITH ... SELECT)")
        return Relation(exp.Subquery(this=query, alias=exp.TableAlias(this="q")), is_table=False)

    def schema_of(self, relation: Relation) -> pa.Schema:
        """Column names and Arrow types of a relation, without reading its rows."""
        sql = exp.select("*").from_(relation.expression).limit(0).sql(dialect=self.dialect)
        return self.arrow_batches(sql).schema

    def fetch_one(self, sql: str, params: Sequence[object] = ()) -> tuple[object, ...]:
        table = self.arrow_batches(sql, params).read_all()
        if table.num_rows != 1:
            raise RuntimeError(f"expected one row, got {table.num_rows}")
        return tuple(col[0].as_py() for col in table.columns)

    # -- dialect pieces -----------------------------------------------------------------
    @abstractmethod
    def row_hash(self, columns: Sequence[exp.Expression], salt: int) -> exp.Expression:
        """A deterministic, non-negative 64-bit hash of the given values."""

    def snapshot(self) -> str | None:
        """What pins the view that every worker reads, once :meth:`pin` has run."""
        return None

    def twin(self) -> Warehouse | None:
        """A second connection sharing this one's database, where opening the URL again
        would fail (an embedded file held by this process); None where it would not."""
        return None

    def release_memory(self) -> None:  # noqa: B027 - optional hook
        """Drop caches a finished read left behind; the connection stays usable."""

    def pin(self) -> None:  # noqa: B027 - optional hook, most backends pin nothing
        """Fix the view of the data that every worker will read (a lock, a snapshot)."""

    def read_at(self, snapshot: str | None) -> None:  # noqa: B027 - optional hook
        """In a worker's own connection: read inside the view :meth:`pin` fixed.

        SNAPSHOT is what the coordinator's :meth:`snapshot` reported (for PostgreSQL it
        names the exported snapshot to adopt). Call it before the first read.
        """

    def plan_shards(self, relation: Relation, columns: Sequence[str], n: int) -> list[Shard]:
        """Disjoint shards covering every row exactly once.

        The portable way: a hash of the row's values, salted so it is independent of the
        train/validation split. Exact duplicate rows hash alike and so land in the same
        shard, where each copy is still read exactly once. Backends override this with a
        physical split (row ids, block ranges) when they have one.
        """
        if n == 1:
            return [Shard(0, "all", None)]
        hashed = self.row_hash([column(c) for c in columns], salt=1)
        return [
            Shard(
                k,
                "hash",
                exp.EQ(
                    this=exp.Mod(this=exp.Paren(this=hashed), expression=int_literal(n)),
                    expression=int_literal(k),
                ).sql(dialect=self.dialect),
            )
            for k in range(n)
        ]

    # -- writing ------------------------------------------------------------------------
    @abstractmethod
    def load_arrow(self, table: TableName, reader: pa.RecordBatchReader, mode: LoadMode) -> int:
        """Load a stream of record batches into a table atomically; returns rows loaded."""
