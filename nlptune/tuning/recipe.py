"""The recipes a sweep writes (nlptune/recipes/format.py's format): best_recipe.yaml for the config it recommends
and, in a multi-objective sweep, pareto/trial-NNNN.yaml for each Pareto-optimal trial. `nlptune train
recipe=FILE` trains that config again; `nlptune reproduce FILE` checks it against the trial's value.
"""
from __future__ import annotations

import re
from pathlib import Path

from nlptune.tuning.plan import SweepPlan
from nlptune.tuning.results import Best
from nlptune.utils.plain import parse_json


def recipe_name(plan: SweepPlan, suffix: str) -> str:
    """A recipe name (letters, digits, ``._-``) for the sweep's study and ``suffix``."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{plan.study_name}-{suffix}").lstrip("-._") or suffix


def write_config_recipe(plan: SweepPlan, best: Best, target: Path, name: str, title: str,
                        full: dict | None = None) -> Path | None:
    """Write the recipe of trial ``best`` to ``target``; ``title`` starts its description ("best of sweep X").
    Without cross-validation it is the trial's own run (config, pins) expecting ``best.value`` on the sweep's
    metric; with it, the config trained on the task's own data, expecting the mean over folds (or the score
    retrained on the whole train split, ``full``). None when the trial left no run directory."""
    from nlptune.recipes.format import build_recipe, recipe_from_run, write_recipe

    tolerance = max(2 * best.std, 0.01) if best.std else 0.02
    if not plan.folds:
        if best.run_dir is None:
            return None
        recipe = recipe_from_run(best.run_dir, name=name, tolerance=tolerance,
                                 description=f"{title} (trial {best.trial}, {best.source})")
        # the sweep's first objective (the main metric unless tune.objectives says otherwise); the confirmation
        # mean when there is one
        recipe["expected"].update(metric=plan.metric, value=float(best.value))
        return write_recipe(target, recipe)
    # cross-validation: the recipe trains on the task's own data, as `nlptune train` would
    from nlptune.data.loading import load_raw_splits
    from nlptune.recipes.run import load_run_config
    from nlptune.tuning.confirm import trial_overrides

    config = load_run_config(trial_overrides(plan, best.params))
    manifest = parse_json((best.run_dir / "manifest.json").read_text()) if best.run_dir else {}
    manifest["data"] = {"sha256": {s: r.sha256 for s, r in load_raw_splits(config.task).items()}}
    value, note = best.value, f"mean over {len(plan.folds)} folds"
    if full and full.get("value") is not None and full.get("held_out"):
        value, note = full["value"], "retrained on the whole train split, validation score"
    recipe = build_recipe(config.plain, manifest, name=name, metric=plan.metric, value=value, tolerance=tolerance,
                          description=f"{title} (trial {best.trial}, {note})")
    return write_recipe(target, recipe)


def write_best_recipe(plan: SweepPlan, best: Best, full: dict | None) -> Path | None:
    """best_recipe.yaml: `nlptune train recipe=best_recipe.yaml` reruns the config the sweep recommends."""
    return write_config_recipe(plan, best, Path(plan.sweep_dir) / "best_recipe.yaml", recipe_name(plan, "best"),
                               f"best of sweep {plan.study_name}", full)
