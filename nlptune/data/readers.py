"""Parsers of the local file formats: JSON lines (or one JSON array), CSV, TSV and parquet (CoNLL columns: conll.py).

Each parser reads the whole file and records every problem it finds (with its line) in a `ProblemCollector`
instead of stopping at the first, so one run reports all that is wrong with a file.

- CSV follows RFC 4180: fields may be quoted, a quoted field may span lines, ``""`` is a quote inside one;
  a quote left open or text after a closing quote is an error (csv's strict mode), never silently merged.
- TSV has no quoting at all: a ``"`` is an ordinary character, a backslash too (no escapes), a row is one line.
- A header (or parquet schema, or JSON object) that repeats a column name is refused: which one would be
  meant cannot be known. Columns whose header name is empty (e.g. a pandas index) are skipped.
- CoNLL (tokens tasks): one word per line with its columns, a blank line between sentences (nlptune/data/conll.py).
- Field size is bounded by the file, which is read whole anyway: csv's default 128 KiB field limit is lifted
  for the parse, so a long document is read rather than refused.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from nlptune.data.compression import data_suffix
from nlptune.data.errors import DataError, ProblemCollector

Rows = tuple[list[dict], list[int] | None]  # rows, and the line each starts on (None: no lines, e.g. JSON array)


# byte-order marks of the encodings a text editor may save "Unicode" text in (the UTF-32 ones first: UTF-32-LE's
# begins with UTF-16-LE's)
_OTHER_ENCODINGS = ((b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"), (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
                    (b"\xff\xfe", "UTF-16 (little-endian)"), (b"\xfe\xff", "UTF-16 (big-endian)"))


def decode(raw: bytes, path: Path, split: str, problems: ProblemCollector) -> str | None:
    """The UTF-8 text of ``raw`` (a BOM is dropped), or None after recording every line that is not UTF-8 (or
    one problem for a file that is UTF-16/UTF-32 by its byte-order mark: every line of it would be)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    encoding = next((name for mark, name in _OTHER_ENCODINGS if raw.startswith(mark)), None)
    if encoding:
        problems.add(DataError(f"the file is {encoding} text (it starts with that encoding's byte-order mark), "
                               "not UTF-8", file=str(path), split=split, line=1,
                               fix=f"save it as UTF-8, e.g. iconv -f {encoding.split()[0]} -t UTF-8 {path.name} > "
                                   f"utf8-{path.name}"))
        return None
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as err:
            problems.add(DataError(f"bytes that are not UTF-8 at column {err.start + 1} ({line[err.start:err.end]!r})",
                                   file=str(path), split=split, line=number, fix="re-encode the file as UTF-8"))
    return None


class _DuplicateKeys(ValueError):
    pass


def text_lines(text: str) -> list[str]:
    """A text file's lines, split at "\n" only: str.splitlines would also split at U+2028, NEL, FS..., which are
    legal inside a JSON string written with ensure_ascii=False or a CoNLL word (a "\r" before the "\n" stays at the
    line's end). A file of "\r" line ends alone (classic Mac OS, Excel for Mac's text exports) splits at "\r"."""
    return text.split("\n" if "\n" in text or "\r" not in text else "\r")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """json's object_pairs_hook: an object that repeats a key is refused (json would keep the last silently)."""
    repeated = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
    if repeated:
        raise _DuplicateKeys(", ".join(map(repr, repeated)))
    return dict(pairs)


def _parse_json(text: str, what: str) -> tuple[object, str | None, int | None]:
    """(value, None, None) or (None, why ``text`` (a "JSON line", "JSON file") cannot be parsed, its line)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys), None, None
    except _DuplicateKeys as err:
        return None, f"an object repeats the key(s) {err}", None
    except json.JSONDecodeError as err:
        return None, f"malformed {what}: {err.msg} (column {err.colno})", err.lineno
    except (ValueError, RecursionError) as err:  # e.g. an int of more than 4300 digits, nesting too deep
        return None, f"malformed {what}: {err}", None


def read_json(text: str, path: Path, split: str, problems: ProblemCollector) -> Rows:
    """JSON lines (one object per line; blank lines skipped), or a .json file holding one array of objects."""
    if data_suffix(path) == ".json" and text.lstrip().startswith("["):
        return _read_json_array(text, path, split, problems)
    if data_suffix(path) == ".json" and text.lstrip().startswith("{"):
        nested = _rows_under_one_key(text, path, split, problems)
        if nested is not None:
            return nested
    # a "\r" left at a line's end (`text_lines`) is whitespace to json.loads
    return _listed(json_lines(text_lines(text), path, split, problems))


def _rows_under_one_key(text: str, path: Path, split: str, problems: ProblemCollector) -> Rows | None:
    """The rows of a .json file that is one object holding them as a list of objects under a key (``{"data":
    [{...}, ...]}``, as many datasets ship); None when the file is not such an object. Under several keys the
    rows are ambiguous: refused, naming them."""
    value, why, _ = _parse_json(text, "JSON file")
    if why or not isinstance(value, dict):
        return None
    keys = [key for key, rows in value.items() if isinstance(rows, list) and rows and
            all(isinstance(row, dict) for row in rows)]
    if len(keys) == 1:
        return value[keys[0]], None
    if len(keys) > 1:
        problems.add(DataError(f"the file is one object whose keys {', '.join(map(repr, keys))} each hold a list "
                               "of rows: which is meant is not known", file=str(path), split=split,
                               fix="write the split's rows alone, as a JSON array or JSON lines (one object a line)"))
        return [], None
    return None


def _listed(rows: Iterator[tuple[dict, int]]) -> Rows:
    pairs = list(rows)
    return [row for row, _ in pairs], [line for _, line in pairs]


def json_lines(lines: Iterable[str], path: Path, split: str, problems: ProblemCollector) -> Iterator[tuple[dict, int]]:
    """(object, line number) of each line of JSON lines ``lines`` (the file's lines, "\n" removed), as they are
    parsed; blank lines are skipped, a line that is not one object is recorded in ``problems``."""
    fix = 'make every line one JSON object like {"text": ..., "label": ...}'
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row, why, _ = _parse_json(line, "JSON line")
        if why is None and not isinstance(row, dict):
            why = f"expected a JSON object, got {type(row).__name__}"
        if why:
            problems.add(DataError(why, file=str(path), split=split, line=number, fix=fix))
            continue
        yield row, number


def _read_json_array(text: str, path: Path, split: str, problems: ProblemCollector) -> Rows:
    value, why, line = _parse_json(text, "JSON file")
    if why:
        problems.add(DataError(why, file=str(path), split=split, line=line, fix="fix the JSON (one array of objects)"))
        return [], None
    for index, row in enumerate(value):
        if not isinstance(row, dict):
            problems.add(DataError(f"the array holds a {type(row).__name__}, not an object", file=str(path),
                                   split=split, row=index + 1, fix='make every element an object {"text": ...}'))
    return [row for row in value if isinstance(row, dict)], None


@contextlib.contextmanager
def _field_size_limit(limit: int):
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, limit))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _csv_problem(err: csv.Error, start: int) -> tuple[str, str]:
    """What a csv error means for a user, and the fix; ``start`` is the line the row being read starts on."""
    text = str(err)
    if "unexpected end of data" in text:
        return (f'a quote (") opened in the row that starts on line {start} is never closed',
                'close the quote; inside a quoted field write a quote as two ("")')
    if "expected after" in text:
        return (f"text follows a closing quote ({text})",
                'quote the whole field and double the quotes inside it: "say ""hi"" here"')
    return f"cannot parse this row: {text}", "fix the CSV syntax at that line"


def _read_header(reader, path: Path, split: str, problems: ProblemCollector, line: int = 1) -> list[str] | None:
    """The column names on the first line read (``line`` of the file), or None (no line at all, or a problem
    recorded)."""
    where = dict(file=str(path), split=split, line=line)
    try:
        header = next(reader, None)
    except csv.Error as err:
        problems.add(DataError(_csv_problem(err, 1)[0], fix="fix the header line", **where))
        return None
    if header == []:
        problems.add(DataError("the first line is empty, but it must be the header (the column names)",
                               fix="remove the blank line(s) before the header", **where))
        return None
    repeated = [name for name, n in Counter(name for name in header or () if name).items() if n > 1]
    if repeated:
        columns = "; ".join(f"{name!r} in columns {', '.join(str(i + 1) for i, h in enumerate(header) if h == name)}"
                            for name in repeated)
        problems.add(DataError(f"the header repeats column name(s): {columns}", fix="give every column a unique name",
                               **where))
        return None
    return header


# A .csv whose header holds no comma but one of these is read with it: spreadsheets in locales that write a decimal
# comma save CSV with semicolons, and a header split by neither comma nor these would be one column of that name.
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "|": "vertical bar"}


def _delimiter_name(delimiter: str) -> str:
    return DELIMITER_NAMES.get(delimiter, repr(delimiter))


# Excel writes and reads a first line "sep=;" naming the file's delimiter (any one character) above the header.
_SEPARATOR_LINE = re.compile(r'sep=([^"\r\n])\r?\n?')


def _csv_options(header: str, delimiter: str | None = None) -> dict:
    """How to read a CSV file whose first line is ``header``: its delimiter (a comma, unless that line holds none
    and does hold a semicolon or a vertical bar: the first of them it holds), and whether a space follows every
    delimiter (``text, label``, as people write lists): then the spaces after delimiters are not part of the
    values, or the column would be ' label' and a class ' pos'."""
    if delimiter is None:
        delimiter = "," if "," in header else next((other for other in (";", "|") if other in header), ",")
    try:
        names = next(csv.reader([header.rstrip("\r\n")], delimiter=delimiter), [])
    except csv.Error:
        names = []  # reported when the file is read
    spaced = len(names) > 1 and all(name.startswith(" ") for name in names[1:])
    return dict(delimiter=delimiter, strict=True, skipinitialspace=spaced)


def read_delimited(text: str, path: Path, split: str, problems: ProblemCollector) -> Rows:
    """CSV (quoted fields, strict) or TSV (no quoting): rows as dicts of the named columns."""
    # newline="" lets csv see the real line ends: a quoted CSV field keeps its newlines, and U+2028/NEL
    # inside a field do not end the row
    return _listed(delimited_rows(io.StringIO(text, newline=""), len(text), path, split, problems))


def delimited_rows(stream: Iterable[str], size: int, path: Path, split: str,
                   problems: ProblemCollector) -> Iterator[tuple[dict, int]]:
    """(row as a dict of the named columns, the line it starts on) of each CSV or TSV record of ``stream`` (text
    read with newline="", at most ``size`` characters: no field is longer), as they are parsed; every problem is
    recorded in ``problems``."""
    tsv = data_suffix(path) == ".tsv"
    lines = iter(stream)
    first = next(lines, "")
    hinted = None if tsv else _SEPARATOR_LINE.fullmatch(first)
    if hinted:  # the records' line numbers count it: they are the file's
        first = next(lines, "")
    skipped = 1 if hinted else 0
    options = (dict(delimiter="\t", quoting=csv.QUOTE_NONE) if tsv
               else _csv_options(first, hinted.group(1) if hinted else None))
    where = dict(file=str(path), split=split)
    with _field_size_limit(size + 1):
        reader = csv.reader(itertools.chain([first] if first else [], lines), **options)
        header = _read_header(reader, path, split, problems, line=1 + skipped)
        if not header:
            return
        named = [(i, name) for i, name in enumerate(header) if name]
        end = reader.line_num + skipped  # a quoted field may span lines: a record starts after the previous one ends
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                problem, fix = _csv_problem(err, end + 1)
                problems.add(DataError(problem, line=reader.line_num + skipped, fix=fix, **where))
                end = reader.line_num + skipped
                continue
            start, end = end + 1, reader.line_num + skipped
            if not row:
                continue
            if len(row) != len(header):
                fix = ("a TSV field cannot hold a tab or a line break: remove them from the text" if tsv
                       else f"quote fields that contain a {_delimiter_name(options['delimiter'])} or a line break")
                problems.add(DataError(f"row has {len(row)} fields but the header has {len(header)}", line=start,
                                       fix=fix, **where))
                continue
            yield {name: row[i] for i, name in named}, start


class HashingReader(io.RawIOBase):
    """A binary file read through, ``digest`` (sha256) updated with every byte read: a file parsed as it is read
    gets the digest of exactly the bytes parsed, in one pass."""

    def __init__(self, raw):
        self.raw, self.digest = raw, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        if count:
            self.digest.update(memoryview(buffer)[:count])
        return count


def utf8_lines(stream) -> Iterator[str]:
    """The lines of a binary ``stream`` split on b"\n" only (as JSON lines are; at b"\r" in a stream holding no
    b"\n", as `text_lines` splits), decoded as UTF-8 (a byte-order mark at the start dropped); raises
    UnicodeDecodeError at the first line that is not UTF-8."""
    for number, line in enumerate(stream):
        if number == 0 and not line.endswith(b"\n") and b"\r" in line.rstrip(b"\r"):  # all of it, "\r" line ends
            parts = line.split(b"\r")
            yield from (part.decode("utf-8-sig" if i == 0 else "utf-8") for i, part in enumerate(parts)
                        if part or i < len(parts) - 1)
            return
        yield line.rstrip(b"\n").decode("utf-8-sig" if number == 0 else "utf-8")


def _not_parquet(err: Exception, path: Path, split: str) -> DataError:
    return DataError(f"not a readable parquet file ({type(err).__name__}: {err})", file=str(path), split=split,
                     fix="write the file again as parquet (e.g. pandas DataFrame.to_parquet), or use .jsonl/.csv")


def read_parquet(raw: bytes, path: Path, split: str) -> dict:
    """The columns (`nlptune.data.columns.Column`) of a parquet file given as bytes; a file that is not readable
    parquet is a `DataError`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(raw))
        names = parquet.schema_arrow.names
    except (pa.ArrowException, OSError, ValueError) as err:
        raise _not_parquet(err, path, split) from None
    # checked before reading: pyarrow refuses or silently merges a repeated name depending on the call
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        raise DataError(f"the file repeats column name(s) {', '.join(map(repr, repeated))}", file=str(path),
                        split=split, fix="give every column a unique name")
    try:
        table = parquet.read()
    except (pa.ArrowException, OSError, ValueError) as err:  # e.g. a column chunk cut short
        raise _not_parquet(err, path, split) from None
    from nlptune.data.columns import Column

    # the Arrow arrays as they were read (a text costs its bytes, not a Python string); values read back as
    # to_pylist gives them
    return {name: Column(table.column(name).chunks) for name in table.column_names}
