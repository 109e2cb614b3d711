"""The live sweep table (rich): trials as they start, report, finish, get pruned or fail.

On a terminal it redraws in place; otherwise (logs, CI) it prints one line per finished trial.
"""
from __future__ import annotations

import math

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from nlptune.tuning.goals import first_value
from nlptune.tuning.plan import SweepPlan
from nlptune.tuning.results import candidates, duration_s

STYLES = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red", "RUNNING": "cyan", "WAITING": "dim"}
SHORT_STATES = {"COMPLETE": "done", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}
ROWS = 20
REASONS = 3  # failure reasons shown under the table (the newest)
PARAM_WIDTH = 11  # a parameter column with its padding: below this per parameter, they share one column


def _value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if not math.isfinite(value) or abs(value) < 1e-2 else f"{value:.4f}"
    return str(value)


def _short(value) -> str:
    """A table cell: 3 significant digits for floats, thousands as k/M for counts."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value / 1e6:.1f}M" if abs(value) >= 1e6 else f"{value // 1000}k"
    return _value(value)


def _current(t):
    """A trial's value (its first objective's), or its latest reported one while it runs."""
    if t.values:
        return first_value(t)
    return t.intermediate_values[t.last_step] if t.last_step is not None else None


class SweepTable:
    """Shows the trials of a study; `update(trials)` whenever they may have changed."""

    def __init__(self, plan: SweepPlan, quiet: bool = False, console: Console | None = None):
        self.plan, self.quiet = plan, quiet
        self.console = console or Console(highlight=False)
        self.live = None
        self.printed: set[int] = set()
        if not quiet and self.console.is_terminal:
            self.live = Live(console=self.console, auto_refresh=False, transient=False)
            self.live.start()

    def table(self, trials: list):
        """The newest trials (one row each; the parameters in columns when they fit the console, else
        folded into one), then the newest failures' reasons: readable at 80 columns."""
        best = None
        complete = sum(1 for t in trials if t.state.name == "COMPLETE")
        done = candidates(trials, self.plan)  # (within tune.constraints' bounds)
        if done:
            best = (max if self.plan.direction == "maximize" else min)(done, key=first_value).number
        keys = list(self.plan.space)
        split = self.console.width >= 45 + PARAM_WIDTH * len(keys)
        table = Table(title=f"sweep {self.plan.study_name}: {complete}/{self.plan.n_trials} complete",
                      title_justify="left", box=box.SIMPLE_HEAD)
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column(self.plan.metric, justify="right", no_wrap=True, min_width=6)
        table.add_column("samples", justify="right", no_wrap=True)
        table.add_column("s", justify="right", no_wrap=True)
        if split:
            for key in keys:
                table.add_column(key.split(".")[-1], justify="right", overflow="fold")
        else:
            table.add_column("parameters", overflow="fold", ratio=1)
        for t in trials[-ROWS:]:
            state = f"[{STYLES.get(t.state.name, '')}]{SHORT_STATES.get(t.state.name, t.state.name.lower())}"
            number = f"{t.number}*" if t.number == best else str(t.number)
            params = [_short(t.params.get(k)) for k in keys] if split else \
                [" ".join(f"{k.split('.')[-1]}={_short(t.params[k])}" for k in keys if k in t.params)]
            table.add_row(number, state, _short(_current(t)), _short(t.user_attrs.get("train_samples")),
                          _short(duration_s(t)), *params)
        failed = [t for t in trials if t.state.name == "FAIL" and t.user_attrs.get("fail_reason")][-REASONS:]
        notes = [Text(f"trial {t.number} failed: {t.user_attrs['fail_reason']}", overflow="ellipsis", no_wrap=True)
                 for t in failed]
        if best is not None:
            notes.insert(0, Text("* best so far", style="dim"))
        return Group(table, *notes)

    def update(self, trials: list) -> None:
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(self.table(trials), refresh=True)
            return
        for t in trials:  # not a terminal: one line per finished trial
            if t.state.is_finished() and t.number not in self.printed:
                self.printed.add(t.number)
                params = " ".join(f"{k}={_value(v)}" for k, v in t.params.items())
                reason = f" ({t.user_attrs.get('fail_reason')})" if t.state.name == "FAIL" else ""
                self.console.print(f"trial {t.number} {t.state.name.lower()} {self.plan.metric}={_value(first_value(t))} "
                                   f"{params}{reason}", soft_wrap=True)  # one line per trial: grep-able logs

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
