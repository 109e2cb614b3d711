"""Search dimensions: parsing, errors, suggestions on an Optuna trial, grids and overrides."""
from __future__ import annotations

import optuna
import pytest

from nlptune.config.errors import ConfigError
from nlptune.tuning.space import grid_space, parse_dimension, parse_space, suggest, to_override


@pytest.mark.parametrize("spec, kind, low, high, log", [
    ("loguniform(1e-4,3e-3)", "loguniform", 1e-4, 3e-3, True),
    ("uniform(0, 0.5)", "uniform", 0.0, 0.5, False),
    ("int(1,4)", "int", 1, 4, False),
    ("int(16,512,log)", "int", 16, 512, True),
])
def test_numeric_dimensions(spec, kind, low, high, log):
    dim = parse_dimension("k", spec)
    assert (dim.kind, dim.low, dim.high, dim.log) == (kind, low, high, log)
    assert dim.bounds() == [low, high]


def test_choice_keeps_types_and_range_excludes_stop():
    choice = parse_dimension("k", "choice(128, 2.5e-3, adamw, '1e3', true, null, nan)")
    assert choice.values == (128, 2.5e-3, "adamw", "1e3", True, None, "nan")
    assert parse_dimension("k", "range(1,5)").values == (1, 2, 3, 4)
    assert parse_dimension("k", "range(16,65,16)").values == (16, 32, 48, 64)
    assert parse_dimension("k", "range(0.1,0.5,0.1)").values == (0.1, 0.2, 0.3, 0.4)
    assert parse_dimension("k", "int(2,8,2)").grid() == [2, 4, 6, 8]


@pytest.mark.parametrize("spec, problem", [
    ("loguniform(0,1)", "above 0"),
    ("uniform(1,0)", "not below"),
    ("uniform(1)", "two numbers"),
    ("normal(0,1)", "not a search dimension"),
    ("0.1", "not a search dimension"),
    ("int(1.5,3)", "two integers"),
    ("int(1,4,0)", "positive integer step"),
    ("int(1,4,2)", "does not divide"),
    ("choice()", "at least one option"),
    ("choice(1,1)", "repeated"),
    ("range(5,1)", "start < stop"),
])
def test_invalid_dimensions_name_key_and_problem(spec, problem):
    with pytest.raises(ConfigError) as err:
        parse_dimension("optimizer.lr", spec)
    assert "tune.space.optimizer.lr" in str(err.value) and problem in str(err.value)


def test_parse_space_reports_every_bad_dimension():
    with pytest.raises(ConfigError) as err:
        parse_space({"a": "uniform(1,0)", "b": "choice(1,2)", "c": "foo(1)"})
    assert len(err.value.issues) == 2


def test_suggest_uses_the_matching_distribution():
    dims = parse_space({"lr": "loguniform(1e-4,1e-2)", "layers": "int(1,3)", "size": "choice(64,128)",
                        "batch": "range(16,65,16)", "p": "uniform(0,0.5)"})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    values = {d.key: suggest(trial, d) for d in dims}
    dists = trial.distributions
    assert isinstance(dists["lr"], optuna.distributions.FloatDistribution) and dists["lr"].log
    assert isinstance(dists["layers"], optuna.distributions.IntDistribution)
    assert isinstance(dists["size"], optuna.distributions.CategoricalDistribution)
    assert dists["batch"].step == 16 and values["batch"] in (16, 32, 48, 64)
    assert 1e-4 <= values["lr"] <= 1e-2 and 0 <= values["p"] <= 0.5


def test_grid_space_keeps_discrete_dimensions_only():
    dims = parse_space({"lr": "loguniform(1e-4,1e-2)", "size": "choice(64,128)", "layers": "int(1,2)",
                        "batch": "range(8,17,8)"})
    assert grid_space(dims) == {"size": [64, 128], "layers": [1, 2], "batch": [8, 16]}


def test_overrides_quote_strings_but_not_groups_or_numbers():
    assert to_override("optimizer.lr", 1e-05) == "optimizer.lr=1e-05"
    assert to_override("model.hidden_size", 128) == "model.hidden_size=128"
    assert to_override("model.pooling", "max") == "model.pooling='max'"
    assert to_override("model.revision", None) == "model.revision=null"
    assert to_override("trainer.group_by_length", False) == "trainer.group_by_length=false"
    assert to_override("model", "gru", ("model",)) == "model=gru"
    assert to_override("output_dir", "/tmp/it's") == "output_dir='/tmp/it\\'s'"


def test_a_trials_string_value_reaches_hydra_as_it_is():
    """A choice holding a backslash reached the trial with it doubled (Hydra reads a backslash as an escape only
    before a quote)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from nlptune.tuning.space import to_override

    parser = OverridesParser.create()
    for value in ("C:\\data\\", "it's", "1e-3", "null", 3, 0.5, None, True):
        assert parser.parse_override(to_override("model.x", value)).value() == value
