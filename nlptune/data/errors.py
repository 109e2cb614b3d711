"""Data problems the user can fix, each naming the file, split, line and column where it applies."""
from __future__ import annotations

from nlptune.config.errors import NlptuneError


class DataError(NlptuneError):
    def __init__(self, problem: str, *, fix: str, file: str | None = None, split: str | None = None,
                 line: int | None = None, column: str | None = None):
        where = [f"{name} {value}" for name, value in
                 (("file", file), ("split", split), ("line", line), ("column", column)) if value is not None]
        location = f" ({', '.join(where)})" if where else ""
        super().__init__(f"data error{location}: {problem}\n  fix: {fix}")
        self.file, self.split, self.line, self.column = file, split, line, column
