"""After the search: seed confirmation of the top configs and the optional retraining on all the data.

Confirmation re-runs each of the `confirm_top` best configs with `confirm_seeds` new seeds (the run's
seed + 1, + 2, ...; never the seed that selected it, whose lucky draw would bias the mean), and ranks
them by the mean. Each run's result is kept next to it, so a resumed sweep does not run it again.
"""
from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nlptune.tuning.folds import data_overrides, write_full
from nlptune.tuning.objective import describe_error, evaluate_config, release_memory
from nlptune.tuning.plan import SweepPlan
from nlptune.tuning.space import param_overrides
from nlptune.utils.files import atomic_write_text
from nlptune.utils.plain import parse_json

RESULT = "confirm_result.json"


def trial_overrides(plan: SweepPlan, params: dict) -> list[str]:
    """The overrides that rebuild a trial's config from its parameters."""
    return plan.overrides + param_overrides(params, tuple(plan.groups))


def ranked_trials(study: optuna.Study, plan: SweepPlan) -> list:
    """Completed trials within tune.constraints' bounds, best first."""
    from nlptune.tuning.goals import is_feasible

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE and is_feasible(t, plan)]
    return sorted(done, key=lambda t: t.value, reverse=plan.direction == "maximize")


def _saved_result(path: Path, keys: tuple[str, ...]) -> dict | None:
    """The result an earlier (interrupted) confirmation saved at ``path``; None when there is none, or when it is
    not a JSON object with ``keys`` (damaged): the run is done again rather than trusted."""
    try:
        saved = parse_json(path.read_bytes())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) and all(key in saved for key in keys) else None


def _seed_run(plan: SweepPlan, params: dict, seed: int, run_dir: Path) -> dict:
    saved = run_dir / RESULT
    earlier = _saved_result(saved, ("seed", "value"))
    if earlier is not None:
        return earlier
    try:
        evaluation = evaluate_config(plan, trial_overrides(plan, params) + [f"seed={seed}"], run_dir)
        result = {"seed": seed, "value": evaluation.value, "fold_values": evaluation.fold_values,
                  "train_samples": evaluation.samples}
    except Exception as err:  # noqa: BLE001 - one failed seed leaves the mean of the others
        result = {"seed": seed, "value": None, "error": describe_error(err)}
    release_memory()
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved, json.dumps(result, indent=2))
    return result


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def confirm(plan: SweepPlan, study: optuna.Study, on_progress=None) -> list[dict]:
    """Re-run the top configs over new seeds; rows ranked by mean (best first), with std and every seed's value."""
    tune = plan.tune_config
    rows = []
    for trial in ranked_trials(study, plan)[: tune.confirm_top]:
        runs = []
        for offset in range(1, tune.confirm_seeds + 1):
            seed = plan.run_seed + offset
            run_dir = Path(plan.sweep_dir) / "confirm" / f"trial-{trial.number:04d}" / f"seed-{seed}"
            runs.append(_seed_run(plan, dict(trial.params), seed, run_dir))
            if on_progress:
                on_progress(f"confirm trial {trial.number}: seed {seed} -> {runs[-1].get('value')}")
        values = [r["value"] for r in runs if r.get("value") is not None and math.isfinite(r["value"])]
        mean, std = mean_std(values) if values else (float("nan"), float("nan"))
        rows.append({"trial": trial.number, "params": dict(trial.params), "search_value": trial.value,
                     "mean": mean, "std": std, "seeds": [r["seed"] for r in runs],
                     "values": [r.get("value") for r in runs], "failed": [r for r in runs if r.get("error")]})
    finite = [r for r in rows if math.isfinite(r["mean"])]
    finite.sort(key=lambda r: r["mean"], reverse=plan.direction == "maximize")
    ranked = finite + [r for r in rows if not math.isfinite(r["mean"])]
    (Path(plan.sweep_dir) / "confirm.json").write_text(json.dumps(ranked, indent=2, default=str))
    return ranked


def retrain_full(plan: SweepPlan, params: dict) -> dict:
    """Train the best config on all the data it was tuned on: with cross-validation the whole train split
    (scored on the untouched validation split), otherwise train + validation (its validation score is
    then not held out). Returns {"run_dir", "value", "held_out", ...}."""
    from nlptune.recipes.run import load_run_config

    base = load_run_config(trial_overrides(plan, params))
    held_out = bool(plan.folds)
    out = Path(plan.sweep_dir) / "full"
    saved = out / RESULT
    earlier = _saved_result(saved, ("run_dir", "value", "held_out"))
    if earlier is not None:
        return earlier
    files = write_full(base.task, out / "data", include_validation=not held_out)
    single = dataclasses.replace(plan, folds=[])
    try:
        evaluation = evaluate_config(single, trial_overrides(plan, params) + data_overrides(files), out / "run")
        result = {"run_dir": str(out / "run"), "value": evaluation.value, "held_out": held_out,
                  "train_samples": evaluation.samples, "train_file": files[0]}
    except Exception as err:  # noqa: BLE001 - reported in the summary; the sweep's results stand
        result = {"run_dir": str(out / "run"), "value": None, "held_out": held_out, "error": describe_error(err)}
    release_memory()
    atomic_write_text(saved, json.dumps(result, indent=2))
    return result
