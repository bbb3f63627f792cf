"""The coordinator: one consistent view, one shard per worker, all decided up front.

A :class:`TrainPlan` is small, plain data (it travels to worker processes as JSON): the
SQL each worker runs, the row count every worker's reads must add up to, and the
settings. It never carries a credential: workers resolve those themselves.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from stageless.errors import UserError
from stageless.identifiers import match_name, unique
from stageless.training.split import SPLIT_BUCKETS, validation_threshold
from stageless.warehouses.base import (
    DEFAULT_BATCH_ROWS,
    Relation,
    Warehouse,
    column,
    int_literal,
)

LABEL_ALIAS = "__stageless_label"
VALIDATION_ALIAS = "__stageless_is_validation"


class WorkerTask(BaseModel):
    model_config = ConfigDict(frozen=True)

    rank: int
    strategy: str
    sql: str


class TrainPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    #: reference to the credentials (never their value); each worker resolves it
    secret: str | None = None
    query: str
    snapshot: str | None
    target: str
    features: list[str]
    feature_types: list[str]
    split_key: str | None
    validation_fraction: float
    hyperparameters: dict[str, Any]
    workers: int
    nthread: int
    rows_expected: int
    tasks: list[WorkerTask]
    output: str
    batch_rows: int = DEFAULT_BATCH_ROWS


def feature_type(arrow_type: pa.DataType) -> str | None:
    """XGBoost's feature type for a column, or None when it cannot be a feature."""
    if pa.types.is_boolean(arrow_type):
        return "i"  # indicator: 0/1
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    return None


def threads_per_worker(workers: int) -> int:
    """Share the cores out: oversubscribed distributed XGBoost is many times slower."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // workers)


def choose_columns(
    schema: pa.Schema,
    target: str,
    features: list[str] | None,
    exclude: list[str],
    split_key: str | None,
) -> tuple[str, list[str], list[str], str | None]:
    """Resolve the target, features (with XGBoost types) and split key against SCHEMA."""
    names = schema.names
    target_name = match_name(target, names, "target column")
    if feature_type(schema.field(target_name).type) is None:
        raise UserError(
            f"target column {target_name!r} has type {schema.field(target_name).type}; "
            "it must be numeric"
        )
    excluded = {match_name(name, names, "--exclude column") for name in exclude}
    if features:
        chosen = unique(match_name(name, names, "feature column") for name in features)
        for name in chosen:
            if feature_type(schema.field(name).type) is None:
                raise UserError(
                    f"feature column {name!r} has type {schema.field(name).type}; "
                    "features must be numeric (integer, float, decimal or boolean)"
                )
        if target_name in chosen:
            raise UserError(f"the target {target_name!r} cannot also be a feature")
    else:
        chosen = [
            n for n in names if n != target_name and feature_type(schema.field(n).type) is not None
        ]
    chosen = [n for n in chosen if n not in excluded]
    if not chosen:
        raise UserError("no numeric feature columns are left to train on")
    key = match_name(split_key, names, "--split-key column") if split_key else None
    return target_name, chosen, [feature_type(schema.field(n).type) or "" for n in chosen], key


def worker_select(
    warehouse: Warehouse,
    relation: Relation,
    features: list[str],
    target: str,
    split_key: str | None,
    validation_fraction: float,
    predicate_sql: str | None,
    booleans: Collection[str] = (),
) -> str:
    """The SELECT one worker runs: features and label as float32, and with a SPLIT_KEY
    that key's split flag.

    BOOLEANS (columns of boolean type) become 1/0 first: not every warehouse casts a
    boolean to a float (PostgreSQL does not), but every one evaluates a CASE.

    The flag is a salted hash of the key computed by the warehouse, so it depends only on
    the key: the same for any number of workers and any run. Without a key the worker
    hashes the values it reads (see :mod:`stageless.training.split`).
    """
    float32 = exp.DataType.build(warehouse.float32_type, dialect=warehouse.dialect)

    def as_float32(name: str) -> exp.Expression:
        value: exp.Expression = column(name)
        if name in booleans:
            value = (
                exp.case()
                .when(value, int_literal(1))
                .when(exp.Not(this=value.copy()), int_literal(0))
            )
        return exp.cast(value, float32)

    selected = [
        *(as_float32(name).as_(exp.to_identifier(name, quoted=True)) for name in features),
        as_float32(target).as_(exp.to_identifier(LABEL_ALIAS, quoted=True)),
    ]
    if split_key is not None:
        hashed = warehouse.row_hash([column(split_key)], 0)
        is_validation = exp.LT(
            this=exp.Mod(this=exp.Paren(this=hashed), expression=int_literal(SPLIT_BUCKETS)),
            expression=int_literal(validation_threshold(validation_fraction)),
        )
        selected.append(is_validation.as_(exp.to_identifier(VALIDATION_ALIAS, quoted=True)))
    select = exp.select(*selected).from_(relation.expression)
    if predicate_sql:
        # Rendered by the warehouse from integers stageless computed (row-id bounds,
        # worker counts): it holds no user input.
        select = select.where(predicate_sql, dialect=warehouse.dialect)
    return select.sql(dialect=warehouse.dialect)


def count_rows(warehouse: Warehouse, relation: Relation, target: str) -> tuple[int, int]:
    """(rows, rows with a non-NULL target) in one pass."""
    sql = (
        exp.select(exp.Count(this=exp.Star()), exp.Count(this=column(target)))
        .from_(relation.expression)
        .sql(dialect=warehouse.dialect)
    )
    total, labelled = warehouse.fetch_one(sql)
    return int(total or 0), int(labelled or 0)
