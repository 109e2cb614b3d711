"""summary.md: the sweep in one page — best value, parameters and inference cost, how many trials were pruned or
failed (and why), the compute spent, the seed confirmation and how to reproduce the best config."""
from __future__ import annotations

import math
from pathlib import Path

from optuna.trial import TrialState

from nlptune.tuning.plan import SweepPlan
from nlptune.tuning.results import Best, compute_spent, counts, ordered
from nlptune.tuning.space import to_override


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]


def _cost_line(trials: list, best: Best) -> list[str]:
    """The best trial's inference cost (its trial's ``cost`` attribute: CPU figures, mean over folds)."""
    cost = next((t.user_attrs.get("cost") for t in trials if t.number == best.trial), None)
    if not cost:
        return []
    return [f"Inference cost of its model (CPU, measured when the trial ended): {_fmt(cost['latency_ms'])} ms per "
            f"example at batch 1, {cost['throughput']:,.0f} examples/s at batch 32, {cost['params']:,} parameters, "
            f"{_fmt(cost['size_mb'])} MB.", ""]


def _best_section(plan: SweepPlan, best: Best | None, trials: list) -> list[str]:
    if best is None:
        return ["## Best", "", "No trial completed: see the failed trials below.", ""]
    spread = f" ± {_fmt(best.std)}" if best.std is not None else ""
    how = {"confirmation": f"mean over {plan.tune_config.confirm_seeds} new seeds",
           "search": f"mean over {len(plan.folds)} folds" if plan.folds else "best validation score of the trial"}
    overrides = " ".join(plan.overrides + [to_override(k, v, tuple(plan.groups)) for k, v in best.params.items()])
    lines = ["## Best", "", f"**{plan.metric} = {_fmt(best.value)}{spread}** ({how[best.source]}), trial "
             f"{best.trial}", ""] + _cost_line(trials, best)
    lines += _table(["parameter", "value"], [[k, v] for k, v in best.params.items()])
    lines += ["", "Reproduce: `nlptune train recipe=best_recipe.yaml` (check it: `nlptune reproduce "
              "best_recipe.yaml`), or", "", "```", f"nlptune train {overrides}", "```", ""]
    return lines


def _confirm_section(plan: SweepPlan, confirmed: list[dict]) -> list[str]:
    if not confirmed:
        return []
    seeds = ", ".join(str(s) for s in confirmed[0]["seeds"])
    lines = ["## Seed confirmation", "", f"The top {len(confirmed)} configs re-run with seeds {seeds}, ranked by "
             f"the mean (± sample standard deviation).", ""]
    rows = [[i + 1, r["trial"], r["search_value"], f"{_fmt(r['mean'])} ± {_fmt(r['std'])}",
             ", ".join(_fmt(v) for v in r["values"])] for i, r in enumerate(confirmed)]
    return lines + _table(["rank", "trial", "search value", "mean ± std", "per seed"], rows) + [""]


def _full_section(full: dict | None) -> list[str]:
    if not full:
        return []
    if full.get("error"):
        return ["## Retrained on all the data", "", f"Failed: {full['error']}", ""]
    note = ("scored on the validation split, which it did not see" if full["held_out"] else
            "trained on train + validation, so this score is not held out")
    return ["## Retrained on all the data", "", f"{_fmt(full['value'])} ({note}); model: `{full['run_dir']}/best`",
            ""]


def _failures(trials: list) -> list[str]:
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if not failed:
        return []
    rows = [[t.number, t.user_attrs.get("fail_reason") or "-"] for t in failed]
    return ["## Failed trials", ""] + _table(["trial", "reason"], rows) + [""]


def write_summary(path: Path, plan: SweepPlan, trials: list, best: Best | None, confirmed: list[dict],
                  full: dict | None, skipped_plots: dict[str, str]) -> None:
    """Write summary.md for the sweep in ``plan``."""
    n = counts(trials)
    spent = compute_spent(trials, plan)
    tune = plan.tune_config
    ratio = f" ({spent['ratio']:.0%} of the {spent['unpruned_samples']:,} the same trials would spend " \
            "unpruned)" if spent["ratio"] is not None else ""
    lines = [f"# Sweep `{plan.study_name}`", "",
             f"- objective: {plan.metric} ({plan.direction})" + (f", mean over {len(plan.folds)} folds"
                                                                  if plan.folds else ""),
             f"- search: {tune.sampler} sampler, {tune.pruner} pruner, {plan.n_trials} trials, space: "
             + ", ".join(f"`{k}={v}`" for k, v in plan.space.items()),
             f"- trials: {len(trials)} — {n['complete']} complete, {n['pruned']} pruned, {n['fail']} failed"
             + (f", {n['running']} running" if n["running"] else "") + (f", {n['waiting']} waiting" if n["waiting"]
                                                                         else ""),
             f"- compute: {spent['train_samples']:,} training samples{ratio}, {spent['train_runtime_s']:.0f} s of "
             "training", f"- storage: `{plan.storage}`", ""]
    lines += _best_section(plan, best, trials) + _confirm_section(plan, confirmed) + _full_section(full)
    top = [t for t in ordered(trials, plan.direction) if t.state == TrialState.COMPLETE][:10]
    if top:
        keys = list(plan.space)
        lines += ["## Top trials", ""] + _table(["trial", plan.metric, *keys],
                                                 [[t.number, t.value, *[t.params.get(k) for k in keys]] for t in top])
        lines += [""]
    lines += _failures(trials)
    lines += ["## Files", "", "`leaderboard.csv` (every trial), `plots/` (optimisation history, parallel coordinates, "
              "parameter importance, intermediate values), `trials/trial-NNNN/` (one run directory per trial), "
              "`best/` (the best config's model), `best_recipe.yaml`."]
    if skipped_plots:
        lines += ["", "Plots not drawn: " + "; ".join(f"{k} ({v})" for k, v in skipped_plots.items())]
    path.write_text("\n".join(lines) + "\n")
