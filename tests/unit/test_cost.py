"""Unit tests for nlptune.train.cost: the inference cost of a tiny model on a tiny validation set (CPU, a few
seconds in all)."""
from __future__ import annotations

import random
import time
from types import SimpleNamespace

import pytest
import torch

from nlptune.config.names import COST_FIGURES
from nlptune.data.batching import Collator, EncodedDataset
from nlptune.kinds import get_kind
from nlptune.models import build_model, save_scratch_model
from nlptune.train import cost

VOCAB, PAD = 40, 0


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a busy machine, threads that wait for each other make a tiny model's pass 100x
    slower, and the default budgets would then cut the timings short."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def dataset(rows: int = 80, seed: int = 0, per_token: bool = False) -> EncodedDataset:
    """``rows`` random texts of 1..12 tokens with a class each (``per_token``: a tag per token, in windows)."""
    g = random.Random(seed)
    ids = [[g.randrange(1, VOCAB) for _ in range(g.randint(1, 12))] for _ in range(rows)]
    columns = {"input_ids": ids, "length": [len(r) for r in ids]}
    if not per_token:
        return EncodedDataset(columns, [g.randrange(2) for _ in ids])
    columns.update(labels=[[g.randrange(3) for _ in r] for r in ids], row_id=list(range(rows)),
                   word_offset=[0] * rows, owned_from=[0] * rows, owned_to=[len(r) for r in ids])
    return EncodedDataset(columns)


def classifier(name: str = "lstm"):
    torch.manual_seed(0)
    return build_model(name, vocab_size=VOCAB, pad_token_id=PAD, num_labels=2, pair=False, embedding_dim=8,
                       hidden_size=8)


def measure(model, data, tmp_path, kind="single_label", precision="fp32"):
    save_scratch_model(model, tmp_path)
    return cost.measure_cost(model, weights_dir=tmp_path, dataset=data, collate=Collator(PAD), kind=get_kind(kind),
                             precisions={"cpu": precision})


def test_the_cost_section_has_every_figure_with_what_it_was_measured_with(tmp_path):
    model, data = classifier(), dataset(rows=80)
    found = measure(model, data, tmp_path)
    assert set(COST_FIGURES) <= set(found)
    assert set(found) == {*COST_FIGURES, "device", "threads", "precision", "latency_examples", "throughput_examples"}
    assert found["params"] == sum(p.numel() for p in model.parameters()) and isinstance(found["params"], int)
    assert found["size_mb"] == round((tmp_path / "model.safetensors").stat().st_size / 1e6, 3) > 0
    assert isinstance(found["latency_ms"], float) and found["latency_ms"] > 0
    assert isinstance(found["throughput"], float) and found["throughput"] > 0
    assert (found["device"], found["precision"], found["threads"]) == ("cpu", "fp32", 1)
    assert found["latency_examples"] == 80 and found["throughput_examples"] == 80  # under both caps: every row


def test_counts_are_capped(tmp_path):
    data = dataset(rows=80)
    found = cost.measure_device(classifier("bag").eval(), data, Collator(PAD), get_kind("single_label"), "cpu",
                                "fp32", latency=cost.Limit(5, 60.0), throughput=cost.Limit(70, 60.0))
    assert found["latency_examples"] == 5 and found["throughput_examples"] == 70  # 32 + 32 + 6


class _Slow(torch.nn.Module):
    """A model whose every forward pass takes at least ``seconds``; it records the mode it ran in."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.weight, self.seen = seconds, torch.nn.Parameter(torch.ones(2)), []

    def forward(self, input_ids, attention_mask=None):
        time.sleep(self.seconds)
        self.seen.append({"training": self.training, "inference_mode": torch.is_inference_mode_enabled(),
                          "autocast": torch.is_autocast_enabled("cpu"), "dtype": torch.get_autocast_dtype("cpu"),
                          "inputs": {"input_ids", "attention_mask"} if attention_mask is not None else {"input_ids"}})
        return {"logits": input_ids[:, :1].float() * self.weight}


def test_the_time_budget_bounds_each_timing():
    model, data = _Slow(0.02), dataset(rows=80)
    started = time.perf_counter()
    found = cost.measure_device(model, data, Collator(PAD), get_kind("single_label"), "cpu", "fp32",
                                latency=cost.Limit(100, 0.1), throughput=cost.Limit(2048, 0.1))
    # each pass sleeps 0.02 s: at most 0.1 / 0.02 + 1 passes fit before the budget stops a timing
    assert 1 <= found["latency_examples"] <= 6
    assert 1 <= found["throughput_examples"] <= 6 * cost.BATCH_SIZE
    assert time.perf_counter() - started < 2.0  # the budgets plus the warm-up passes
    assert found["latency_ms"] >= 20


def test_a_spent_budget_still_times_one_pass():
    found = cost.measure_device(classifier("bag").eval(), dataset(rows=80), Collator(PAD), get_kind("single_label"),
                                "cpu", "fp32", latency=cost.Limit(100, 0.0), throughput=cost.Limit(2048, 0.0))
    assert found["latency_examples"] == 1 and found["throughput_examples"] == cost.BATCH_SIZE


def test_passes_run_as_evaluation_does_and_the_model_is_left_as_it_was(tmp_path):
    model = _Slow(0.0)
    model.builder_args = None  # not a registry model: its weights are written by hand
    from safetensors.torch import save_model

    save_model(model, str(tmp_path / "model.safetensors"))
    model.train()
    torch_state, python_state = torch.random.get_rng_state(), random.getstate()
    found = cost.measure_cost(model, weights_dir=tmp_path, dataset=dataset(rows=10), collate=Collator(PAD),
                              kind=get_kind("single_label"), precisions={"cpu": "bf16"})
    assert found["precision"] == "bf16"
    assert all(not s["training"] and s["inference_mode"] for s in model.seen)
    assert all(s["autocast"] and s["dtype"] == torch.bfloat16 for s in model.seen)
    assert all(s["inputs"] == {"input_ids", "attention_mask"} for s in model.seen)  # no labels, no row fields
    # warm-up passes, then every row at batch 1 and every batch of 32
    assert len(model.seen) == 2 + 10 + 2 + 1
    assert model.training and next(model.parameters()).device.type == "cpu"
    assert torch.equal(torch.random.get_rng_state(), torch_state) and random.getstate() == python_state


def test_a_crf_tagger_on_windows_is_timed_with_its_decoding(tmp_path):
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=VOCAB, pad_token_id=PAD, num_labels=3, pair=False, embedding_dim=8,
                        hidden_size=8, per_token=True, crf=True)
    found = measure(model, dataset(rows=40, per_token=True), tmp_path, kind="tokens")
    assert found["latency_examples"] == 40 and found["throughput_examples"] == 40 and found["latency_ms"] > 0


def test_throughput_batches_are_length_sorted_and_cover_the_sample():
    data = dataset(rows=100)
    groups = cost._throughput_groups(data, 70)
    assert sorted(i for g in groups for i in g) == list(range(70))
    assert sorted(len(g) for g in groups) == [6, 32, 32]
    for group in groups:
        lengths = [data.lengths[i] for i in group]
        assert lengths == sorted(lengths, reverse=True)
    assert groups == cost._throughput_groups(data, 70)  # a fixed order


@pytest.mark.parametrize("device, mixed, native, requested, expected", [
    ("cpu", "no", False, "no", {"cpu": "fp32"}),
    ("cpu", "bf16", True, "bf16", {"cpu": "bf16"}),
    ("cpu", "fp16", False, "fp16", {"cpu": "fp32"}),  # Accelerate runs fp16 on a CPU without autocast
    ("cuda", "fp16", True, "fp16", {"cuda": "fp16", "cpu": "fp32"}),
    ("cuda", "bf16", True, "bf16", {"cuda": "bf16", "cpu": "bf16"}),
    ("cuda", "no", False, "no", {"cuda": "fp32", "cpu": "fp32"}),
])
def test_precisions_follow_what_evaluation_ran_with(device, mixed, native, requested, expected):
    accelerator = SimpleNamespace(device=torch.device(device), mixed_precision=mixed, native_amp=native)
    assert cost.precisions(accelerator, requested) == expected


def test_probe_is_off_with_measure_cost_false():
    accelerator = SimpleNamespace(device=torch.device("cpu"), mixed_precision="no", native_amp=False)
    trainer = SimpleNamespace(measure_cost=False, mixed_precision="no")
    assert cost.probe(accelerator, trainer, dataset(), Collator(PAD), get_kind("single_label")) is None
    trainer = SimpleNamespace(measure_cost=True, mixed_precision="no")
    assert callable(cost.probe(accelerator, trainer, dataset(), Collator(PAD), get_kind("single_label")))
