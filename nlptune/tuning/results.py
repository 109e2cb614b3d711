"""What a sweep leaves behind: leaderboard.csv, plots/*.png, best/ and the best config (summary.md: summary.py,
the recipes: recipe.py, a multi-objective sweep's Pareto front: pareto.py).

Everything is rebuilt from the study itself (plus the confirmation/retraining results), so the reports
of a resumed sweep, or of one that other machines worked on, are complete.
"""
from __future__ import annotations

import csv
import math
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nlptune.config.names import COST_FIGURES
from nlptune.tuning.goals import (HAS_SET_CONSTRAINT, best_of_front, constraints_func, first_value, is_feasible,
                                  pareto_front)
from nlptune.tuning.plan import SweepPlan

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


@dataclass
class Best:
    """The config the sweep recommends and where its evidence lives."""

    trial: int
    params: dict
    value: float  # the search value, or the confirmation mean
    std: float | None = None  # across seeds (confirmation) or folds (cross-validation)
    run_dir: Path | None = None  # a run directory of it (its best fold under cross-validation)
    source: str = "search"
    extra: dict = field(default_factory=dict)


def duration_s(trial) -> float | None:
    if trial.datetime_start and trial.datetime_complete:
        return round((trial.datetime_complete - trial.datetime_start).total_seconds(), 1)
    return None


def ordered(trials: list, direction: str, feasible=lambda t: True) -> list:
    """Completed trials best first (those that met the sweep's bounds, ``feasible``, before the others), then
    pruned (best first), then failed, running and waiting by number; values are the first objective's."""
    sign = -1 if direction == "maximize" else 1

    def key(t):
        rank = STATES.index(t.state.name) if t.state.name in STATES else len(STATES)
        rank += 0.5 if rank == 0 and not feasible(t) else 0
        value = first_value(t)
        value = value if value is not None and math.isfinite(value) else math.inf * -sign
        return (rank, sign * value if rank < 2 else t.number)

    return sorted(trials, key=key)


def candidates(trials: list, plan: SweepPlan) -> list:
    """The trials the sweep may recommend: completed, within every bound of tune.constraints."""
    return [t for t in trials if t.state == TrialState.COMPLETE and is_feasible(t, plan)]


def front_of(trials: list, plan: SweepPlan) -> list:
    """A multi-objective sweep's Pareto front: the candidates no other candidate dominates, by number."""
    return pareto_front(candidates(trials, plan), plan.all_directions)


def write_leaderboard(path: Path, trials: list, plan: SweepPlan, confirmed: list[dict]) -> None:
    """One row per trial: number, state, value (of each objective that is a metric), every parameter, samples,
    duration, the model's inference cost (`COST_FIGURES`, mean over folds; empty when not measured), whether it met
    the bounds (with tune.constraints) and is Pareto-optimal (with several objectives), reason, run directory."""
    params = sorted({k for t in trials for k in t.params})
    by_trial = {row["trial"]: row for row in confirmed}
    extra = [(i, name) for i, name in enumerate(plan.objectives) if i and name not in COST_FIGURES]
    marks = (["feasible"] if plan.constraints else []) + (["pareto"] if plan.multi_objective else [])
    front = {t.number for t in front_of(trials, plan)} if plan.multi_objective else set()
    columns = ["rank", "trial", "state", plan.metric, *[name for _, name in extra], *params, "confirm_mean",
               "confirm_std", "train_samples", "duration_s", *COST_FIGURES, *marks, "fail_reason", "run_dir"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for rank, t in enumerate(ordered(trials, plan.direction, lambda t: is_feasible(t, plan)), start=1):
            row, cost = by_trial.get(t.number, {}), t.user_attrs.get("cost") or {}
            finished = t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            flags = ([is_feasible(t, plan) if finished else None] if plan.constraints else []) + \
                ([t.number in front] if plan.multi_objective else [])
            writer.writerow([rank, t.number, t.state.name, first_value(t),
                             *[t.values[i] if t.values else None for i, _ in extra],
                             *[t.params.get(p) for p in params],
                             row.get("mean"), row.get("std"), t.user_attrs.get("train_samples"), duration_s(t),
                             *[cost.get(name) for name in COST_FIGURES], *flags,
                             t.user_attrs.get("fail_reason") if t.state == TrialState.FAIL else None,
                             t.user_attrs.get("run_dir")])


def compute_spent(trials: list, plan: SweepPlan) -> dict:
    """Training samples spent, and what the same finished trials would have spent unpruned: each trial's own plan
    (its epochs, batch size, transfer set), the base config's for a trial that recorded none."""
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    spent = sum(int(t.user_attrs.get("train_samples") or 0) for t in trials)
    unpruned = sum(int(t.user_attrs.get("unpruned_samples") or plan.budget_samples) for t in finished)
    runtime = sum(float(t.user_attrs.get("train_runtime_s") or 0) for t in trials)
    return {"train_samples": spent, "unpruned_samples": unpruned,
            "ratio": spent / unpruned if unpruned else None, "train_runtime_s": round(runtime, 1)}


def counts(trials: list) -> dict[str, int]:
    return {state.lower(): sum(1 for t in trials if t.state.name == state) for state in STATES}


def trial_run_dir(trial, plan: SweepPlan) -> Path | None:
    """A run directory of a trial's config with its model in best/: with cross-validation, the best fold's."""
    run_dir = Path(trial.user_attrs.get("run_dir", ""))
    folds = trial.user_attrs.get("fold_values") or []
    if plan.folds and folds:  # cross-validation: the fold whose model scored best
        index = max(range(len(folds)), key=lambda i: folds[i] if plan.direction == "maximize" else -folds[i])
        run_dir = run_dir / f"fold-{index}"
    return run_dir if (run_dir / "best").is_dir() else None


def as_best(trial, plan: SweepPlan) -> Best:
    """A completed trial as the config to recommend: its first objective's value (± the folds' spread)."""
    folds = trial.user_attrs.get("fold_values") or []
    std = None
    if plan.folds and len(folds) > 1:
        from nlptune.tuning.confirm import mean_std

        std = mean_std(folds)[1]
    return Best(trial.number, dict(trial.params), first_value(trial), std, run_dir=trial_run_dir(trial, plan))


def pick_best(study: optuna.Study, plan: SweepPlan, confirmed: list[dict]) -> Best | None:
    """The confirmation winner (by mean over seeds), else the best completed trial within the bounds (several
    objectives: the Pareto trial with the best first objective); None when no trial qualifies."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if confirmed and math.isfinite(confirmed[0]["mean"]):
        top = confirmed[0]
        best = Best(top["trial"], top["params"], top["mean"], top["std"], source="confirmation")
        best.run_dir = trial_run_dir(trials[best.trial], plan)
        return best
    done = candidates(list(trials.values()), plan)
    if not done:
        return None
    if plan.multi_objective:
        return as_best(best_of_front(pareto_front(done, plan.all_directions), plan.all_directions), plan)
    return as_best(max(done, key=lambda t: t.value if plan.direction == "maximize" else -t.value), plan)


def copy_best_model(best: Best, sweep_dir: Path) -> Path | None:
    """Copy the best config's model to <sweep dir>/best/ (replacing an older copy)."""
    if best.run_dir is None:
        return None
    target = sweep_dir / "best"
    tmp = sweep_dir / ".best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(best.run_dir / "best", tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def _plots(plan: SweepPlan) -> dict:
    """{name: plot(study)} with optuna.visualization.matplotlib. Several objectives: the single-objective plots
    show the first, and the Pareto front (feasible trials marked, with bounds) is drawn instead of the
    intermediate values (a multi-objective study has none)."""
    from optuna.visualization import matplotlib as vis

    plots = {"optimization_history": vis.plot_optimization_history, "parallel_coordinate": vis.plot_parallel_coordinate,
             "param_importances": vis.plot_param_importances, "intermediate_values": vis.plot_intermediate_values}
    if not plan.multi_objective:
        return plots
    first = {"target": first_value, "target_name": plan.metric}
    plots = {name: (lambda study, plot=plot: plot(study, **first)) for name, plot in plots.items()
             if name != "intermediate_values"}
    bounds = {"constraints_func": constraints_func(plan)} if plan.constraints and not HAS_SET_CONSTRAINT else {}
    plots["pareto_front"] = lambda study: vis.plot_pareto_front(study, target_names=list(plan.objectives), **bounds)
    return plots


def write_plots(study: optuna.Study, folder: Path, plan: SweepPlan) -> dict[str, str]:
    """PNG plots with optuna.visualization.matplotlib; a plot the trials cannot support is skipped, with why."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    skipped = {}
    for name, plot in _plots(plan).items():
        try:
            with warnings.catch_warnings():  # "experimental" notices, and importances of equal trials
                warnings.simplefilter("ignore")
                axes = plot(study)
            figure = getattr(axes, "figure", None) or axes.flat[0].figure
            if name in ("intermediate_values", "optimization_history"):
                axes.set_ylabel(plan.metric)
            if name == "intermediate_values":  # the pruners' steps are training samples
                axes.set_xlabel("training samples")
            figure.savefig(folder / f"{name}.png", dpi=110, bbox_inches="tight")
        except Exception as err:  # noqa: BLE001 - e.g. importances need two completed trials
            skipped[name] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        finally:
            plt.close("all")
    return skipped
