"""The sweep plan: everything a worker needs, decided once by the `nlptune tune` process and written to
`<sweep dir>/sweep.json` so that local workers (and later `resume=auto` runs) read the same thing.

Building it validates the whole sweep before any trial runs: the base config, the search space
(composed once at each dimension's bounds) and the tune settings.
"""
from __future__ import annotations

import dataclasses
import json
import re
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from nlptune.config.errors import ConfigError, ConfigIssue, NlptuneError
from nlptune.config.tune import TuneArgs, TuneConfig
from nlptune.train.rundir import SWEEP_PLAN_FILE
from nlptune.tuning.space import Dimension, grid_space, parse_space, to_override
from nlptune.utils.files import atomic_write_text
from nlptune.utils.plain import parse_json, plain_data

PLAN_FILE = SWEEP_PLAN_FILE
JOURNAL_FILE = "study.journal"
DEFAULT_TRIALS = 20


@dataclass
class SweepPlan:
    sweep_dir: str
    storage: str  # an RDB URL, or "journal:<path>"
    study_name: str
    overrides: list[str]  # the user's overrides every trial starts from
    space: dict[str, str]  # {key: spec} actually searched
    tune: dict[str, Any]  # the scalar TuneConfig fields
    n_trials: int
    metric: str  # the first objective: the task's main metric unless tune.objectives says otherwise
    direction: str  # maximize | minimize (the first objective's)
    budget_samples: int  # training samples of one unpruned trial (all folds), from the base config
    seed: int  # the samplers' seed
    run_seed: int  # the trials' training seed (confirmation runs use run_seed + 1, + 2, ...)
    processes_per_trial: int = 1
    folds: list[list[str]] = field(default_factory=list)  # [[train_file, validation_file], ...]
    groups: list[str] = field(default_factory=list)  # config groups (a dimension may pick one)
    created: str = ""
    # cost-aware sweeps (empty: the single objective `metric`, no bounds; older sweep.json files lack them)
    objectives: list[str] = field(default_factory=list)  # several: a multi-objective study (a Pareto front)
    directions: list[str] = field(default_factory=list)  # one per objective
    constraints: dict[str, float] = field(default_factory=dict)  # {cost figure: bound}
    # {dimension: {group: [options]}}: a dimension searched only by the trials whose group took one of the options
    conditions: dict[str, dict[str, list]] = field(default_factory=dict)

    @property
    def tune_config(self) -> TuneConfig:
        return TuneConfig(**self.tune)

    @property
    def dimensions(self) -> list[Dimension]:
        from nlptune.tuning.conditional import with_conditions

        return with_conditions(parse_space(self.space), self.conditions)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def all_directions(self) -> list[str]:
        """One direction per objective (a single-objective plan: its metric's)."""
        return list(self.directions) if self.multi_objective else [self.direction]

    @property
    def storage_shown(self) -> str:
        """The storage as messages and reports name it: an RDB URL's password masked (the plan keeps it: the
        workers connect with it)."""
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", self.storage)

    @property
    def journal(self) -> str | None:
        return self.storage[len("journal:"):] if self.storage.startswith("journal:") else None

    def save(self) -> None:
        path = Path(self.sweep_dir) / PLAN_FILE
        # an RDB URL's password: the file is the owner's alone
        atomic_write_text(path, json.dumps(dataclasses.asdict(self), indent=2) + "\n",
                          private=self.storage_shown != self.storage)

    @classmethod
    def load(cls, sweep_dir: str | Path) -> "SweepPlan":
        """The plan a sweep saved in ``sweep_dir``; a damaged sweep.json (not JSON, or not a plan's fields and
        types) is one `NlptuneError` naming it."""
        path = Path(sweep_dir) / PLAN_FILE
        try:
            data = parse_json(path.read_text(encoding="utf-8"))
        except ValueError as err:  # invalid JSON or UTF-8, nesting past the parser's depth
            raise _damaged(path, str(err)) from None
        problem = _plan_problem(data)
        if problem:
            raise _damaged(path, problem)
        return cls(**data)


def _plan_problem(data: Any) -> str | None:
    """What makes ``data`` not a `SweepPlan`'s fields: None when it is one (an older plan may lack fields that
    have defaults; a value of the wrong type is named)."""
    if not isinstance(data, dict):
        return f"it holds {type(data).__name__}, not a JSON object"
    fields = {f.name: f for f in dataclasses.fields(SweepPlan)}
    hints = typing.get_type_hints(SweepPlan)
    missing = [name for name, f in fields.items() if name not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    unknown = sorted(set(data) - set(fields))
    if missing or unknown:
        return "; ".join(f"{what} {names}" for what, names in (("missing keys", missing), ("unknown keys", unknown))
                         if names)
    for name, value in data.items():
        expected = _runtime_types(hints[name])
        if not isinstance(value, expected):
            return f"{name} is {type(value).__name__}, not {' or '.join(t.__name__ for t in expected)}"
    return None


def _runtime_types(hint: Any) -> tuple[type, ...]:
    """The classes a value of type ``hint`` is an instance of (``list[str]`` -> list, ``str | None`` -> str and
    NoneType)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(typing.get_origin(arg) or arg for arg in typing.get_args(hint))
    return (typing.get_origin(hint) or hint,)


def _damaged(path: Path, detail: str) -> NlptuneError:
    return NlptuneError(f"{path} is not the plan of an nlptune sweep ({detail}) -> restore it from a copy of the "
                        "sweep, or start the sweep again in another tune.dir")


def tune_fields(tune: TuneConfig) -> dict[str, Any]:
    """The settings of ``tune`` as plain data (the space is stored resolved, apart)."""
    return {f.name: plain_data(getattr(tune, f.name)) for f in dataclasses.fields(tune)
            if f.name not in ("space", "default_space")}


def _remap(issue: ConfigIssue, keys: dict[str, str], corner: list[str]) -> ConfigIssue:
    """An issue of a composed corner, named after the dimension that caused it (``keys``: config key -> name)."""
    if issue.key not in keys and issue.key != "overrides":
        return issue
    return ConfigIssue(f"tune.space.{keys[issue.key]}" if issue.key in keys else "tune.space",
                       f"{issue.problem} (a trial may run with: {' '.join(corner)})", issue.fix)


def _same_problem(issue: ConfigIssue) -> tuple:
    """What makes two corners' issues the same problem: the key and what is wrong, not the corner's other
    values (an unknown key is one problem whatever value it was given)."""
    problem = re.sub(r" in override '[^']*'", "", issue.problem).split(" (a trial may run with:")[0]
    return issue.key, problem


def _corners(dims: list[Dimension]) -> list[list[tuple[Dimension, object]]]:
    """The points a sweep's configs are checked at: each dimension's bounds (every option of a choice). The
    group dimensions that others depend on (`Dimension.when`) go through their options first; at each, the
    dimensions that apply to it go through their bounds."""
    def spread(members: list[Dimension]) -> list[list[tuple[Dimension, object]]]:
        width = max([len(d.bounds()) for d in members] or [1])
        return [[(d, d.bounds()[min(i, len(d.bounds()) - 1)]) for d in members] for i in range(width)]

    gates = [d for d in dims if any(d.key == group for other in dims for group, _ in other.when)]
    corners = []
    for chosen in spread(gates):
        values = {d.key: value for d, value in chosen}
        corners += [chosen + rest for rest in spread([d for d in dims if d not in gates and d.applies(values)])]
    return corners


def check_space(dims: list[Dimension], overrides: Sequence[str], groups: Sequence[str]) -> None:
    """Compose the config at each dimension's bounds (every option of a choice), all at once per corner,
    so an unknown key or an out-of-range bound stops the sweep before any trial runs; every problem of
    every dimension is reported together, each once. A conditional dimension is checked with the options of
    its group that it applies to."""
    from nlptune.recipes.run import load_run_config

    seen, issues, known = set(), [], set()
    for points in _corners(dims):
        corner = [to_override(d.config_key, value, tuple(groups)) for d, value in points]
        if not corner or tuple(corner) in seen:
            continue
        seen.add(tuple(corner))
        for issue in _corner_issues(load_run_config, overrides, corner, [d for d, _ in points]):
            if _same_problem(issue) not in known:
                known.add(_same_problem(issue))
                issues.append(issue)
    if issues:
        raise ConfigError(issues)


def _corner_issues(load, overrides: Sequence[str], corner: list[str], dims: list[Dimension]) -> list[ConfigIssue]:
    """The problems of one corner. An unknown key or group option stops composition before the values are
    checked, so the corner is composed again without the dimensions already found at fault, until it
    composes or nothing is left to take out."""
    keys, issues, rest = {d.config_key: d.key for d in dims}, [], list(corner)
    while True:
        try:
            load(list(overrides) + rest)
            return issues
        except ConfigError as err:
            issues += [_remap(issue, keys, rest) for issue in err.issues]
            at_fault = {issue.key for issue in err.issues if issue.key in keys}
        smaller = [item for item in rest if item.partition("=")[0] not in at_fault]
        if smaller == rest:
            return issues
        rest = smaller


def grid_dimensions(dims: list[Dimension]) -> list[Dimension]:
    """For sampler=grid: the discrete dimensions (the continuous ones keep their config value, with a warning)."""
    from nlptune.utils.console import warn

    grid = grid_space(dims)
    ignored = [d.key for d in dims if d.key not in grid]
    if not grid:
        raise ConfigError([ConfigIssue("tune.sampler", "grid search needs choice(), range() or int() dimensions, "
                                       "the space has only continuous ones", "add e.g. tune.space.optimizer.lr="
                                       "'choice(1e-3,3e-3)', or pick tune.sampler=tpe")])
    if ignored:
        warn(f"grid search leaves {', '.join(ignored)} at their config value (continuous dimensions have no grid)")
    return [d for d in dims if d.key in grid]


def grid_size(dims: list[Dimension]) -> int:
    size = 1
    for values in grid_space(dims).values():
        size *= len(values)
    return size


def default_sweep_dir(task: str, model: str) -> Path:
    return Path("runs") / "sweeps" / f"{task}-{model}" / time.strftime("%Y%m%d-%H%M%S")


def find_sweep_dir(tune: TuneConfig, args: TuneArgs, task: str, model: str) -> tuple[Path, bool]:
    """The sweep directory and whether it continues an earlier sweep (`resume=auto` or `resume=<dir>`)."""
    resume = args.resume
    if resume not in (None, "auto", "null", "never"):
        path = Path(resume).expanduser()
        if not (path / PLAN_FILE).is_file():
            raise NlptuneError(f"resume={resume}: no sweep there ({path / PLAN_FILE} is missing) -> give the sweep "
                               "directory of an earlier `nlptune tune`, or resume=auto")
        return path, True
    if tune.dir:
        path = Path(tune.dir).expanduser()
        exists = (path / PLAN_FILE).is_file()
        if exists and resume != "auto":
            raise NlptuneError(f"tune.dir={path} already holds a sweep -> add resume=auto to continue it, "
                               "or choose another tune.dir")
        if not exists:
            refuse_foreign_sweep_dir(path)
        return path, exists
    if resume == "auto":
        parent = default_sweep_dir(task, model).parent
        earlier = sorted(p.parent for p in parent.glob(f"*/{PLAN_FILE}")) if parent.is_dir() else []
        if earlier:
            return earlier[-1], True
    path = default_sweep_dir(task, model)
    refuse_foreign_sweep_dir(path)  # two sweeps started in the same second share the name
    return path, False


def refuse_foreign_sweep_dir(sweep_dir: Path) -> None:
    """Refuse ``sweep_dir`` for a new sweep unless it is new or empty (a lock aside: whether its holder still runs
    is for the lock to tell): a new sweep writes its leaderboard.csv, summary.md, plots/, best/ ... there, over
    whatever files of the same names it holds. An earlier sweep (its sweep.json) is continued, never started anew."""
    from nlptune.train.rundir import not_written, refuse_nested_run, shown
    from nlptune.utils.lock import LOCK_FILE
    from nlptune.utils.text import listed

    # inside a saved model or a run's best/, checkpoints/, plots/: every trial would be refused there
    refuse_nested_run(sweep_dir, "tune.dir", "the sweep's trials and files")
    foreign = not_written(sweep_dir, (LOCK_FILE,))
    if foreign:
        raise NlptuneError(f"the sweep directory {sweep_dir} (tune.dir) already holds files but no sweep "
                           f"({PLAN_FILE}): {listed(shown(sweep_dir, foreign), 3)}; nlptune never starts a sweep "
                           "among files it did not write -> give a new or empty tune.dir (or leave it unset for a new "
                           "timestamped folder); to continue an earlier sweep, give its own folder with resume=auto")
