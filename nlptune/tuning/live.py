"""The live sweep table (rich): trials as they start, report, finish, get pruned or fail.

On a terminal it redraws in place; otherwise (logs, CI) it prints one line per finished trial.
"""
from __future__ import annotations

import math

from rich.console import Console
from rich.live import Live
from rich.table import Table

from nlptune.tuning.plan import SweepPlan
from nlptune.tuning.results import duration_s

STYLES = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red", "RUNNING": "cyan", "WAITING": "dim"}
ROWS = 20


def _value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if not math.isfinite(value) or abs(value) < 1e-2 else f"{value:.4f}"
    return str(value)


class SweepTable:
    """Shows the trials of a study; `update(trials)` whenever they may have changed."""

    def __init__(self, plan: SweepPlan, quiet: bool = False):
        self.plan, self.quiet = plan, quiet
        self.console = Console(highlight=False)
        self.live = None
        self.printed: set[int] = set()
        if not quiet and self.console.is_terminal:
            self.live = Live(console=self.console, auto_refresh=False, transient=False)
            self.live.start()

    def table(self, trials: list) -> Table:
        best = None
        done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
        if done:
            best = (max if self.plan.direction == "maximize" else min)(done, key=lambda t: t.value).number
        table = Table(title=f"sweep {self.plan.study_name}: {len(done)}/{self.plan.n_trials} complete",
                      title_justify="left")
        keys = list(self.plan.space)
        for column in ["#", "state", self.plan.metric, "samples", "s", *[k.split(".")[-1] for k in keys], "note"]:
            table.add_column(column, justify="right" if column not in ("state", "note") else "left")
        for t in trials[-ROWS:]:
            value = t.value if t.value is not None else (t.intermediate_values[t.last_step]
                                                         if t.last_step is not None else None)
            note = "best" if t.number == best else (t.user_attrs.get("fail_reason") or "")
            table.add_row(str(t.number), f"[{STYLES.get(t.state.name, '')}]{t.state.name.lower()}", _value(value),
                          _value(t.user_attrs.get("train_samples")), _value(duration_s(t)),
                          *[_value(t.params.get(k)) for k in keys], note[:60])
        return table

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
                self.console.print(f"trial {t.number} {t.state.name.lower()} {self.plan.metric}={_value(t.value)} "
                                   f"{params}{reason}")

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
