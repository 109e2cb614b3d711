"""Learning-rate range test (Smith, 2017; fastai's LR finder): train for a few hundred steps while the
learning rate grows exponentially, record the loss, and suggest the lr where the loss falls fastest.

The loss is smoothed with a bias-corrected exponential moving average (beta 0.98, as in fastai); the test
stops once the smoothed loss exceeds 4x its minimum (divergence). The suggestion is the lr of the steepest
descent of the smoothed loss against log(lr), searched between the first `skip_start` steps and the minimum
of the smoothed loss, i.e. before divergence. Nothing is saved but the curve (json) and its plot: the
model trained here is thrown away.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nlptune.config.errors import NlptuneError
from nlptune.config.schema import RunConfig
from nlptune.utils.files import atomic_write_text, ensure_dir


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float | None  # steepest descent of the smoothed loss
    min_loss_lr: float  # where the smoothed loss is lowest (too high to train with; a tenth of it is a rule of thumb)
    diverged: bool
    output_dir: str


def lr_schedule(start_lr: float, end_lr: float, steps: int) -> np.ndarray:
    """``steps`` learning rates growing exponentially from ``start_lr`` to ``end_lr``."""
    return start_lr * (end_lr / start_lr) ** (np.arange(steps) / max(steps - 1, 1))


def smooth(losses: list[float], beta: float = 0.98) -> list[float]:
    """Bias-corrected exponential moving average (the first values are not pulled towards 0)."""
    average, out = 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta ** (i + 1)))
    return out


def suggest(lrs, smoothed, skip_start: int = 10) -> float | None:
    """The lr of the steepest descent of ``smoothed`` against log10(lr), before the loss minimum.

    None when the curve has too few points before its minimum (widen the range or add steps).
    """
    y = np.asarray(smoothed, dtype=float)
    if not np.isfinite(y).any():
        return None
    end = int(np.nanargmin(np.where(np.isfinite(y), y, np.nan))) + 1
    start = skip_start  # the first smoothed values rest on very few losses
    if end - start < 3:
        return None
    x = np.log10(np.asarray(lrs[start:end], dtype=float))
    slope = np.gradient(y[start:end], x)
    return float(lrs[start + int(np.argmin(slope))])


def _cycle(loader, sampler):
    """Batches forever: a few hundred steps may be more than one epoch of a small training set."""
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _setup(config: RunConfig):
    from nlptune.data import prepare_data
    from nlptune.models import is_pretrained
    from nlptune.train.launch import make_accelerator
    from nlptune.train.optim import build_optimizer
    from nlptune.train.setup import build_task_model, loss_settings, make_loaders
    from nlptune.utils.seeding import seed_everything

    accelerator = make_accelerator(config.trainer)
    if accelerator.num_processes > 1:
        raise NlptuneError("lr-find runs in one process; start it without torchrun / accelerate launch")
    seed_everything(config.seed)
    data = prepare_data(config, pretrained=is_pretrained(config.model.name))
    seed_everything(config.seed)
    model = build_task_model(config, data)
    loader, _, sampler = make_loaders(data, config, data.tokenizer.pad_token_id)  # the training loader, as trained
    optimizer = build_optimizer(model, config.optimizer, accelerator.device)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    return accelerator, model, optimizer, loader, sampler, loss_settings(config, data)


def lr_range_test(config: RunConfig, *, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 300,
                  beta: float = 0.98, diverge: float = 4.0, output_dir: str | Path | None = None) -> LRFindResult:
    """Run the range test for ``config`` (its task, model, optimizer, batch size) and write the curve + plot."""
    from nlptune.train import plots
    from nlptune.kinds import get_kind
    from nlptune.train.evaluation import logits_and_loss
    from nlptune.utils.console import quiet_libraries

    # written so that NaN fails too: every comparison with NaN is false
    if not (0 < start_lr < end_lr and math.isfinite(end_lr)):
        raise NlptuneError(f"need 0 < --start-lr < --end-lr, both finite, got {start_lr:g} and {end_lr:g}")
    if not 0 <= beta < 1:  # the EMA's bias correction divides by 1 - beta**n: 0 at beta 1, and at -1 for even n
        raise NlptuneError(f"--smoothing {beta:g} is not in [0, 1): it is the weight of the past in the loss's "
                           "moving average -> use e.g. 0.98 (the default), or 0 for no smoothing")
    if steps < 20:
        raise NlptuneError(f"--steps {steps} is too few for a range test; use 100 or more")
    quiet_libraries()
    accelerator, model, optimizer, loader, sampler, settings = _setup(config)  # the loss as trained
    kind = get_kind(config.task.kind)
    schedule = lr_schedule(start_lr, end_lr, steps)
    lrs, losses, diverged, average, best = [], [], False, 0.0, math.inf
    model.train()
    for lr, batch in zip(schedule, _cycle(loader, sampler)):
        for group in optimizer.param_groups:
            group["lr"] = float(lr) * group.get("lr_scale", 1.0)
        loss = logits_and_loss(model, batch, kind, settings)[1]
        accelerator.backward(loss)
        if config.trainer.max_grad_norm > 0:
            accelerator.clip_grad_norm_(model.parameters(), config.trainer.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        lrs.append(float(lr))
        losses.append(float(loss.detach()))
        average = beta * average + (1 - beta) * losses[-1]  # as `smooth`, one step at a time
        current = average / (1 - beta ** len(losses))
        best = min(best, current)
        if not math.isfinite(current) or (len(losses) > 10 and current > diverge * best):
            diverged = True
            break
    smoothed = smooth(losses, beta)
    finite = [s if math.isfinite(s) else float("inf") for s in smoothed]
    from nlptune.train.rundir import new_directory

    # a default folder is made now, under the next free name when another lr-find started in the same second
    folder = Path(output_dir) if output_dir else new_directory(
        Path("runs") / f"{config.task.name}-{config.model.name}" / f"lr-find-{time.strftime('%Y%m%d-%H%M%S')}")
    result = LRFindResult(lrs=lrs, losses=losses, smoothed=smoothed, suggestion=suggest(lrs, smoothed),
                          min_loss_lr=lrs[int(np.argmin(finite))], diverged=diverged, output_dir=str(folder))
    ensure_dir(folder, "(the lr-find folder)")
    atomic_write_text(folder / "lr_find.json", json.dumps(asdict(result), indent=1) + "\n")  # never via a link
    plots.plot_lr_find(lrs, losses, smoothed, result.suggestion, folder / "lr_find.png")
    del model, optimizer, loader
    accelerator.free_memory()
    return result
