"""Recipes and hostile configs: the recipe format, validation (every problem at once), safe YAML loading,
refusal of code-running keys, pins and drift, freezing a run directory, overrides on top of a recipe.
No training here (tests/integration/test_recipes_cli.py trains recipes)."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nlptune.recipes import pins as pinning
from nlptune.config.compose import compose, conf_dir
from nlptune.config.errors import ConfigError, NlptuneError
from nlptune.recipes.format import (build_recipe, dump_recipe, is_measured, load_recipe, plain_data, read_recipe,
                                   recipe_from_run, recipes_dir, resolve_recipe, shipped_recipes, validate_recipe,
                                   write_recipe)
from nlptune.config.compose import apply_overrides
from nlptune.recipes.run import load_run_config, run_config_from_recipe, split_recipe_overrides
from nlptune.config.safety import safe_load_text, with_remote_code

REPO = Path(__file__).resolve().parents[2]


def keys_of(issues) -> dict[str, str]:
    return {issue.key: str(issue) for issue in issues}


def refused(path, **kwargs) -> dict[str, str]:
    """``{key: message}`` of the ConfigError that loading recipe ``path`` raises (the message names the file)."""
    with pytest.raises(ConfigError) as info:
        load_recipe(path, **kwargs)
    assert str(path) in str(info.value)
    return keys_of(info.value.issues)


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> dict[str, Path]:
    """Two small made-up sentiment files (train, validation)."""
    folder = tmp_path_factory.mktemp("data")
    words = ["good", "great", "bad", "awful", "film", "plot"]
    files = {}
    for split, n in (("train", 12), ("validation", 6)):
        rows = [{"sentence": f"a {words[i % 6]} {words[(i + 1) % 6]}", "label": i % 2} for i in range(n)]
        files[split] = folder / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return files


@pytest.fixture(scope="module")
def base_recipe(data_files) -> dict:
    """A valid recipe for sst2/lstm on the made-up files, pinned to this machine (built once)."""
    plain = plain_data(load_run_config(["task=sst2", "model=lstm", f"task.train_file={data_files['train']}",
                                        f"task.validation_file={data_files['validation']}"]).plain)
    manifest = {"environment": {"versions": pinning.package_pins(), "devices": ["cpu (test)"]},
                "data": {"sha256": pinning.data_pins(plain["task"])}, "num_processes": 1}
    return build_recipe(plain, manifest, name="unit-lstm", description="unit test", metric="accuracy", value=0.5,
                        wall_time_s=1.0)


@pytest.fixture()
def recipe(base_recipe) -> dict:
    return copy.deepcopy(base_recipe)


@pytest.fixture()
def recipe_file(recipe, tmp_path) -> Path:
    path = tmp_path / "unit-lstm.yaml"
    path.write_text(dump_recipe(recipe))  # validated once by test_written_recipe_round_trips
    return path


def edited(path: Path, edit) -> Path:
    """A copy of recipe ``path`` with ``edit(data)`` applied (written without validation)."""
    data = read_recipe(path)
    edit(data)
    out = path.with_name("edited.yaml")
    out.write_text(dump_recipe(data))
    return out


# ---------------------------------------------------------------------------------------------
# the shipped recipes
# ---------------------------------------------------------------------------------------------
def test_recipes_folder_is_not_empty():
    assert recipes_dir() == REPO / "recipes"
    assert len(shipped_recipes()) >= 10, f"expected at least 10 shipped recipes in {recipes_dir()}"


@pytest.mark.parametrize("path", shipped_recipes(), ids=lambda p: p.stem)
def test_every_shipped_recipe_is_valid(path):
    data = read_recipe(path)
    assert validate_recipe(data, str(path)) == []
    assert data["recipe"]["name"] == path.stem
    expected = data["expected"]
    if is_measured(data):  # a measured value says where and how long
        assert expected["hardware"] and expected["wall_time_s"]
    else:  # never a made-up number: null, with the way to measure it
        assert expected["value"] is None and "measure_recipes.py" in expected["note"]
    assert all(expected_version is not None for expected_version in data["pins"]["packages"].values())


def test_shipped_recipes_resolve_by_name():
    first = shipped_recipes()[0]
    assert resolve_recipe(first.stem) == first
    assert resolve_recipe(f"{first.stem}.yaml") == first
    with pytest.raises(NlptuneError, match="did you mean"):
        resolve_recipe(first.stem[:-1] + "x")


# ---------------------------------------------------------------------------------------------
# format, freezing, validation
# ---------------------------------------------------------------------------------------------
def test_written_recipe_round_trips(recipe, tmp_path):
    recipe_file = write_recipe(tmp_path / "unit-lstm.yaml", recipe)
    loaded = load_recipe(recipe_file)
    assert loaded == json.loads(json.dumps(recipe))
    assert loaded["config"]["task"]["text_fields"] == ["sentence"]
    assert "defaults" not in loaded["config"] and "${" not in recipe_file.read_text()


def test_unmeasured_recipe_is_valid_and_marked(recipe, tmp_path):
    recipe["expected"].update(value=None, hardware=None, wall_time_s=None, note="not measured yet")
    path = write_recipe(tmp_path / "unmeasured.yaml", recipe)
    assert not is_measured(load_recipe(path))


def test_every_problem_is_reported_together(recipe_file):
    def edit(data):
        data["config"]["model"]["hiden_size"] = 64  # typo
        data["config"]["optimizer"]["lr"] = "fast"  # wrong type
        data["config"]["trainer"]["batch_size"] = -1  # out of range
        data["expected"]["tolerence"] = 0.1  # typo in another section
        data["pins"]["packages"]["torch"] = 2.1  # a number where a version string belongs
        data["recipe"]["schema_version"] = 99

    issues = refused(edited(recipe_file, edit))
    assert "did you mean 'model.hidden_size'" in issues["config.model.hiden_size"]
    assert "expected float, got 'fast'" in issues["config.optimizer.lr"]
    assert "out of range" in issues["config.trainer.batch_size"]
    assert "did you mean 'expected.tolerance'" in issues["expected.tolerence"]
    assert "version string" in issues["pins.packages.torch"]
    assert "upgrade nlptune" in issues["recipe.schema_version"]


@pytest.mark.parametrize("key, value, problem", [
    ("tolerance", float("nan"), "not a finite number"), ("tolerance", float("inf"), "not a finite number"),
    ("tolerance", -0.01, "out of range [0, inf)"), ("value", float("nan"), "not a finite number"),
    ("value", float("-inf"), "not a finite number"), ("wall_time_s", float("nan"), "not a finite number")])
def test_expected_numbers_must_be_finite(recipe_file, key, value, problem):
    """|got - value| <= NaN is never true, <= inf always: reproduce's verdict would mean nothing."""
    issues = refused(edited(recipe_file, lambda data: data["expected"].update({key: value})))
    assert problem in issues[f"expected.{key}"]


def test_the_recipe_key_must_name_one_recipe():
    with pytest.raises(ConfigError) as info:
        split_recipe_overrides(["recipe="])
    assert "is empty" in str(info.value) and "recipe=sst2-lstm" in str(info.value)
    with pytest.raises(ConfigError) as info:
        split_recipe_overrides(["recipe=a.yaml", "seed=1", "recipe=b.yaml"])
    assert "is given twice ('a.yaml', 'b.yaml')" in str(info.value)
    assert split_recipe_overrides(["recipe=a.yaml", "recipe=a.yaml"])[0] == "a.yaml"


def test_a_missing_key_is_named_with_the_problems_behind_it(recipe_file):
    # conf/ holds the defaults, not the dataclasses: a key missing from a recipe is an error, and the checks
    # behind it still run (conf/'s value stands in for the pass that reaches them)
    def edit(data):
        del data["config"]["optimizer"]["weight_decay"]
        data["config"]["trainer"]["batch_size"] = 0

    issues = refused(edited(recipe_file, edit))
    assert "missing key" in issues["config.optimizer.weight_decay"]
    assert "out of range" in issues["config.trainer.batch_size"]


def test_missing_sections_and_defaults_list(recipe_file):
    issues = refused(edited(recipe_file, lambda d: (d.pop("pins"), d["config"].update(defaults=["x"]),
                                                     d.update(expectd={}))))
    assert "missing section" in issues["pins"]
    assert "did you mean 'expected'" in issues["expectd"]
    assert "defaults list" in issues["config.defaults"]


def test_a_section_given_by_name_as_on_the_command_line_is_named(recipe_file):
    issues = refused(edited(recipe_file, lambda d: d["config"].update(task="sst2", model=["lstm"])))
    assert "'sst2' is not a section of keys" in issues["config.task"]
    assert "['lstm'] is not a section of keys" in issues["config.model"]


def test_expected_metric_must_be_a_task_metric(recipe_file):
    issues = refused(edited(recipe_file, lambda d: d["expected"].update(metric="f1")))
    assert "not one of config.task.metrics" in issues["expected.metric"]


def test_recipe_from_run_directory(recipe, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**recipe["config"], "output_dir": str(run_dir),
                                                        "resume": "auto"}))
    manifest = {"environment": {"versions": {"torch": "9.9", "nlptune": "0.1.0"}, "devices": ["GPU X"]},
                "data": {"sha256": {"train": "a" * 64, "validation": "b" * 64}}, "num_processes": 2}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    (run_dir / "metrics.json").write_text(json.dumps({"best": {"accuracy": 0.75}, "main_metric": "accuracy",
                                                      "train_runtime_s": 12.5}))
    frozen = recipe_from_run(run_dir, "frozen", tolerance=0.01)
    assert validate_recipe(frozen) == []
    assert frozen["config"]["output_dir"] is None and frozen["config"]["resume"] is None
    assert frozen["pins"]["packages"]["torch"] == "9.9" and frozen["pins"]["data"]["train"] == "a" * 64
    assert frozen["expected"] == {"metric": "accuracy", "value": 0.75, "tolerance": 0.01,
                                  "hardware": "GPU X x2 processes", "wall_time_s": 12.5, "note": None}
    with pytest.raises(NlptuneError, match="not an nlptune run"):
        recipe_from_run(tmp_path, "x")


# ---------------------------------------------------------------------------------------------
# hostile recipes and configs
# ---------------------------------------------------------------------------------------------
def test_target_key_is_refused(recipe_file):
    issues = refused(edited(recipe_file, lambda d: d["config"]["model"].update(_target_="os.system")))
    assert "import and call" in issues["config.model._target_"]
    issues = refused(edited(recipe_file, lambda d: d["config"]["optimizer"].update(_component_="torch.optim.SGD")))
    assert "config.optimizer._component_" in issues


def test_python_yaml_tag_is_refused_before_construction(recipe_file, tmp_path):
    marker = tmp_path / "marker"
    text = recipe_file.read_text().replace(
        "  max_epochs: 3", f"  max_epochs: !!python/object/apply:os.system ['touch {marker}']")
    bad = tmp_path / "tagged.yaml"
    bad.write_text(text)
    issues = refused(bad)
    assert "python tag" in issues["config.trainer.max_epochs"] and "line" in issues["config.trainer.max_epochs"]
    assert not marker.exists()


def test_env_resolver_in_a_recipe_is_refused(recipe_file):
    issues = refused(edited(recipe_file, lambda d: d["config"]["task"].update(data_dir="${oc.env:HOME}")))
    assert "read your environment" in issues["config.task.data_dir"]
    issues = refused(edited(recipe_file, lambda d: d["config"]["optimizer"].update(lr="${trainer.batch_size}")))
    assert "resolved values only" in issues["config.optimizer.lr"]


def test_trust_flags_and_registry_keys_are_refused(recipe_file):
    issues = refused(edited(recipe_file, lambda d: (d["config"]["model"].update(trust_remote_code=True),
                                                     d["config"].update(registry={"model": {"x": "os.system"}}))))
    assert "--trust-remote-code" in issues["config.model.trust_remote_code"]
    assert "component registry" in issues["config.registry"]


def test_hostile_recipe_imports_nothing(recipe_file, tmp_path):
    bad = edited(recipe_file, lambda d: d["config"]["model"].update(_target_="os.system"))
    code = ("import sys\nfrom nlptune.recipes.format import load_recipe\n"
            f"try:\n    load_recipe({str(bad)!r})\nexcept Exception as err:\n    print(type(err).__name__)\n"
            "print(sorted(m for m in ('torch', 'nlptune.models', 'hydra') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.split()
    assert out == ["ConfigError", "[]"]


def test_duplicate_keys_and_yaml_syntax_errors():
    with pytest.raises(ConfigError, match="duplicate key"):
        safe_load_text("a: 1\na: 2\n", "dup.yaml")
    with pytest.raises(ConfigError, match="line 2"):
        safe_load_text("a: [1,\n", "broken.yaml")


@pytest.mark.parametrize("override, key", [
    ("model._target_=os.system", "model._target_"),
    ("+model._component_=x", "model._component_"),
    ("model.trust_remote_code=true", "model.trust_remote_code"),
    ("+trust_remote_code=true", "trust_remote_code"),
    ("hydra.searchpath=[file:///tmp]", "hydra"),
    ("model.args={_target_: os.system}", "model.args._target_"),
])
def test_hostile_overrides_are_refused(override, key):
    with pytest.raises(ConfigError) as info:
        load_run_config(["model=pretrained", override])
    assert key in keys_of(info.value.issues)


def test_hostile_conf_file_is_refused(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    shutil.copytree(conf_dir(), conf)
    (conf / "model" / "lstm.yaml").write_text((conf / "model" / "lstm.yaml").read_text()
                                              .replace("model:\n", "model:\n  trust_remote_code: true\n"))
    monkeypatch.setenv("NLPTUNE_CONF_DIR", str(conf))
    with pytest.raises(ConfigError) as info:
        compose(["model=bag"])  # any composition: the whole conf/ tree is checked first
    assert "lstm.yaml" in str(info.value) and "model.trust_remote_code" in keys_of(info.value.issues)


def test_trust_remote_code_only_from_the_command_line_flag():
    run = load_run_config(["model=pretrained"])
    trusted = with_remote_code(run)
    assert trusted.model.args["trust_remote_code"] is True and trusted.provenance["trust_remote_code"] is True
    assert "trust_remote_code" not in json.dumps(plain_data(trusted.plain))  # never in config.yaml
    with pytest.raises(ConfigError, match="loads no remote code"):
        with_remote_code(load_run_config(["model=lstm"]))


# ---------------------------------------------------------------------------------------------
# running a recipe: overrides, pins, drift
# ---------------------------------------------------------------------------------------------
def test_recipe_override_applies_on_top(recipe_file):
    run = load_run_config([f"recipe={recipe_file}", "trainer.max_epochs=1", "model.hidden_size=64", "seed=7"])
    assert (run.trainer.max_epochs, run.model.args["hidden_size"], run.seed) == (1, 64, 7)
    assert run.optimizer.lr == pytest.approx(2e-3)  # the rest is the recipe's
    recipe = run.provenance["recipe"]
    assert recipe["name"] == "unit-lstm" and recipe["drift"] == [] and len(recipe["sha256"]) == 64
    assert recipe["overrides"] == ["trainer.max_epochs=1", "model.hidden_size=64", "seed=7"]


def test_recipe_override_errors(recipe_file):
    with pytest.raises(ConfigError) as info:
        load_run_config([f"recipe={recipe_file}", "trainer.max_epoch=1", "model=cnn"])
    issues = keys_of(info.value.issues)
    assert "did you mean 'trainer.max_epochs'" in issues["trainer.max_epoch"]
    assert "whole 'model' section" in issues["model"]
    with pytest.raises(ConfigError, match="only applies to a recipe"):
        split_recipe_overrides(["strict_pins=true"])


def test_a_key_added_after_the_recipe_can_be_overridden(recipe_file):
    """A recipe written before a key existed (here: model.bidirectional and trainer.label_smoothing taken out
    of it) runs with the key's default and takes an override of it; a misspelt key is still refused."""
    def predate(data):
        data["config"]["model"].pop("bidirectional")
        data["config"]["trainer"].pop("label_smoothing")
    older = edited(recipe_file, predate)
    assert load_run_config([f"recipe={older}"]).model.args.get("bidirectional") is None
    run = load_run_config([f"recipe={older}", "model.bidirectional=false", "trainer.label_smoothing=0.1"])
    assert run.model.args["bidirectional"] is False and run.trainer.label_smoothing == 0.1
    with pytest.raises(ConfigError, match="did you mean 'model.bidirectional'"):
        load_run_config([f"recipe={older}", "model.bidirectionl=false"])


def test_package_pin_mismatch_warns_or_refuses(recipe_file):
    path = edited(recipe_file, lambda d: d["pins"]["packages"].update(torch="0.0.1"))
    run = run_config_from_recipe(str(path), warn_drift=False)
    installed = pinning.package_pins()["torch"]
    assert run.provenance["recipe"]["drift"] == [{"pin": "pins.packages.torch", "expected": "0.0.1",
                                                  "found": installed}]
    with pytest.raises(ConfigError) as info:
        load_run_config([f"recipe={path}", "strict_pins=true"])
    assert "pins.packages.torch" in keys_of(info.value.issues) and "0.0.1" in str(info.value)


def test_data_pin_mismatch_is_drift(recipe_file, data_files, tmp_path):
    changed = tmp_path / "train.jsonl"
    changed.write_text(data_files["train"].read_text() + json.dumps({"sentence": "one more", "label": 1}) + "\n")
    with pytest.raises(ConfigError) as info:
        load_run_config([f"recipe={recipe_file}", f"task.train_file={changed}", "strict_pins=true"])
    assert list(keys_of(info.value.issues)) == ["pins.data.train"]


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("path", shipped_recipes(), ids=lambda p: p.stem)
def test_shipped_recipe_holds_no_machine_path(path):
    """A user's machine has none of this machine's folders: shipped recipes name data and models portably
    (null data_dir reads $NLPTUNE_DATA_DIR, packaged:<hub id> for the packaged model)."""
    absolute = [s for s in _strings(read_recipe(path)) if s.startswith(("/", "~")) or s[1:3] in (":\\", ":/")]
    assert not absolute, f"{path.name} holds machine paths: {absolute}"


def test_recipe_from_env_data_dir_is_portable(data_files, monkeypatch):
    """A config whose data_dir came from $NLPTUNE_DATA_DIR is frozen with a null data_dir (how the sst2-lstm
    recipe once shipped with this machine's path)."""
    folder = str(data_files["train"].parent)
    monkeypatch.setenv("NLPTUNE_DATA_DIR", folder)
    plain = plain_data(load_run_config(["task=sst2", "model=lstm"]).plain)
    assert plain["task"]["data_dir"] == folder
    recipe = build_recipe(plain, {}, name="x", metric="accuracy", value=0.5)
    assert recipe["config"]["task"]["data_dir"] is None
    monkeypatch.delenv("NLPTUNE_DATA_DIR")
    kept = build_recipe(dict(plain), {}, name="x", metric="accuracy", value=0.5)  # a user's own folder stays
    assert kept["config"]["task"]["data_dir"] == folder


def test_null_data_dir_reads_nlptune_data_dir(recipe_file, monkeypatch, tmp_path):
    path = edited(recipe_file, lambda d: d["config"]["task"].update(train_file=None, validation_file=None))
    monkeypatch.setenv("NLPTUNE_DATA_DIR", str(tmp_path / "elsewhere"))
    run = run_config_from_recipe(str(path), warn_drift=False)
    assert run.task.data_dir == str(tmp_path / "elsewhere")
    assert {d["pin"] for d in run.provenance["recipe"]["drift"]} == {"pins.data.train", "pins.data.validation"}


def test_packaged_model_source(monkeypatch):
    from nlptune.config import sources

    hub = "sentence-transformers/all-MiniLM-L6-v2"
    folder = sources.packaged_dir(hub)
    resolved = sources.resolve_model_source(f"packaged:{hub}")
    assert resolved == (str(folder) if folder else hub)
    if folder:  # freezing maps the package's folder back to the symbolic value
        assert sources.packaged_alias(str(folder)) == f"packaged:{hub}"
    assert sources.packaged_issue("packaged:someone/else") and sources.packaged_issue(f"packaged:{hub}") is None
    monkeypatch.setitem(sources.PACKAGED_MODELS, hub, "no_such_module_nlptune_test")
    assert sources.resolve_model_source(f"packaged:{hub}") == hub  # not installed: the hub id


def test_annotated_show(recipe_file):
    from nlptune.recipes.annotate import annotate

    path = edited(recipe_file, lambda d: d["config"]["optimizer"].update(lr=0.01))
    text = annotate(path)
    assert "lr: 0.01  # conf/ default: 0.002" in text
    assert "torch:" in text and "# ok" in text
    assert "train: " in text and "ok (same data here)" in text


def test_recipe_keeps_copy_semantics(recipe):
    before = copy.deepcopy(recipe)
    apply_overrides(recipe["config"], ["seed=1"])
    assert recipe == before


@pytest.mark.parametrize("bad", ["abc", [1, 2], {"a": [1]}, None, True, -5])
def test_any_ill_typed_value_outside_config_is_a_listed_problem_never_a_crash(bad):
    """Every key of a shipped recipe's recipe/pins/expected sections (and each section itself) set to a value of
    the wrong type: validate_recipe lists problems, whatever it reads."""
    recipe = yaml.safe_load((recipes_dir() / "sst2-lstm-distilled.yaml").read_text())
    paths = [(section,) for section in ("recipe", "pins", "expected")]
    paths += [(section, key) for section in ("recipe", "pins", "expected") for key in recipe[section]]
    paths += [("pins", key, sub) for key in ("packages", "data", "teacher") for sub in recipe["pins"][key] or {}]
    for path in paths:
        trial = copy.deepcopy(recipe)
        node = trial
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = bad
        validate_recipe(trial)  # problems or none (some values are allowed): never an exception


def test_overrides_that_change_what_a_recipe_trains_are_named(recipe_file):
    """`nlptune reproduce` tells a changed config (epochs, lr, seed, a data slice) from where it runs (threads,
    device, reporting): only the first is named, with the recipe's value and the new one."""
    from nlptune.commands.reproduce import overridden

    def changed(*overrides):
        return overridden(recipe_file, load_run_config([f"recipe={recipe_file}", *overrides]))

    assert changed("trainer.threads=1", "trainer.report_to=[]", "trainer.eval_batch_size=7", "trainer.log_every=3") \
        == {}
    lr = load_run_config([f"recipe={recipe_file}"]).optimizer.lr
    assert changed("trainer.max_epochs=9", "optimizer.lr=0.5", "task.max_train_samples=4", "seed=7") == {
        "trainer.max_epochs": (3, 9), "optimizer.lr": (lr, 0.5), "task.max_train_samples": (None, 4), "seed": (42, 7)}


def test_naming_the_overrides_does_not_warn_about_the_pins_again(recipe_file, capsys):
    """`nlptune reproduce RECIPE output_dir=...` printed the recipe's pin drift twice: once for the run, once more
    while reading the recipe alone to compare."""
    from nlptune.commands.reproduce import overridden

    drifting = edited(recipe_file, lambda data: data["pins"]["packages"].update(torch="0.0.1"))
    config = load_run_config([f"recipe={drifting}", "output_dir=elsewhere"])
    assert "pins.packages.torch" in capsys.readouterr().err
    assert overridden(drifting, config) == {} and capsys.readouterr().err == ""


def test_validating_a_folder_validates_each_recipe_in_it(tmp_path, capsys):
    """`nlptune recipes validate recipes/` was "recipe recipes/ is a folder"."""
    import argparse
    import shutil

    from nlptune.commands.recipes import handle_validate
    from nlptune.recipes.format import resolve_recipe

    shutil.copy(resolve_recipe("sst2-lstm"), tmp_path / "a.yaml")
    (tmp_path / "b.yml").write_text("recipe: {name: b}\nconfig: 3\n")
    (tmp_path / "notes.txt").write_text("not a recipe")
    code = handle_validate(argparse.Namespace(recipes=[str(tmp_path)], strict_pins=False))
    out, err = capsys.readouterr()
    assert code == 2 and f"ok {tmp_path / 'a.yaml'}" in out and f"INVALID {tmp_path / 'b.yml'}" in err
    assert "notes.txt" not in out + err
