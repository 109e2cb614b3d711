"""The distill config section: conf/distill/ fills it, a stored config without it loads as "no distillation" (and
resumes against a checkpoint written before it), its values are checked, and every key is sweepable."""
from __future__ import annotations

import dataclasses

import pytest

from nlptune.config.compose import compose, conf_dir, group_options, load_run_config, section_config, to_plain
from nlptune.config.errors import ConfigError
from nlptune.config.safety import safe_load_file
from nlptune.config.schema import LATER_SECTIONS, DistillConfig, build_run_config


def issues_of(overrides: list[str]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_run_config(overrides)
    return {issue.key: str(issue) for issue in info.value.issues}


def test_default_is_no_distillation_and_every_option_fills_the_section():
    run = load_run_config([])
    assert run.distill.teacher is None and not run.distill.active
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(DistillConfig))
    for option in group_options("distill"):
        assert isinstance(section_config("distill", option), DistillConfig)


def test_later_section_values_are_conf_none_yaml():
    """A stored config without the section behaves as conf/distill/none.yaml, the default: the two never drift."""
    assert LATER_SECTIONS["distill"] == safe_load_file(conf_dir() / "distill" / "none.yaml", recipe=False)


def test_stored_config_without_the_section_loads_as_no_distillation():
    plain = to_plain(compose(["model=lstm"]))
    del plain["distill"]
    run = build_run_config(plain)
    assert run.distill == load_run_config(["model=lstm"]).distill
    assert run.plain["distill"]["teacher"] is None  # config.yaml of a resumed old run gets the section


def test_resume_against_a_checkpoint_written_before_the_section_sees_no_change():
    from nlptune.train.resume import config_diff, plain_config

    current = plain_config(load_run_config(["model=lstm"]))
    saved = {k: v for k, v in current.items() if k != "distill"}
    assert config_diff(saved, current) == []
    changed = plain_config(load_run_config(["model=lstm", "distill.teacher=/runs/t"]))
    assert config_diff(saved, changed) == [{"key": "distill.teacher", "checkpoint": None, "now": "/runs/t"}]


def test_values_are_checked_together():
    found = issues_of(["distill.alpha=1.5", "distill.temperature=0", "distill.loss=kld", "distill.mask_prob=-0.1",
                       "distill.ngram_prob=2", "distill.augment_copies=-1"])
    assert set(found) == {"distill.alpha", "distill.temperature", "distill.loss", "distill.mask_prob",
                          "distill.ngram_prob", "distill.augment_copies"}
    assert "did you mean 'kl'" in found["distill.loss"]
    assert "expected int" in issues_of(["distill.augment_copies=1.5"])["distill.augment_copies"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_value_that_is_not_a_finite_number_is_refused(value):
    """NaN compares False with every bound: range checks once let it through (a NaN loss, or a transfer set
    noised by nothing); inf is no meaningful alpha, temperature or probability either. The class: every range
    check (optimizer.lr too)."""
    keys = ["distill.alpha", "distill.temperature", "distill.mask_prob", "distill.replace_prob", "distill.ngram_prob",
            "optimizer.lr", "trainer.max_grad_norm"]
    found = issues_of(["distill.teacher=/t", *(f"{key}={value}" for key in keys)])
    for key in keys:
        assert "is not a finite number" in found[key], found


def test_a_huge_transfer_set_is_refused_before_anything_is_made():
    """A typo such as augment_copies=100000000 would build the copies in memory for hours, then run out."""
    found = issues_of(["distill.teacher=/t", "distill.augment_copies=100000000"])
    assert "out of range [0, 1000]" in found["distill.augment_copies"]
    assert load_run_config(["distill.teacher=/t", "distill.augment_copies=1000"]).distill.augment_copies == 1000


def test_masking_and_replacement_cannot_exceed_one():
    found = issues_of(["distill.teacher=/t", "distill.mask_prob=0.6", "distill.replace_prob=0.5"])
    assert "mask_prob + replace_prob = 1.1 is above 1" in found["distill.replace_prob"]


def test_a_transfer_set_needs_a_teacher():
    found = issues_of(["distill.augment_copies=2"])
    assert "distill.teacher is null" in found["distill.augment_copies"]


def test_tokens_tasks_are_refused_and_regression_takes_mse_only():
    found = issues_of(["task=wnut17", "model=lstm", "distill.teacher=/t"])
    assert "distillation of a tokens task is not supported" in found["distill.teacher"]
    found = issues_of(["task=stsb", "model=lstm", "distill.teacher=/t", "distill.loss=kl"])
    assert "set distill.loss=mse" in found["distill.loss"]
    assert load_run_config(["task=stsb", "model=lstm", "distill.teacher=/t"]).distill.loss == "mse"


def test_every_distill_key_is_sweepable():
    from nlptune.tuning.plan import check_space
    from nlptune.tuning.space import parse_space

    space = {"distill.alpha": "uniform(0,1)", "distill.temperature": "loguniform(1,8)",
             "distill.loss": "choice(mse,kl)", "distill.augment_copies": "int(0,4)", "distill.mask_prob": "uniform(0,0.3)",
             "distill.replace_prob": "uniform(0,0.3)", "distill.ngram_prob": "uniform(0,0.5)"}
    check_space(parse_space(space), ["model=lstm", "distill.teacher=/runs/t"], ("distill", "model"))
    with pytest.raises(ConfigError) as info:
        check_space(parse_space({"distill.alpha": "uniform(0,2)"}), ["distill.teacher=/runs/t"], ())
    assert [issue.key for issue in info.value.issues] == ["tune.space.distill.alpha"]


def test_a_recipe_without_the_section_takes_distill_overrides(tmp_path):
    from nlptune.recipes.format import dump_recipe, load_recipe
    from nlptune.recipes.run import run_config_from_recipe

    recipe = load_recipe("sst2-lstm")
    assert "distill" not in recipe["config"]  # frozen before the section existed
    path = tmp_path / "old.yaml"
    path.write_text(dump_recipe(recipe))
    run = run_config_from_recipe(str(path), ["distill.teacher=/runs/t", "distill.alpha=0.25"], warn_drift=False)
    assert (run.distill.teacher, run.distill.alpha) == ("/runs/t", 0.25)
