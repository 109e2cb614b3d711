"""The two value checks every config section uses: a value from a list of choices, a number within a range.

Each returns the problems found as `ConfigIssue`s (empty when the value is fine), so a caller collects every
problem of a config before raising one `ConfigError`; `value_issues` runs a section's groups of checks.
"""
from __future__ import annotations

import difflib
import math
from typing import Any, Callable, Iterable, Sequence

from nlptune.config.errors import ConfigIssue
from nlptune.utils.plain import plain_data


def with_article(noun: str) -> str:
    """``noun`` after "a" or "an" (for messages: "set it to an int")."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def choice_issues(key: str, value: Any, choices: Iterable[str]) -> list[ConfigIssue]:
    """A problem when ``value`` is not one of ``choices`` (naming the closest one)."""
    choices = list(choices)
    if value in choices:
        return []
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return [ConfigIssue(key, f"unknown value {value!r}", f"{hint}choose one of: {', '.join(choices)}")]


def type_issues(key: str, value: Any, annotation: str) -> list[ConfigIssue]:
    """A problem when ``value`` does not fit a simple type ``annotation`` as written in a signature
    ("int", "float | None", "bool", "str", "Sequence[int]"); other annotations are not checked."""
    accepted = []
    for part in str(annotation).replace(" ", "").split("|"):
        if part in _SIMPLE_TYPES:
            accepted.append(_SIMPLE_TYPES[part])
        elif part in ("Sequence[int]", "tuple[int,...]", "list[int]"):
            accepted.append(_is_int_list)
        else:
            return []  # a type this check does not know: the builder checks it
    if any(check(value) for check in accepted):
        return []
    wanted = " or ".join(part.strip() for part in str(annotation).split("|")).replace("None", "null")
    return [ConfigIssue(key, f"expected {wanted}, got {plain_data(value)!r}",  # as written: a list, a mapping
                        f"set {key} to a value of that type")]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_int_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(_is_int(v) for v in value)


_SIMPLE_TYPES = {
    "int": _is_int,
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "None": lambda v: v is None,
}


def range_issues(key: str, value: Any, low: float, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = True) -> list[ConfigIssue]:
    """A problem when ``value`` lies outside [low, high) (ends open or closed as asked); None is not checked."""
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [ConfigIssue(key, f"expected a number, got {value!r}", f"set {key} to a number")]
    lo = f"{'(' if low_open else '['}{low}"
    hi = f"{high}{')' if high_open else ']'}" if high is not None else "inf)"
    # NaN compares False with every bound, and no key means anything by inf
    if isinstance(value, float) and not math.isfinite(value):
        return [ConfigIssue(key, f"value {value!r} is not a finite number", f"set {key} within {lo}, {hi}")]
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if not (too_low or too_high):
        return []
    return [ConfigIssue(key, f"value {value!r} is out of range {lo}, {hi}", f"set {key} within {lo}, {hi}")]


def value_issues(groups: Sequence[Callable[[], list[ConfigIssue]]], refused: Iterable[str] = ()) -> list[ConfigIssue]:
    """The problems the groups of value checks find. With ``refused`` (keys already reported, e.g. for their type)
    each group runs on its own, one that trips over such an ill-typed value is left out, and a refused key is not
    named twice: one pass names every problem of a config. Without, a group that fails is a bug and raises."""
    refused = set(refused)
    if not refused:
        return [issue for group in groups for issue in group()]

    def judged(key: str) -> bool:  # neither a refused key nor a part of one (tune.objectives[1] of tune.objectives)
        return key not in refused and not any(key.startswith((r + "[", r + ".")) for r in refused)

    found = []
    for group in groups:
        try:
            found.extend(issue for issue in group() if judged(issue.key))
        except (TypeError, ValueError, AttributeError, KeyError, IndexError):  # over an ill-typed or absent value
            continue
    return found
