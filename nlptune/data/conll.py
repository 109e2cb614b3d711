"""The CoNLL columns format of tokens tasks: one word per line with its columns (word, ..., tag), a blank line
between sentences; see `read_conll`."""
from __future__ import annotations

from pathlib import Path

from nlptune.data.errors import DataError, ProblemCollector
from nlptune.data.readers import Rows, text_lines

DOCSTART = "-DOCSTART-"


def _looks_blank(line: str) -> bool:
    """A line with nothing visible: whitespace and invisible format characters only (byte-order marks and
    zero-width spaces, e.g. WNUT-17's validation file holds a line of two BOMs at a sentence end). It reads as the
    blank line it looks like, not as a word whose tag is a BOM."""
    import unicodedata

    return all(char.isspace() or unicodedata.category(char) == "Cf" for char in line)


def _conll_fields(line: str) -> list[str]:
    """The columns of a CoNLL line: tab-separated when it holds a tab (a word may then contain spaces), else
    separated by runs of spaces."""
    return line.split("\t") if "\t" in line else [field for field in line.split(" ") if field]


def _conll_column(fields: list[str], column: int) -> int | None:
    """The index ``column`` (negative: from the end) points at in ``fields``, or None when there is none."""
    index = column if column >= 0 else len(fields) + column
    return index if 0 <= index < len(fields) else None


def read_conll(text: str, path: Path, split: str, problems: ProblemCollector, token_column: int = 0,
               tag_column: int | None = -1, words_field: str = "tokens", tags_field: str | None = "tags") -> Rows:
    """CoNLL columns: one word per line, blank lines between sentences; rows ``{words_field: [...],
    tags_field: [...]}`` and the line each sentence starts on.

    Columns are 0-based, negative from the end of the line (-1 = last). ``-DOCSTART-`` lines end a sentence and
    are skipped, and so are comment lines before a sentence in a tab-separated file (``# sent_id = 1``, as
    CoNLL-U writes them: they hold no tab); a token column that holds each word's number in every sentence (an ID
    column) is refused; a line that lacks the token or the tag column (or whose tag column is its token column) is
    recorded with its line. ``tags_field`` None (or ``tag_column`` None) reads the words only (prediction input).

    Every line inside a sentence is one of its words: any other line ends the sentence or is recorded as a problem
    (which refuses the file). So word i of a sentence is on its start line + i, and a bad tag is named by its own
    line without keeping a line per word (`nlptune.data.loading.RawSplit.word_lines`).
    """
    read_tags = tags_field is not None and tag_column is not None
    rows, lines = [], []
    words, tags, start = [], [], None
    file_lines = text_lines(text)
    tabbed = _tab_separated(file_lines)

    def close() -> None:
        nonlocal words, tags, start
        if words:
            rows.append({words_field: words, tags_field: tags} if read_tags else {words_field: words})
            lines.append(start)
        words, tags, start = [], [], None

    for number, raw_line in enumerate(file_lines, start=1):
        line = raw_line.rstrip("\r")
        if _looks_blank(line):
            close()
            continue
        if tabbed and not words and line.startswith("#") and "\t" not in line:
            continue  # a comment before a sentence (CoNLL-U's "# sent_id = 1"): a word line would hold a tab
        fields = _conll_fields(line.strip(" "))
        if fields[0] == DOCSTART:
            close()
            continue
        token = _conll_column(fields, token_column)
        tag = _conll_column(fields, tag_column) if read_tags else None
        if token is None or (read_tags and (tag is None or tag == token)):
            wanted = f"the token column {token_column}" + (f" and the tag column {tag_column}" if read_tags else "")
            problems.add(DataError(f"the line has {len(fields)} column(s), too few for {wanted} (0-based, "
                                   "-1 = last)", file=str(path), split=split, line=number,
                                   fix="give every word line its columns (word and tag, separated by a tab or "
                                       "spaces), or set task.token_column / task.tag_column"))
            continue
        if not fields[token].strip():
            problems.add(DataError(f"the token column {token_column} is empty", file=str(path), split=split,
                                   line=number, fix="give every word line its word"))
            continue
        if start is None:
            start = number
        words.append(fields[token])
        if read_tags:
            tags.append(fields[tag])
    close()
    if rows and all(row[words_field] == [str(i) for i in range(1, len(row[words_field]) + 1)] for row in rows):
        problems.add(DataError(f"the token column {token_column} holds each word's number (1, 2, 3, ... in every "
                               "sentence), not the words: it is an ID column, as CoNLL-U's first one is",
                               file=str(path), split=split, line=lines[0],
                               fix="set task.token_column to the words' column (CoNLL-U: task.token_column=1)"))
    return rows, lines


def _tab_separated(file_lines: list[str]) -> bool:
    """Whether the word lines of a CoNLL file separate their columns with tabs: its first line that is neither
    blank nor a comment (#) holds a tab."""
    for line in file_lines:
        if line.strip() and not line.startswith("#"):
            return "\t" in line
    return False
