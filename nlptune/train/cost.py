"""The inference cost of a run's best model, measured on this machine when the run ends (rank 0 only).

The figures (named as cost-aware sweeps name them, `nlptune.config.names.COST_FIGURES`):

- ``params``: the total parameter count (a tensor shared by two modules counted once);
- ``size_mb``: the bytes of the weight files in best/ (``*.safetensors``, every shard) / 1e6;
- ``latency_ms``: the median wall time of one example's prediction at batch 1, over the first validation rows;
- ``throughput``: examples per second at batch 32 over validation rows, batched by length like evaluation;

and what they were measured with: ``device``, ``threads`` (torch's intra-op threads: the run's), ``precision``
(the autocast dtype evaluation used, or fp32) and how many examples each timing covers. The top-level figures are
the CPU's, always; a run that trained on a GPU adds the same timings there as ``cost["cuda"]``.

A prediction is what evaluation runs: the model's forward pass on the inputs (`evaluation.forward`: labels and the
rows' bookkeeping stripped) and the kind's predictions from the logits (a CRF tagger's Viterbi decoding is part of
its cost). Tokenizing and padding are not timed. Word-level tasks (kind tokens) feed the model windows of
sentences: there an example is one validation window row.

The timings are wall-clock figures of this machine at this moment: they are reported apart from the metrics and
never enter a reproducibility check.
"""
from __future__ import annotations

import functools
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from nlptune.data.batching import eval_order
from nlptune.train.evaluation import forward
from nlptune.train.precision import AUTOCAST_DTYPES, autocast, cpu_precision


@dataclass(frozen=True)
class Limit:
    """A timing stops at whichever comes first: ``examples`` measured, or ``seconds`` of wall time spent."""

    examples: int
    seconds: float


# The measure must cost seconds, not minutes (it runs after every run, every sweep trial among them). A median over
# up to 100 single-example passes is stable to a few per cent on a quiet machine; 64 batches of 32 give a steady
# rate. The time budgets bound a large model on a slow CPU to about 2 + 5 s per device; a timing whose budget runs
# out early still covers at least one pass.
LATENCY = Limit(examples=100, seconds=2.0)
THROUGHPUT = Limit(examples=2048, seconds=5.0)
BATCH_SIZE = 32
# untimed passes first: the first calls pay one-time costs (allocator growth, oneDNN kernel choice, CUDA handles)
WARMUP_PASSES = 2


def weights_mb(directory: str | Path) -> float:
    """Size of the model's weight files in ``directory`` (best/): bytes of its ``*.safetensors`` / 1e6."""
    return round(sum(path.stat().st_size for path in Path(directory).glob("*.safetensors")) / 1e6, 3)


def parameter_count(model: torch.nn.Module) -> int:
    """Every parameter, trainable or frozen (``parameters()`` yields a shared one once)."""
    return sum(p.numel() for p in model.parameters())


def precisions(accelerator, requested: str) -> dict[str, str]:
    """The precision to measure with per device type: on the run's device, the autocast evaluation ran under there
    (Accelerate's, when it is native); on the CPU of a GPU run, what a CPU run of the same config evaluates with
    (``requested``: trainer.mixed_precision; bf16 autocast, or fp32: Accelerate runs fp16 in fp32 on a CPU)."""
    device = accelerator.device.type
    found = {device: accelerator.mixed_precision if accelerator.native_amp else "fp32"}
    if device != "cpu":
        found["cpu"] = cpu_precision(requested)
    return found


def _batches(dataset, collate, groups: list[list[int]], device: torch.device):
    for group in groups:
        batch = collate([dataset[i] for i in group])
        yield len(group), {name: value.to(device) for name, value in batch.items()}


def _predict(model, batch: dict, kind, decoding) -> None:
    logits, extras = forward(model, batch)
    kind.predictions(logits, mask=batch.get("attention_mask"), labels=batch.get("labels"), decoding=decoding, **extras)


def _timed_passes(model, batches, kind, device: torch.device, seconds: float,
                  decoding=None) -> list[tuple[int, float]]:
    """(examples, seconds) of each timed pass over ``batches``, after `WARMUP_PASSES` untimed passes of the first
    one; stops when the batches end or ``seconds`` of wall time (building batches included) have passed."""
    sync = functools.partial(torch.cuda.synchronize, device) if device.type == "cuda" else (lambda: None)
    timings, deadline = [], None
    for size, batch in batches:
        if deadline is None:
            for _ in range(WARMUP_PASSES):
                _predict(model, batch, kind, decoding)
            sync()
            deadline = time.perf_counter() + seconds
        start = time.perf_counter()
        _predict(model, batch, kind, decoding)
        sync()  # a GPU runs asynchronously: the pass is over when its kernels are
        timings.append((size, time.perf_counter() - start))
        if time.perf_counter() >= deadline:
            break
    return timings


def _throughput_groups(dataset, limit: int) -> list[list[int]]:
    """Batches of the first ``limit`` validation rows (a sample of the split's lengths), sorted by length as
    evaluation batches them, in a fixed shuffled order: a timing cut short by its budget still sees short and long
    batches alike."""
    sample = list(range(min(limit, len(dataset))))
    ordered = [sample[i] for i in eval_order([dataset.lengths[i] for i in sample])]
    groups = [ordered[i: i + BATCH_SIZE] for i in range(0, len(ordered), BATCH_SIZE)]
    random.Random(0).shuffle(groups)  # its own generator: the global random state is left alone
    return groups


def measure_device(model, dataset, collate, kind, device: str | torch.device, precision: str,
                   latency: Limit = LATENCY, throughput: Limit = THROUGHPUT, decoding=None) -> dict:
    """Latency at batch 1 and throughput at batch `BATCH_SIZE` of ``model`` (in eval mode, on ``device``) on
    ``dataset`` (the validation `EncodedDataset`, with its ``lengths``) batched by ``collate``, under the autocast of
    ``precision`` (bf16, fp16; anything else: fp32); each timing bounded by its `Limit`. ``decoding``: what the
    kind's predictions decode under (`Kind.decoding`), as evaluation does."""
    device = torch.device(device)
    singles = [[i] for i in range(min(latency.examples, len(dataset)))]
    with torch.inference_mode(), autocast(device.type, precision):
        single = _timed_passes(model, _batches(dataset, collate, singles, device), kind, device, latency.seconds,
                               decoding)
        batched = _timed_passes(model, _batches(dataset, collate, _throughput_groups(dataset, throughput.examples),
                                                device), kind, device, throughput.seconds, decoding)
    examples = sum(size for size, _ in batched)
    return {"latency_ms": round(statistics.median(s for _, s in single) * 1000, 4),
            "throughput": round(examples / max(sum(s for _, s in batched), 1e-9), 2),
            "device": device.type, "precision": precision if precision in AUTOCAST_DTYPES else "fp32",
            "latency_examples": len(single), "throughput_examples": examples}


def measure_cost(model, *, weights_dir: str | Path, dataset, collate, kind, precisions: dict[str, str],
                 decoding=None) -> dict:
    """The cost section of metrics.json for ``model`` (the best weights, already saved in ``weights_dir``): params,
    size_mb, and the CPU's timings with the thread count; a model on a GPU is timed there first (``cuda``), then on
    the CPU. ``precisions``: per device type (`precisions`). The model is left on its device, in its mode."""
    home = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        gpu = measure_device(model, dataset, collate, kind, home, precisions[home.type], decoding=decoding) \
            if home.type == "cuda" else None
        # a model compiled for the GPU (trainer.compile) runs eagerly on the CPU: compiling it again for the CPU
        # would take longer than the measure's whole budget
        eager = getattr(model, "_orig_mod", model) if home.type != "cpu" else model
        cpu = measure_device(eager.to("cpu"), dataset, collate, kind, "cpu", precisions["cpu"], decoding=decoding)
    finally:
        model.to(home)
        model.train(was_training)
    cost = {"params": parameter_count(model), "size_mb": weights_mb(weights_dir),
            "latency_ms": cpu.pop("latency_ms"), "throughput": cpu.pop("throughput"), "device": cpu.pop("device"),
            "threads": torch.get_num_threads(), **cpu}
    if gpu is not None:
        cost["cuda"] = gpu
    return cost


def probe(accelerator, trainer, dataset, collate, kind, decoding=None):
    """``measure(model, weights_dir=...) -> the cost section`` for a run's end (`results.write_results`), measured
    with the run's precision and ``decoding`` (`Kind.decoding`); None when ``trainer.measure_cost`` is off."""
    if not trainer.measure_cost:
        return None
    return functools.partial(measure_cost, dataset=dataset, collate=collate, kind=kind,
                             precisions=precisions(accelerator, trainer.mixed_precision), decoding=decoding)
