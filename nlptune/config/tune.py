"""The `tune` section of the config: a typed, frozen `TuneConfig`, kept apart from the run config.

`conf/tune/default.yaml` is composed with the rest of conf/ (so `tune.*` typos are caught like any
other key), but the section never reaches training: `build_run_config` drops it and
`build_tune_config` turns it into a `TuneConfig`. Search dimensions (`tune.space.<key>=choice(1,2)`)
are not Hydra syntax, so they are taken off the command line here before Hydra sees it.
This module knows nothing of Optuna; `nlptune/tuning/` turns the strings into distributions.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from nlptune.config.checks import choice_issues, range_issues, value_issues
from nlptune.config.errors import ConfigError, ConfigIssue
from nlptune.config.names import COST_FIGURES, PRETRAINED, is_pretrained, names
from nlptune.utils.plain import flatten

SAMPLERS = ("grid", "random", "tpe", "nsga2", "gp", "cmaes")
# the samplers that can optimise several objectives at once (Optuna's GP and CMA-ES samplers take one)
MULTI_OBJECTIVE_SAMPLERS = ("tpe", "nsga2", "random", "grid")
# the cost figures where more is better (a lower bound in tune.constraints); the others are minimised
MAXIMISED_COSTS = ("throughput",)
PRUNERS = ("none", "median", "asha", "hyperband")
SPACE_PREFIXES = ("tune.space.", "+tune.space.", "++tune.space.")
# top-level keys of a `nlptune tune` command line that are not config keys of a trial
RESUME_KEY = "resume"


@dataclass(frozen=True)
class TuneConfig:
    """How a sweep searches (sampler, pruner, space), where it stores its study, and what it runs after."""

    n_trials: int | None = None  # None: 20, or the whole grid for sampler=grid
    timeout_s: float | None = None  # start no new trial after this many seconds
    # None: the task's main metric; else a metric of the task, then cost figures (COST_FIGURES) or metrics
    objectives: tuple[str, ...] | None = None
    # {cost figure: bound or None}: a trial whose figure is above its bound (below, for throughput) is infeasible
    constraints: Mapping[str, float | None] | None = None
    sampler: str = "tpe"
    sampler_startup_trials: int = 5
    seed: int | None = None  # None: the run's seed
    pruner: str = "asha"
    prune_min_samples: int = 0  # 0: a ninth (asha) / an 81st (hyperband) of one trial's training samples
    prune_reduction_factor: int = 3
    prune_startup_trials: int = 3  # median: completed trials before any pruning
    prune_warmup_samples: int = 0  # median: no pruning before this many training samples
    workers: int = 1
    gpus_per_trial: int = 1
    processes_per_trial: int = 0  # 0: gpus_per_trial on GPUs, 1 on CPU
    storage: str | None = None  # None: a journal file in the sweep directory
    study_name: str | None = None  # None: <task>-<model>
    dir: str | None = None  # None: runs/sweeps/<task>-<model>/<YYYYmmdd-HHMMSS>/
    heartbeat_interval: int = 60
    grace_period: int = 120
    max_retry: int = 3
    cv_folds: int = 0
    confirm_seeds: int = 0
    confirm_top: int = 3
    retrain_full: bool = False
    keep_trial_checkpoints: bool = False  # trials' checkpoints/ are deleted when the trial ends (best/ stays)
    plots: bool = True
    # {"scratch": {key: spec}, "pretrained": {key: spec}}; the one for the model is the starting space
    default_space: Mapping[str, Mapping[str, str]] | None = None
    # extra or replacing dimensions, flattened dotted keys -> spec (None drops a default dimension)
    space: Mapping[str, Any] = field(default_factory=dict)

    @property
    def multi_objective(self) -> bool:
        """Whether the study optimises several objectives (and reports a Pareto front)."""
        return len(self.objectives or ()) > 1

    @property
    def bounds(self) -> dict[str, float]:
        """The constraints that are set: {cost figure: bound}."""
        return {key: value for key, value in (self.constraints or {}).items() if value is not None}

    def effective_space(self, model_name: str) -> dict[str, str]:
        """The dimensions searched for ``model_name``: its default space, then `space` on top."""
        kind = PRETRAINED if is_pretrained(model_name) else "scratch"
        dims = dict((self.default_space or {}).get(kind) or {})
        for key, spec in self.space.items():
            if spec is None:
                dims.pop(key, None)
            else:
                dims[key] = spec
        return dims


@dataclass(frozen=True)
class TuneArgs:
    """A `nlptune tune` command line split into its parts."""

    config_overrides: list[str]  # for Hydra: run keys and tune.* scalars
    space: dict[str, Any]  # tune.space.<key>=<spec> (None: drop)
    resume: str | None  # resume=auto | resume=<sweep dir> | None

    @property
    def tune_overrides(self) -> list[str]:
        """The tune.* (and tune=<file>) overrides: they shape the sweep only."""
        return [o for o in self.config_overrides if _is_tune(o)]

    @property
    def trial_overrides(self) -> list[str]:
        """The user's overrides that shape every trial (a `recipe=` included)."""
        return [o for o in self.config_overrides if not _is_tune(o)]


def _is_tune(override: str) -> bool:
    key = override.lstrip("+~").partition("=")[0]
    return key == "tune" or key.startswith("tune.")


def split_tune_args(overrides: Sequence[str]) -> TuneArgs:
    """Take the search dimensions and `resume=` off a `nlptune tune` command line."""
    config, space, resume = [], {}, None
    for item in overrides:
        key, sep, value = item.partition("=")
        if key.startswith(SPACE_PREFIXES) or key.startswith("~tune.space."):
            dim = key.split("tune.space.", 1)[1]
            if not dim:
                raise ConfigError([ConfigIssue(key, "no key after tune.space.", "e.g. tune.space.optimizer.lr="
                                               "'loguniform(1e-4,1e-2)'")])
            drop = key.startswith("~") or value.strip().lower() in ("null", "none", "")
            space[dim] = None if drop else value.strip()
        elif key == RESUME_KEY and sep:
            resume = value or None
        else:
            config.append(item)
    return TuneArgs(config_overrides=config, space=space, resume=resume)


def _issue_groups(tune: TuneConfig) -> list:
    """The checks of the tune section, in groups (`nlptune.config.checks.value_issues`)."""
    return [lambda: _setting_issues(tune), lambda: _goal_issues(tune), lambda: _space_issues(tune)]


def _setting_issues(tune: TuneConfig) -> list[ConfigIssue]:
    issues = choice_issues("tune.sampler", tune.sampler, SAMPLERS) + choice_issues("tune.pruner", tune.pruner, PRUNERS)
    for key, low in (("n_trials", 1), ("workers", 1), ("gpus_per_trial", 1), ("processes_per_trial", 0),
                     ("heartbeat_interval", 1), ("max_retry", 0), ("confirm_seeds", 0), ("confirm_top", 1),
                     ("prune_reduction_factor", 2), ("prune_min_samples", 0), ("prune_startup_trials", 0),
                     ("prune_warmup_samples", 0), ("sampler_startup_trials", 0), ("cv_folds", 0)):
        issues += range_issues(f"tune.{key}", getattr(tune, key), low)
    issues += range_issues("tune.timeout_s", tune.timeout_s, 0, low_open=True)
    if tune.cv_folds == 1:
        issues.append(ConfigIssue("tune.cv_folds", "1 fold is no cross-validation", "set 0 (off) or at least 2"))
    periods = (tune.grace_period, tune.heartbeat_interval)
    if all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in periods) and periods[0] <= periods[1]:
        issues.append(ConfigIssue("tune.grace_period", f"{tune.grace_period} is not above tune.heartbeat_interval "
                                  f"{tune.heartbeat_interval}", "a live worker would be taken for dead: make it "
                                  "at least twice the heartbeat interval"))
    return issues


def _space_issues(tune: TuneConfig) -> list[ConfigIssue]:
    issues = []
    for key, spec in tune.space.items():
        if spec is not None and not isinstance(spec, str):
            issues.append(ConfigIssue(f"tune.space.{key}", f"expected a search dimension, got {spec!r}",
                                      "e.g. 'loguniform(1e-4,1e-2)', 'uniform(0,0.5)', 'int(1,3)', "
                                      "'choice(128,256)' or 'range(1,4)'"))
    return issues


def _goal_issues(tune: TuneConfig) -> list[ConfigIssue]:
    """The problems of tune.objectives and tune.constraints, and of the settings that cannot go with them."""
    issues, metrics, known = [], names("metric"), names("metric") + COST_FIGURES
    objectives = list(tune.objectives or ())
    if tune.objectives is not None and not objectives:
        issues.append(ConfigIssue("tune.objectives", "an empty list", "set null (the task's main metric) or list "
                                  "a metric first, e.g. [accuracy, latency_ms]"))
    for i, name in enumerate(objectives):
        issues += choice_issues(f"tune.objectives[{i}]", name, known)
    if len(set(objectives)) < len(objectives):
        issues.append(ConfigIssue("tune.objectives", f"an objective is repeated in {objectives}", "list each once"))
    if objectives and objectives[0] in COST_FIGURES:
        issues.append(ConfigIssue("tune.objectives[0]", f"{objectives[0]!r} is a cost figure; the first objective "
                                  "is a metric of the task (it picks best/ and best_recipe.yaml)",
                                  f"e.g. tune.objectives=[accuracy,{objectives[0]}]"))
    for key, bound in (tune.constraints or {}).items():
        if key in metrics:
            issues.append(ConfigIssue(f"tune.constraints.{key}", "a metric cannot be a constraint, only a cost "
                                      f"figure ({', '.join(COST_FIGURES)})", "optimise the metric: it is the "
                                      "objective (or list it in tune.objectives)"))
            continue
        issues += choice_issues(f"tune.constraints.{key}", key, COST_FIGURES)
        issues += range_issues(f"tune.constraints.{key}", bound, 0, low_open=True)
    if tune.multi_objective:
        issues += _multi_objective_issues(tune)
    return issues


def _multi_objective_issues(tune: TuneConfig) -> list[ConfigIssue]:
    """Settings that need a single objective."""
    issues = []
    if tune.sampler not in MULTI_OBJECTIVE_SAMPLERS:
        issues.append(ConfigIssue("tune.sampler", f"{tune.sampler} optimises one objective, tune.objectives lists "
                                  f"{len(tune.objectives)}", f"use one of {', '.join(MULTI_OBJECTIVE_SAMPLERS)}, or "
                                  "one objective with bounds in tune.constraints"))
    for key, value, why in (("confirm_seeds", tune.confirm_seeds, "confirmation ranks configs by one objective"),
                            ("retrain_full", tune.retrain_full, "retraining takes one best config")):
        if value:
            issues.append(ConfigIssue(f"tune.{key}", f"{why}; a multi-objective sweep reports a Pareto front",
                                      f"set tune.{key}={'0' if key == 'confirm_seeds' else 'false'}, and train or "
                                      "reproduce the Pareto recipe you choose (pareto/trial-NNNN.yaml) instead"))
    return issues


def _dimensions(key: str, node: Any, issues: list[ConfigIssue]) -> dict[str, Any]:
    """``node`` (config keys, nested, each with a search dimension) as ``{"a.b": spec}``; another shape is an issue."""
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        issues.append(ConfigIssue(key, f"expected config keys with search dimensions, got {node!r}",
                                  f"e.g. {key}.optimizer.lr='loguniform(1e-5,1e-3)'"))
        return {}
    return flatten(node)


def _default_space(node: Any, issues: list[ConfigIssue]) -> dict[str, dict[str, Any]] | None:
    """tune.default_space: a space per model kind (scratch, pretrained), or None for none."""
    if node is None:
        return None
    kinds = ("scratch", PRETRAINED)
    if not isinstance(node, Mapping):
        issues.append(ConfigIssue("tune.default_space", f"expected a space per model kind ({', '.join(kinds)}), "
                                  f"got {node!r}", "set it to null (no default dimensions), or give each kind's"))
        return None
    spaces = {}
    for kind, dims in node.items():
        if kind not in kinds:
            issues.extend(choice_issues(f"tune.default_space.{kind}", kind, kinds))
        else:
            spaces[kind] = _dimensions(f"tune.default_space.{kind}", dims, issues)
    return spaces


def build_tune_config(plain: Mapping[str, Any] | None, space_overrides: Mapping[str, Any] = ()) -> TuneConfig:
    """The typed `TuneConfig` of a composed `tune` section plus the command line's dimensions."""
    from nlptune.config.schema import build_section

    issues: list[ConfigIssue] = []
    data = dict(plain or {})
    space = {**_dimensions("tune.space", data.pop("space", None), issues), **dict(space_overrides or {})}
    default_space = _default_space(data.pop("default_space", None), issues)
    tune = build_section(TuneConfig, "tune", data, issues)
    if tune is not None:  # beside keys refused for their type, every check that can still judge the others
        tune = dataclasses.replace(tune, space=space, default_space=default_space)
        issues += value_issues(_issue_groups(tune), refused={issue.key for issue in issues})
    if issues:
        raise ConfigError(issues)
    return tune
