"""Recipes end to end: `nlptune recipes list|show|copy|validate`, `freeze`, `train recipe=`, `reproduce`, on
64-row slices of ../shared/data. A 2-step smoke run of every shipped recipe (in-process, to spare a Python
start per recipe); the freeze -> train recipe= round trip reproduces the original run's metrics and best/
weights exactly (dropout on), and so does `reproduce`."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from nlptune.recipes.format import dump_recipe, read_recipe, shipped_recipes

SLICE = ["task.max_train_samples=64", "task.max_eval_samples=64"]
TINY = ["model.embedding_dim=16", "model.hidden_size=16", "trainer.batch_size=16", "trainer.max_epochs=2",
        "trainer.report_to=[]", "trainer.keep_last=0"]


def check_ok(result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n" \
                                   f"stderr:\n{result.stderr[-5000:]}"


def check_refused(result, *needles: str) -> None:
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, f"{needle!r} not in:\n{result.stderr}"


@pytest.fixture(scope="module")
def env(data_dir) -> dict[str, str]:
    return {"NLPTUNE_DATA_DIR": str(data_dir)}


def _unmeasured_recipe(tmp_path):
    """The shipped sst2-lstm recipe with its expected value cleared (as a freshly written recipe has it)."""
    recipe = yaml.safe_load((shipped_recipes()[0].parent / "sst2-lstm.yaml").read_text())
    recipe["expected"]["value"] = None
    path = tmp_path / "unmeasured.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_list_show_copy_validate(run_cli, env, tmp_path):
    listed = run_cli(["recipes", "list"], env=env)
    check_ok(listed)
    for path in shipped_recipes():
        assert path.stem in listed.stdout
    shown = run_cli(["recipes", "show", "sst2-lstm"], env=env)
    check_ok(shown)
    assert "recipe:" in shown.stdout and "expected:" in shown.stdout and "# ok" in shown.stdout
    copy = tmp_path / "my.yaml"
    check_ok(run_cli(["recipes", "copy", "sst2-lstm", str(copy)], env=env))
    assert copy.read_bytes() == (shipped_recipes()[0].parent / "sst2-lstm.yaml").read_bytes()
    check_refused(run_cli(["recipes", "copy", "sst2-lstm", str(copy)], env=env), "--force")
    unmeasured = _unmeasured_recipe(tmp_path)
    valid = run_cli(["recipes", "validate", str(copy), str(unmeasured)], env=env)
    check_ok(valid)
    assert f"ok {copy}" in valid.stdout and f"ok {unmeasured}" in valid.stdout
    assert "expected not measured yet" in valid.stdout


def test_copy_never_writes_through_a_link(run_cli, env, tmp_path):
    """A link where the copy would go (a file or a folder, --force or not) is refused; its target is untouched."""
    target = tmp_path / "someone_elses.txt"
    target.write_text("precious")
    (tmp_path / "link.yaml").symlink_to(target)
    (tmp_path / "folder").mkdir()
    (tmp_path / "linked_folder").symlink_to(tmp_path / "folder")
    for dest in ("link.yaml", "linked_folder"):
        for force in ([], ["--force"]):
            check_refused(run_cli(["recipes", "copy", "sst2-lstm", str(tmp_path / dest), *force], env=env),
                          "is a symbolic link", "never writes through a link")
    assert target.read_text() == "precious" and not any((tmp_path / "folder").iterdir())


def test_validate_reports_every_problem_and_hostile_content(run_cli, env, tmp_path):
    data = read_recipe(shipped_recipes()[0])
    data["config"]["trainer"]["batch_sise"] = 8
    data["config"]["optimizer"]["lr"] = "fast"
    bad = tmp_path / "bad.yaml"
    bad.write_text(dump_recipe(data))
    check_refused(run_cli(["recipes", "validate", str(bad)], env=env), str(bad), "config.trainer.batch_sise",
                  "did you mean 'trainer.batch_size'", "config.optimizer.lr")
    marker = tmp_path / "marker"
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text(bad.read_text().replace("lr: fast", f"lr: !!python/object/apply:os.system ['touch {marker}']"))
    check_refused(run_cli(["recipes", "validate", str(tagged)], env=env), "config.optimizer.lr", "python tag")
    check_refused(run_cli(["train", f"recipe={tagged}"], env=env), "config.optimizer.lr", "python tag")
    assert not marker.exists()


def test_hostile_command_lines_are_refused(run_cli, env, tmp_path):
    check_refused(run_cli(["train", "model._target_=os.system", f"output_dir={tmp_path / 'x'}"], env=env),
                  "model._target_", "import and call")
    check_refused(run_cli(["train", "model=pretrained", "+model.trust_remote_code=true"], env=env),
                  "model.trust_remote_code", "--trust-remote-code")
    check_refused(run_cli(["train", "--trust-remote-code", "model=lstm"], env=env), "loads no remote code")
    check_refused(run_cli(["reproduce", str(_unmeasured_recipe(tmp_path))], env=env), "no measured expected value")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("path", shipped_recipes(), ids=lambda p: p.stem)
def test_two_step_smoke_run_of_every_recipe(path, data_dir, cache_dir, tmp_path, monkeypatch, request):
    import torch

    from nlptune.recipes.run import load_run_config
    from nlptune.train.loop import run
    from nlptune.utils.console import set_quiet

    for key, value in {"NLPTUNE_DATA_DIR": str(data_dir), "NLPTUNE_CACHE_DIR": str(cache_dir), "HF_HUB_OFFLINE": "1",
                       "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}.items():
        monkeypatch.setenv(key, value)
    set_quiet(True)
    request.addfinalizer(lambda: set_quiet(False))
    threads = torch.get_num_threads()  # recipes may set trainer.threads; give the pytest process its own back
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    out = tmp_path / "run"
    # a distilled recipe's teacher is a run of the user's: a tiny one stands in (its sha256 is not the pinned one)
    recipe = read_recipe(path)
    teacher = _tiny_teacher(tmp_path / "teacher", recipe) if recipe["pins"].get("teacher") else None
    # small batches and short sequences: the smoke run checks that the recipe runs end to end, fast
    config = load_run_config([f"recipe={path}", *SLICE, "trainer.max_steps=2", "trainer.batch_size=8",
                              "task.max_length=32", "trainer.keep_last=0", "trainer.report_to=[]", f"output_dir={out}",
                              *([f"distill.teacher={teacher}"] if teacher else [])])
    # package versions are the installing machine's (a fresh install takes the newest releases); the shared data
    # is the data the recipe pins
    drift = [d["pin"] for d in config.provenance["recipe"]["drift"] if not d["pin"].startswith("pins.packages.")]
    assert drift == (["pins.teacher.sha256"] if teacher else [])
    result = run(config)
    assert result.summary["steps"] == 2
    assert all(math.isfinite(v) for v in result.best.values())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"]["name"] == path.stem and manifest["recipe"]["overrides"][0] == SLICE[0]
    assert "## How to reproduce" in (out / "best" / "README.md").read_text()


def _tiny_teacher(folder: Path, recipe: dict) -> Path:
    """A two-step bag-of-embeddings run on the recipe's task, to teach a distilled recipe's student."""
    from nlptune.config.compose import load_run_config
    from nlptune.train.loop import run

    run(load_run_config([f"task={recipe['config']['task']['name']}", "model=bag", *SLICE, "trainer.max_steps=2",
                         "trainer.keep_last=0", "trainer.report_to=[]", f"output_dir={folder}"]))
    return folder


@pytest.fixture(scope="module")
def frozen(run_cli, env, tmp_path_factory) -> dict[str, Path]:
    """A tiny sst2/lstm run (dropout on) and the recipe `nlptune freeze` made of it (tolerance 0)."""
    folder = tmp_path_factory.mktemp("frozen")
    first, recipe = folder / "first", folder / "my.yaml"
    check_ok(run_cli(["train", "task=sst2", "model=lstm", *SLICE, *TINY, f"output_dir={first}"], env=env))
    check_ok(run_cli(["freeze", str(first), str(recipe), "--tolerance", "0"], env=env))
    return {"run": first, "recipe": recipe}


def test_model_card(frozen):
    card = (frozen["run"] / "best" / "README.md").read_text()
    for section in ("## Results", "## Task and data", "## Model", "## Hyperparameters", "## How to reproduce"):
        assert section in card
    assert json.loads((frozen["run"] / "manifest.json").read_text())["data"]["sha256"]["train"] in card
    assert "| model.dropout | 0.3 |" in card and "trainable" in card


def test_freeze_then_train_recipe_reproduces_exactly(run_cli, env, frozen, tmp_path):
    first, second = frozen["run"], tmp_path / "second"
    recipe = yaml.safe_load(frozen["recipe"].read_text())
    assert recipe["config"]["model"]["dropout"] > 0 and recipe["config"]["output_dir"] is None
    # a new interpreter (its own hash seed and import order), not a child forked beside the first run
    check_ok(run_cli(["train", f"recipe={frozen['recipe']}", f"output_dir={second}"], env=env, fresh=True))
    best = [json.loads((d / "metrics.json").read_text())["best"] for d in (first, second)]
    assert json.dumps(best[0]) == json.dumps(best[1])  # byte-identical best values
    assert (second / "best" / "model.safetensors").read_bytes() == \
        (first / "best" / "model.safetensors").read_bytes()
    manifest = json.loads((second / "manifest.json").read_text())
    assert manifest["recipe"]["name"] == "my" and manifest["recipe"]["drift"] == []


def test_reproduce_is_deterministic(run_cli, env, frozen, tmp_path):
    third = tmp_path / "third"
    reproduced = run_cli(["reproduce", str(frozen["recipe"]), f"output_dir={third}"], env=env)
    check_ok(reproduced)
    assert "REPRODUCED" in reproduced.stdout
    check = json.loads((third / "reproduce.json").read_text())
    assert check["within_tolerance"] and check["difference"] == 0.0
    assert (third / "best" / "model.safetensors").read_bytes() == \
        (frozen["run"] / "best" / "model.safetensors").read_bytes()


def test_reproduce_outside_tolerance_and_pin_drift(run_cli, env, frozen, tmp_path):
    data = read_recipe(frozen["recipe"])
    data["expected"]["value"] += 0.5
    data["pins"]["packages"]["torch"] = "0.0.1"
    recipe = tmp_path / "off.yaml"
    recipe.write_text(dump_recipe(data))
    strict = run_cli(["train", f"recipe={recipe}", "strict_pins=true", f"output_dir={tmp_path / 'strict'}"], env=env)
    check_refused(strict, "pins.packages.torch", "0.0.1")
    assert not (tmp_path / "strict").exists()
    outside = run_cli(["reproduce", str(recipe), f"output_dir={tmp_path / 'again'}"], env=env)
    assert outside.returncode == 1 and "NOT REPRODUCED" in outside.stdout, outside.stderr[-3000:]
    assert "pins.packages.torch" in outside.stdout + outside.stderr  # the drift warning
    drift = json.loads((tmp_path / "again" / "manifest.json").read_text())["recipe"]["drift"]
    assert [d["pin"] for d in drift] == ["pins.packages.torch"]


def _hashes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_freeze_and_copy_never_write_among_a_runs_files(run_cli, env, frozen, tmp_path):
    """A recipe written into a run directory (--force over its config.yaml, into best/ or plots/) once replaced
    or mixed with the run's own files; refused now, and so is a --tolerance that is not a finite number >= 0."""
    run = frozen["run"]
    before = _hashes(run)
    for args in (["freeze", run, run / "config.yaml", "--force"], ["freeze", run, run / "best" / "my.yaml"],
                 ["freeze", run, run / "my.yaml"], ["recipes", "copy", "sst2-lstm", run / "plots"],
                 ["recipes", "copy", "sst2-lstm", run / "best" / "x.yaml", "--force"]):
        check_refused(run_cli(args, env=env), "never writes a command's output among a run's own files")
    assert _hashes(run) == before
    for tolerance in ("nan", "inf", "-0.5"):
        check_refused(run_cli(["freeze", run, tmp_path / "t.yaml", "--tolerance", tolerance], env=env),
                      f"--tolerance {tolerance}", "not a finite number >= 0")
    assert not (tmp_path / "t.yaml").exists()


def test_reproduce_without_its_teacher_says_which_teacher_is_missing(run_cli, tmp_path):
    """`reproduce STUDENT.yaml distill.teacher=null` once said "the teacher None now has no finished best/ model"."""
    teacher, student, recipe = tmp_path / "teacher", tmp_path / "student", tmp_path / "student.yaml"
    tiny = ["model=bag", "model.embedding_dim=8", "model.hidden_size=8", "trainer.max_steps=2", "trainer.keep_last=0",
            "trainer.report_to=[]"]
    check_ok(run_cli(["--quiet", "train", *tiny, f"output_dir={teacher}"]))
    check_ok(run_cli(["--quiet", "distill", teacher, *tiny, f"output_dir={student}"]))
    check_ok(run_cli(["freeze", student, recipe]))
    check_refused(run_cli(["reproduce", recipe, "distill.teacher=null", f"output_dir={tmp_path / 'a'}"]),
                  "was distilled from a teacher whose best/ model had sha256", f"(the run {teacher})",
                  "distill.teacher is null here", "drop the distill.teacher override")
    check_refused(run_cli(["reproduce", recipe, f"distill.teacher={tmp_path / 'gone'}",
                           f"output_dir={tmp_path / 'b'}"]), f"the teacher {tmp_path / 'gone'} is not a finished run")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
