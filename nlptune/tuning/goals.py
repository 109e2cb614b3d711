"""What a sweep optimises and what it bounds: `tune.objectives` (one metric, or a metric and cost figures: a
multi-objective study and its Pareto front) and `tune.constraints` (bounds on a trial's inference cost).

A trial's cost figures are those its run measured (`objective.cost_figures`: the CPU's, mean over folds). A
bound is kept as the trial attribute ``constraint`` = {figure: how far past its bound} (<= 0: within; inf when the
run measured nothing) and given to Optuna, whose samplers steer away from infeasible trials: with
`Trial.set_constraint` (optuna >= 5), or through the sampler's ``constraints_func`` reading that attribute (older
versions). A pruned trial measured its model too, so it is bounded like a completed one.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Callable, Sequence

import optuna

from nlptune.config.errors import ConfigIssue
from nlptune.config.names import COST_FIGURES
from nlptune.config.tune import MAXIMISED_COSTS, TuneConfig
from nlptune.utils.console import warn

HAS_SET_CONSTRAINT = hasattr(optuna.trial.Trial, "set_constraint")  # optuna >= 5
CONSTRAINT_ATTR = "constraint"


def direction_of(name: str, lower_is_better: Sequence[str]) -> str:
    """An objective's direction: a metric's own, a cost figure's down (throughput up)."""
    if name in COST_FIGURES:
        return "maximize" if name in MAXIMISED_COSTS else "minimize"
    return "minimize" if name in lower_is_better else "maximize"


def goals(tune: TuneConfig, base) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """The plan's goal fields (metric, direction, objectives, directions, constraints) for the sweep of ``base``
    (its run config), and the problems found."""
    from nlptune.metrics import LOWER_IS_BETTER

    objectives = list(tune.objectives or [base.task.main_metric])
    issues = [ConfigIssue(f"tune.objectives[{i}]", f"{name!r} is not a metric of task {base.task.name} "
                          f"(task.metrics: {list(base.task.metrics)})", "list one of its metrics, or add it to "
                          "task.metrics") for i, name in enumerate(objectives)
              if name not in COST_FIGURES and name not in base.task.metrics]
    costly = tune.bounds or any(name in COST_FIGURES for name in objectives)
    if costly and not base.trainer.measure_cost:
        issues.append(ConfigIssue("trainer.measure_cost", "false, but tune.objectives / tune.constraints need each "
                                  "trial's inference cost", "set trainer.measure_cost=true"))
    directions = [direction_of(name, LOWER_IS_BETTER) for name in objectives]
    fields = {"metric": objectives[0], "direction": directions[0], "constraints": dict(tune.bounds),
              "objectives": objectives if tune.multi_objective else [],
              "directions": directions if tune.multi_objective else []}
    return fields, issues


def without_pruner(tune: TuneConfig, asked: bool) -> TuneConfig:
    """``tune`` as a multi-objective sweep runs it: no pruner (Optuna cannot prune a study of several objectives);
    a warning when the command line ``asked`` for one."""
    if not tune.multi_objective or tune.pruner == "none":
        return tune
    if asked:
        warn(f"tune.pruner={tune.pruner} is not used: Optuna cannot prune a study of several objectives, so each "
             "trial trains to the end")
    return dataclasses.replace(tune, pruner="none")


def violations(cost: dict | None, bounds: dict[str, float]) -> dict[str, float]:
    """{figure: how far ``cost``'s figure is past its bound}: <= 0 within it, inf when it was not measured."""
    out = {}
    for name, bound in bounds.items():
        value = (cost or {}).get(name)
        if value is None or not math.isfinite(value):
            out[name] = math.inf
        else:
            out[name] = bound - value if name in MAXIMISED_COSTS else value - bound
    return out


def record_constraints(trial, plan, cost: dict | None) -> None:
    """Keep a finished (or pruned) trial's distance to each bound, and tell Optuna (optuna >= 5)."""
    if not plan.constraints:
        return
    values = violations(cost, plan.constraints)
    trial.set_user_attr(CONSTRAINT_ATTR, values)
    if HAS_SET_CONSTRAINT:  # (before optuna 5, the sampler's constraints_func reads the attribute)
        for name, value in values.items():
            trial.set_constraint(name, value)


def constraints_func(plan) -> Callable[[Any], list[float]]:
    """For optuna < 5's samplers: a trial's constraint values, read from its ``constraint`` attribute."""
    names = list(plan.constraints)

    def values(trial) -> list[float]:
        recorded = trial.user_attrs.get(CONSTRAINT_ATTR) or {}
        return [float(recorded.get(name, math.inf)) for name in names]

    return values


def sampler_options(plan, sampler_class, new_api: bool | None = None) -> dict[str, Any]:
    """The sampler's ``constraints_func`` where Optuna needs one (before `Trial.set_constraint`; ``new_api``: None
    asks the installed Optuna) and the sampler takes it (TPE, NSGA-II, GP); random and grid sampling ignore bounds
    (the best is feasible all the same)."""
    if not plan.constraints or (HAS_SET_CONSTRAINT if new_api is None else new_api):
        return {}
    if "constraints_func" not in inspect.signature(sampler_class).parameters:
        return {}
    return {"constraints_func": constraints_func(plan)}


def is_feasible(trial, plan) -> bool:
    """Whether a trial met every bound (always, without bounds); a trial that measured nothing did not."""
    if not plan.constraints:
        return True
    recorded = trial.user_attrs.get(CONSTRAINT_ATTR) or {}
    return all(recorded.get(name, math.inf) <= 0 for name in plan.constraints)


def objective_values(plan, value: float, metrics: dict, cost: dict | None) -> list[tuple[str, Any]]:
    """(name, value) of each objective of a multi-objective plan: the first metric's ``value``, cost figures from
    ``cost``, other metrics from ``metrics`` (the run's best metrics, mean over folds); None where missing."""
    out = []
    for name in plan.objectives:
        if name == plan.metric:
            out.append((name, value))
        elif name in COST_FIGURES:
            out.append((name, (cost or {}).get(name)))
        else:
            out.append((name, metrics.get(name)))
    return out


def first_value(trial) -> float | None:
    """A trial's value on the first objective (``trial.value`` refuses multi-objective trials)."""
    return trial.values[0] if trial.values else None


def _signed(trial, directions: Sequence[str]) -> list[float]:
    return [-v if d == "maximize" else v for v, d in zip(trial.values, directions)]


def pareto_front(trials: Sequence, directions: Sequence[str]) -> list:
    """The trials no other trial of ``trials`` dominates (as good on every objective, better on one), by number."""
    points = [(t, _signed(t, directions)) for t in trials if t.values]
    front = [t for t, p in points
             if not any(all(a <= b for a, b in zip(q, p)) and any(a < b for a, b in zip(q, p)) for _, q in points)]
    return sorted(front, key=lambda t: t.number)


def best_of_front(front: Sequence, directions: Sequence[str]):
    """The Pareto trial the sweep recommends as `best`: the best first objective (then the next ones, in order)."""
    return min(front, key=lambda t: (_signed(t, directions), t.number)) if front else None
