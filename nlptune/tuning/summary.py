"""summary.md: the sweep in one page — best value, parameters and inference cost, how many trials were pruned or
failed (and why), how many met tune.constraints' bounds, the compute spent, the seed confirmation, a
multi-objective sweep's Pareto front (pareto.py) and how to reproduce the best config."""
from __future__ import annotations

import math
from pathlib import Path

from optuna.trial import TrialState

from nlptune.config.tune import MAXIMISED_COSTS
from nlptune.tuning.goals import is_feasible
from nlptune.tuning.plan import SweepPlan
from nlptune.tuning.results import Best, candidates, compute_spent, counts, ordered
from nlptune.tuning.space import param_overrides


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]


def _cost_line(trials: list, best: Best) -> list[str]:
    """The best trial's inference cost (its trial's ``cost`` attribute: CPU figures, mean over folds)."""
    cost = next((t.user_attrs.get("cost") for t in trials if t.number == best.trial), None)
    if not cost:
        return []
    return [f"Inference cost of its model (CPU, measured when the trial ended): {fmt(cost['latency_ms'])} ms per "
            f"example at batch 1, {cost['throughput']:,.0f} examples/s at batch 32, {cost['params']:,} parameters, "
            f"{fmt(cost['size_mb'])} MB.", ""]


def bounds_text(plan: SweepPlan) -> str:
    """tune.constraints as the summary writes them: ``latency_ms <= 5, throughput >= 1000``."""
    return ", ".join(f"{name} {'>=' if name in MAXIMISED_COSTS else '<='} {bound:g}"
                     for name, bound in plan.constraints.items())


def _bounds_line(plan: SweepPlan, trials: list) -> list[str]:
    """How many finished trials met the bounds (completed and pruned apart: a pruned one was measured too)."""
    if not plan.constraints:
        return []
    parts = []
    for state in (TrialState.COMPLETE, TrialState.PRUNED):
        done = [t for t in trials if t.state == state]
        if done:
            parts.append(f"{sum(is_feasible(t, plan) for t in done)} of the {len(done)} {state.name.lower()}")
    return [f"- bounds (tune.constraints): {bounds_text(plan)} — met by " + (" and ".join(parts) or "no trial yet")
            + " trials"]


def _best_section(plan: SweepPlan, best: Best | None, trials: list) -> list[str]:
    if best is None and plan.constraints and any(t.state == TrialState.COMPLETE for t in trials):
        return ["## Best", "", f"**No completed trial met the bounds** ({bounds_text(plan)}), so there is no best: "
                "loosen tune.constraints, or search smaller models (leaderboard.csv has every trial's cost).", ""]
    if best is None:
        return ["## Best", "", "No trial completed: see the failed trials below.", ""]
    spread = f" ± {fmt(best.std)}" if best.std is not None else ""
    how = {"confirmation": f"mean over {plan.tune_config.confirm_seeds} new seeds",
           "search": f"mean over {len(plan.folds)} folds" if plan.folds else "best validation score of the trial"}
    if plan.multi_objective:
        how["search"] += f"; the Pareto trial with the best {plan.metric}"
    elif plan.constraints:
        how["search"] += f"; the best of the trials within {bounds_text(plan)}"
    overrides = " ".join(plan.overrides + param_overrides(best.params, tuple(plan.groups)))
    lines = ["## Best", "", f"**{plan.metric} = {fmt(best.value)}{spread}** ({how[best.source]}), trial "
             f"{best.trial}", ""] + _cost_line(trials, best)
    lines += table(["parameter", "value"], [[k, v] for k, v in best.params.items()])
    lines += ["", "Reproduce: `nlptune train recipe=best_recipe.yaml` (check it: `nlptune reproduce "
              "best_recipe.yaml`), or", "", "```", f"nlptune train {overrides}", "```", ""]
    return lines


def _confirm_section(plan: SweepPlan, confirmed: list[dict]) -> list[str]:
    if not confirmed:
        return []
    seeds = ", ".join(str(s) for s in confirmed[0]["seeds"])
    lines = ["## Seed confirmation", "", f"The top {len(confirmed)} configs re-run with seeds {seeds}, ranked by "
             f"the mean (± sample standard deviation).", ""]
    rows = [[i + 1, r["trial"], r["search_value"], f"{fmt(r['mean'])} ± {fmt(r['std'])}",
             ", ".join(fmt(v) for v in r["values"])] for i, r in enumerate(confirmed)]
    return lines + table(["rank", "trial", "search value", "mean ± std", "per seed"], rows) + [""]


def _full_section(full: dict | None) -> list[str]:
    if not full:
        return []
    if full.get("error"):
        return ["## Retrained on all the data", "", f"Failed: {full['error']}", ""]
    note = ("scored on the validation split, which it did not see" if full["held_out"] else
            "trained on train + validation, so this score is not held out")
    return ["## Retrained on all the data", "", f"{fmt(full['value'])} ({note}); model: `{full['run_dir']}/best`",
            ""]


def _failures(trials: list) -> list[str]:
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if not failed:
        return []
    rows = [[t.number, t.user_attrs.get("fail_reason") or "-"] for t in failed]
    return ["## Failed trials", ""] + table(["trial", "reason"], rows) + [""]


def _objective_line(plan: SweepPlan) -> str:
    folds = f", mean over {len(plan.folds)} folds" if plan.folds else ""
    if not plan.multi_objective:
        return f"- objective: {plan.metric} ({plan.direction}){folds}"
    names = ", ".join(f"{name} ({d})" for name, d in zip(plan.objectives, plan.all_directions))
    return f"- objectives: {names}{folds}; the result is a Pareto front"


def _top_section(plan: SweepPlan, trials: list) -> list[str]:
    """The ten best completed trials (within the bounds), with the bounded cost figures."""
    top = ordered(candidates(trials, plan), plan.direction)[:10]
    if not top:
        return []
    keys, figures = list(plan.space), list(plan.constraints)
    rows = [[t.number, t.value, *[(t.user_attrs.get("cost") or {}).get(f) for f in figures],
             *[t.params.get(k, "-") for k in keys]] for t in top]
    title = "## Top trials" + (" within the bounds" if figures else "")
    return [title, ""] + table(["trial", plan.metric, *figures, *keys], rows) + [""]


def write_summary(path: Path, plan: SweepPlan, trials: list, best: Best | None, confirmed: list[dict],
                  full: dict | None, skipped_plots: dict[str, str], front: dict[int, str | None] | None = None
                  ) -> None:
    """Write summary.md for the sweep in ``plan`` (``front``: a multi-objective sweep's Pareto trials and their
    recipes, `pareto.write_pareto`)."""
    n = counts(trials)
    spent = compute_spent(trials, plan)
    tune = plan.tune_config
    ratio = f" ({spent['ratio']:.0%} of the {spent['unpruned_samples']:,} the same trials would spend " \
            "unpruned)" if spent["ratio"] is not None else ""
    lines = [f"# Sweep `{plan.study_name}`", "", _objective_line(plan), *_bounds_line(plan, trials),
             f"- search: {tune.sampler} sampler, {tune.pruner} pruner, {plan.n_trials} trials, space: "
             + ", ".join(f"`{k}={v}`" for k, v in plan.space.items()),
             f"- trials: {len(trials)} — {n['complete']} complete, {n['pruned']} pruned, {n['fail']} failed"
             + (f", {n['running']} running" if n["running"] else "") + (f", {n['waiting']} waiting" if n["waiting"]
                                                                         else ""),
             f"- compute: {spent['train_samples']:,} training samples{ratio}, {spent['train_runtime_s']:.0f} s of "
             "training", f"- storage: `{plan.storage_shown}`", ""]
    lines += _best_section(plan, best, trials) + _confirm_section(plan, confirmed) + _full_section(full)
    if plan.multi_objective:
        from nlptune.tuning.pareto import pareto_section

        plotted = plan.tune_config.plots and "pareto_front" not in skipped_plots
        lines += pareto_section(plan, trials, front or {}, plotted)
    else:
        lines += _top_section(plan, trials)
    lines += _failures(trials)
    plots = ("optimisation history, parallel coordinates, parameter importance (of the first objective), Pareto "
             "front" if plan.multi_objective else "optimisation history, parallel coordinates, parameter importance, "
             "intermediate values")
    lines += ["## Files", "", f"`leaderboard.csv` (every trial), `plots/` ({plots}), `trials/trial-NNNN/` (one run "
              "directory per trial), `best/` (the best config's model), `best_recipe.yaml`"
              + (", `pareto/trial-NNNN.yaml` (a recipe per Pareto trial)." if plan.multi_objective else ".")]
    if skipped_plots:
        lines += ["", "Plots not drawn: " + "; ".join(f"{k} ({v})" for k, v in skipped_plots.items())]
    path.write_text("\n".join(lines) + "\n")
