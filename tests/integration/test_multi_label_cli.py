"""Multi-label tasks (issue 15) through the real CLI on 64-row slices of goemotions: a scratch GRU and a tiny random
BERT train, save best/thresholds.json, report tuned and 0.5 scores side by side, and eval, predict, export and a
transformers pipeline use the saved thresholds / sigmoid head; a killed run resumes exactly."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_cli_train import check_ok  # noqa: E402
from test_resume import assert_same_run, kill_at  # noqa: E402

from conftest import child_env  # noqa: E402

SLICE = ["task=goemotions", "task.max_train_samples=64", "task.max_eval_samples=64", "trainer.max_epochs=2"]
SCRATCH = ["model=gru", "model.embedding_dim=16", "model.hidden_size=16", "trainer.pos_weight=balanced"]


@pytest.fixture(scope="module")
def train_once(run_cli, data_dir, tmp_path_factory, request):
    done = {}

    def train(model: str) -> Path:
        if model not in done:
            out = tmp_path_factory.mktemp(model) / "run"
            extra = SCRATCH if model == "gru" else [
                "model=pretrained", f"model.name_or_path={request.getfixturevalue('tiny_pretrained')}",
                "optimizer.lr=1e-3", "task.max_length=24", "trainer.class_weights=balanced"]
            check_ok(run_cli(["--quiet", "train", *SLICE, *extra, f"output_dir={out}"],
                             env={"NLPTUNE_DATA_DIR": str(data_dir)}))
            done[model] = out
        return done[model]

    return train


def _validation_rows(data_dir: Path, out: Path) -> Path:
    """The 64 validation rows the runs scored, as a file."""
    lines = (data_dir / "goemotions" / "validation.jsonl").read_text(encoding="utf-8").splitlines()[:64]
    path = out / "validation.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("model", ["gru", "pretrained"])
def test_run_reports_tuned_and_fixed_scores_and_saves_thresholds(model, train_once):
    run = train_once(model)
    summary = json.loads((run / "metrics.json").read_text())
    best = summary["best"]
    assert summary["main_metric"] == "macro_f1"
    for name in ("macro_f1", "micro_f1", "subset_accuracy"):
        assert 0.0 <= best[name] <= 1.0 and 0.0 <= best[f"{name}_at_0.5"] <= 1.0
    saved = json.loads((run / "best" / "thresholds.json").read_text())
    assert len(saved["thresholds"]) == 28 and saved["tuned"] and saved["one_per_label"] is True
    assert set(saved["labels"]["joy"]) == {"precision", "recall", "f1", "support"}
    assert saved["scores"]["macro_f1"] == pytest.approx(best["macro_f1"])  # the same cross-fitted score
    assert summary["thresholds"]["thresholds"] == saved["thresholds"]
    weights = summary["loss"]["pos_weight" if model == "gru" else "class_weights"]
    assert len(weights) == 28 and max(weights.values()) > 1.0
    assert (run / "plots" / "label_f1.png").is_file() and (run / "plots" / "label_cooccurrence.png").is_file()


def test_eval_and_predict_use_the_saved_thresholds(train_once, run_cli, data_dir, tmp_path):
    run = train_once("gru")
    rows = _validation_rows(data_dir, tmp_path)
    result = run_cli(["predict", run, "--input", rows, "--output", tmp_path / "out.jsonl"])
    check_ok(result)
    saved = json.loads((run / "best" / "thresholds.json").read_text())["thresholds"]
    for row in (json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()):
        assert row["labels"] == [name for name, t in saved.items() if row["scores"][name] >= t]
    check_ok(result := run_cli(["eval", run, "--file", rows]))
    scores = json.loads(result.stdout)
    best = json.loads((run / "metrics.json").read_text())["best"]
    assert scores["macro_f1_at_0.5"] == pytest.approx(best["macro_f1_at_0.5"], abs=1e-6)
    # eval reads best/thresholds.json: with every threshold at 0.5 its score is the 0.5 score
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(run), str(copy)], check=True)
    (copy / "best" / "thresholds.json").write_text(json.dumps({"thresholds": {name: 0.5 for name in saved}}))
    check_ok(result := run_cli(["eval", copy, "--file", rows]))
    assert json.loads(result.stdout)["macro_f1"] == pytest.approx(scores["macro_f1_at_0.5"], abs=1e-9)
    # a damaged thresholds.json: one message naming it, never a traceback
    for damaged in ({"thresholds": 5}, {"thresholds": {name: None for name in saved}}, [0.5],
                    {"thresholds": {name: 0.5 for name in list(saved)[1:]}}):
        (copy / "best" / "thresholds.json").write_text(json.dumps(damaged))
        result = run_cli(["eval", copy, "--file", rows])
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "thresholds.json" in result.stderr and "damaged" in result.stderr, result.stderr


def test_pretrained_head_loads_in_a_sigmoid_pipeline_and_exports(train_once, run_cli, data_dir):
    from transformers import pipeline

    run = train_once("pretrained")
    config = json.loads((run / "best" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification" and len(config["id2label"]) == 28
    classify = pipeline("text-classification", model=str(run / "best"), function_to_apply="sigmoid", top_k=None)
    (scores,) = classify(["I love this, thank you so much"])
    assert len(scores) == 28 and all(0.0 < s["score"] < 1.0 for s in scores)
    result = run_cli(["export", run, "--format", "onnx"], env={"NLPTUNE_DATA_DIR": str(data_dir)}, timeout=300)
    check_ok(result)
    assert (run / "onnx" / "model.onnx").is_file()
    assert json.loads((run / "onnx" / "thresholds.json").read_text()) == \
        json.loads((run / "best" / "thresholds.json").read_text())


def test_killed_multi_label_run_resumes_exactly(run_cli, data_dir, cache_dir, tmp_path):
    """Killed after its step-2 checkpoint and resumed, the run ends bit for bit where an unbroken one ends, with
    the same thresholds (recomputed from the checkpointed best validation outputs)."""
    args = [*SLICE, *SCRATCH, "model.dropout=0.3", "trainer.batch_size=16", "trainer.save_every=2",
            "trainer.keep_last=100", "trainer.log_every=1", "trainer.eval_every=2"]
    env = {"NLPTUNE_DATA_DIR": str(data_dir)}
    check_ok(run_cli(["--quiet", "train", *args, f"output_dir={tmp_path / 'reference'}"], env=env))
    run = tmp_path / "killed"
    kill_at("after_save:4", [*args, f"output_dir={run}"], child_env(cache_dir, env), tmp_path / "kill.log")
    check_ok(run_cli(["--quiet", "train", *args, f"output_dir={run}", "resume=auto"], env=env))
    assert_same_run(run, tmp_path / "reference")
    assert (run / "best" / "thresholds.json").read_text() == (tmp_path / "reference" / "best" / "thresholds.json") \
        .read_text()
