"""Errors a user can cause through configuration, reported all at once."""
from __future__ import annotations

from dataclasses import dataclass

from nlptune.utils.errors import NlptuneError  # noqa: F401 - defined in utils: file helpers raise it too


@dataclass(frozen=True)
class ConfigIssue:
    key: str  # dotted key, e.g. "optimizer.lr"
    problem: str  # what is wrong, with the offending value
    fix: str  # what to do instead

    def __str__(self) -> str:
        return f"{self.key}: {self.problem} -> {self.fix}"


class ConfigError(NlptuneError):
    def __init__(self, issues: list[ConfigIssue], source: str | None = None):
        self.issues = list(issues)
        where = f" in {source}" if source else ""
        lines = [f"{len(self.issues)} config error(s){where}:"] + [f"  - {i}" for i in self.issues]
        super().__init__("\n".join(lines))
