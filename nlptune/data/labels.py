"""Turn raw columns into texts and numeric labels, refusing what cannot be trained on."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from nlptune.config.schema import TaskConfig
from nlptune.data.errors import DataError
from nlptune.data.loading import RawSplit


@dataclass
class Examples:
    texts: list[list[str]]  # one list per text field
    labels: list  # int class ids or floats
    source: str


def _column(raw: RawSplit, name: str, split: str, role: str) -> list:
    if name not in raw.columns:
        raise DataError(f"{role} column '{name}' not found; columns present: {', '.join(raw.columns)}",
                        file=raw.source, split=split, column=name,
                        fix=f"set task.{'label_field' if role == 'label' else 'text_fields'} to the right column")
    return raw.columns[name]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _regression_label(value, where: dict) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise DataError(f"label {value!r} is not a number", fix="a regression task needs numeric labels",
                            **where) from None
    if not _is_number(value) or math.isnan(value) or math.isinf(value):
        raise DataError(f"label {value!r} is not a finite number", fix="fill in or drop that row", **where)
    return float(value)


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _class_key(value, where: dict):
    """Normalise a classification label to an int or a string; refuse floats, nulls and NaN.

    Text files give strings: "1" and "1.0" are the class 1, "0.5" is refused like the float 0.5."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise DataError("label is empty (null/NaN)", fix="fill in or drop that row", **where)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise DataError(f"label {value!r} is a float but the task is a classification",
                        fix="use integer or string class labels, or task.problem_type=regression", **where)
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped:  # an empty CSV/TSV cell is that format's null
            raise DataError("label is empty", fix="fill in or drop that row", **where)
        if stripped.lstrip("-").isdigit():
            return int(stripped)
        return _class_key(float(stripped), where) if _NUMBER.fullmatch(stripped) else stripped
    if isinstance(value, int):
        return value
    raise DataError(f"label {value!r} has an unsupported type {type(value).__name__}",
                    fix="use integer or string class labels", **where)


def _where(raw: RawSplit, split: str, index: int, column: str) -> dict:
    return {"file": raw.source, "split": split, "line": raw.line_of(index), "column": column}


def _label_ids(keys: list, names: list[str], raw: RawSplit, split: str, column: str,
               positional: bool) -> list[int]:
    """Class ids of ``keys``: by name, or (``positional``) an int label is the index into ``names``."""
    index = {name: i for i, name in enumerate(names)}
    ids = []
    for i, key in enumerate(keys):
        if positional and isinstance(key, int) and 0 <= key < len(names) and str(key) not in index:
            ids.append(key)
        elif str(key) in index:
            ids.append(index[str(key)])
        else:
            raise DataError(f"label {key!r} is not one of the task's labels {names}" + (
                " (it does not occur in train)" if split == "validation" else ""),
                fix="fix the label, or declare the full set with task.label_names", **_where(raw, split, i, column))
    return ids


def infer_label_names(task: TaskConfig, train: RawSplit) -> list[str] | None:
    """The class names: declared ones, or the sorted distinct training labels. None for regression."""
    if task.is_regression:
        return None
    if task.label_names:
        return [str(n) for n in task.label_names]
    column = _column(train, task.label_field, "train", "label")
    keys = {_class_key(v, _where(train, "train", i, task.label_field)) for i, v in enumerate(column)}
    if len(keys) < 2:
        raise DataError(f"the training labels have only one class ({sorted(map(str, keys))})", file=train.source,
                        split="train", column=task.label_field, fix="a classifier needs at least two classes")
    ints = sorted(k for k in keys if isinstance(k, int))
    return [str(k) for k in ints] + sorted(k for k in keys if isinstance(k, str))


def to_examples(task: TaskConfig, raw: RawSplit, split: str, label_names: list[str] | None,
                limit: int | None) -> Examples:
    """Texts and label ids of one split (first ``limit`` rows), validated row by row."""
    texts = [_column(raw, field, split, "text") for field in task.text_fields]
    labels = _column(raw, task.label_field, split, "label")
    if limit:
        texts, labels = [t[:limit] for t in texts], labels[:limit]
    texts = [["" if t is None else str(t) for t in column] for column in texts]
    if not any(t.strip() for column in texts for t in column):
        raise DataError("every text is empty", file=raw.source, split=split, column=task.text_fields[0],
                        fix="check task.text_fields and the file's content")
    if task.is_regression:
        ids = [_regression_label(v, _where(raw, split, i, task.label_field)) for i, v in enumerate(labels)]
    else:
        keys = [_class_key(v, _where(raw, split, i, task.label_field)) for i, v in enumerate(labels)]
        # int labels index declared names (GLUE: 0/1 with [negative, positive]); names inferred from the train
        # labels are matched by value only, so a validation label unseen in train is never mapped by position
        positional = bool(task.label_names) and not any(str(n).lstrip("-").isdigit() for n in task.label_names)
        ids = _label_ids(keys, label_names, raw, split, task.label_field, positional)
    return Examples(texts=texts, labels=ids, source=raw.source)
