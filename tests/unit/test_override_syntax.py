"""Overrides Hydra cannot read as typed (a separator such as ; or ,), mapping keys set the obvious way, and every
problem of a command line reported at once (nlptune/config/compose.py)."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from nlptune.config.compose import apply_overrides, compose, load_run_config
from nlptune.config.errors import ConfigError

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "mrpc-bag.yaml"


def issues(call, *args) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        call(*args)
    return {issue.key: f"{issue.problem} -> {issue.fix}" for issue in info.value.issues}


@pytest.mark.parametrize("separator", [";", ",", "a,b"])
def test_a_value_hydra_cannot_read_comes_with_the_quoting_that_works(separator):
    found = issues(compose, ["task=goemotions", f"task.label_separator={separator}"])
    message = found["task.label_separator"]
    assert "quote it for Hydra inside the shell's quotes" in message
    suggested = message.rsplit("quotes: ", 1)[1]
    (override,) = shlex.split(suggested)  # what the shell hands nlptune when the user types the suggestion
    assert compose(["task=goemotions", override]).task.label_separator == separator


def test_every_problem_of_the_command_line_at_once():
    found = issues(load_run_config, ["task=sst2", "task.label_field=;", "trainer.max_step=3", "trainer.batch_size=0",
                                     "optimizer.lr=0", "task.text_fields=a,b"])
    assert set(found) == {"task.label_field", "trainer.max_step", "trainer.batch_size", "optimizer.lr",
                          "task.text_fields"}
    assert "did you mean 'trainer.max_steps'" in found["trainer.max_step"]
    assert "out of range" in found["trainer.batch_size"] and "out of range" in found["optimizer.lr"]
    assert "(a list is [a,b])" in found["task.text_fields"]


def test_the_column_map_is_set_whole_or_one_entry_at_a_time():
    assert dict(compose(["task=subj", "task.column_map={review:text}"]).task.column_map) == {"review": "text"}
    assert dict(compose(["task=subj", "task.column_map.review=text"]).task.column_map) == {
        "text": "sentence", "review": "text"}
    assert dict(compose(["task=sst2", "task.column_map.review=text"]).task.column_map) == {"review": "text"}
    recipe = yaml.safe_load(RECIPE.read_text())["config"]
    assert apply_overrides(recipe, ["task.column_map.review=text"])["task"]["column_map"] == {"review": "text"}
    assert apply_overrides(recipe, ["task.column_map={a:b}"])["task"]["column_map"] == {"a": "b"}


def test_a_recipes_overrides_are_checked_together_too():
    recipe = yaml.safe_load(RECIPE.read_text())["config"]
    found = issues(apply_overrides, recipe, ["task.label_field=;", "trainer.max_step=2"])
    assert set(found) == {"task.label_field", "trainer.max_step"}


def test_a_key_hydra_cannot_read_is_named_as_the_key_not_the_value():
    """Hydra stops at a key with a space or a non-ASCII letter: the issue names the key and its odd characters
    (not a value to quote); a column name of column_map gets the way to map it (a recipe's YAML)."""
    with pytest.raises(ConfigError) as info:
        load_run_config(["optimizer.l r=1", "task.column_map.Bewertung_ñ=text"])
    issues = {issue.key: str(issue) for issue in info.value.issues}
    assert "it holds ' '" in issues["optimizer.l r"] and "quote" not in issues["optimizer.l r"]
    assert "it holds 'ñ'" in issues["task.column_map.Bewertung_ñ"]
    assert "config.task.column_map" in issues["task.column_map.Bewertung_ñ"]
