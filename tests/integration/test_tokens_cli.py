"""Per-word tasks (task.kind=tokens) through the real CLI: every scratch tagger and a tiny random BERT train on
64-sentence slices of wikiann_en (jsonl) and wnut17 (CoNLL columns), then eval, predict, export to ONNX and an
exact resume after SIGKILL, as a user would run them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from test_cli_train import check_ok  # noqa: E402
from test_resume import assert_same_run, kill_at  # noqa: E402

from nlptune.kinds.tags import repair  # noqa: E402

from conftest import child_env  # noqa: E402

SLICE = ["task.max_train_samples=64", "task.max_eval_samples=64", "trainer.max_epochs=2",
         "model.embedding_dim=16", "model.hidden_size=16"]
TAGGERS = {"lstm": ["model.char_embedding=cnn", "model.crf=true", "model.char_dim=8"],
           "gru": ["model.char_embedding=lstm", "model.char_dim=8"],
           "cnn": ["model.kernel_sizes=[3]", "model.num_filters=16", "model.crf=true"],
           "transformer": ["model.num_heads=2", "model.ff_size=32", "model.max_positions=128"]}
# every tagger on wikiann_en (jsonl); the CoNLL-column reader of wnut17 once, under the tiny BERT (its windows of
# word pieces are the other path from words to model inputs)
RUNS = [("wikiann_en", name) for name in TAGGERS] + [("wnut17", "pretrained")]


@pytest.fixture(scope="module")
def train_once(run_cli, data_dir, tmp_path_factory, request):
    done = {}

    def train(task: str, model: str) -> Path:
        if (task, model) not in done:
            out = tmp_path_factory.mktemp(f"{task}-{model}") / "run"
            extra = [f"model.name_or_path={request.getfixturevalue('tiny_pretrained')}", "optimizer.lr=1e-3",
                     "task.max_length=12"] if model == "pretrained" else [*SLICE[3:], *TAGGERS[model]]
            result = run_cli(["--quiet", "train", f"task={task}", f"model={model}", *SLICE[:3], *extra,
                              f"output_dir={out}"], env={"NLPTUNE_DATA_DIR": str(data_dir)})
            check_ok(result)
            done[task, model] = out
        return done[task, model]

    return train


@pytest.fixture(params=RUNS, ids=[f"{t}-{m}" for t, m in RUNS])
def run(request, train_once) -> Path:
    return train_once(*request.param)


def test_metrics_are_entity_scores_of_every_word(run):
    summary = json.loads((run / "metrics.json").read_text())
    best = summary["best"]
    assert summary["main_metric"] == "f1"
    assert {"f1", "precision", "recall", "accuracy"} <= set(best)
    assert all(0.0 <= best[k] <= 1.0 for k in ("f1", "precision", "recall", "accuracy"))
    assert any(key.startswith("f1_") for key in best)  # the F1 of each entity type
    assert (run / "plots" / "entity_f1.png").is_file() and (run / "plots" / "entity_confusion.png").is_file()
    task = json.loads((run / "best" / "nlptune_task.json").read_text())
    assert task["kind"] == "tokens" and task["label_names"][0] == "O" and task["constrained_decoding"] is True
    # the inference cost is timed per validation row, i.e. per window of a sentence (a CRF's decoding included)
    windows = json.loads((run / "manifest.json").read_text())["validation_rows"]
    cost = summary["cost"]
    assert cost["latency_ms"] > 0 and cost["throughput"] > 0
    assert (cost["latency_examples"], cost["throughput_examples"]) == (min(100, windows), min(2048, windows))


def _first_sentences(task: str, data_dir: Path, out: Path, count: int = 64) -> Path:
    """The validation sentences the run scored (task.max_eval_samples=64), as a file of the task's format."""
    if task == "wnut17":
        blocks = (data_dir / task / "validation.conll").read_text(encoding="utf-8").split("\n\n")
        path = out / "validation.conll"
        path.write_text("\n\n".join(blocks[:count]) + "\n", encoding="utf-8")
    else:
        lines = (data_dir / task / "validation.jsonl").read_text(encoding="utf-8").splitlines()
        path = out / "validation.jsonl"
        path.write_text("\n".join(lines[:count]) + "\n", encoding="utf-8")
    return path


def test_eval_gives_the_training_runs_best_scores(run, run_cli, data_dir, tmp_path):
    task = json.loads((run / "best" / "nlptune_task.json").read_text())["task"]
    result = run_cli(["eval", run, "--file", _first_sentences(task, data_dir, tmp_path)],
                     env={"NLPTUNE_DATA_DIR": str(data_dir)})
    check_ok(result)
    scores = json.loads(result.stdout)
    best = json.loads((run / "metrics.json").read_text())["best"]
    assert scores["f1"] == pytest.approx(best["f1"], abs=1e-6)
    assert scores["accuracy"] == pytest.approx(best["accuracy"], abs=1e-6)
    # --decoding each-word: every word's most probable tag, whatever the run decoded with
    result = run_cli(["eval", run, "--file", _first_sentences(task, data_dir, tmp_path), "--decoding", "each-word"],
                     env={"NLPTUNE_DATA_DIR": str(data_dir)})
    check_ok(result)
    assert 0.0 <= json.loads(result.stdout)["f1"] <= 1.0


def test_a_tagger_without_a_crf_decodes_as_asked(run):
    from nlptune.inference.run_reading import load_run

    loaded = load_run(run)  # conf/task's tokens tasks decode under the tag scheme (a CRF tagger under its own)
    size = len(loaded.info["label_names"]) + 2
    assert loaded.decoding is not None and loaded.decoding.shape == (size, size)
    loaded.decode_tags(False)
    assert loaded.decoding is None
    loaded.decode_tags(None)
    assert loaded.decoding is not None


def test_predict_a_text_and_a_file(run, run_cli, tmp_path):
    result = run_cli(["predict", run, "Angela Merkel visited Paris and the U.N. in New York."])
    check_ok(result)
    (prediction,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert prediction["tokens"][:4] == ["Angela", "Merkel", "visited", "Paris"]
    assert len(prediction["tags"]) == len(prediction["tokens"])
    assert not repair(prediction["tags"], "iob2")[1]  # CRF or not, decoded under the tag scheme: nothing to repair
    text = "Angela Merkel visited Paris and the U.N. in New York."
    for entity in prediction["entities"]:  # character spans into the text
        assert text[entity["start"]: entity["end"]] == entity["text"]
    rows = tmp_path / "in.jsonl"
    long_sentence = ["word"] * 300 + ["Paris"]  # far longer than task.max_length: windows, every word tagged
    rows.write_text(json.dumps({"tokens": ["Paris", "is", "big"]}) + "\n" + json.dumps({"tokens": long_sentence})
                    + "\n" + json.dumps({"tokens": "A text, split here."}) + "\n")
    result = run_cli(["predict", run, "--input", rows, "--output", tmp_path / "out.jsonl"])
    check_ok(result)
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [len(row["tags"]) for row in out] == [3, 301, 6]  # "A text , split here ."
    assert not any(repair(row["tags"], "iob2")[1] for row in out)


def test_onnx_export_matches_pytorch(run, run_cli, data_dir):
    result = run_cli(["export", run, "--format", "onnx"], env={"NLPTUNE_DATA_DIR": str(data_dir)}, timeout=300)
    config = yaml.safe_load((run / "config.yaml").read_text())["model"]
    check_ok(result)  # the byte BiLSTM (char_embedding=lstm) too: exported unpacked, checked against the packed run
    assert "graph(" not in result.stdout + result.stderr  # a failed exporter's IR dump never reaches the user
    assert (run / "onnx" / "model.onnx").is_file()
    crf = bool(config.get("crf"))
    assert (run / "onnx" / "crf_transitions.json").is_file() == crf  # what Viterbi decoding of the logits needs
    # a tagger without a CRF decodes under the tag scheme (conf/task sets task.constrained_decoding): its ban table
    assert (run / "onnx" / "tag_transitions.json").is_file() == (not crf)


@pytest.mark.parametrize("model", ["lstm", "gru", "pretrained"])
def test_killed_tagger_resumes_exactly(model, run_cli, data_dir, cache_dir, tmp_path, request):
    """A tagger with each part that holds state or draws random numbers of its own (lstm: character CNN, CRF and
    dropout; gru: the character BiLSTM) and a tiny BERT, killed after its step-4 checkpoint and resumed, ends bit
    for bit where an uninterrupted run ends. (The CNN and transformer taggers add no such part: their resume is
    the one path these share, and every tagger trains, evaluates and exports above.)"""
    extra = [f"model.name_or_path={request.getfixturevalue('tiny_pretrained')}", "task.max_length=12"] \
        if model == "pretrained" else [*SLICE[3:], *TAGGERS[model], "model.dropout=0.3"]
    args = ["task=wnut17", f"model={model}", *SLICE[:3], *extra, "trainer.batch_size=8", "trainer.save_every=2",
            "trainer.keep_last=100", "trainer.log_every=1"]
    env = {"NLPTUNE_DATA_DIR": str(data_dir)}
    check_ok(run_cli(["--quiet", "train", *args, f"output_dir={tmp_path / 'reference'}"], env=env))
    run = tmp_path / "killed"
    kill_at("after_save:4", [*args, f"output_dir={run}"], child_env(cache_dir, env), tmp_path / "kill.log")
    check_ok(run_cli(["--quiet", "train", *args, f"output_dir={run}", "resume=auto"], env=env))
    assert_same_run(run, tmp_path / "reference")
