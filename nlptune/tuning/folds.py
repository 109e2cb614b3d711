"""Data files a sweep derives from the task's own splits: k cross-validation folds of the train split
(stratified as the task's problem kind says: by class for single_label, by the rarest present label for
multi_label) and the "full" data a best config is retrained on.

They are written as jsonl into the sweep directory (never next to the user's data) and trials read
them through `task.train_file` / `task.validation_file`, so the normal data checks apply to them.
"""
from __future__ import annotations

import json
from pathlib import Path

from nlptune.config.errors import NlptuneError
from nlptune.config.schema import TaskConfig
from nlptune.kinds import get_kind
from nlptune.utils.files import atomic_write_text

# overrides that make a trial read a derived train/validation pair instead of the task's own source
# (the derived files are jsonl, which task.format=conll leaves to the JSON reader)
_SOURCE_KEYS = ("task.generator=null", "task.max_train_samples=null", "task.max_eval_samples=null")


def _rows(columns: dict[str, list], limit: int | None = None) -> list[dict]:
    names = list(columns)
    count = len(next(iter(columns.values()), []))
    if limit:
        count = min(count, limit)
    return [{name: columns[name][i] for name in names} for i in range(count)]


def _write(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows))
    return str(path.resolve())


def load_rows(task: TaskConfig) -> dict[str, list[dict]]:
    """The task's train rows (first `max_train_samples`) and validation rows (first `max_eval_samples`)."""
    from nlptune.data.loading import load_raw_splits

    raw = load_raw_splits(task)
    return {"train": _rows(raw["train"].columns, task.max_train_samples),
            "validation": _rows(raw["validation"].columns, task.max_eval_samples)}


def fold_indices(count: int, k: int, seed: int, keys: list[str] | None) -> list[tuple[list[int], list[int]]]:
    """(train, validation) row indices of each of ``k`` folds of ``count`` rows; every row is validated exactly
    once. ``keys`` (one per row, `Kind.stratify_keys`): groups each fold keeps in proportion; None: plain k-fold."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if count < k:
        raise NlptuneError(f"tune.cv_folds={k} but the train split has only {count} rows -> use fewer folds")
    index = list(range(count))
    if keys is not None:
        smallest = min(keys.count(key) for key in set(keys))
        if smallest < k:
            raise NlptuneError(f"tune.cv_folds={k} but a class has only {smallest} training rows, so a stratified "
                               f"fold would miss it -> use at most {max(smallest, 2)} folds, or more data")
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(index, keys)
    else:
        splits = KFold(n_splits=k, shuffle=True, random_state=seed).split(index)
    return [(sorted(map(int, tr)), sorted(map(int, va))) for tr, va in splits]


def write_folds(task: TaskConfig, k: int, seed: int, out: Path) -> list[list[str]]:
    """Write ``k`` folds of the train split under ``out``: [[train_file, validation_file], ...]."""
    from nlptune.data.labels import label_values

    train = load_rows(task)["train"]

    def missing(column: str) -> None:
        key = "task.label_fields" if task.label_fields else "task.label_field"
        raise NlptuneError(f"label column '{column}' not found in the train split -> set {key}")

    columns = {name: [row.get(name) for row in train] for name in dict.fromkeys(k for row in train for k in row)}
    # multi_label: the rarest present label of each row (kinds/multi_label.py), groups of at least k rows
    keys = get_kind(task.kind).stratify_keys(label_values(task, columns, missing), folds=k)
    folds = []
    for number, (tr, va) in enumerate(fold_indices(len(train), k, seed, keys)):
        folder = out / f"fold-{number}"
        folds.append([_write(folder / "train.jsonl", [train[i] for i in tr]),
                      _write(folder / "validation.jsonl", [train[i] for i in va])])
    return folds


def write_full(task: TaskConfig, out: Path, include_validation: bool) -> list[str]:
    """The data a best config is retrained on: the train split (plus the validation split when
    ``include_validation``), evaluated on the validation split. Returns [train_file, validation_file]."""
    rows = load_rows(task)
    train = rows["train"] + (rows["validation"] if include_validation else [])
    return [_write(out / "train.jsonl", train), _write(out / "validation.jsonl", rows["validation"])]


def data_overrides(files: list[str]) -> list[str]:
    """Overrides making a run read ``files`` ([train, validation]) instead of the task's configured source."""
    from nlptune.tuning.space import to_override

    return [to_override("task.train_file", files[0]), to_override("task.validation_file", files[1]), *_SOURCE_KEYS]


def train_rows(task: TaskConfig) -> int:
    """How many training rows a run of ``task`` uses."""
    return len(load_rows(task)["train"])
