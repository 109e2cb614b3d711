"""Load the raw splits of a task: built-in generator, explicit files, a local data folder, or the hub.

Local text files are read with the standard library so that a broken row is reported with its line
number; parquet files and hub datasets go through `datasets`.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from nlptune.config.schema import TaskConfig
from nlptune.data.errors import DataError
from nlptune.utils.files import sha256_file

EXTENSIONS = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
SPLITS = ("train", "validation")


@dataclass
class RawSplit:
    columns: dict[str, list]
    source: str  # file path, "hub:<id>" or "generator:<name>"
    sha256: str  # of the file bytes, or an identity string for generated / hub data
    lines: list[int] | None = None  # the file line each row starts on (text files); else rows count from 1

    def line_of(self, index: int) -> int:
        """The line (text files) or 1-based row number of row ``index``, for error messages."""
        return self.lines[index] if self.lines is not None and index < len(self.lines) else index + 1


def _decode(path: Path, split: str) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")  # accepts a BOM
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"bytes that are not UTF-8 at offset {err.start}", file=str(path), split=split, line=line,
                        fix="re-encode the file as UTF-8") from None


def _read_jsonl(path: Path, split: str) -> tuple[list[dict], list[int] | None]:
    text = _decode(path, split)
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            return json.loads(text), None
        except json.JSONDecodeError as err:
            raise DataError(f"malformed JSON: {err.msg}", file=str(path), split=split, line=err.lineno,
                            fix="fix the JSON syntax at that line") from None
    rows, lines = [], []
    # split on "\n" only: str.splitlines would also split on U+2028, NEL, FS..., which are legal inside a JSON
    # string written with ensure_ascii=False (a trailing "\r" is whitespace to json.loads)
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"malformed JSON line: {err.msg}", file=str(path), split=split, line=number,
                            fix="make every line one JSON object") from None
        if not isinstance(row, dict):
            raise DataError(f"expected a JSON object, got {type(row).__name__}", file=str(path), split=split,
                            line=number, fix="make every line one JSON object like {\"text\": ..., \"label\": ...}")
        rows.append(row)
        lines.append(number)
    return rows, lines


def _read_delimited(path: Path, split: str) -> tuple[list[dict], list[int]]:
    text = _decode(path, split)
    # newline="" lets csv see the real line ends: quoted fields keep their newlines, and U+2028/NEL inside a
    # field do not end the row
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix == ".tsv" else ",")
    try:
        header = next(reader)
    except StopIteration:
        return [], []
    rows, lines = [], []
    end = reader.line_num  # a quoted field may span lines: a record starts after the previous one ends
    for row in reader:
        start, end = end + 1, reader.line_num
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f"row has {len(row)} fields but the header has {len(header)}", file=str(path),
                            split=split, line=start, fix="quote fields that contain the delimiter")
        rows.append(dict(zip(header, row)))
        lines.append(start)
    return rows, lines


def _read_parquet(path: Path) -> dict[str, list]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pydict()


def _to_columns(rows: list[dict]) -> dict[str, list]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in rows] for name in names}


def read_file(path: str | Path, split: str) -> RawSplit:
    """Read one local data file into columns, with clear errors for missing, empty or malformed files."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", file=str(path), split=split,
                        fix=f"check the path (task.{split}_file, task.data_dir or NLPTUNE_DATA_DIR)")
    if path.suffix not in EXTENSIONS:
        raise DataError(f"unsupported file type '{path.suffix}'", file=str(path), split=split,
                        fix=f"use one of {', '.join(EXTENSIONS)}")
    lines = None
    if path.suffix == ".parquet":
        columns = _read_parquet(path)
    else:
        reader = _read_delimited if path.suffix in (".csv", ".tsv") else _read_jsonl
        rows, lines = reader(path, split)
        columns = _to_columns(rows)
    if not columns or not next(iter(columns.values()), []):
        raise DataError("the file has no data rows", file=str(path), split=split, fix="add rows or pick another file")
    return RawSplit(columns=columns, source=str(path), sha256=sha256_file(path), lines=lines)


def _find_in_dir(data_dir: str, task: str, split: str) -> Path:
    folder = Path(data_dir) / task
    for ext in EXTENSIONS:
        candidate = folder / f"{split}{ext}"
        if candidate.is_file():
            return candidate
    raise DataError(f"no {split} file in {folder}", file=str(folder / f"{split}.jsonl"), split=split,
                    fix=f"put {split}.jsonl (or .csv/.tsv/.parquet) there, or unset NLPTUNE_DATA_DIR / task.data_dir "
                        "to load from the hub")


def _load_hub(task: TaskConfig) -> dict[str, RawSplit]:
    import datasets

    try:
        loaded = datasets.load_dataset(task.hub_id, task.hub_config, revision=task.hub_revision)
    except Exception as err:  # network, missing dataset, missing revision: all surface to the user alike
        raise DataError(f"could not load '{task.hub_id}' ({task.hub_config}) from the hub: {err}",
                        fix="check the network, or use local files with NLPTUNE_DATA_DIR / task.train_file") from None
    revision = task.hub_revision or "unpinned"
    out = {}
    for split, name in (("train", task.train_split), ("validation", task.validation_split)):
        if name not in loaded:
            raise DataError(f"the hub dataset has no split '{name}' (it has {', '.join(loaded)})", split=split,
                            fix=f"set task.{split}_split to one of them")
        out[split] = RawSplit(columns=loaded[name].to_dict(), source=f"hub:{task.hub_id}/{task.hub_config}",
                              sha256=f"hub:{task.hub_id}:{task.hub_config}:{revision}:{loaded[name]._fingerprint}")
    return out


def load_raw_splits(task: TaskConfig) -> dict[str, RawSplit]:
    """The train and validation splits of ``task`` as plain columns, from the first source configured."""
    if task.generator == "demo":
        from nlptune.data.demo import generate

        splits = {s: RawSplit(generate(s), "generator:demo", f"generator:demo:v1:{s}") for s in SPLITS}
    elif task.train_file or task.validation_file:
        if not (task.train_file and task.validation_file):
            missing = "validation_file" if task.train_file else "train_file"
            raise DataError(f"task.{missing} is not set", fix=f"set task.{missing}=PATH as well")
        splits = {"train": read_file(task.train_file, "train"),
                  "validation": read_file(task.validation_file, "validation")}
    elif task.data_dir:
        splits = {s: read_file(_find_in_dir(task.data_dir, task.name, s), s) for s in SPLITS}
    elif task.hub_id:
        splits = _load_hub(task)
    else:
        raise DataError(f"task '{task.name}' has no data source",
                        fix="set task.train_file and task.validation_file, or NLPTUNE_DATA_DIR, or task.hub_id")
    for raw in splits.values():
        for old, new in task.column_map.items():
            if old in raw.columns:
                raw.columns[new] = raw.columns.pop(old)
    return splits
