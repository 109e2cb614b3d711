"""Around a run, through the real CLI on 64-row slices: plots, TensorBoard scalars, lr-find, ONNX/HF export,
compare, csv predictions, augmentation and tracker selection. Each training run happens once per module."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

SLICE = ["task.max_train_samples=64", "task.max_eval_samples=64", "trainer.batch_size=16", "trainer.log_every=1"]
TINY_LSTM = ["model=lstm", "model.embedding_dim=16", "model.hidden_size=16"]


def check_ok(result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n" \
                                   f"stderr:\n{result.stderr[-5000:]}"
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def env(data_dir) -> dict[str, str]:
    return {"NLPTUNE_DATA_DIR": str(data_dir)}


@pytest.fixture(scope="module")
def lstm_run(run_cli, env, tmp_path_factory) -> Path:
    """sst2, a tiny LSTM, 2 epochs of 4 steps, evaluation every 2 steps."""
    out = tmp_path_factory.mktemp("lstm") / "run"
    check_ok(run_cli(["--quiet", "train", "task=sst2", *TINY_LSTM, *SLICE, "trainer.max_epochs=2",
                      "trainer.eval_every=2", f"output_dir={out}"], env=env))
    return out


@pytest.fixture(scope="module")
def augmented_run(run_cli, env, tmp_path_factory) -> Path:
    """The same run with every augmentation on (and without the inference cost measure)."""
    out = tmp_path_factory.mktemp("augmented") / "run"
    check_ok(run_cli(["--quiet", "train", "task=sst2", *TINY_LSTM, *SLICE, "trainer.max_epochs=2",
                      "trainer.eval_every=2", "augment=light", "augment.unk_prob=0.2", "trainer.measure_cost=false",
                      f"output_dir={out}"], env=env))
    return out


@pytest.fixture(scope="module")
def pretrained_run(run_cli, env, tmp_path_factory, tiny_pretrained) -> Path:
    """stsb (sentence pairs, regression) with a tiny random BERT, one epoch."""
    out = tmp_path_factory.mktemp("pretrained") / "run"
    check_ok(run_cli(["--quiet", "train", "task=stsb", "model=pretrained", f"model.name_or_path={tiny_pretrained}",
                      *SLICE, "trainer.max_epochs=1", "optimizer.lr=1e-3", f"output_dir={out}"], env=env))
    return out


@pytest.fixture(scope="module")
def aligned_pair_run(run_cli, env, tmp_path_factory) -> Path:
    """stsb (sentence pairs, regression) with a tiny BiLSTM whose two texts are aligned (model.pair_attention)."""
    out = tmp_path_factory.mktemp("aligned") / "run"
    check_ok(run_cli(["--quiet", "train", "task=stsb", *TINY_LSTM, "model.pair_attention=true", *SLICE,
                      "trainer.max_epochs=1", f"output_dir={out}"], env=env))
    return out


@pytest.fixture(scope="module")
def mean_pooled_run(run_cli, env, tmp_path_factory, tiny_pretrained) -> Path:
    """sst2 with a tiny random BERT whose head reads the mean of the tokens (model.pooling=mean)."""
    out = tmp_path_factory.mktemp("mean-pooled") / "run"
    check_ok(run_cli(["--quiet", "train", "task=sst2", "model=pretrained", f"model.name_or_path={tiny_pretrained}",
                      "model.pooling=mean", *SLICE, "trainer.max_epochs=1", "trainer.eval_every=2",
                      "optimizer.lr=1e-3", f"output_dir={out}"], env=env))
    return out


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_plots_of_a_classification_run(lstm_run):
    names = sorted(p.name for p in (lstm_run / "plots").iterdir())
    assert names == ["confusion_matrix.png", "training.png", "validation.png"]
    assert all((lstm_run / "plots" / n).stat().st_size > 5000 for n in names)


def test_plots_of_a_regression_run(pretrained_run):
    names = sorted(p.name for p in (pretrained_run / "plots").iterdir())
    assert names == ["predictions_scatter.png", "training.png", "validation.png"]


def test_tensorboard_holds_the_scalar_series_and_hyperparameters(lstm_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = lstm_run / "tensorboard" / "nlptune"
    events = EventAccumulator(str(logs))
    events.Reload()
    records = _records(lstm_run)
    train_steps = [r["step"] for r in records if "loss" in r]
    eval_steps = [r["step"] for r in records if "eval_accuracy" in r]
    assert train_steps == list(range(1, 9)) and eval_steps == [2, 4, 6, 8]
    for tag, steps, key in (("train/loss", train_steps, "loss"), ("train/lr", train_steps, "lr"),
                            ("eval/accuracy", eval_steps, "eval_accuracy"), ("eval/loss", eval_steps, "eval_loss")):
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == steps, tag
        expected = [r[key] for r in records if key in r]
        assert [s.value for s in scalars] == pytest.approx(expected, rel=1e-5), tag
    hparams = [yaml.safe_load(p.read_text()) for p in logs.glob("*/hparams.yml")]
    assert hparams and hparams[0]["optimizer.lr"] == 2e-3 and hparams[0]["parameters.trainable"] > 0


def test_reporting_to_an_uninstalled_tracker_is_a_clear_error(run_cli, env):
    import importlib.util

    if importlib.util.find_spec("mlflow") is not None:
        pytest.skip("mlflow is installed here")
    result = run_cli(["train", "task=sst2", *SLICE, "trainer.report_to=[tensorboard,mlflow]"], env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "mlflow is not installed" in result.stderr and "trainer.report_to=[tensorboard]" in result.stderr


def test_training_with_augmentation(augmented_run, lstm_run):
    config = yaml.safe_load((augmented_run / "config.yaml").read_text())
    assert config["augment"]["name"] == "light" and config["augment"]["unk_prob"] == 0.2
    summary = json.loads((augmented_run / "metrics.json").read_text())
    assert summary["hyperparameters"]["augment.unk_prob"] == 0.2
    noisy = [r["loss"] for r in _records(augmented_run) if "loss" in r]
    plain = [r["loss"] for r in _records(lstm_run) if "loss" in r]
    assert len(noisy) == len(plain) == 8 and noisy != plain  # same seed and data: only the noise differs


def test_compare(run_cli, lstm_run, augmented_run, tmp_path):
    out = tmp_path / "cmp.png"
    result = run_cli(["compare", lstm_run, augmented_run, "--output", out], env={"COLUMNS": "250"})
    check_ok(result)
    assert out.stat().st_size > 5000
    assert "best accuracy" in result.stdout and "augment.unk_prob=0.2" in result.stdout
    assert "Inference cost" in result.stdout and "latency ms" in result.stdout
    cost = json.loads((lstm_run / "metrics.json").read_text())["cost"]
    assert f"{cost['latency_ms']:.2f}" in result.stdout
    assert run_cli(["compare", tmp_path]).returncode == 2  # not a run directory


def test_measure_cost_false_leaves_the_cost_out(augmented_run):
    assert "cost" not in json.loads((augmented_run / "metrics.json").read_text())
    assert "Inference cost" not in (augmented_run / "best" / "README.md").read_text()


def test_lr_find(run_cli, env, tmp_path):
    out = tmp_path / "lr"
    result = run_cli(["lr-find", "task=sst2", *TINY_LSTM, *SLICE, f"output_dir={out}", "--steps", "60",
                      "--start-lr", "1e-5", "--end-lr", "10"], env=env)
    check_ok(result)
    curve = json.loads((out / "lr_find.json").read_text())
    assert 20 <= len(curve["lrs"]) <= 60 and curve["lrs"] == sorted(curve["lrs"])
    assert (out / "lr_find.png").stat().st_size > 5000
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("suggested_lr=")]
    assert line and (curve["suggestion"] is None or float(line[0].split("=")[1]) == pytest.approx(
        curve["suggestion"], rel=1e-2))


def _export_checked(run_cli, env, run: Path) -> float:
    result = run_cli(["export", run, "--format", "onnx"], env=env)
    check_ok(result)
    assert (run / "onnx" / "model.onnx").is_file() and (run / "onnx" / "tokenizer.json").is_file()
    diff = float(result.stdout.split("max abs diff")[1].split()[0])
    assert diff <= 1e-4
    return diff


def test_onnx_export_of_a_scratch_model(run_cli, env, lstm_run):
    _export_checked(run_cli, env, lstm_run)
    # the exported graph, run independently of nlptune, agrees with `nlptune predict` on new text
    import numpy as np
    import onnxruntime
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(lstm_run / "onnx")
    encoded = tokenizer(["a gripping , moving film", "dull"], padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(lstm_run / "onnx" / "model.onnx"))
    logits = session.run(["logits"], {"input_ids": encoded["input_ids"],
                                      "attention_mask": encoded["attention_mask"]})[0]
    result = run_cli(["predict", lstm_run, "a gripping , moving film"])
    check_ok(result)
    probabilities = json.loads(result.stdout.splitlines()[-1])["probabilities"]
    softmax = np.exp(logits[0]) / np.exp(logits[0]).sum()
    assert list(probabilities.values()) == pytest.approx(softmax.tolist(), abs=1e-4)


def test_a_pair_model_with_aligned_texts_predicts_and_exports(run_cli, env, aligned_pair_run, tmp_path):
    _export_checked(run_cli, env, aligned_pair_run)
    texts = tmp_path / "pairs.jsonl"
    texts.write_text('{"sentence1": "a man is playing a guitar", "sentence2": "a man plays the guitar"}\n'
                     '{"sentence1": "a cat sleeps", "sentence2": ""}\n')
    result = run_cli(["predict", aligned_pair_run, "--input", texts], env=env)
    check_ok(result)
    scores = [json.loads(line)["score"] for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(scores) == 2 and all(isinstance(score, float) for score in scores)


def test_onnx_export_of_a_pretrained_model(run_cli, env, pretrained_run):
    _export_checked(run_cli, env, pretrained_run)


def test_hf_export_names_the_folder(run_cli, pretrained_run, tmp_path):
    result = run_cli(["export", pretrained_run, "--format", "hf"])
    check_ok(result)
    assert str(pretrained_run / "best") in result.stdout.replace("\n", "")
    copy = tmp_path / "copy"
    check_ok(run_cli(["export", pretrained_run, "--format", "hf", "--output", copy]))
    assert (copy / "config.json").is_file() and (copy / "model.safetensors").is_file()
    # the exported folder alone predicts as its run does (in fp32: the folder does not say how it was trained)
    texts = ["a gripping, moving film", "utterly dull"]
    alone, of_run = (run_cli(["predict", folder, *texts, *flags])
                     for folder, flags in ((copy, []), (pretrained_run, ["--precision", "fp32"])))
    check_ok(alone)
    check_ok(of_run)
    assert [json.loads(line) for line in alone.stdout.splitlines()] == \
        [json.loads(line) for line in of_run.stdout.splitlines()]


def test_a_mean_pooled_model_evaluates_exports_and_says_how_to_load_it(run_cli, env, data_dir, mean_pooled_run,
                                                                      tmp_path):
    assert json.loads((mean_pooled_run / "best" / "config.json").read_text())["nlptune_pooling"] == "mean"
    rows = tmp_path / "validation-64.jsonl"  # the rows the run evaluated on (task.max_eval_samples=64)
    with open(data_dir / "sst2" / "validation.jsonl", encoding="utf-8") as source:
        rows.write_text("".join(line for line, _ in zip(source, range(64))), encoding="utf-8")
    result = run_cli(["eval", mean_pooled_run, "--file", rows], env=env)
    check_ok(result)
    best = json.loads((mean_pooled_run / "metrics.json").read_text())["best"]
    # the loaded model reads the mean again: the run's own best figures, not a first-token head's
    assert json.loads(result.stdout)["loss"] == pytest.approx(best["loss"], abs=1e-6)
    _export_checked(run_cli, env, mean_pooled_run)
    result = run_cli(["export", mean_pooled_run, "--format", "hf"])
    check_ok(result)
    assert "restore_pooling" in result.stdout.replace("\n", "")
    assert "restore_pooling" in (mean_pooled_run / "best" / "README.md").read_text()  # the model card says it too


def test_predict_reads_csv(run_cli, lstm_run, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('sentence,id\n"a gripping, moving film",1\nutterly dull,2\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    check_ok(run_cli(["predict", lstm_run, "--input", source, "--output", out]))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["sentence"] for r in rows] == ["a gripping, moving film", "utterly dull"]
    assert all(set(r["probabilities"]) == {"negative", "positive"} for r in rows)
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in rows)
