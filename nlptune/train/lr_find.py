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
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nlptune.config.errors import ConfigError, ConfigIssue, NlptuneError
from nlptune.config.schema import RunConfig
from nlptune.utils.files import atomic_write_text, ensure_dir

MIN_STEPS = 20  # `suggest` skips the first 10 smoothed losses and needs a few before the minimum


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


LR_FIND_FILES = ("lr_find.json", "lr_find.png")  # what lr-find writes: an earlier test's are replaced


def check_output_dir(folder: str | Path) -> None:
    """Refuse an lr-find ``output_dir`` nlptune must not write its curve and plot into, before the test runs: a
    link (or one inside), a run directory or a folder inside one or inside a saved model (the rule `compare
    --output` follows, `rundir.refuse_run_contents`), a file, or a folder holding anything but an earlier
    lr-find's files (and its lock): a fresh run never writes over a folder it did not make, as `nlptune train`
    never writes over an earlier run."""
    from nlptune.train.rundir import refuse_run_contents
    from nlptune.utils.files import refuse_links_in
    from nlptune.utils.lock import LOCK_FILE
    from nlptune.utils.text import listed

    folder = Path(folder)
    fix = ("leave output_dir unset (a new runs/<task>-<model>/lr-find-<time>/ folder is made) or give a new or empty "
           "folder outside run directories")
    refuse_links_in(folder, "(output_dir, the lr-find folder)")
    refuse_run_contents(folder, "(output_dir, the lr-find folder)", fix=fix)
    if folder.exists() and not folder.is_dir():
        raise NlptuneError(f"output_dir {folder} is a file, not a folder -> {fix}")
    own = (*LR_FIND_FILES, LOCK_FILE)
    # an interrupted atomic write of one of them leaves a temporary ".lr_find.json.<pid>-<hex>.tmp": its own too
    foreign = sorted(name for name in os.listdir(folder) if name not in own and not (
        name.startswith(tuple(f".{n}." for n in own)) and name.endswith(".tmp"))) if folder.is_dir() else []
    if foreign:
        raise NlptuneError(f"output_dir {folder} already holds files lr-find did not write ({listed(foreign, 3)}); "
                           f"its curve and plot would be mixed in with them -> {fix}")


def settings_issues(start_lr: float, end_lr: float, steps: int, beta: float) -> list[ConfigIssue]:
    """Every problem with the range-test settings (each one the test cannot run with), all at once."""
    issues = []
    # written so that NaN fails too: every comparison with NaN is false
    if not (0 < start_lr < end_lr and math.isfinite(end_lr)):
        issues.append(ConfigIssue("--start-lr/--end-lr", f"need 0 < --start-lr < --end-lr, both finite, got "
                                  f"{start_lr:g} and {end_lr:g}", "e.g. --start-lr 1e-7 --end-lr 10 (the defaults)"))
    if not 0 <= beta < 1:  # the EMA's bias correction divides by 1 - beta**n: 0 at beta 1, and at -1 for even n
        issues.append(ConfigIssue("--smoothing", f"--smoothing {beta:g} is not in [0, 1): it is the weight of the "
                                  "past in the loss's moving average", "use e.g. 0.98 (the default), or 0 for no "
                                  "smoothing"))
    if steps < MIN_STEPS:
        issues.append(ConfigIssue("--steps", f"--steps {steps} is too few for a range test: at least {MIN_STEPS} "
                                  "are needed, 100 or more recommended", "leave it out for the default, 300"))
    return issues


def check_settings(start_lr: float, end_lr: float, steps: int, beta: float) -> None:
    """Refuse range-test settings it cannot run with, before anything is loaded."""
    issues = settings_issues(start_lr, end_lr, steps, beta)
    if issues:
        raise ConfigError(issues)


def lr_range_test(config: RunConfig, *, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 300,
                  beta: float = 0.98, diverge: float = 4.0, output_dir: str | Path | None = None) -> LRFindResult:
    """Run the range test for ``config`` (its task, model, optimizer, batch size) and write the curve + plot into
    ``output_dir`` (checked first, `check_output_dir`, and held locked during the test), else into a new
    ``runs/<task>-<model>/lr-find-<time>/``."""
    from nlptune.utils.lock import claim_folder

    check_settings(start_lr, end_lr, steps, beta)
    if not output_dir:
        lrs, losses, diverged = _range_test(config, lr_schedule(start_lr, end_lr, steps), beta, diverge)
        # made now, under the next free name when another lr-find started in the same second
        from nlptune.train.rundir import new_directory

        folder = new_directory(Path("runs") / f"{config.task.name}-{config.model.name}"
                               / f"lr-find-{time.strftime('%Y%m%d-%H%M%S')}")
        return _write(folder, lrs, losses, beta, diverged)
    check_output_dir(output_dir)
    with claim_folder(output_dir, "lr-find") as folder:  # one lr-find at a time writes it; no link planted meanwhile
        lrs, losses, diverged = _range_test(config, lr_schedule(start_lr, end_lr, steps), beta, diverge)
        return _write(folder, lrs, losses, beta, diverged)


def _range_test(config: RunConfig, schedule: np.ndarray, beta: float, diverge: float):
    """``(lrs, losses, diverged)``: one training step per lr of ``schedule``, stopped once the smoothed loss
    diverges (over ``diverge`` times its minimum, or not finite). The model is thrown away."""
    from nlptune.kinds import get_kind
    from nlptune.train.evaluation import logits_and_loss
    from nlptune.utils.console import quiet_libraries

    quiet_libraries()
    accelerator, model, optimizer, loader, sampler, settings = _setup(config)  # the loss as trained
    kind = get_kind(config.task.kind)
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
    del model, optimizer, loader
    accelerator.free_memory()
    return lrs, losses, diverged


def _write(folder: Path, lrs: list[float], losses: list[float], beta: float, diverged: bool) -> LRFindResult:
    """The result, its curve (lr_find.json) and plot (lr_find.png) written into ``folder``, never through a link."""
    from nlptune.train import plots

    smoothed = smooth(losses, beta)
    finite = [s if math.isfinite(s) else float("inf") for s in smoothed]
    result = LRFindResult(lrs=lrs, losses=losses, smoothed=smoothed, suggestion=suggest(lrs, smoothed),
                          min_loss_lr=lrs[int(np.argmin(finite))], diverged=diverged, output_dir=str(folder))
    ensure_dir(folder, "(the lr-find folder)")
    atomic_write_text(folder / "lr_find.json", json.dumps(asdict(result), indent=1) + "\n")
    plots.plot_lr_find(lrs, losses, smoothed, result.suggestion, folder / "lr_find.png")
    return result
