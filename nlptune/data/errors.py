"""Data problems the user can fix, each naming the file, split, line and column where it applies."""
from __future__ import annotations

from nlptune.config.errors import NlptuneError


class DataError(NlptuneError):
    """One data problem: what is wrong, where (file, split, line of a text file or row of a parquet file / JSON
    array / hub split, column) and the fix."""

    def __init__(self, problem: str, *, fix: str, file: str | None = None, split: str | None = None,
                 line: int | None = None, column: str | None = None, row: int | None = None):
        where = [f"{name} {value}" for name, value in
                 (("file", file), ("split", split), ("line", line), ("row", row), ("column", column))
                 if value is not None]
        location = f" ({', '.join(where)})" if where else ""
        self.headline = f"data error{location}: {problem}"
        self.fix = fix
        super().__init__(f"{self.headline}\n  fix: {fix}")
        self.file, self.split, self.line, self.row, self.column = file, split, line, row, column


class DataProblems(DataError):
    """Several data problems found in one pass, reported together (each a `DataError`).

    A `DataError` itself, so ``except DataError`` catches it; its file/split/line/column are the first
    problem's (the whole location when there is one problem)."""

    def __init__(self, problems: list[DataError], extra: int = 0):
        self.problems, self.extra = list(problems), extra
        count = len(self.problems) + extra
        body = _listed_problems(self.problems)
        if extra:
            body += f"\n... and {extra} more (the first {len(self.problems)} are shown); fix these and run again"
        NlptuneError.__init__(self, body if count == 1 else f"{count} data problems:\n{body}")
        first = self.problems[0] if self.problems else None
        for name in ("file", "split", "line", "row", "column"):
            setattr(self, name, getattr(first, name, None))


def _listed_problems(problems: list[DataError]) -> str:
    """Each problem on its line; the fix once after a run of problems that share it (twenty rows with the same
    wrong label read as twenty places and one thing to do, not as the same advice twenty times)."""
    fixes = [getattr(problem, "fix", None) for problem in problems]  # None: a message of its own (no headline)
    lines, run = [], 0
    for i, problem in enumerate(problems):
        if fixes[i] is None:
            lines.append(str(problem))
            continue
        lines.append(problem.headline)
        run += 1
        if i + 1 < len(problems) and fixes[i + 1] == fixes[i]:
            continue
        lines.append(f"  fix: {fixes[i]}" + (f" (for each of the {run} above)" if run > 1 else ""))
        run = 0
    return "\n".join(lines)


def rows_alike(rows: int, total: int) -> str:
    """What a problem reported once for the ``rows`` of a split's ``total`` that share it adds to its text ("" for
    one row): the problem names the first of them."""
    return f" ({rows} of the split's {total} rows alike: the first is named)" if rows > 1 else ""


class ProblemCollector:
    """Collects `DataError`s so a pass over the data reports every problem at once.

    ``with collector.check(): ...`` records a `DataError` raised in the block and goes on; `raise_if_any`
    raises one `DataProblems` (capped at ``limit`` messages, the count of the rest stated)."""

    def __init__(self, limit: int = 20):
        self.problems: list[DataError] = []
        self.limit = limit
        self.extra = 0
        self._cells: set[tuple] = set()

    @staticmethod
    def _cell(error: DataError) -> tuple | None:
        """Where a problem is, when it names one value (a line or row and a column); None otherwise."""
        if (error.line is None and error.row is None) or error.column is None:
            return None
        return error.file, error.split, error.line, error.row, error.column

    def add(self, error: DataError) -> None:
        if isinstance(error, DataProblems):
            for problem in error.problems:
                self.add(problem)
            self.extra += error.extra
            return
        cell = self._cell(error)
        if cell is not None:
            if cell in self._cells:
                return  # one value, one report: the text and the label passes may both refuse a tagger's words
            self._cells.add(cell)
        if len(self.problems) < self.limit:
            self.problems.append(error)
        else:
            self.extra += 1

    def lead(self, error: DataError) -> None:
        """Record ``error`` ahead of the problems of its split (after those of an earlier split), shown whatever
        their number: a summary of what they share."""
        at = next((i for i, p in enumerate(self.problems) if p.split == error.split), len(self.problems))
        self.problems.insert(at, error)
        if len(self.problems) > self.limit:  # the last row problem gives way, never a summary
            last = max(i for i, p in enumerate(self.problems) if p is not error)
            del self.problems[last]
            self.extra += 1

    def __len__(self) -> int:
        """How many problems were found (reported or only counted)."""
        return len(self.problems) + self.extra

    def check(self):
        import contextlib

        @contextlib.contextmanager
        def guard():
            try:
                yield
            except DataError as err:
                self.add(err)

        return guard()

    def raise_if_any(self) -> None:
        if self.problems:
            raise DataProblems(self.problems, self.extra)
