"""`LoadedRun.predict` and `LoadedRun.evaluate` on a run directory holding a tiny random BERT classifier (no
training): batches sorted by length give each text the prediction it gets alone, in the input order; the run's
precision and the model's mode."""
from __future__ import annotations

import json
import random

import pytest
import torch
import yaml

from nlptune.config.compose import load_run_config
from nlptune.data.batching import eval_order
from nlptune.inference.predict import LoadedRun
from nlptune.train.precision import Autocast, at_precision
from nlptune.train.rundir import save_best_model
from nlptune.utils.plain import plain_data

from conftest import TINY_WORDS

LABELS = ["negative", "neutral", "positive"]


def write_run(folder, tiny_pretrained, precision: str = "no"):
    """A finished run's directory as `nlptune train` leaves it for eval and predict: config.yaml and best/ (a
    3-class head of random weights on the tiny BERT, its tokenizer, nlptune_task.json)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run = load_run_config(["model=pretrained", f"model.name_or_path={tiny_pretrained}", "task.max_length=48",
                           "task.label_names=[negative,neutral,positive]", "task.metrics=[accuracy]",
                           f"trainer.mixed_precision={precision}", "trainer.eval_batch_size=5"])
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(plain_data(run.plain), sort_keys=False))
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_pretrained, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    info = {"task": "demo", "kind": "single_label", "text_fields": ["text"], "label_field": "label",
            "label_names": LABELS, "metrics": ["accuracy"], "main_metric": "accuracy", "max_length": 48,
            "model": "pretrained", "joint_pairs": True, "char_features": False, "tag_scheme": "iob2"}
    save_best_model(model, AutoTokenizer.from_pretrained(tiny_pretrained), folder / "best", pretrained=True,
                    task_info=info)
    return folder


@pytest.fixture(scope="module")
def loaded(tiny_pretrained, tmp_path_factory) -> LoadedRun:
    return LoadedRun(write_run(tmp_path_factory.mktemp("predict") / "run", tiny_pretrained))


def texts(count: int = 23, seed: int = 0) -> list[str]:
    """Texts of 1 to 30 words in a shuffled order of lengths (an empty one too)."""
    g = random.Random(seed)
    out = [" ".join(g.choice(TINY_WORDS) for _ in range(g.randint(1, 30))) for _ in range(count - 1)]
    return out + [""]


def test_sorted_batches_give_each_text_its_own_prediction_in_input_order(loaded):
    given = texts()
    lengths = [len(ids) for ids in loaded.tokenizer(given)["input_ids"]]
    assert eval_order(lengths) != list(range(len(given)))  # the sorted order is another one: the test can fail
    batched = loaded.predict([given], batch_size=4)
    alone = [loaded.predict([[text]], batch_size=1)[0] for text in given]  # no padding, no sorting
    assert len(batched) == len(given)
    assert [p["label"] for p in batched] == [p["label"] for p in alone]
    for got, expected in zip(batched, alone):
        assert set(got) == {"label", "score", "probabilities"}
        assert got["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-5)
        assert got["score"] == got["probabilities"][got["label"]]
    # and as the batches in input order (the earlier path) gave them
    with torch.no_grad():
        logits = torch.cat([loaded.model(**batch)["logits"] for batch in loaded.batches([given], batch_size=4)])
    unsorted = loaded.kind.describe(logits, LABELS)
    assert [p["label"] for p in batched] == [p["label"] for p in unsorted]
    assert [p["score"] for p in batched] == pytest.approx([p["score"] for p in unsorted], abs=1e-5)


def test_predict_default_batch_size_and_nothing_to_predict(loaded):
    given = texts(count=70, seed=1)  # more than one default batch
    assert [p["label"] for p in loaded.predict([given])] == [p["label"] for p in loaded.predict([given], 7)]
    assert loaded.predict([[]]) == []


def test_the_runs_precision_is_the_default_and_fp32_runs_the_model_itself(tiny_pretrained, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    bf16 = LoadedRun(write_run(tmp_path / "auto", tiny_pretrained, precision="auto"))
    assert bf16.precision == "bf16" and isinstance(bf16.model_at(), Autocast)
    assert bf16.model_at("fp32") is bf16.model
    assert LoadedRun(write_run(tmp_path / "fp16", tiny_pretrained, precision="fp16")).precision == "fp32"
    given = texts()
    forced = bf16.predict([given], precision="fp32")
    assert [p["label"] for p in forced] == [p["label"] for p in bf16.predict([given], precision="fp32", batch_size=1)]
    in_bf16 = bf16.predict([given])
    assert all(isinstance(p["score"], float) for p in in_bf16)
    assert [p["score"] for p in in_bf16] == pytest.approx([p["score"] for p in forced], abs=0.02)


class _Recorder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear, self.seen = torch.nn.Linear(3, 2), []

    def forward(self, x):
        self.seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return {"logits": self.linear(x), "count": torch.tensor([1])}


def test_autocast_runs_the_forward_pass_in_bf16_and_hands_float32_back():
    model = _Recorder()
    wrapped = at_precision(model, "bf16")
    out = wrapped(x=torch.ones(2, 3))
    assert model.seen == [(True, torch.bfloat16)] and not torch.is_autocast_enabled("cpu")
    assert out["logits"].dtype == torch.float32 and out["count"].dtype == torch.long
    assert at_precision(model, "fp32") is model


def test_evaluate_scores_the_demo_split_and_leaves_the_model_in_eval_mode(loaded):
    scores = loaded.evaluate()  # the demo task's validation split, generated offline
    assert set(scores) == {"accuracy", "loss"} and 0 <= scores["accuracy"] <= 1
    assert not loaded.model.training
    assert loaded.evaluate(batch_size=64, precision="fp32")["accuracy"] == pytest.approx(scores["accuracy"], abs=1e-9)
    json.dumps(scores)


def test_a_text_file_is_refused_for_a_model_that_reads_two_texts(tmp_path):
    from nlptune.config.errors import NlptuneError
    from nlptune.inference.predict import read_inputs

    path = tmp_path / "in.txt"
    path.write_text("a first text\na second\n")
    assert read_inputs(str(path), ["text"]) == [["a first text", "a second"]]
    with pytest.raises(NlptuneError, match="one text per line, but this model reads 2 texts a row"):
        read_inputs(str(path), ["sentence1", "sentence2"])


def test_several_texts_on_the_command_line_are_predicted_in_order():
    """`nlptune predict RUN "a" "b"` once refused a one-text model's second text; a pair model takes pairs."""
    from nlptune.commands.predict import _rows_of
    from nlptune.config.errors import NlptuneError

    assert _rows_of(["a", "b", "c"], ["text"]) == [["a", "b", "c"]]
    assert _rows_of(["a1", "b1", "a2", "b2"], ["sentence1", "sentence2"]) == [["a1", "a2"], ["b1", "b2"]]
    with pytest.raises(NlptuneError, match="reads 2 texts a row .* got 3 text"):
        _rows_of(["a", "b", "c"], ["sentence1", "sentence2"])
