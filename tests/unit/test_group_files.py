"""A config group chosen by a YAML file of one's own: task=my_task.yaml, model=my_model.yaml."""
from __future__ import annotations

import random

import pytest

from nlptune.config import ConfigError
from nlptune.config.compose import load_run_config


def issues_of(overrides) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_run_config(overrides)
    return {issue.key: str(issue) for issue in info.value.issues}


def test_a_task_file_builds_on_its_kinds_task_and_the_command_line_wins(tmp_path, monkeypatch):
    """`nlptune train task=my_task.yaml` said "unknown task 'my_task.yaml'": a task of one's own needed a recipe
    or a copy of all of conf/."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "reviews.yml").write_text("kind: tokens\ntrain_file: train.conll\nvalidation_file: /abs/dev.conll\n"
                                        "tag_scheme: bioes\nmax_length: 64\ncolumn_map: {words: tokens}\n")
    monkeypatch.chdir(tmp_path)
    run = load_run_config(["task=data/reviews.yml", "model=lstm", "task.max_length=32"])
    task = run.task
    assert (task.name, task.kind, task.tag_scheme, task.max_length) == ("reviews", "tokens", "bioes", 32)
    assert (task.train_file, task.validation_file) == (str(folder / "train.conll"), "/abs/dev.conll")
    assert task.label_field == "tags" and dict(task.column_map) == {"words": "tokens"}  # the rest: its kind's
    (folder / "scores.yaml").write_text("problem_type: regression\nlabel_field: score\n")  # a legacy file
    assert load_run_config([f"task={folder / 'scores.yaml'}"]).task.kind == "regression"


def test_a_model_file_names_its_model_and_may_set_other_sections(tmp_path):
    (tmp_path / "small.yaml").write_text("name: lstm\nhidden_size: 64\n")
    (tmp_path / "global.yaml").write_text("model:\n  name: cnn\n  dropout: 0.2\noptimizer:\n  lr: 0.01\n")
    assert load_run_config([f"model={tmp_path / 'small.yaml'}"]).model.args["hidden_size"] == 64
    run = load_run_config([f"model={tmp_path / 'global.yaml'}", "model.dropout=0.3"])
    assert (run.model.name, run.model.args["dropout"], run.optimizer.lr) == ("cnn", 0.3, 0.01)


def test_a_group_file_under_the_home_folder_or_quoted_is_read(tmp_path, monkeypatch):
    """'task=~/my.yaml' (zsh leaves the ~) "did not exist"; 'task="~/my.yaml"' was "unknown task"."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "small.yaml").write_text("name: lstm\nhidden_size: 64\n")
    for given in ("~/small.yaml", '"~/small.yaml"', f"'{tmp_path}/small.yaml'"):
        assert load_run_config([f"model={given}"]).model.args["hidden_size"] == 64


def test_every_problem_of_the_files_is_named_with_its_file(tmp_path):
    bad_task, bad_model = tmp_path / "t.yaml", tmp_path / "m.yaml"
    bad_task.write_text("kind: single_label\nbogus_key: 1\nmax_length: -5\n")  # three problems, two files
    bad_model.write_text("hidden_size: 3\n")
    found = issues_of([f"task={bad_task}", f"model={bad_model}"])
    assert f"{bad_model}: no model name is not a model" in found["model.name"]
    found = issues_of([f"task={bad_task}", "trainer.max_epochs=-1"])
    assert f"unknown config key in {bad_task}" in found["task.bogus_key"]
    assert {"task.max_length", "trainer.max_epochs"} <= set(found)
    bad_task.write_text("_target_: os.system\n")
    assert str(bad_task) in issues_of([f"task={bad_task}"])["_target_"]
    for text, said in (("- a list\n", "holds no mapping of task keys"), ("kind: nope\n", "unknown kind 'nope'"),
                       ("kind: [a]\n", "unknown kind ['a']")):
        bad_task.write_text(text)
        assert said in " ".join(issues_of([f"task={bad_task}"]).values())
    assert "does not exist" in issues_of([f"task={tmp_path / 'none.yaml'}"])["task"]
    (tmp_path / "task.json").write_text("{}")  # a file, but not YAML: said so ("unknown task" alone hid why)
    for value in (tmp_path / "task.json", tmp_path / "none.txt"):
        assert "a task of one's own is a YAML file" in issues_of([f"task={value}"])["task"]
    assert "YAML file" not in issues_of(["task=sst"])["task"]


def test_a_files_values_reach_the_config_unchanged(tmp_path):
    """Each value is passed on in Hydra's override grammar: quotes, backslashes, commas and brackets included."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from nlptune.config.group_files import _hydra_value

    rng = random.Random(0)
    alphabet = "ab '\"\\,[]{}=:$ ñ\t"
    texts = ["", "\\", "a\\", "\\'", "it's", "C:\\path\\", "[x]", "a, b"] + \
        ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(500)]
    values = [t for t in texts if "${" not in t] + [None, True, 0, -3, 1e-05, 2.5, [1, "a b", None], {"k": "v'w"}]
    parser = OverridesParser.create()
    for value in values:  # an interpolation is resolved later, as in any config file
        assert parser.parse_override(f"key={_hydra_value(value, tmp_path, 'key')}").value() == value, repr(value)
    path = tmp_path / "t.yaml"
    path.write_text('text_fields: ["it\'s a \\\\ [b], c"]\nlabel_field: label\n')
    assert load_run_config([f"task={path}"]).task.text_fields == ("it's a \\ [b], c",)
