"""Search dimensions: parse `loguniform(a,b)`, `uniform(a,b)`, `int(a,b[,step|log])`, `choice(...)`,
`range(start,stop[,step])`, suggest them on an Optuna trial, and turn values into config overrides.

Each dimension's key is any config key (`optimizer.lr`, `model.hidden_size`) or a config group
(`model`: `choice(lstm,gru)`); the Optuna parameter is named after the key. A key may end in `@scratch` or
`@pretrained` (the dimension of one model kind, when a `model` dimension picks models of both kinds: see
`nlptune.tuning.conditional`). A dimension may apply only to some trials (`Dimension.when`): those whose group
dimension (`model`) picked an option that has the key.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from nlptune.config.compose import override_value
from nlptune.config.errors import ConfigError, ConfigIssue

KINDS = ("loguniform", "uniform", "int", "choice", "range")
_CALL = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$", re.S)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+$")
EXAMPLES = ("loguniform(1e-4,1e-2)", "uniform(0,0.5)", "int(1,4)", "choice(128,256)", "range(1,5)")
KIND_MARK = "@"  # `optimizer.lr@pretrained`: the dimension of the trials whose model is of that kind
MODEL_KINDS = ("scratch", "pretrained")


def config_key(name: str) -> str:
    """The config key a dimension (an Optuna parameter) sets: its name without an `@kind` suffix."""
    return name.partition(KIND_MARK)[0]


@dataclass(frozen=True)
class Dimension:
    """One searched key. `values` holds the options of choice/range; `low`/`high` bound the numeric ones."""

    key: str
    kind: str
    spec: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    values: tuple = ()
    # ((group, (option, ...)), ...): it applies only to trials whose group dimension took one of these options
    when: tuple = ()

    @property
    def config_key(self) -> str:
        """The config key it sets (`key` is the Optuna parameter's name, which may end in `@kind`)."""
        return config_key(self.key)

    def applies(self, chosen: Mapping[str, Any]) -> bool:
        """Whether it is searched in a trial whose group dimensions took the values ``chosen`` ({key: value})."""
        return all(chosen[group] in options for group, options in self.when if group in chosen)

    @property
    def is_discrete(self) -> bool:
        """Whether the grid sampler can enumerate it (choice, range, int)."""
        return self.kind in ("choice", "range", "int")

    def grid(self) -> list:
        """Every value of a discrete dimension, in order."""
        if self.kind == "int":
            if self.log:
                raise ValueError("a log-scaled int() dimension has no grid")
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        return list(self.values)

    def bounds(self) -> list:
        """The values that bound what a trial may get: both ends, and every option of a choice."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "range":
            return [self.values[0], self.values[-1]]
        return [self.low, self.high]


def _issue(key: str, spec: str, problem: str) -> ConfigIssue:
    return ConfigIssue(f"tune.space.{key}", f"{problem} in {spec!r}", f"write one of: {', '.join(EXAMPLES)}")


def _split_args(text: str) -> list[str]:
    """Split on commas outside brackets and quotes."""
    parts, depth, quote, current = [], 0, None, ""
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _scalar(text: str) -> Any:
    """A number, bool, null or string (PyYAML would read `1e-4` as a string, so numbers come first)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if _NUMBER.match(text):  # "nan", "inf" and other words stay strings
        return int(text) if _INT.match(text) else float(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return None if lowered in ("null", "none", "~") else text


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numeric(key: str, spec: str, kind: str, args: list[Any]) -> Dimension:
    if len(args) != 2 or not all(_number(a) for a in args):
        raise ConfigError([_issue(key, spec, f"{kind}() takes two numbers")])
    low, high = float(args[0]), float(args[1])
    if not low < high:
        raise ConfigError([_issue(key, spec, f"the lower bound {args[0]} is not below the upper bound {args[1]}")])
    if kind == "loguniform" and low <= 0:
        raise ConfigError([_issue(key, spec, "loguniform() needs a lower bound above 0")])
    return Dimension(key, kind, spec, low=low, high=high, log=kind == "loguniform")


def _int(key: str, spec: str, args: list[Any]) -> Dimension:
    third = args[2] if len(args) == 3 else None
    if len(args) not in (2, 3) or not all(isinstance(a, int) and not isinstance(a, bool) for a in args[:2]):
        raise ConfigError([_issue(key, spec, "int() takes two integers and an optional step or 'log'")])
    low, high = args[0], args[1]
    log = third == "log"
    step = 1 if third is None or log else third
    if not isinstance(step, int) or isinstance(step, bool) or step < 1:
        raise ConfigError([_issue(key, spec, "the third argument of int() is a positive integer step or 'log'")])
    if not low < high:
        raise ConfigError([_issue(key, spec, f"the lower bound {low} is not below the upper bound {high}")])
    if log and low < 1:
        raise ConfigError([_issue(key, spec, "int(a,b,log) needs a >= 1")])
    if (high - low) % step:
        raise ConfigError([_issue(key, spec, f"the step {step} does not divide {high} - {low}")])
    return Dimension(key, "int", spec, low=low, high=high, step=None if log else step, log=log)


def _range(key: str, spec: str, args: list[Any]) -> Dimension:
    if len(args) not in (2, 3) or not all(_number(a) for a in args):
        raise ConfigError([_issue(key, spec, "range() takes start, stop and an optional step (numbers)")])
    start, stop = args[0], args[1]
    step = args[2] if len(args) == 3 else 1
    if step <= 0 or start >= stop:
        raise ConfigError([_issue(key, spec, "range() needs start < stop and a positive step (stop is excluded)")])
    if all(isinstance(a, int) for a in (start, stop, step)):
        values = tuple(range(start, stop, step))
    else:  # float ranges: start, start + step, ... below stop, rounded to the step's precision
        digits = max(0, -math.floor(math.log10(abs(step)))) + 6
        count = math.ceil((stop - start) / step - 1e-9)
        values = tuple(round(start + i * step, digits) for i in range(count))
    return Dimension(key, "range", spec, values=values)


def _choice(key: str, spec: str, args: list[Any]) -> Dimension:
    if not args:
        raise ConfigError([_issue(key, spec, "choice() needs at least one option")])
    for value in args:
        if not (value is None or isinstance(value, (bool, int, str)) or _number(value)):
            raise ConfigError([_issue(key, spec, f"the option {value!r} is not a number, string, bool or null")])
    if len(set(map(repr, args))) != len(args):
        raise ConfigError([_issue(key, spec, "an option is repeated")])
    return Dimension(key, "choice", spec, values=tuple(args))


def parse_dimension(key: str, spec: str) -> Dimension:
    """Parse one dimension, e.g. ``parse_dimension("optimizer.lr", "loguniform(1e-4,1e-2)")``."""
    kind = key.partition(KIND_MARK)[2]
    if KIND_MARK in key and kind not in MODEL_KINDS:
        raise ConfigError([ConfigIssue(f"tune.space.{key}", f"unknown model kind {kind!r} after '{KIND_MARK}'",
                                       f"write {config_key(key)}@scratch or {config_key(key)}@pretrained (the "
                                       "dimension of the trials whose model is of that kind)")])
    match = _CALL.match(str(spec))
    if not match or match.group(1) not in KINDS:
        raise ConfigError([_issue(key, str(spec), "not a search dimension")])
    kind, inner = match.groups()
    args = [_scalar(a) for a in _split_args(inner)]
    if kind in ("loguniform", "uniform"):
        return _numeric(key, spec, kind, args)
    if kind == "int":
        return _int(key, spec, args)
    if kind == "range":
        return _range(key, spec, args)
    return _choice(key, spec, args)


def parse_space(space: Mapping[str, str]) -> list[Dimension]:
    """Every dimension of ``space`` ({key: spec}); all syntax problems are reported together."""
    dims, issues = parse_space_lenient(space)
    if issues:
        raise ConfigError(issues)
    return dims


def parse_space_lenient(space: Mapping[str, str]) -> tuple[list[Dimension], list[ConfigIssue]]:
    """The dimensions of ``space`` that parse, and the syntax problems of the others (so that a caller can
    check the parsed ones further and report every problem at once)."""
    dims, issues = [], []
    for key, spec in space.items():
        try:
            dims.append(parse_dimension(key, spec))
        except ConfigError as err:
            issues += err.issues
    return dims, issues


def suggest(trial, dim: Dimension) -> Any:
    """Ask ``trial`` (an Optuna trial) for this dimension's value."""
    if dim.kind in ("loguniform", "uniform"):
        return trial.suggest_float(dim.key, dim.low, dim.high, log=dim.log)
    if dim.kind == "int":
        return trial.suggest_int(dim.key, int(dim.low), int(dim.high), step=dim.step or 1, log=dim.log)
    if dim.kind == "range" and all(isinstance(v, int) for v in dim.values):
        step = dim.values[1] - dim.values[0] if len(dim.values) > 1 else 1
        return trial.suggest_int(dim.key, dim.values[0], dim.values[-1], step=step)
    return trial.suggest_categorical(dim.key, list(dim.values))


def suggest_all(trial, dims: list[Dimension]) -> dict[str, Any]:
    """A trial's values ({parameter: value}): the dimensions others depend on first (a `model` choice), then
    each dimension that applies to what they took (Optuna's define-by-run: a skipped one is not a parameter)."""
    gates = {group for dim in dims for group, _ in dim.when}
    params: dict[str, Any] = {}
    for dim in sorted(dims, key=lambda d: d.key not in gates):  # (a stable sort: the plan's order otherwise)
        if dim.applies(params):
            params[dim.key] = suggest(trial, dim)
    return params


def to_override(key: str, value: Any, groups: tuple[str, ...] = ()) -> str:
    """The Hydra override setting ``key`` to ``value`` (a config group takes the bare option name)."""
    if key in groups:
        return f"{key}={value}"
    return f"{key}={override_value(value)}"  # a string quoted: a choice of strings stays a string


def param_overrides(params: Mapping[str, Any], groups: tuple[str, ...] = ()) -> list[str]:
    """The Hydra overrides that set a trial's parameters ({parameter: value}) on its config."""
    return [to_override(config_key(name), value, tuple(groups)) for name, value in params.items()]


def grid_space(dims: list[Dimension]) -> dict[str, list]:
    """The grid of the discrete dimensions: {key: values}."""
    return {d.key: d.grid() for d in dims if d.is_discrete and not (d.kind == "int" and d.log)}
