"""A run records its data files' paths absolute, so eval and reproduce read the files it was trained on from any
folder; eval reads only the split it scores, says when a file differs from the one the run's manifest records,
and, when a file is gone, gives a fix eval itself can act on. Runs made before (relative paths) still work from
the folder they were made in."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from nlptune.config.schema import TaskConfig
from nlptune.config.sources import absolute_data_paths, resolve_plain
from nlptune.data.errors import DataError
from nlptune.data.loading import load_raw_splits
from nlptune.data.sources import file_problem, split_identity

GOOD = [{"text": "good great fine", "label": "pos"}, {"text": "bad awful poor", "label": "neg"}] * 4
FLIPPED = [{"text": "good great fine", "label": "neg"}, {"text": "bad awful poor", "label": "pos"}] * 3
TRAIN = ["task=text_classification", "task.train_file=train.jsonl", "task.validation_file=dev.jsonl",
         "trainer.threads=1", "trainer.max_steps=2", "model=bag", "model.embedding_dim=16", "trainer.report_to=[]"]


def write_data(folder: Path, rows: list[dict]) -> Path:
    """train.jsonl and dev.jsonl holding ``rows`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train.jsonl", "dev.jsonl"):
        (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


# ------------------------------------------------------------------------------------------ recording paths
def test_absolute_data_paths_resolves_every_path_key_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = {"train_file": "a/train.jsonl", "validation_file": "~/dev.jsonl", "data_dir": "data", "hub_id": "glue",
            "generator": None, "name": "sst2"}
    absolute_data_paths(task)
    assert task == {"train_file": str(tmp_path / "a" / "train.jsonl"),
                    "validation_file": os.path.join(os.path.expanduser("~"), "dev.jsonl"),
                    "data_dir": str(tmp_path / "data"), "hub_id": "glue", "generator": None, "name": "sst2"}
    already = {"train_file": "/x/train.jsonl", "validation_file": None, "data_dir": ""}
    assert absolute_data_paths(dict(already)) == already  # absolute, unset and empty values stay as they are


def test_resolve_plain_makes_a_composed_configs_paths_absolute(tmp_path, monkeypatch):
    from nlptune.config.compose import load_run_config

    monkeypatch.chdir(tmp_path)
    config = load_run_config(TRAIN)
    assert (config.task.train_file, config.task.validation_file) == (str(tmp_path / "train.jsonl"),
                                                                     str(tmp_path / "dev.jsonl"))
    assert config.plain["task"]["train_file"] == str(tmp_path / "train.jsonl")  # what config.yaml records
    hub = resolve_plain({"task": {"hub_id": "stanfordnlp/sst2", "data_dir": None, "train_file": None}})
    assert hub["task"] == {"hub_id": "stanfordnlp/sst2", "data_dir": None, "train_file": None}


def test_a_home_folder_path_is_expanded_wherever_a_path_goes(tmp_path, monkeypatch):
    """'output_dir="~/runs/x"' (a quoted override, a recipe, zsh) made a folder named "~" in the current one."""
    from nlptune.recipes.format import resolve_recipe
    from nlptune.tuning.plan import find_sweep_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home = tmp_path / "home"
    plain = resolve_plain({"output_dir": "~/runs/x", "resume": "~/runs/y", "distill": {"teacher": "~/teacher"},
                           "model": {"name": "lstm", "pretrained_vectors": "~/vectors", "name_or_path": None},
                           "task": {"name": "sst2"}})
    assert (plain["output_dir"], plain["resume"], plain["distill"]["teacher"], plain["model"]["pretrained_vectors"]) \
        == (f"{home}/runs/x", f"{home}/runs/y", f"{home}/teacher", f"{home}/vectors")
    assert resolve_plain({"output_dir": "runs/~x", "resume": "auto"}) == {"output_dir": "runs/~x", "resume": "auto"}
    (home / "sweeps" / "s").mkdir(parents=True)
    tune = type("Tune", (), {"dir": "~/sweeps/s"})()
    args = type("Args", (), {"resume": None})()
    assert find_sweep_dir(tune, args, "sst2", "bag") == (home / "sweeps" / "s", False)
    from nlptune.tuning.sweep import _home_expanded
    assert _home_expanded("sqlite:///~/study.db") == f"sqlite:///{home}/study.db"
    assert _home_expanded("journal:~/s.journal") == f"journal:{home}/s.journal"
    assert _home_expanded("postgresql://u@host/db") == "postgresql://u@host/db" and _home_expanded(None) is None
    (home / "r.yaml").write_text("recipe: {}\n")
    for given in ("~/r.yaml", '"~/r.yaml"', "'~/r.yaml'"):
        assert resolve_recipe(given) == home / "r.yaml"


def test_a_recipes_relative_data_dir_is_recorded_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plain = resolve_plain({"task": {"data_dir": "data", "name": "sst2"}, "model": {"name": "bag"}})
    assert plain["task"]["data_dir"] == str(tmp_path / "data")


def test_a_relative_nlptune_data_dir_is_still_named_as_the_origin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NLPTUNE_DATA_DIR", "data")
    task = absolute_data_paths({"data_dir": "data", "name": "sst2"})
    with pytest.raises(DataError, match="NLPTUNE_DATA_DIR"):
        load_raw_splits(_task(task))


def test_file_not_found_says_where_a_relative_path_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert f"looked for in the current folder, {tmp_path}" in str(file_problem(Path("x.jsonl"), "train", "o"))
    assert "current folder" not in str(file_problem(tmp_path / "x.jsonl", "train", "o"))


# ------------------------------------------------------------------------------------------ one split
def _task(task: dict) -> TaskConfig:
    fields = dict(name="t", kind="single_label", text_fields=("text",), label_field="label", label_names=None,
                  metrics=("accuracy",), main_metric="accuracy")
    return TaskConfig(**{**fields, **task})


def test_load_raw_splits_reads_only_the_splits_asked_for(tmp_path):
    write_data(tmp_path, GOOD)
    task = _task({"train_file": str(tmp_path / "gone.jsonl"), "validation_file": str(tmp_path / "dev.jsonl")})
    splits = load_raw_splits(task, only=("validation",))
    assert list(splits) == ["validation"] and splits["validation"].sha256 == split_identity(task, "validation")
    with pytest.raises(DataError, match="gone.jsonl"):
        load_raw_splits(task)  # both splits, as training reads them


# ------------------------------------------------------------------------------------------ eval of a run
@pytest.fixture(scope="module")
def trained(tmp_path_factory, run_cli) -> Path:
    """A finished run trained (2 steps) in a folder of its own from relative task.train_file/validation_file."""
    folder = write_data(tmp_path_factory.mktemp("made-here"), GOOD)
    result = run_cli(["train", *TRAIN, "output_dir=r0"], cwd=folder, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def _as_old_run(run: Path, tmp_path: Path) -> Path:
    """A copy of ``run`` whose config.yaml holds the relative paths a run made before this change recorded."""
    old = tmp_path / "old-run"
    import shutil

    shutil.copytree(run, old)
    config = yaml.safe_load((old / "config.yaml").read_text())
    config["task"].update(train_file="train.jsonl", validation_file="dev.jsonl")
    (old / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return old


def test_the_run_records_absolute_paths(trained):
    config = yaml.safe_load((trained / "r0" / "config.yaml").read_text())
    assert config["task"]["train_file"] == str(trained / "train.jsonl")
    assert config["task"]["validation_file"] == str(trained / "dev.jsonl")


def test_cli_eval_from_a_folder_with_other_data_scores_the_runs_own(trained, run_cli, tmp_path):
    elsewhere = write_data(tmp_path / "elsewhere", FLIPPED)  # same names, other labels: accuracy 0 if read
    result = run_cli(["eval", trained / "r0"], cwd=elsewhere, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["accuracy"] == 1.0
    assert "warning" not in result.stderr


def _evaluate(run: Path, split: str = "validation") -> dict:
    from nlptune.inference.predict import LoadedRun

    return LoadedRun(run).evaluate(split=split)


def test_eval_of_the_validation_split_needs_no_train_file(trained, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(trained, copy)
    config = yaml.safe_load((copy / "r0" / "config.yaml").read_text())
    config["task"].update(train_file=str(copy / "moved-away.jsonl"), validation_file=str(copy / "dev.jsonl"))
    (copy / "r0" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    assert _evaluate(copy / "r0")["accuracy"] == 1.0
    with pytest.raises(DataError) as err:
        _evaluate(copy / "r0", split="train")
    text = str(err.value)
    assert "moved-away.jsonl" in text and "restore the file" in text and "--file PATH" in text
    recorded = json.loads((trained / "r0" / "manifest.json").read_text())["data"]["sha256"]["train"]
    assert recorded in text


def test_eval_of_a_file_reports_text_and_label_problems_together(trained, tmp_path):
    from nlptune.inference.predict import LoadedRun

    rows = [{"text": ["not", "a", "string"], "label": "pos"}, {"text": "fine", "label": "unseen"}]
    path = tmp_path / "scored.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(DataError) as err:
        LoadedRun(trained / "r0").evaluate(file=str(path))
    assert [(p.line, p.column) for p in err.value.problems] == [(1, "text"), (2, "label")]


def test_eval_warns_when_the_file_differs_from_the_manifests(trained, tmp_path, monkeypatch, capsys):
    old = _as_old_run(trained / "r0", tmp_path)
    elsewhere = write_data(tmp_path / "elsewhere", FLIPPED)
    monkeypatch.chdir(elsewhere)
    assert _evaluate(old)["accuracy"] == 0.0  # the unrelated file is read (as before), but now said so
    warning = " ".join(capsys.readouterr().err.split())
    recorded = json.loads((old / "manifest.json").read_text())["data"]["sha256"]["validation"]
    now = split_identity(_task({"train_file": "train.jsonl", "validation_file": "dev.jsonl"}), "validation")
    assert "dev.jsonl" in warning and recorded in warning and now in warning and "relative path" in warning


def test_an_old_run_still_evaluates_from_the_folder_it_was_made_in(trained, tmp_path, monkeypatch, capsys):
    old = _as_old_run(trained / "r0", tmp_path)
    monkeypatch.chdir(trained)
    assert _evaluate(old)["accuracy"] == 1.0
    assert "warning" not in capsys.readouterr().err


def test_an_old_runs_missing_relative_file_is_explained(trained, tmp_path, monkeypatch):
    old = _as_old_run(trained / "r0", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(DataError) as err:
        _evaluate(old)
    text = str(err.value)
    assert "task.validation_file=dev.jsonl" in text and "relative path" in text and str(empty) in text
    assert "from the folder the run was made in" in text and f"nlptune eval {old} --file PATH" in text
    assert "check the path" not in text  # eval takes no task.* overrides


def test_reproduce_verdict_names_data_that_differs_from_the_pins():
    from nlptune.commands.reproduce import other_data

    assert other_data([{"pin": "pins.packages.torch"}]) == ""
    note = other_data([{"pin": "pins.data.train"}, {"pin": "pins.packages.torch"}])
    assert "other data" in note and "pins.data.train" in note and "torch" not in note
