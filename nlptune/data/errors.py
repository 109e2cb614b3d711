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


class DataProblems(NlptuneError):
    """Several data problems found in one pass, reported together (each a `DataError`)."""

    def __init__(self, problems: list[DataError]):
        self.problems = list(problems)
        count = len(self.problems)
        body = "\n".join(str(p) for p in self.problems)
        super().__init__(body if count == 1 else f"{count} data problems:\n{body}")


class ProblemCollector:
    """Collects `DataError`s so a pass over the data reports every problem at once.

    ``with collector.check(): ...`` records a `DataError` raised in the block and goes on; `raise_if_any`
    raises one `DataProblems` (capped at ``limit`` messages, the count of the rest stated)."""

    def __init__(self, limit: int = 20):
        self.problems: list[DataError] = []
        self.limit = limit
        self.extra = 0

    def add(self, error: DataError) -> None:
        if len(self.problems) < self.limit:
            self.problems.append(error)
        else:
            self.extra += 1

    def check(self):
        import contextlib

        @contextlib.contextmanager
        def guard():
            try:
                yield
            except DataProblems as err:
                for problem in err.problems:
                    self.add(problem)
            except DataError as err:
                self.add(err)

        return guard()

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        problems = list(self.problems)
        if self.extra:
            problems.append(DataError(f"... and {self.extra} more problems of the same kinds",
                                      fix="fix the ones above and run again"))
        raise DataProblems(problems)
