"""A multi-objective sweep's Pareto front: the completed trials (within tune.constraints' bounds) that no other is
as good as on every objective and better than on one. Each gets a recipe, `pareto/trial-NNNN.yaml`, built as
best_recipe.yaml is (recipe.py), and a row of the summary's Pareto table; plots/pareto_front.png draws it
(results.write_plots). The front is rebuilt from the study whenever the sweep finishes, so a recipe of a trial
that a resumed sweep's newer trials dominate is removed.
"""
from __future__ import annotations

from pathlib import Path

from nlptune.config.names import COST_FIGURES
from nlptune.tuning.goals import first_value
from nlptune.tuning.plan import SweepPlan
from nlptune.tuning.recipe import recipe_name, write_config_recipe
from nlptune.tuning.results import as_best, candidates, front_of
from nlptune.utils.files import ensure_dir

PARETO_DIR = "pareto"


def recipe_file(number: int) -> str:
    """A Pareto trial's recipe, relative to the sweep directory."""
    return f"{PARETO_DIR}/trial-{number:04d}.yaml"


def _describe(plan: SweepPlan, trial) -> str:
    values = ", ".join(f"{name} {value:.4g}" for name, value in zip(plan.objectives, trial.values))
    return f"Pareto-optimal in sweep {plan.study_name}: {values}"


def write_pareto(plan: SweepPlan, trials: list) -> dict[int, str | None]:
    """Write the recipe of each trial of the Pareto front into pareto/ (and remove those of trials no longer on
    it); returns {trial number: its recipe file, relative to the sweep directory (None: no run to build it from)},
    by number."""
    folder = ensure_dir(Path(plan.sweep_dir) / PARETO_DIR, "the Pareto recipes")
    written: dict[int, str | None] = {}
    for trial in front_of(trials, plan):
        name = recipe_file(trial.number)
        path = write_config_recipe(plan, as_best(trial, plan), Path(plan.sweep_dir) / name,
                                   recipe_name(plan, Path(name).stem), _describe(plan, trial))
        written[trial.number] = name if path is not None else None
    for old in folder.glob("trial-*.yaml"):
        if f"{PARETO_DIR}/{old.name}" not in written.values() and not old.is_symlink():
            old.unlink()
    return written


def pareto_section(plan: SweepPlan, trials: list, front: dict[int, str | None], plotted: bool) -> list[str]:
    """summary.md's Pareto front: one row per Pareto trial, best first objective first (each objective, its
    parameter count, its recipe, its hyperparameters), and the plot."""
    from nlptune.tuning.summary import table

    by_number = {t.number: t for t in trials}
    rows = sorted((by_number[n] for n in front), key=lambda t: first_value(t),
                  reverse=plan.direction == "maximize")
    objectives = ", ".join(f"{name} ({d})" for name, d in zip(plan.objectives, plan.all_directions))
    bounded = " within the bounds" if plan.constraints else ""
    lines = ["## Pareto front", "", f"{len(rows)} of the {len(candidates(trials, plan))} completed trials{bounded} "
             f"are Pareto-optimal (no other is as good on every objective and better on one): {objectives}. "
             f"`best/` and `best_recipe.yaml` hold the one with the best {plan.metric}; each has its recipe "
             "(`nlptune train recipe=pareto/trial-NNNN.yaml` trains it again).", ""]
    if not rows:
        return lines[:2] + ["No completed trial" + (" met the bounds." if plan.constraints else "."), ""]
    keys = list(plan.space)
    extra = [] if "params" in plan.objectives else ["params"]
    header = ["trial", *plan.objectives, *extra, "recipe", *keys]
    body = [[t.number, *t.values, *[(t.user_attrs.get("cost") or {}).get(name) for name in extra],
             f"`{front[t.number]}`" if front[t.number] else "-", *[t.params.get(k, "-") for k in keys]] for t in rows]
    lines += table(header, body) + [""]
    if plotted:
        lines += ["![Pareto front](plots/pareto_front.png)", ""]
    costs = [name for name in plan.objectives if name in COST_FIGURES]
    if costs:
        lines += [f"Cost figures ({', '.join(costs)}) are the trials' models timed on the CPU when each trial ended "
                  "(`leaderboard.csv` has all four): wall-clock figures of that machine at that moment.", ""]
    return lines
