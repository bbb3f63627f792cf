"""XGBoost hyperparameters as users type them (``KEY=VALUE`` strings), checked up front.

Everything is validated before any data is read, so a typo costs a second, not a full
read of the table. Values arrive as strings from the CLI and from SageMaker's
hyperparameters.json alike; both go through :func:`parse_hyperparameters`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stageless.errors import UserError

#: The seed's defaults (the SageMaker XGBoost example the project grew from).
DEFAULTS: dict[str, Any] = {
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4.0,
    "min_child_weight": 6.0,
    "subsample": 0.7,
    "objective": "reg:squarederror",
    "num_round": 50,
}

#: Rows the histogram bin boundaries are computed from (a systematic sample of the training
#: rows when there are more): LightGBM's default (``bin_construct_sample_cnt``). Sketching
#: every row costs about as much as binning them all again, for no measurable gain in the
#: model; ``sketch_rows=0`` sketches every row, as XGBoost does on its own.
SKETCH_ROWS = 200_000

#: Hyperparameters stageless itself uses; XGBoost never sees them.
STAGELESS_ONLY = frozenset({"num_round", "early_stopping_rounds", "sketch_rows"})

#: Objectives that train on one float label per row (what stageless reads).
OBJECTIVES = frozenset(
    {
        "reg:squarederror",
        "reg:squaredlogerror",
        "reg:logistic",
        "reg:pseudohubererror",
        "reg:absoluteerror",
        "reg:quantileerror",
        "reg:gamma",
        "reg:tweedie",
        "count:poisson",
        "survival:cox",
        "binary:logistic",
        "binary:logitraw",
        "binary:hinge",
        "multi:softmax",
        "multi:softprob",
        "rank:ndcg",
        "rank:map",
        "rank:pairwise",
    }
)


@dataclass(frozen=True)
class Spec:
    kind: type  # int, float, str or bool
    check: Callable[[Any], bool] = lambda _v: True
    rule: str = ""


def _unit(v: float) -> bool:
    return 0 < v <= 1


SPECS: dict[str, Spec] = {
    "num_round": Spec(int, lambda v: v >= 1, "an integer >= 1"),
    "max_depth": Spec(int, lambda v: v >= 0, "an integer >= 0"),
    "max_leaves": Spec(int, lambda v: v >= 0, "an integer >= 0"),
    "max_bin": Spec(int, lambda v: v >= 2, "an integer >= 2"),
    "eta": Spec(float, lambda v: v > 0, "a number > 0"),
    "learning_rate": Spec(float, lambda v: v > 0, "a number > 0"),
    "gamma": Spec(float, lambda v: v >= 0, "a number >= 0"),
    "min_split_loss": Spec(float, lambda v: v >= 0, "a number >= 0"),
    "min_child_weight": Spec(float, lambda v: v >= 0, "a number >= 0"),
    "max_delta_step": Spec(float, lambda v: v >= 0, "a number >= 0"),
    "subsample": Spec(float, _unit, "a number in (0, 1]"),
    "colsample_bytree": Spec(float, _unit, "a number in (0, 1]"),
    "colsample_bylevel": Spec(float, _unit, "a number in (0, 1]"),
    "colsample_bynode": Spec(float, _unit, "a number in (0, 1]"),
    "lambda": Spec(float, lambda v: v >= 0, "a number >= 0"),
    "reg_lambda": Spec(float, lambda v: v >= 0, "a number >= 0"),
    "alpha": Spec(float, lambda v: v >= 0, "a number >= 0"),
    "reg_alpha": Spec(float, lambda v: v >= 0, "a number >= 0"),
    "scale_pos_weight": Spec(float, lambda v: v > 0, "a number > 0"),
    "base_score": Spec(float),
    "tweedie_variance_power": Spec(float, lambda v: 1 <= v < 2, "a number in [1, 2)"),
    "huber_slope": Spec(float, lambda v: v > 0, "a number > 0"),
    "quantile_alpha": Spec(float, lambda v: 0 < v < 1, "a number in (0, 1)"),
    "num_class": Spec(int, lambda v: v >= 2, "an integer >= 2"),
    "seed": Spec(int),
    "early_stopping_rounds": Spec(int, lambda v: v >= 1, "an integer >= 1"),
    "sketch_rows": Spec(int, lambda v: v >= 0, "an integer >= 0 (0: every row)"),
    "objective": Spec(str, lambda v: v in OBJECTIVES, "a known XGBoost objective"),
    "eval_metric": Spec(str),
    "tree_method": Spec(str, lambda v: v in {"hist", "approx"}, "hist or approx"),
    "grow_policy": Spec(str, lambda v: v in {"depthwise", "lossguide"}, "depthwise or lossguide"),
    "sampling_method": Spec(str, lambda v: v == "uniform", "uniform (the only one on CPU)"),
    "monotone_constraints": Spec(str),
    "interaction_constraints": Spec(str),
    "max_cat_to_onehot": Spec(int, lambda v: v >= 1, "an integer >= 1"),
    "nthread": Spec(int, lambda v: v >= 1, "an integer >= 1"),
    "verbosity": Spec(int, lambda v: 0 <= v <= 3, "an integer from 0 to 3"),
}

#: alias -> the spelling stageless records
ALIASES = {
    "learning_rate": "eta",
    "min_split_loss": "gamma",
    "reg_lambda": "lambda",
    "reg_alpha": "alpha",
}

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _convert(key: str, raw: Any, spec: Spec) -> Any:
    text = str(raw).strip()
    try:
        if spec.kind is int:
            if isinstance(raw, bool):
                raise ValueError
            try:
                return int(text)
            except ValueError:
                number = float(text)  # "5.0" from a JSON float is still the integer 5
                if not number.is_integer():
                    raise
                return int(number)
        if spec.kind is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
        if spec.kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        if not text:
            raise ValueError
        return text
    except ValueError:
        kind = {int: "an integer", float: "a number", bool: "true or false", str: "a value"}
        raise UserError(
            f"hyperparameter {key}={raw!r} is not valid: it must be {spec.rule or kind[spec.kind]}"
        ) from None


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``["max_depth=3", "eta=0.1"]`` -> ``{"max_depth": "3", "eta": "0.1"}``.

    Each item is one assignment; the value may contain blanks or ``=``.
    """
    out: dict[str, str] = {}
    for item in items:
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f"hyperparameter {item!r} is not of the form KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def parse_hyperparameters(given: Mapping[str, Any]) -> dict[str, Any]:
    """The seed's defaults overlaid with GIVEN, every value checked and typed."""
    result = dict(DEFAULTS)
    for key, raw in given.items():
        spec = SPECS.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, SPECS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UserError(f"unknown hyperparameter {key!r}{hint}")
        value = _convert(key, raw, spec)
        if not spec.check(value):
            raise UserError(f"hyperparameter {key}={raw!r} is not valid: it must be {spec.rule}")
        result[key] = value
    # Aliases: keep one spelling so the manifest says what XGBoost used.
    for alias, name in ALIASES.items():
        if alias in given:
            if name in given:
                raise UserError(f"give {name} or its alias {alias}, not both")
            result[name] = result.pop(alias)
    if result["objective"].startswith("multi:") and "num_class" not in result:
        raise UserError(f"objective {result['objective']} needs num_class=K")
    if result["objective"].startswith("rank:"):
        raise UserError("ranking objectives need query groups, which stageless does not read yet")
    return result


def booster_params(hyperparameters: Mapping[str, Any], nthread: int) -> dict[str, Any]:
    """What xgboost.train takes: everything but stageless's own settings, plus threads and
    method."""
    params = {k: v for k, v in hyperparameters.items() if k not in STAGELESS_ONLY}
    params.setdefault("tree_method", "hist")
    params.setdefault("nthread", nthread)
    params.setdefault("verbosity", 1)
    return params
