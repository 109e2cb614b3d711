"""Load the raw splits of a task: explicit files, the built-in generator, a local data folder, or the hub.

Which source and which files a task reads is decided in `nlptune.data.sources` (recipe pins ask the same);
the file formats are parsed in `nlptune.data.readers`. One load is one pass that reports every problem
together: both split files are checked (exist, are files, readable) before either is read, then each file
is parsed to the end, then the task's text columns are checked; nothing is trained on a text that is not one.

Text columns hold strings (tokens tasks: a list of word strings per row, `Kind.words_in_text_column`).
A null is an empty text (like an empty CSV cell), but a JSON row that lacks the key of a text column which
other rows have is refused (a misspelt key). A number, boolean, list or object (a JSON list or dict, a parquet
list or struct) in a text column is refused with its line: it is almost always the wrong column
(task.text_fields) or a file written wrongly, and turning it into a string would train on text like "[1, 2]"
or "True". Write it as a JSON string if it is meant as text.

A file's rows are kept as compact columns (`nlptune.data.columns`: a text costs its bytes, not a Python string
and a row dict); JSON lines, CSV and TSV are parsed as they are read, so a long file is never held whole either.

Standard library only at import time: columns, parquet and hub datasets load pyarrow / datasets when used.
"""
from __future__ import annotations

import hashlib
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from nlptune.config.schema import TaskConfig
from nlptune.data import readers
from nlptune.data.conll import read_conll
from nlptune.data.errors import DataError, ProblemCollector, rows_alike
from nlptune.data.compression import (DECOMPRESSION_ERRORS, TooLarge, compression, damage_problem, data_suffix,
                                      decompress, is_damaged, open_decompressed)
from nlptune.data.sources import EXTENSIONS, SPLITS, checked_split_files, file_problem, generator_identity, source_kind

__all__ = ["EXTENSIONS", "SPLITS", "RawSplit", "read_file", "read_lines", "check_text_columns", "load_raw_splits"]


@dataclass
class RawSplit:
    columns: dict[str, list]
    source: str  # file path, "hub:<id>/<config>" or "generator:<name>"
    sha256: str  # of the file bytes, or an identity string for generated / hub data (see nlptune.data.sources)
    lines: list[int] | None = None  # the file line each row starts on (text files); else rows count from 1
    absent: dict[str, list[int]] = field(default_factory=dict)  # JSON rows lacking a key other rows have
    # a word per line (CoNLL): word i of a row is on line lines[row] + i. A sentence's words are consecutive
    # lines (a blank or -DOCSTART- line ends it, and a file with a refused line is never returned: read_conll),
    # so a word's own line costs nothing to keep
    word_lines: bool = False

    def line_of(self, index: int, word: int | None = None) -> int:
        """The line (text files) or 1-based row number of row ``index``, for error messages; with ``word`` (0-based)
        the line of that word when the file holds a word per line (else still the row's)."""
        if self.lines is None or index >= len(self.lines):
            return index + 1
        return self.lines[index] + (word if self.word_lines and word is not None else 0)

    def location(self, index: int, word: int | None = None) -> dict:
        """``{"line": n}`` (text files) or ``{"row": n}`` (parquet, JSON array, hub, generator) of row
        ``index`` (or of its ``word``, see `line_of`): the keyword of `DataError` that places it."""
        return {"line" if self.lines is not None else "row": self.line_of(index, word)}


def _unreadable(err: Exception, path: Path, split: str) -> DataError:
    """The message for an error reading ``path`` (one of `DECOMPRESSION_ERRORS`): its compressed data is damaged,
    or the disk or permissions refused it."""
    if compression(path) and is_damaged(err):
        problem, fix = damage_problem(err, path)
        return DataError(problem, file=str(path), split=split, fix=fix)
    return DataError(f"cannot read the file: {getattr(err, 'strerror', None) or err}", file=str(path), split=split,
                     fix="check that the file exists and this user can read it")


def _read_bytes(path: Path, split: str) -> bytes:
    """The file's own bytes (compressed, when it is)."""
    try:
        return path.read_bytes()
    except OSError as err:  # permission, a folder, removed since it was checked...
        raise _unreadable(err, path, split) from None


def _decompressed(raw: bytes, path: Path, split: str) -> bytes:
    try:
        return decompress(raw, path)
    except TooLarge as err:
        raise DataError(f"the data inside the file is {err}", file=str(path), split=split,
                        fix="give it as .jsonl, .csv or .tsv in UTF-8 (those are read as they decompress, row by "
                        "row), or split it into smaller files") from None
    except DECOMPRESSION_ERRORS as err:
        raise _unreadable(err, path, split) from None


# formats that say what they are: task.format=conll never reads them as CoNLL columns (a sweep's fold files are
# jsonl whatever the task's own files were)
_SELF_DESCRIBING = (".jsonl", ".json", ".parquet")


def _is_conll(path: Path, task: TaskConfig | None) -> bool:
    """CoNLL columns: a .conll file, or any other file but JSON/parquet of a task whose task.format is "conll"."""
    suffix = data_suffix(path)
    return suffix == ".conll" or (task is not None and task.format == "conll" and suffix not in _SELF_DESCRIBING)


def _parser(path: Path, task: TaskConfig | None):
    """The reader of ``path``'s text: (text, path, split, problems) -> rows, lines."""
    if _is_conll(path, task):
        options = {} if task is None else dict(
            token_column=task.token_column, tag_column=task.tag_column,
            words_field=task.text_fields[0] if task.text_fields else "tokens", tags_field=task.label_field)
        return lambda text, path, split, problems: read_conll(text, path, split, problems, **options)
    return readers.read_delimited if data_suffix(path) in (".csv", ".tsv") else readers.read_json


def _words_in_text_column(task: TaskConfig | None) -> bool:
    if task is None or not task.kind:
        return False
    from nlptune.kinds import get_kind

    return get_kind(task.kind).words_in_text_column


def _streams(path: Path, task: TaskConfig | None) -> bool:
    """JSON lines, CSV and TSV are parsed as they are read: a long file is never held whole, as bytes, text or
    row dicts. (A .json file may hold one array, CoNLL sentences span lines, parquet is read by pyarrow.)"""
    return data_suffix(path) in (".jsonl", ".csv", ".tsv") and not _is_conll(path, task)


def _read_streamed(path: Path, split: str, problems: ProblemCollector) -> tuple | None:
    """(columns, lines, absent, sha256) of ``path``, parsed as it is read; None when it is not UTF-8 (read it
    whole to report every line that is not). Parse problems are recorded in ``problems``."""
    from nlptune.data.columns import ColumnsBuilder

    builder, found = ColumnsBuilder(), ProblemCollector()
    try:
        with path.open("rb", buffering=0) as file:
            hashing = readers.HashingReader(file)  # the digest is of the file's own bytes, compressed or not
            stream = open_decompressed(io.BufferedReader(hashing, buffer_size=1 << 20), path)
            if data_suffix(path) == ".jsonl":
                rows = readers.json_lines(readers.utf8_lines(stream), path, split, found)
            else:  # newline="": csv sees the real line ends, a quoted field keeps its line breaks
                text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
                rows = readers.delimited_rows(text, path.stat().st_size, path, split, found)
            for row, line in rows:
                builder.add(row, line)
            while stream.read(1 << 20):  # a parse that stopped early (a bad header): the digest is of every byte
                pass
    except UnicodeDecodeError:
        return None
    except DECOMPRESSION_ERRORS as err:  # permission, removed since it was checked, damaged compression
        raise _unreadable(err, path, split) from None
    for problem in found.problems:
        problems.add(problem)
    problems.extra += found.extra
    return (*builder.finish(), hashing.digest.hexdigest())


def _read_whole(path: Path, split: str, task: TaskConfig | None, problems: ProblemCollector) -> tuple:
    """(columns, lines, absent, sha256) of ``path``, read whole (parquet, CoNLL, a JSON array, a file that is not
    UTF-8); problems are recorded in ``problems``."""
    from nlptune.data.columns import ColumnsBuilder

    raw = _read_bytes(path, split)
    sha256 = hashlib.sha256(raw).hexdigest()  # of the file's own bytes, as `sha256_file` gives it
    raw = _decompressed(raw, path, split)
    if data_suffix(path) == ".parquet" and not _is_conll(path, task):
        return readers.read_parquet(raw, path, split), None, {}, sha256
    text = readers.decode(raw, path, split, problems)
    del raw  # the text is all that is left to parse
    rows, lines = _parser(path, task)(text, path, split, problems) if text is not None else ([], None)
    builder = ColumnsBuilder()
    for row, line in zip(rows, lines if lines is not None else itertools.repeat(None)):
        builder.add(row, line)
    columns, _, absent = builder.finish()
    return columns, lines, absent, sha256


def read_file(path: str | Path, split: str, text_fields: Sequence[str] = (), origin: str | None = None,
              task: TaskConfig | None = None) -> RawSplit:
    """Read one local data file into columns; every problem in it (missing, not a file, unreadable, not UTF-8,
    malformed lines, wrong field counts, repeated column names, no rows, and with ``text_fields`` a text
    column that holds no text) is raised together. ``origin`` names where the path came from, for the fix.
    ``task`` (when given) says how to read it: task.format / the CoNLL columns and field names, and whether
    its text columns hold word lists (tokens)."""
    path = Path(path)
    problem = file_problem(path, split, origin or (f"task.{split}_file" if split in SPLITS else "the path given"),
                           any_type=_is_conll(path, task))
    if problem:
        raise problem
    problems = ProblemCollector()
    streamed = _read_streamed(path, split, problems) if _streams(path, task) else None
    columns, lines, absent, sha256 = streamed if streamed is not None else _read_whole(path, split, task, problems)
    problems.raise_if_any()
    if not columns or not next(iter(columns.values()), []):
        raise DataError("the file has no data rows", file=str(path), split=split, fix="add rows or pick another file")
    # the identity is the digest of the bytes parsed, so it cannot describe a file that changed in between
    split_data = RawSplit(columns=columns, source=str(path), sha256=sha256, lines=lines, absent=absent,
                          word_lines=lines is not None and _is_conll(path, task))
    check_text_columns(split_data, text_fields, split, words=_words_in_text_column(task))
    return split_data


def read_lines(path: str | Path, split: str, origin: str) -> list[str]:
    """The lines of a plain text file, one text each (inputs to predict: no columns, no labels). Lines end at
    "\n" only (at "\r" in a file without "\n": an old Mac's, `readers.text_lines`), a "\r" before it is dropped
    (so a text keeps a U+2028 or a form feed it holds), and the newline that ends the last line adds no empty text;
    an empty line inside the file is an empty text, so the n-th prediction is the n-th line's. Every line that is
    not UTF-8 is reported together; a file with no line is refused."""
    path = Path(path)
    problem = file_problem(path, split, origin, any_type=True)
    if problem:
        raise problem
    return split_lines(_decompressed(_read_bytes(path, split), path, split), path, split)


def split_lines(raw: bytes, source: Path, split: str) -> list[str]:
    """The texts of `read_lines` from the bytes ``raw`` of ``source`` (a file, or standard input)."""
    problems = ProblemCollector()
    text = readers.decode(raw, source, split, problems)
    problems.raise_if_any()
    lines = readers.text_lines(text)
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise DataError("the file has no lines of text", file=str(source), split=split,
                        fix="write one text per line, or pick another file")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _shown(value) -> str:
    return repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."


_NOT_TEXT = ((bool, "a boolean"), ((int, float), "a number"), ((list, tuple), "a list"), (dict, "an object"),
             ((bytes, bytearray), "bytes"))


def _not_text(value) -> str | None:
    if value is None or isinstance(value, str):
        return None
    for types, name in _NOT_TEXT:
        if isinstance(value, types):
            return name
    return f"a {type(value).__name__}"


def _not_words(value) -> tuple[int, object] | None:
    """(position, word) of the first element of a word list that is not a string, or None."""
    for position, word in enumerate(value):
        if not isinstance(word, str):
            return position, word
    return None


def check_text_columns(raw: RawSplit, text_fields: Sequence[str], split: str,
                       problems: ProblemCollector | None = None, words: bool = False) -> None:
    """Refuse every row whose text column holds something other than a string or null (see the module doc);
    with ``words`` (tokens tasks) a list of strings is accepted too, and a list holding anything else refused.
    Records into ``problems`` when given, else raises them all; a missing column is left to the label checks."""
    from nlptune.data.columns import Column

    collector = problems if problems is not None else ProblemCollector()
    for name in text_fields:
        for index in raw.absent.get(name, ()):  # a misspelt key would otherwise be trained on as an empty text
            collector.add(DataError(f"the row has no '{name}' key, though other rows have it", file=raw.source,
                                    split=split, column=name, fix=f"add \"{name}\" to that row (or fix its spelling)",
                                    **raw.location(index)))
        column = raw.columns.get(name) or ()
        if isinstance(column, Column) and column.all_text():
            continue  # packed as strings: none can be anything else, no value needs reading
        alike: dict[str, list] = {}  # what a value is -> [its first row, that row's value, rows alike]
        for index, value in enumerate(column):
            kind = _not_text(value)
            if kind is None:
                continue
            if words and kind == "a list":
                bad = _not_words(value)
                if bad is not None:
                    collector.add(DataError(
                        f"word {bad[0] + 1} of the row is {_not_text(bad[1])} ({_shown(bad[1])}), not a string",
                        file=raw.source, split=split, column=name, fix="write every word as a string",
                        **raw.location(index)))
                continue
            alike.setdefault(kind, [index, value, 0])[2] += 1
        for kind, (index, value, rows) in alike.items():  # one problem per kind of value, not one per row
            fix = ("write it as a JSON string if it is meant as text, or point task.text_fields at the text column"
                   if kind in ("a number", "a boolean") else
                   "join it into one string in the file, or point task.text_fields at the text column")
            collector.add(DataError(f"the text column holds {kind} ({_shown(value)}), not a string"
                                    f"{rows_alike(rows, len(column))}",
                                    file=raw.source, split=split, column=name, fix=fix, **raw.location(index)))
    if problems is None:
        collector.raise_if_any()


def _rename_columns(task: TaskConfig, raw: RawSplit, split: str, problems: ProblemCollector) -> None:
    for old, new in task.column_map.items():
        if old not in raw.columns or old == new:
            continue
        if new in raw.columns:  # renaming would silently replace a column the file already has
            problems.add(DataError(f"task.column_map renames '{old}' to '{new}', but there is a column '{new}' "
                                   "already", file=raw.source, split=split, column=new,
                                   fix="rename to a free name, or drop the mapping and use the column as it is"))
            continue
        raw.columns[new] = raw.columns.pop(old)
        if old in raw.absent:
            raw.absent[new] = raw.absent.pop(old)


def _read_files(task: TaskConfig, problems: ProblemCollector, splits: tuple[str, ...]) -> dict[str, RawSplit]:
    """The ``splits`` that could be read; the problems of all of them are recorded in ``problems``."""
    paths = checked_split_files(task, splits)  # every split checked before any is read
    read = {}
    for split, path in paths.items():
        with problems.check():
            read[split] = read_file(path, split, task=task)
    return read


def _load_sources(task: TaskConfig, problems: ProblemCollector, splits: tuple[str, ...]) -> dict[str, RawSplit]:
    kind = source_kind(task)
    if kind == "generator":
        from nlptune.data.demo import generate

        if task.generator != "demo":
            raise DataError(f"unknown task.generator '{task.generator}'", fix="use task.generator=demo, or null")
        return {s: RawSplit(generate(s), f"generator:{task.generator}", generator_identity(task.generator, s))
                for s in splits}
    if kind in ("files", "data_dir"):
        return _read_files(task, problems, splits)
    if kind == "hub":
        from nlptune.data.hub import load_hub_splits

        return {split: raw for split, raw in load_hub_splits(task).items() if split in splits}
    raise DataError(f"task '{task.name}' has no data source",
                    fix="set NLPTUNE_DATA_DIR=/path/to/data (a folder with <task>/train.jsonl and "
                        "validation.jsonl), or task.train_file and task.validation_file, or task.hub_id")


def load_raw_splits(task: TaskConfig, only: tuple[str, ...] = SPLITS,
                    problems: ProblemCollector | None = None) -> dict[str, RawSplit]:
    """The train and validation splits of ``task`` (or ``only`` those named: `nlptune eval` scores one and needs
    no other file) as plain columns, from the first source configured, with the column map applied and the text
    columns checked: every problem of those splits raised together, or recorded into ``problems`` when given (the
    caller goes on to the labels and raises them all), unless a split could not be read: its labels cannot be
    checked, so what was found is raised here."""
    collector = problems if problems is not None else ProblemCollector()
    splits = _load_sources(task, collector, only)
    for split, raw in splits.items():
        _mapped_and_checked(task, raw, split, collector, task.text_fields)
    if problems is None or len(splits) < len(only):
        collector.raise_if_any()
    return splits


def read_task_file(path: str | Path, split: str, task: TaskConfig, origin: str,
                   text_fields: Sequence[str] | None = None, problems: ProblemCollector | None = None) -> RawSplit:
    """A file of ``task``'s format given outside its splits (`eval --file`, `predict --input`), read as its split
    files are: the column map applied (a file with the source's column names reads as the training files did),
    then ``text_fields`` (default: the task's) checked; every problem raised together, or recorded into
    ``problems`` when given (the caller checks the labels too and raises them all)."""
    collector = problems if problems is not None else ProblemCollector()
    raw = read_file(path, split, origin=origin, task=task)
    _mapped_and_checked(task, raw, split, collector, task.text_fields if text_fields is None else text_fields)
    if problems is None:
        collector.raise_if_any()
    return raw


def _mapped_and_checked(task: TaskConfig, raw: RawSplit, split: str, problems: ProblemCollector,
                        text_fields: Sequence[str]) -> None:
    _rename_columns(task, raw, split, problems)
    check_text_columns(raw, text_fields, split, problems, words=_words_in_text_column(task))
