"""The two value checks every config section uses: a value from a list of choices, a number within a range.

Each returns the problems found as `ConfigIssue`s (empty when the value is fine), so a caller collects every
problem of a config before raising one `ConfigError`.
"""
from __future__ import annotations

import difflib
from typing import Any, Iterable

from nlptune.config.errors import ConfigIssue


def choice_issues(key: str, value: Any, choices: Iterable[str]) -> list[ConfigIssue]:
    """A problem when ``value`` is not one of ``choices`` (naming the closest one)."""
    choices = list(choices)
    if value in choices:
        return []
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return [ConfigIssue(key, f"unknown value {value!r}", f"{hint}choose one of: {', '.join(choices)}")]


def range_issues(key: str, value: Any, low: float, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = True) -> list[ConfigIssue]:
    """A problem when ``value`` lies outside [low, high) (ends open or closed as asked); None is not checked."""
    if value is None:
        return []
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if not (too_low or too_high):
        return []
    lo = f"{'(' if low_open else '['}{low}"
    hi = f"{high}{')' if high_open else ']'}" if high is not None else "inf)"
    return [ConfigIssue(key, f"value {value!r} is out of range {lo}, {hi}", f"set {key} within {lo}, {hi}")]
