"""Distillation through the real CLI on 64-row slices: a BiLSTM learns from a tiny BERT teacher (sst2) and from bag
teachers (stsb: pairs, regression; goemotions: multi_label), with a transfer set; the teacher's outputs are computed
once (a second run never loads the teacher), a killed distilled run resumes exactly, a teacher that does not fit
is refused in one message, and a frozen recipe pins its teacher."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from test_cli_train import check_ok  # noqa: E402
from test_resume import ARGS, assert_same_run, cli_in_process, kill_at  # noqa: E402

from conftest import child_env  # noqa: E402

SLICE = ["task.max_train_samples=64", "task.max_eval_samples=64", "trainer.max_epochs=1", "trainer.report_to=[]",
         "trainer.keep_last=0"]
BAG = ["model=bag", "model.embedding_dim=16", "model.hidden_size=16"]
STUDENT = ["model=lstm", "model.embedding_dim=16", "model.hidden_size=16", "trainer.max_epochs=1",
           "trainer.report_to=[]", "trainer.keep_last=0"]


@pytest.fixture(scope="module")
def teachers(run_cli, data_dir, tmp_path_factory, tiny_pretrained) -> dict[str, Path]:
    """A finished teacher run per task: a tiny random BERT on sst2 (fp32, so that its outputs can be compared
    exactly), bags on stsb and goemotions."""
    made = {}
    for task, model in (("sst2", ["model=pretrained", f"model.name_or_path={tiny_pretrained}", "optimizer.lr=1e-3",
                                  "task.max_length=24", "trainer.mixed_precision=no"]),
                        ("stsb", BAG), ("goemotions", BAG)):
        out = tmp_path_factory.mktemp(f"teacher-{task}") / "run"
        check_ok(run_cli(["--quiet", "train", f"task={task}", *SLICE, *model, f"output_dir={out}"],
                         env={"NLPTUNE_DATA_DIR": str(data_dir)}))
        made[task] = out
    return made


@pytest.fixture(scope="module")
def student(run_cli, data_dir, teachers, tmp_path_factory) -> Path:
    """A BiLSTM distilled from the sst2 teacher, on the teacher's task (no task= given), with a transfer set."""
    out = tmp_path_factory.mktemp("student") / "run"
    check_ok(run_cli(["--quiet", "distill", teachers["sst2"], *STUDENT, "distill.augment_copies=2",
                      f"output_dir={out}"], env={"NLPTUNE_DATA_DIR": str(data_dir)}))
    return out


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def change_model(run: Path) -> None:
    """Change what the teacher's best/ model computes (its layer norms' epsilon; a change that leaves its outputs
    alone, as a reformatted config.json, keeps its identity: tests/unit/test_teacher_identity.py)."""
    config = read(run / "best" / "config.json")
    config["layer_norm_eps"] = config["layer_norm_eps"] * 10
    (run / "best" / "config.json").write_text(json.dumps(config))


def forbid_loading_the_teacher(monkeypatch, cache_dir) -> None:
    """In-process runs from here on fail if they load a teacher's model (its outputs must come from the cache in
    ``cache_dir``, which they are pointed at)."""
    from nlptune.train import teacher as teacher_module

    def refuse(*args, **kwargs):
        raise AssertionError("the teacher's model was loaded although its outputs are cached")

    monkeypatch.setattr(teacher_module, "load_best_model", refuse)
    for name, value in child_env(cache_dir).items():
        if name.startswith(("HF_", "TRANSFORMERS_", "NLPTUNE_", "TOKENIZERS_")):
            monkeypatch.setenv(name, value)


def test_student_trains_on_the_teachers_task_and_records_the_teacher(student, teachers):
    config = yaml.safe_load((student / "config.yaml").read_text())
    assert config["task"]["name"] == "sst2" and config["task"]["max_train_samples"] == 64  # the teacher's task
    assert config["distill"]["teacher"] == str(teachers["sst2"])
    manifest, summary = read(student / "manifest.json"), read(student / "metrics.json")
    teacher_best = read(teachers["sst2"] / "metrics.json")["best"]["accuracy"]
    assert manifest["teacher"]["logits_from_cache"] is False and manifest["teacher"]["transfer_rows"] == 128
    record = summary["distillation"]
    assert record["teacher_best"] == teacher_best and record["teacher_main_metric"] == "accuracy"
    assert record["teacher_sha256"] == manifest["teacher"]["sha256"] and record["augment_copies"] == 2
    assert summary["hyperparameters"]["distill.alpha"] == 0.5
    assert 0 <= summary["best"]["accuracy"] <= 1


def test_cached_outputs_are_the_teachers_logits_in_row_order(student, teachers, data_dir):
    """The batched, length-sorted pass puts every row's logits back in place: the first 64 rows are the teacher's
    own outputs on the 64 training sentences (computed one batch here), the 128 copies follow."""
    from nlptune.inference.predict import LoadedRun

    cached = np.load(read(student / "manifest.json")["teacher"]["logits_cache"])
    assert cached.shape == (64 * 3, 2) and cached.dtype == np.float32
    lines = (data_dir / "sst2" / "train.jsonl").read_text(encoding="utf-8").splitlines()[:64]
    loaded = LoadedRun(teachers["sst2"])
    batch = next(loaded.batches([[json.loads(line)["sentence"] for line in lines]], batch_size=64))
    import torch

    with torch.no_grad():
        expected = loaded.model(**batch)["logits"].float().numpy()
    np.testing.assert_allclose(cached[:64], expected, rtol=1e-4, atol=1e-5)


def test_a_second_run_reads_the_cache_and_never_loads_the_teacher(student, teachers, data_dir, tmp_path, capsys,
                                                                   monkeypatch, cache_dir):
    forbid_loading_the_teacher(monkeypatch, cache_dir)
    out = tmp_path / "again"
    code, err = cli_in_process(["distill", str(teachers["sst2"]), *STUDENT, "distill.augment_copies=2",
                                "distill.alpha=0.8", f"output_dir={out}"], data_dir, capsys, monkeypatch)
    assert code == 0, err[-3000:]
    manifest = read(out / "manifest.json")["teacher"]
    assert manifest["logits_from_cache"] is True
    assert manifest["logits_cache"] == read(student / "manifest.json")["teacher"]["logits_cache"]


@pytest.mark.parametrize("task, extra", [("stsb", []), ("goemotions", ["distill.loss=kl", "distill.temperature=3"])])
def test_regression_and_multi_label_students(task, extra, teachers, run_cli, data_dir, tmp_path):
    out = tmp_path / "run"
    check_ok(run_cli(["--quiet", "distill", teachers[task], *STUDENT, "distill.augment_copies=1", *extra,
                      f"output_dir={out}"], env={"NLPTUNE_DATA_DIR": str(data_dir)}))
    summary = read(out / "metrics.json")
    main = read(teachers[task] / "metrics.json")["main_metric"]
    assert summary["main_metric"] == main and main in summary["best"]
    assert summary["distillation"]["transfer_rows"] == 64 and summary["distillation"]["teacher_main_metric"] == main
    cached = np.load(read(out / "manifest.json")["teacher"]["logits_cache"])
    assert cached.shape == (128, 1 if task == "stsb" else 28)


def test_killed_distilled_run_resumes_exactly(teachers, run_cli, data_dir, cache_dir, tmp_path, capsys,
                                              monkeypatch):
    """test_resume's run (dropout, accumulation, a checkpoint every 2 steps) with a teacher and a transfer set:
    killed mid-epoch and resumed, it ends as the uninterrupted run did, bit for bit; resumed with a teacher whose
    model changed, it is refused."""
    teacher = tmp_path / "teacher"  # a copy of the sst2 teacher (the same model: its cached outputs are reused)
    shutil.copytree(teachers["sst2"], teacher)
    args = [*ARGS, f"distill.teacher={teacher}", "distill.augment_copies=1", "distill.alpha=0.7"]
    env = {"NLPTUNE_DATA_DIR": str(data_dir)}
    reference, run = tmp_path / "reference", tmp_path / "run"
    check_ok(run_cli(["--quiet", "train", *args, f"output_dir={reference}"], env=env))
    kill_at("after_save:4", [*args, f"output_dir={run}"], child_env(cache_dir, env), tmp_path / "kill.log")
    shutil.copytree(run, tmp_path / "killed")
    check_ok(run_cli(["--quiet", "train", *args, f"output_dir={run}", "resume=auto"], env=env))
    assert_same_run(run, reference)
    assert read(run / "manifest.json")["teacher"]["logits_from_cache"] is True  # the resume ran no teacher

    change_model(teacher)  # the same path, another model behind it
    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(cache_dir))
    code, err = cli_in_process(["train", *args, f"output_dir={tmp_path / 'killed'}", "resume=auto"], data_dir, capsys,
                               monkeypatch)
    assert code == 2 and "teacher.sha256:" in err and "resume_allow_changes=true" in err


def test_teacher_that_does_not_fit_is_refused_in_one_message(teachers, data_dir, tmp_path, capsys, monkeypatch):
    code, err = cli_in_process(["distill", str(tmp_path / "missing"), "model=lstm"], data_dir, capsys, monkeypatch)
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(teachers["sst2"] / "config.yaml", unfinished / "config.yaml")
    code, err = cli_in_process(["train", "task=sst2", *SLICE, *STUDENT, f"distill.teacher={unfinished}"], data_dir,
                               capsys, monkeypatch)
    assert code == 2 and "distill.teacher" in err and "is not a finished nlptune run" in err
    # a sentence-pair regression student for a single-sentence classifier: both mismatches, one message
    code, err = cli_in_process(["distill", str(teachers["sst2"]), "task=stsb", *SLICE, *STUDENT], data_dir, capsys,
                               monkeypatch)
    assert code == 2 and "2 config error(s)" in err
    assert "the teacher's task is single_label (sst2), this one is regression" in err
    assert "the teacher reads 1 text field(s)" in err
    # the same kind, trained on other labels
    code, err = cli_in_process(["distill", str(teachers["sst2"]), "task.label_names=[neg,pos]", *STUDENT], data_dir,
                               capsys, monkeypatch)
    assert code == 2 and "the teacher's outputs ['negative', 'positive'] are not this task's ['neg', 'pos']" in err
    assert "Traceback" not in err


def test_a_teacher_whose_model_does_not_load_is_named_as_the_teacher(teachers, data_dir, tmp_path, capsys,
                                                                    monkeypatch):
    """A best/ that passes the file checks but does not load (its tokenizer deleted): the message says it is
    distill.teacher's, not the student's, and what to do."""
    damaged = tmp_path / "teacher"
    shutil.copytree(teachers["sst2"], damaged)
    for name in ("tokenizer.json", "vocab.txt"):
        (damaged / "best" / name).unlink(missing_ok=True)
    code, err = cli_in_process(["distill", str(damaged), *SLICE, *STUDENT, "distill.augment_copies=1",
                                f"output_dir={tmp_path / 'student'}"], data_dir, capsys, monkeypatch)
    assert code == 2 and "Traceback" not in err
    assert "distill.teacher" in err and "the teacher's best model does not load" in err
    assert "train the teacher again" in err


def test_frozen_recipe_pins_its_teacher_and_reproduce_refuses_another(student, teachers, data_dir, tmp_path, capsys,
                                                                      monkeypatch):
    from nlptune.cli import main

    recipe = tmp_path / "student.yaml"
    with pytest.raises(SystemExit) as done:
        main(["--quiet", "freeze", str(student), str(recipe)])
    assert done.value.code == 0
    pins = yaml.safe_load(recipe.read_text())["pins"]
    assert pins["teacher"] == {"run_dir": str(teachers["sst2"]),
                               "sha256": read(student / "manifest.json")["teacher"]["sha256"]}
    changed = tmp_path / "changed-teacher"
    shutil.copytree(teachers["sst2"], changed)
    change_model(changed)
    code, err = cli_in_process(["reproduce", str(recipe), f"distill.teacher={changed}",
                                f"output_dir={tmp_path / 'out'}"], data_dir, capsys, monkeypatch)
    assert code == 2 and "was distilled from a teacher whose best/ model had sha256" in err
    assert not (tmp_path / "out").exists()


def test_a_saved_copy_of_the_teachers_model_is_the_same_teacher(student, teachers, data_dir, tmp_path, capsys,
                                                                 monkeypatch, cache_dir):
    """A copy of the teacher run's best/ alone (what `export --format hf` writes) teaches as its run: the same
    identity, so the cached outputs are reused and a recipe's pin holds; it holds no data, so the task is named.
    The run's best/ itself is read as the run."""
    from nlptune.data.sources import is_teacher

    saved = tmp_path / "saved-teacher"
    shutil.copytree(teachers["sst2"] / "best", saved)
    code, err = cli_in_process(["distill", str(saved), *STUDENT], data_dir, capsys, monkeypatch)
    assert code == 2 and "Traceback" not in err
    assert "is a saved model folder" in err and "task=NAME" in err and "'sst2'" in err

    forbid_loading_the_teacher(monkeypatch, cache_dir)
    out = tmp_path / "student"
    code, err = cli_in_process(["distill", str(saved), "task=sst2", "task.max_train_samples=64",
                                "task.max_eval_samples=64", *STUDENT, "distill.augment_copies=2",
                                f"output_dir={out}"], data_dir, capsys, monkeypatch)
    assert code == 0, err[-3000:]
    recorded, first = read(out / "manifest.json")["teacher"], read(student / "manifest.json")["teacher"]
    assert recorded["sha256"] == first["sha256"] and recorded["logits_from_cache"] is True
    assert recorded["run_dir"] == str(saved) and recorded["precision"] == "no"
    assert read(out / "metrics.json")["distillation"]["teacher_best"] is None  # a folder alone records no score
    assert is_teacher(saved, first["sha256"]) and is_teacher(teachers["sst2"] / "best", first["sha256"])

    from nlptune.commands.distill import distill_config

    config = distill_config(str(teachers["sst2"] / "best"), [*STUDENT])
    assert config.distill.teacher == str(teachers["sst2"].absolute()) and config.task.name == "sst2"
