"""One trial: compose its config (the user's overrides + the sampled values), train it with the one
training loop (in this process, or under torchrun when a trial spans several processes), report to the
pruner at every evaluation, and turn every way a run can go wrong into a FAIL with its reason.
"""
from __future__ import annotations

import gc
import json
import math
import os
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
import optuna

from nlptune.config.names import COST_FIGURES
from nlptune.tuning.folds import data_overrides
from nlptune.tuning.goals import objective_values, record_constraints
from nlptune.tuning.plan import SweepPlan
from nlptune.tuning.space import param_overrides, suggest_all, to_override
from nlptune.utils.errors import out_of_memory
from nlptune.utils.processes import identity as worker_identity
from nlptune.utils.plain import parse_json

RESULT_FILE = "trial_result.json"


class TrialFailed(Exception):
    """A trial that ran but gave no usable result (non-finite metric or loss, or an error)."""


@dataclass
class RunOutcome:
    value: float
    samples: int
    runtime_s: float
    pruned_at: int | None = None
    cost: dict | None = None  # the run's inference cost figures (`cost_figures`); None when not measured
    planned_samples: int = 0  # what the run would have trained on unpruned (`planned_samples`)
    metrics: dict = field(default_factory=dict)  # every metric of the run's best evaluation


def cost_figures(summary: dict) -> dict | None:
    """The cost figures a sweep keeps of a run (its summary's ``cost`` section, `COST_FIGURES`: the CPU's)."""
    cost = summary.get("cost")
    return {name: cost[name] for name in COST_FIGURES if name in cost} if cost else None


def planned_samples(summary: dict) -> int:
    """The training samples a run would have seen had it run all its planned steps: its own figure, not the base
    config's (a trial's epochs, batch size or transfer set may differ). Its samples when it ran them all, else
    estimated at its samples per step (a short last batch of an epoch makes that a few samples off)."""
    samples, steps, planned = (int(summary.get(key) or 0) for key in ("train_samples", "steps", "planned_steps"))
    return round(samples * planned / steps) if steps and planned > steps else samples


def mean_cost(costs: list[dict | None]) -> dict | None:
    """A config's cost over its cross-validation folds' models: each figure's mean (params rounded); None when a
    fold did not measure it."""
    if not costs or any(c is None for c in costs):
        return None
    mean = {name: sum(c[name] for c in costs) / len(costs) for name in costs[0]}
    return {name: round(value) if name == "params" else round(value, 4) for name, value in mean.items()}


@dataclass
class Evaluation:
    value: float
    fold_values: list[float] = field(default_factory=list)
    samples: int = 0
    runtime_s: float = 0.0
    unpruned_samples: int = 0  # what all its folds would have trained on unpruned (`planned_samples`)
    cost: dict | None = None  # the config's inference cost (`mean_cost` over folds)
    metrics: dict = field(default_factory=dict)  # each metric of the best evaluations, mean over folds


def mean_metrics(runs: list[dict]) -> dict:
    """Each metric's mean over the folds' best evaluations (the metrics every fold has)."""
    names = [name for name in (runs[0] if runs else {}) if all(name in run for run in runs)]
    return {name: sum(float(run[name]) for run in runs) / len(runs) for name in names}


class MetricHook:
    """The loop's `on_evaluate` hook: stops a run whose metric is not finite, and (with a trial) reports the
    metric at the number of training samples seen and stops the run when the pruner says so."""

    def __init__(self, metric: str, trial=None, offset: int = 0):
        self.metric, self.trial, self.offset = metric, trial, offset
        self.pruned_at: int | None = None
        self.nonfinite: str | None = None

    def __call__(self, step: int, samples: int, metrics: dict) -> bool:
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            self.nonfinite = f"{self.metric} is {value} at step {step} ({samples} training samples)"
            return True
        if self.trial is None:
            return False
        self.trial.report(float(value), self.offset + samples)
        if self.trial.should_prune():
            self.pruned_at = self.offset + samples
            return True
        return False


def nonfinite_loss(run_dir: Path) -> str | None:
    """The first logged training loss that is NaN or infinite, described; None when all are finite.
    (A diverged classifier still gets a finite accuracy, so the loss is what shows it.)"""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        record = parse_json(line) if line.strip() else {}
        loss = record.get("loss")
        if isinstance(loss, (int, float)) and not math.isfinite(loss):
            return f"training loss became {loss} at step {record.get('step')}"
    return None


def release_memory() -> None:
    """Free what a finished (or failed) run held before the next one starts."""
    gc.collect()
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _with_worker_threads(overrides: list[str]) -> list[str]:
    """A local worker's share of the CPU threads, written into the trial's config unless the user set it: the
    thread count fixes the order of float sums, so the best trial's recipe reruns exactly only with it."""
    threads = os.environ.get("NLPTUNE_WORKER_THREADS")
    if not threads or any(o.lstrip("+").startswith("trainer.threads=") for o in overrides):
        return overrides
    return overrides + [f"trainer.threads={threads}"]


def _train_here(overrides: list[str], hook: MetricHook) -> RunOutcome:
    from nlptune.recipes.run import load_run_config
    from nlptune.train.loop import run

    config = load_run_config(_with_worker_threads(overrides))
    try:
        result = run(config, hooks=[hook])
        summary = result.summary
        best = (result.best or {}).get(hook.metric, float("nan"))
        return RunOutcome(value=float(best), samples=int(summary.get("train_samples", 0)),
                          runtime_s=float(summary.get("train_runtime_s", 0.0)), pruned_at=hook.pruned_at,
                          cost=cost_figures(summary), metrics=dict(result.best or {}),
                          planned_samples=planned_samples(summary))
    finally:
        del config
        release_memory()


def _train_launched(plan: SweepPlan, overrides: list[str], run_dir: Path, trial, offset: int) -> RunOutcome:
    """A multi-process trial: torchrun starts the processes; rank 0 reports to the study itself."""
    from nlptune.tuning.distributed import launch_command

    run_dir.mkdir(parents=True, exist_ok=True)
    spec = {"sweep_dir": plan.sweep_dir, "overrides": overrides, "run_dir": str(run_dir), "offset": offset,
            "trial_id": None if trial is None else trial._trial_id}
    spec_path = run_dir / "trial_spec.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    (run_dir / RESULT_FILE).unlink(missing_ok=True)
    with (run_dir / "trial.log").open("w") as log:
        proc = subprocess.run(launch_command(plan.processes_per_trial, spec_path), stdout=log,
                              stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    result_path = run_dir / RESULT_FILE
    if not result_path.is_file():
        tail = (run_dir / "trial.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise TrialFailed(f"the trial's {plan.processes_per_trial} processes exited with code {proc.returncode}"
                          f" and no result: {' | '.join(tail)}")
    result = parse_json(result_path.read_text())
    if result.get("error"):
        raise TrialFailed(result["error"])
    if result.get("nonfinite"):
        raise TrialFailed(result["nonfinite"])
    return RunOutcome(value=float(result["value"]), samples=int(result["samples"]),
                      runtime_s=float(result["runtime_s"]), pruned_at=result.get("pruned_at"), cost=result.get("cost"),
                      metrics=result.get("metrics") or {}, planned_samples=int(result.get("planned_samples") or 0))


def drop_checkpoints(run_dir: Path) -> None:
    """Delete a finished trial's checkpoints/ (nothing resumes a trial: a retry starts afresh), keeping its
    best/, metrics and config. A link planted there is left alone, never followed."""
    from nlptune.train.checkpoint import CHECKPOINTS

    folder = run_dir / CHECKPOINTS
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)


def train_once(plan: SweepPlan, overrides: list[str], run_dir: Path, trial=None, offset: int = 0) -> RunOutcome:
    """Train one config into ``run_dir``; raise `TrialFailed` when it gives no usable result. Its checkpoints
    are deleted when it ends unless `tune.keep_trial_checkpoints`."""
    overrides = overrides + [to_override("output_dir", str(run_dir))]
    # a multi-objective study takes no intermediate values (Optuna cannot prune it): the hook only checks the metric
    reporting = None if plan.multi_objective else trial
    hook = None if plan.processes_per_trial > 1 else MetricHook(plan.metric, reporting, offset)
    try:
        if hook is None:
            outcome = _train_launched(plan, overrides, run_dir, trial, offset)
        else:
            outcome = _train_here(overrides, hook)
    finally:
        if not plan.tune_config.keep_trial_checkpoints:
            drop_checkpoints(run_dir)
    if hook is not None and hook.nonfinite:
        raise TrialFailed(hook.nonfinite)
    loss = nonfinite_loss(run_dir)
    if loss:
        raise TrialFailed(loss)
    if outcome.pruned_at is None and not math.isfinite(outcome.value):
        raise TrialFailed(f"{plan.metric} is {outcome.value}")
    return outcome


def evaluate_config(plan: SweepPlan, overrides: list[str], run_dir: Path, trial=None) -> Evaluation:
    """The objective of one config: its best value of the sweep's metric (the main one, or the first of
    tune.objectives), or the mean over the cross-validation folds, with its inference cost and every metric (for
    the other objectives). With a trial, intermediate values go to the pruner at cumulative training samples
    across folds (not in a multi-objective study)."""
    folds = plan.folds or [None]
    evaluation, costs, metrics = Evaluation(value=float("nan")), [], []
    for number, files in enumerate(folds):
        fold_dir = run_dir / f"fold-{number}" if files else run_dir
        extra = data_overrides(files) if files else []
        outcome = train_once(plan, overrides + extra, fold_dir, trial, offset=evaluation.samples)
        evaluation.samples += outcome.samples
        evaluation.runtime_s += outcome.runtime_s
        # a pruned fold's plan stands for the folds it stops (they would have trained alike)
        later_folds = len(folds) - number - 1 if outcome.pruned_at is not None else 0
        evaluation.unpruned_samples += outcome.planned_samples * (1 + later_folds)
        costs.append(outcome.cost)
        metrics.append(outcome.metrics)
        evaluation.cost = mean_cost(costs)
        if trial is not None:
            trial.set_user_attr("train_samples", evaluation.samples)
            trial.set_user_attr("unpruned_samples", evaluation.unpruned_samples)
            trial.set_user_attr("train_runtime_s", round(evaluation.runtime_s, 3))
            # for the leaderboard, and for sweeps that weigh or bound a config's cost (a pruned trial's too)
            trial.set_user_attr("cost", evaluation.cost)
        if outcome.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned at {outcome.pruned_at} training samples")
        evaluation.fold_values.append(outcome.value)
    evaluation.value = sum(evaluation.fold_values) / len(evaluation.fold_values)
    evaluation.metrics = mean_metrics(metrics)
    return evaluation


def describe_error(err: BaseException) -> str:
    """One line saying why a trial failed."""
    memory = out_of_memory(err)
    if memory is not None:
        return memory
    if isinstance(err, TrialFailed):
        return str(err)
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def trial_dir(plan: SweepPlan, number: int) -> Path:
    return Path(plan.sweep_dir) / "trials" / f"trial-{number:04d}"


def _values(plan: SweepPlan, evaluation: Evaluation) -> float | tuple[float, ...]:
    """What the objective returns: the metric, or (with several objectives) each objective's value."""
    if not plan.multi_objective:
        return evaluation.value
    values = objective_values(plan, evaluation.value, evaluation.metrics, evaluation.cost)
    for name, value in values:
        if value is None or not math.isfinite(value):
            why = " (the run measured no inference cost)" if value is None and name in COST_FIGURES else ""
            raise TrialFailed(f"objective {name} is {value}{why}")
    return tuple(float(value) for _, value in values)


def objective(trial: optuna.Trial, plan: SweepPlan) -> float | tuple[float, ...]:
    """The Optuna objective of a sweep: one trial, its reason recorded when it fails."""
    trial.set_user_attr("worker", worker_identity())
    trial.set_user_attr("fail_reason", None)  # a retry inherits its original's user attributes
    trial.set_user_attr("cost", None)
    trial.set_user_attr("constraint", None)
    params = suggest_all(trial, plan.dimensions)
    overrides = plan.overrides + param_overrides(params, tuple(plan.groups))
    run_dir = trial_dir(plan, trial.number)
    trial.set_user_attr("run_dir", str(run_dir))
    reason = None
    try:
        evaluation = evaluate_config(plan, overrides, run_dir, trial)
        record_constraints(trial, plan, evaluation.cost)
        value = _values(plan, evaluation)
    except optuna.TrialPruned:
        record_constraints(trial, plan, trial.user_attrs.get("cost"))  # its model was measured when it stopped
        raise
    except KeyboardInterrupt:
        trial.set_user_attr("fail_reason", "interrupted")
        raise
    except Exception as err:  # noqa: BLE001 - every failure of one trial is recorded; the sweep goes on
        reason = describe_error(err)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text("".join(traceback.format_exception(err)))
    if reason is not None:  # raised outside the handler: no traceback keeps the failed run's tensors alive
        release_memory()
        trial.set_user_attr("fail_reason", reason)
        raise TrialFailed(reason)
    trial.set_user_attr("fold_values", evaluation.fold_values)
    return value
