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


# errno -> what to do about it; the errno text itself says what happened
_OS_FIXES = {
    "EACCES": "check the permissions of the path, or choose one you can write to / read",
    "EPERM": "check the permissions of the path, or choose one you can write to / read",
    "EROFS": "the file system is read-only: choose a writable location (e.g. output_dir=...)",
    "ENOSPC": "the disk is full: free some space or choose another location, then run the command again",
    "EDQUOT": "the disk quota is exhausted: free some space or choose another location",
    "ENOENT": "check the path: it (or a folder above it) does not exist",
    "ENOTDIR": "a part of the path is a file where a folder is expected: fix the path or move the file",
    "EISDIR": "the path is a folder where a file is expected: give the path of a file",
    "EEXIST": "something already exists there: remove it or choose another path",
    "ENAMETOOLONG": "shorten the path",
    "ELOOP": "the path goes through a symbolic-link loop: fix the links or choose another path",
    "EMFILE": "too many open files: raise the limit (ulimit -n) or close other programs",
}


def describe_os_error(err: OSError) -> str:
    """One line for an operating-system error: the errno text, the path(s) involved and the fix."""
    import errno

    name = errno.errorcode.get(err.errno or -1, "")
    text = err.strerror or str(err) or type(err).__name__
    paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    fix = _OS_FIXES.get(name)
    blocker = _file_in_the_way(err.filename) if name in ("EEXIST", "ENOTDIR") else None
    if blocker is not None and name == "ENOTDIR":
        fix = f"{blocker} is a file where a folder is expected: choose another path or move the file"
    elif blocker is not None:  # mkdir(parents=True) under a file says only "File exists"
        fix = f"{blocker} is a file: if a folder is meant to be there, choose another path or move the file"
    return f"{text}{f': {paths}' if paths else ''}{f' ({name})' if name else ''}" + (f"; {fix}" if fix else "")


def _file_in_the_way(path) -> str | None:
    """The first existing part of ``path`` (itself or a folder above) that is not a folder, if any."""
    import os

    if not isinstance(path, (str, bytes, os.PathLike)):
        return None
    current = os.path.abspath(os.fsdecode(path))
    while True:
        if os.path.lexists(current):
            return None if os.path.isdir(current) else current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
