"""stageless.training.hyperparams: KEY=VALUE strings in, checked and typed parameters out."""

from __future__ import annotations

import pytest

from stageless.errors import UserError
from stageless.training.hyperparams import (
    DEFAULTS,
    booster_params,
    parse_assignments,
    parse_hyperparameters,
)

SEED_DEFAULTS = {
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4.0,
    "min_child_weight": 6.0,
    "subsample": 0.7,
    "objective": "reg:squarederror",
    "num_round": 50,
}


def test_defaults_are_the_seeds() -> None:
    assert parse_hyperparameters({}) == SEED_DEFAULTS
    assert DEFAULTS == SEED_DEFAULTS


def test_defaults_have_the_right_python_types() -> None:
    hp = parse_hyperparameters({})
    assert type(hp["max_depth"]) is int
    assert type(hp["num_round"]) is int
    assert type(hp["eta"]) is float
    assert type(hp["gamma"]) is float


def test_parsing_does_not_mutate_the_defaults() -> None:
    parse_hyperparameters({"max_depth": "9", "learning_rate": "0.5"})
    assert DEFAULTS == SEED_DEFAULTS


def test_strings_from_cli_or_sagemaker_are_typed() -> None:
    # SageMaker's hyperparameters.json holds every value as a string, as the CLI does.
    hp = parse_hyperparameters(
        {
            "max_depth": "3",
            "eta": "0.05",
            "num_round": "200",
            "subsample": "1",
            "seed": "-7",
            "objective": "binary:logistic",
            "eval_metric": "auc",
        }
    )
    assert hp["max_depth"] == 3 and type(hp["max_depth"]) is int
    assert hp["eta"] == 0.05 and type(hp["eta"]) is float
    assert hp["num_round"] == 200 and type(hp["num_round"]) is int
    assert hp["subsample"] == 1.0 and type(hp["subsample"]) is float
    assert hp["seed"] == -7
    assert hp["objective"] == "binary:logistic"
    assert hp["eval_metric"] == "auc"
    # untouched defaults stay
    assert hp["gamma"] == 4.0
    assert hp["min_child_weight"] == 6.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("3", 3), (" 4 ", 4), ("3.0", 3), ("1e1", 10), (3, 3), (3.0, 3)],
)
def test_integer_spellings(raw: object, expected: int) -> None:
    value = parse_hyperparameters({"max_depth": raw})["max_depth"]
    assert value == expected
    assert type(value) is int


def test_python_values_are_accepted_too() -> None:
    hp = parse_hyperparameters({"eta": 0.1, "num_round": 7})
    assert hp["eta"] == 0.1
    assert hp["num_round"] == 7


def test_unknown_key_has_a_did_you_mean_hint() -> None:
    with pytest.raises(UserError) as info:
        parse_hyperparameters({"max_dept": "3"})
    message = str(info.value)
    assert "max_dept" in message
    assert "did you mean max_depth?" in message


def test_unknown_key_with_nothing_close_has_no_hint() -> None:
    with pytest.raises(UserError) as info:
        parse_hyperparameters({"zzzzzzzz": "1"})
    assert "zzzzzzzz" in str(info.value)
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("max_depth", "abc"),
        ("max_depth", "2.5"),
        ("max_depth", "-1"),
        ("max_depth", ""),
        ("max_depth", "inf"),
        ("max_depth", True),
        ("subsample", "1.5"),
        ("subsample", "0"),
        ("eta", "0"),
        ("eta", "-0.1"),
        ("eta", "nan"),
        ("eta", "inf"),
        ("eta", float("nan")),
        ("num_round", "0"),
        ("num_round", "ten"),
        ("objective", "unknown"),
        ("objective", ""),
        ("tree_method", "exact"),
        ("tweedie_variance_power", "2"),
        ("verbosity", "4"),
    ],
)
def test_ill_typed_values_are_one_line_errors_naming_the_key(key: str, raw: object) -> None:
    with pytest.raises(UserError) as info:
        parse_hyperparameters({key: raw})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"hyperparameter {key}=")
    assert "not valid" in message


def test_ill_typed_value_says_what_is_allowed() -> None:
    with pytest.raises(UserError, match=r"subsample='1\.5'.*\(0, 1\]"):
        parse_hyperparameters({"subsample": "1.5"})
    with pytest.raises(UserError, match=r"max_depth='abc'.*integer >= 0"):
        parse_hyperparameters({"max_depth": "abc"})


def test_learning_rate_is_stored_as_eta() -> None:
    hp = parse_hyperparameters({"learning_rate": "0.3"})
    assert hp["eta"] == 0.3
    assert "learning_rate" not in hp


def test_min_split_loss_is_stored_as_gamma() -> None:
    hp = parse_hyperparameters({"min_split_loss": "1.5"})
    assert hp["gamma"] == 1.5
    assert "min_split_loss" not in hp


def test_multi_softmax_needs_num_class() -> None:
    with pytest.raises(UserError, match="num_class"):
        parse_hyperparameters({"objective": "multi:softmax"})
    with pytest.raises(UserError, match="num_class"):
        parse_hyperparameters({"objective": "multi:softprob"})
    hp = parse_hyperparameters({"objective": "multi:softmax", "num_class": "3"})
    assert hp["num_class"] == 3
    assert hp["objective"] == "multi:softmax"


def test_num_class_must_be_at_least_two() -> None:
    with pytest.raises(UserError, match="num_class"):
        parse_hyperparameters({"objective": "multi:softmax", "num_class": "1"})


def test_ranking_objectives_are_refused() -> None:
    with pytest.raises(UserError, match="query groups"):
        parse_hyperparameters({"objective": "rank:ndcg"})


# -- parse_assignments ----------------------------------------------------------------------


def test_assignments_one_per_item() -> None:
    assert parse_assignments(["max_depth=3", "eta=0.1"]) == {"max_depth": "3", "eta": "0.1"}


def test_assignment_value_may_contain_blanks() -> None:
    # One item is one assignment (the shell already split the words), so a value like
    # interaction_constraints=[[0, 1], [2, 3]] survives whole.
    assert parse_assignments(["interaction_constraints=[[0, 1], [2, 3]]", "num_round=7"]) == {
        "interaction_constraints": "[[0, 1], [2, 3]]",
        "num_round": "7",
    }


def test_assignments_empty() -> None:
    assert parse_assignments([]) == {}
    assert parse_assignments(["", "   "]) == {}


def test_assignment_value_may_contain_an_equals_sign() -> None:
    assert parse_assignments(["eval_metric=a=b"]) == {"eval_metric": "a=b"}


def test_later_assignment_wins() -> None:
    assert parse_assignments(["eta=0.1", "eta=0.2"]) == {"eta": "0.2"}


@pytest.mark.parametrize("token", ["max_depth", "max_depth=", "=3", "="])
def test_malformed_assignments(token: str) -> None:
    with pytest.raises(UserError) as info:
        parse_assignments(["eta=0.1", token])
    assert repr(token) in str(info.value)
    assert "KEY=VALUE" in str(info.value)


def test_assignments_feed_parse_hyperparameters() -> None:
    hp = parse_hyperparameters(
        parse_assignments(["max_depth=2", "learning_rate=0.5", "num_round=3"])
    )
    assert (hp["max_depth"], hp["eta"], hp["num_round"]) == (2, 0.5, 3)


# -- booster_params -------------------------------------------------------------------------


def test_booster_params_drop_round_counts_and_set_threads_and_method() -> None:
    hp = parse_hyperparameters({"early_stopping_rounds": "5"})
    params = booster_params(hp, nthread=3)
    assert "num_round" not in params
    assert "early_stopping_rounds" not in params
    assert params["tree_method"] == "hist"
    assert params["nthread"] == 3
    assert params["max_depth"] == 5
    assert params["eta"] == 0.2
    assert params["objective"] == "reg:squarederror"
    # the input is not changed
    assert hp["num_round"] == 50
    assert hp["early_stopping_rounds"] == 5


def test_sketch_rows_is_stageless_own_setting() -> None:
    hp = parse_hyperparameters({"sketch_rows": "5000"})
    assert hp["sketch_rows"] == 5000
    assert "sketch_rows" not in booster_params(hp, nthread=1)
    assert parse_hyperparameters({"sketch_rows": "0"})["sketch_rows"] == 0
    with pytest.raises(UserError, match="sketch_rows"):
        parse_hyperparameters({"sketch_rows": "-1"})


def test_booster_params_keep_an_explicit_tree_method() -> None:
    params = booster_params(parse_hyperparameters({"tree_method": "approx"}), nthread=1)
    assert params["tree_method"] == "approx"


@pytest.mark.parametrize(
    ("name", "alias"),
    [("eta", "learning_rate"), ("gamma", "min_split_loss"), ("lambda", "reg_lambda")],
)
def test_a_name_and_its_alias_together_are_refused(name: str, alias: str) -> None:
    with pytest.raises(UserError, match=f"{name} or its alias {alias}"):
        parse_hyperparameters({name: "0.1", alias: "0.2"})


def test_reg_alpha_is_recorded_as_alpha() -> None:
    hp = parse_hyperparameters({"reg_alpha": "0.5"})
    assert hp["alpha"] == 0.5 and "reg_alpha" not in hp


def test_large_integer_seed_keeps_every_digit() -> None:
    assert parse_hyperparameters({"seed": "12345678901234567891"})["seed"] == 12345678901234567891
