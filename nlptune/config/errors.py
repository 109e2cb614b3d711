"""Errors a user can cause through configuration, reported all at once."""
from __future__ import annotations

from dataclasses import dataclass

from nlptune.utils.errors import NlptuneError, explain_os_error  # noqa: F401 - NlptuneError: defined in utils


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


def describe_os_error(err: OSError) -> str:
    """One line for an operating-system error: what happened, the path(s) involved and the fix."""
    import errno

    name = errno.errorcode.get(err.errno or -1, "")
    paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    text = err.strerror or str(err) or type(err).__name__
    what, fix = explain_os_error(err.errno, err.filename, text)
    return f"{text}{f': {paths}' if paths else ''}{f' ({name})' if name else ''}: {what}; {fix}"
