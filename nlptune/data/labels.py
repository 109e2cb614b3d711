"""Turn raw columns into texts and training targets, refusing what cannot be trained on.

What a label is belongs to the task's problem kind (nlptune/kinds/): this module reads the columns, asks the kind
for each row's label and its target, and turns the kind's `LabelProblem`s into `DataError`s that name the file,
split, line and column. Every label problem of a pass is collected and reported together.
"""
from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from nlptune.config.schema import TaskConfig
from nlptune.data.compression import data_suffix
from nlptune.data.errors import DataError, DataProblems, ProblemCollector, rows_alike
from nlptune.data.loading import RawSplit
from nlptune.kinds import LabelProblem, get_kind
from nlptune.kinds.base import LabelColumns
from nlptune.utils.text import listed

if TYPE_CHECKING:
    from nlptune.data.columns import Column

_INVALID = object()  # the key of a row whose label was refused (its problem is collected)


_REPAIRS_SHOWN = 3  # locations of repaired tags named in the warning


@dataclass
class Examples:
    # one sequence per text field: strings (a list, or a compact `nlptune.data.columns.Column`), or word lists
    # (Kind.words_in_text_column)
    texts: list
    labels: list  # the kind's training targets (class ids, floats)
    source: str


def check_columns(task: TaskConfig, raw: RawSplit, split: str, trained_model: str | None = None) -> None:
    """Refuse a split that lacks a column it must have (its text fields, its label field or fields), every missing
    one in one message. ``trained_model``: as in `to_examples`."""
    needed = [(name, "text") for name in task.text_fields] + \
        [(name, "label") for name in (task.label_fields or (task.label_field,))]
    problems = [_missing_column(raw, name, split, role, trained_model, [n for n, _ in needed])
                for name, role in needed if name not in raw.columns]
    if len(problems) > 1:
        raise DataProblems(problems)
    if problems:
        raise problems[0]


def _missing_column(raw: RawSplit, name: str, split: str, role: str, trained_model: str | None,
                    needed: list[str]) -> DataError:
    fix = (f"give the file a '{name}' column: the {role} column {trained_model} was trained with"
           if trained_model else f"set task.{'label_field' if role == 'label' else 'text_fields'} to the right "
           "column")
    data = next((column for column in raw.columns if _looks_like_data(column)), None)
    note = ""
    if data is not None and data_suffix(raw.source) in (".csv", ".tsv"):  # read as a header: it is a row
        note = f"; the first line looks like a row of data, not a header (a column named {data!r})"
        names = needed if len(needed) == len(raw.columns) else \
            [f"column{i + 1}" for i in range(len(raw.columns))]
        fix = f"give the file a first line naming its columns in their order (e.g. {','.join(names)}); or {fix}"
    return DataError(f"{role} column '{name}' not found; columns present: {', '.join(raw.columns)}{note}",
                     file=raw.source, split=split, column=name, fix=fix)


def _looks_like_data(column: str) -> bool:
    """A column name that is a number, or a sentence of five words or more: a header line holds neither."""
    try:
        float(column)
        return True
    except ValueError:
        return len(column.split()) >= 5


def label_values(task: TaskConfig, columns: dict[str, list], missing: Callable[[str], None] | None = None) -> list:
    """Each row's raw label: the task.label_field value; with task.label_fields (multi_label) a {column: value}
    dict of the 0/1 columns (`LabelColumns`, so that the kind tells it from an object read from a file); a text
    split by task.label_separator into a list of names ("" = no label). ``missing(column)`` is called for a label
    column the split lacks (it raises)."""
    if task.label_fields:
        for name in task.label_fields:
            if name not in columns and missing:
                missing(name)
        flags = [columns.get(name) or [] for name in task.label_fields]
        return [LabelColumns(zip(task.label_fields, row)) for row in zip(*flags)]
    if task.label_field not in columns and missing:
        missing(task.label_field)
    values = columns.get(task.label_field) or []
    separator = task.label_separator
    if not separator:
        return values  # as stored (a list, or a compact `nlptune.data.columns.Column`): read, never changed
    return [[part.strip() for part in value.split(separator) if part.strip()] if isinstance(value, str) else value
            for value in values]


def declared_names(task: TaskConfig) -> tuple | None:
    """The output names the config declares: task.label_names, or the columns of task.label_fields."""
    return task.label_names or task.label_fields


def _where(raw: RawSplit, split: str, index: int, column: str, word: int | None = None) -> dict:
    """Where row ``index`` is (with ``word``, a `LabelProblem.position`: where that word of the row is): its line
    in a text file, else its row."""
    return {"file": raw.source, "split": split, **raw.location(index, word), "column": column}


def raise_problems(problems: ProblemCollector) -> None:
    """Raise what ``problems`` collected: one problem as its own `DataError`, several as one `DataProblems`,
    split by split and row by row (the text and the label passes each found some: the user reads a file in order)."""
    splits = list(dict.fromkeys(p.split for p in problems.problems))
    problems.problems.sort(key=lambda p: (splits.index(p.split), p.line or p.row or 0))
    if len(problems.problems) == 1 and not problems.extra:
        raise problems.problems[0]
    problems.raise_if_any()


def label_keys(task: TaskConfig, raw: RawSplit, split: str, problems: ProblemCollector,
               limit: int | None = None, trained_model: str | None = None) -> list:
    """The kind's key of each label of ``raw`` (first ``limit`` rows); a refused label is collected in
    ``problems`` and its key is a placeholder. ``trained_model``: see `to_examples`."""
    check_columns(task, raw, split, trained_model)
    kind = get_kind(task.kind)
    column = label_values(task, raw.columns)  # its columns are there: `check_columns`
    texts = [raw.columns.get(field) for field in task.text_fields]
    texts = texts if all(t is not None for t in texts) else None  # a missing text column is reported by _texts
    # each row's texts, read alongside its label (a compact column reads fast in order, slowly by index)
    rows = zip(*texts) if texts is not None else itertools.repeat(None)
    keys, repairs, of_column = [], [], {}  # a column's problem -> [it, its first row, rows refused]
    for i, (value, row) in enumerate(zip(column[:limit] if limit else column, rows)):
        try:
            key = kind.label_key(value)
            if row is not None:
                key, notes = kind.check_example(list(row), key, task.tag_scheme, declared_names(task))
                repairs.extend(f"{raw.source}:{raw.line_of(i, getattr(note, 'position', None))} ({note})"
                               for note in notes)
            keys.append(key)
        except LabelProblem as err:
            column = task.text_fields[0] if err.in_text else err.column or task.label_field
            where = _where(raw, split, i, column, err.position)
            if err.of_column:
                of_column.setdefault(err.fix, [err, where, 0])[2] += 1
            else:
                problems.add(DataError(err.problem, fix=err.fix, **where))
            keys.append(_INVALID)
    for err, where, rows_refused in of_column.values():
        problems.add(DataError(err.problem + rows_alike(rows_refused, len(keys)), fix=err.fix, **where))
    if repairs:
        _warn_repairs(task, split, repairs)
    return keys


def _warn_repairs(task: TaskConfig, split: str, repairs: list[str]) -> None:
    """One warning for the tags of a split repaired by the kind (`Kind.check_example`)."""
    from nlptune.utils.console import warn

    more = f" and {len(repairs) - _REPAIRS_SHOWN} more" if len(repairs) > _REPAIRS_SHOWN else ""
    warn(f"{split} split: {len(repairs)} tag(s) break the {task.tag_scheme} scheme (task.tag_scheme) and were "
         f"repaired the way conlleval reads them: {'; '.join(repairs[:_REPAIRS_SHOWN])}{more}")


def names_from_keys(task: TaskConfig, train: RawSplit, keys: list) -> list[str] | None:
    """The output names of the task's kind: task.label_names, or derived from the training keys."""
    try:
        return get_kind(task.kind).label_names([k for k in keys if k is not _INVALID], declared_names(task))
    except LabelProblem as err:
        raise DataError(err.problem, fix=err.fix, file=train.source, split="train", column=task.label_field) from None


def infer_label_names(task: TaskConfig, train: RawSplit) -> list[str] | None:
    """The output names (class names; None for regression) from the whole training split; raises every label
    problem of the split together."""
    problems = ProblemCollector()
    keys = label_keys(task, train, "train", problems)
    raise_problems(problems)
    return names_from_keys(task, train, keys)


def _texts(task: TaskConfig, raw: RawSplit, split: str, limit: int | None,
           trained_model: str | None = None) -> list[list]:
    """The text columns (first ``limit`` rows): strings, or lists of words for a kind that reads words (a row
    whose words were refused holds an empty list); every text empty is refused. ``trained_model``: as in
    `to_examples` (the columns are then the saved model's, not a setting to change)."""
    check_columns(task, raw, split, trained_model)
    texts = [raw.columns[field] for field in task.text_fields]
    texts = [column[:limit] if limit else column for column in texts]
    if get_kind(task.kind).words_in_text_column:
        texts = [[list(t) if isinstance(t, (list, tuple)) else [] for t in column] for column in texts]
        empty = not any(isinstance(w, str) and w.strip() for column in texts for words in column for w in words)
    else:
        texts = [_as_texts(column) for column in texts]
        empty = not any(t.strip() for column in texts for t in column)
    if empty:
        raise DataError("every text is empty", file=raw.source, split=split, column=task.text_fields[0],
                        fix="check the file's content" if trained_model else
                        "check task.text_fields and the file's content")
    return texts


def _as_texts(column) -> list | Column:
    """A text column's values as texts: None is "" (an empty text). A compact column of strings stays one."""
    from nlptune.data.columns import Column

    if isinstance(column, Column) and column.all_text():
        return column.texts()
    return ["" if t is None else str(t) for t in column]


def to_examples(task: TaskConfig, raw: RawSplit, split: str, label_names: list[str] | None, limit: int | None,
                problems: ProblemCollector | None = None, keys: list | None = None,
                trained_model: str | None = None) -> Examples:
    """Texts and training targets of one split (first ``limit`` rows), validated row by row.

    Label problems go to ``problems`` when given (the caller raises them), else they are raised here, all
    together. ``keys``: the split's label keys when already computed (`label_keys`). ``trained_model``: the saved
    model that fixed ``label_names`` and the columns (`nlptune eval`), as the messages name it ("the model of the run
    R", "the saved model M"): a label outside them is then the data's to change, as no task setting can teach the
    model a new label."""
    collector = problems if problems is not None else ProblemCollector()
    texts = _texts(task, raw, split, limit, trained_model)
    keys = label_keys(task, raw, split, collector, limit, trained_model) if keys is None else \
        keys[:limit] if limit else keys
    encode = get_kind(task.kind).encoder(label_names, declared=bool(declared_names(task)))
    targets, undeclared = [], Counter()  # labels task.label_names lacks -> the rows holding them
    for i, key in enumerate(keys):
        try:
            targets.append(None if key is _INVALID else encode(key))
        except LabelProblem as err:
            undeclared.update([err.undeclared] if err.undeclared is not None else [])
            fix = err.fix if trained_model is None else (
                f"{trained_model} knows only the labels it was trained on: relabel or drop those rows "
                "(a label it never learnt cannot be scored; train a new run to add one)")
            collector.add(DataError(err.problem, fix=fix, **_where(raw, split, i, task.label_field, err.position)))
            targets.append(None)
    declared_or_clean = task.label_names or (split != "train" and _clean_training_labels(label_names, collector))
    if trained_model is None and declared_or_clean and _many(undeclared, len(keys)):
        collector.lead(_undeclared_labels(task, raw, split, undeclared, label_names))
    if problems is None:
        raise_problems(collector)
    return Examples(texts=texts, labels=targets, source=raw.source)


def _many(undeclared: Counter, rows: int) -> bool:
    """Whether the labels that task.label_names lacks refuse enough rows (two, and a tenth of those read) to point
    at the names rather than at a typo in a row."""
    refused = sum(undeclared.values())
    return refused >= 2 and refused * 10 >= rows


def _clean_training_labels(label_names: list[str] | None, collector: ProblemCollector) -> bool:
    """Whether the labels taken from the training file are all it holds (no training row was refused): only then
    does a validation label outside them point at the two files' naming rather than at the training rows."""
    return bool(label_names) and not collector.extra and all(p.split != "train" for p in collector.problems)


def _undeclared_labels(task: TaskConfig, raw: RawSplit, split: str, undeclared: Counter,
                       label_names: list[str] | None) -> DataError:
    """One problem for the labels of a split that the task's labels lack, with the fix for the common cause: names
    declared for other data (the demo task's, or a task config's) while the files hold labels of their own, or a
    validation file labelled with other names than the training file (whose labels the task took)."""
    found = sorted(undeclared, key=lambda label: (isinstance(label, str), label))
    rows = sum(undeclared.values())
    what = "training" if split == "train" else split
    if task.label_names:
        known, known_by = f"task.label_names [{listed(list(task.label_names), 12, quote=True)}] does not", ""
        fix = (f"if the {what} file's labels are right, "
               + ("set task.label_names=null to take them from the training file, or " if split == "train" else "")
               + "declare all of them in the order the model should output them (task.label_names=[...]); else fix "
               "the labels")
    else:
        known = "the training file does not"
        known_by = f"the training labels: {listed(list(label_names or ()), 12, quote=True)}; "
        fix = ("label both files with the same names (check that they are the same task and task.label_field), or "
               "declare the full set with task.label_names=[...]")
    return DataError(f"the {what} file holds {len(found)} label(s) that {known}: "
                     f"{listed(found, 12, quote=True)} ({known_by}{rows} refusal(s); the rows follow)", file=raw.source,
                     split=split, column=task.label_field, fix=fix)


def check_training_targets(task: TaskConfig, train: RawSplit, examples: Examples, label_names: list[str] | None,
                           problems: ProblemCollector) -> None:
    """What the kind refuses in the training targets as a whole (e.g. a single class) goes to ``problems``;
    what it only warns about (classes without a training example) is shown."""
    from nlptune.utils.console import warn

    if any(target is None for target in examples.labels):
        return  # rows were refused: what the rest would say about the whole split is noise until they are fixed
    try:
        warnings = get_kind(task.kind).check_training(examples.labels, label_names)
    except LabelProblem as err:
        problems.add(DataError(err.problem, fix=err.fix, file=train.source, split="train", column=task.label_field))
        return
    for message in warnings:
        warn(f"{train.source}: {message}")


def check_validation_targets(task: TaskConfig, validation: RawSplit, examples: Examples,
                             problems: ProblemCollector) -> None:
    """What the kind refuses in the validation targets as a whole for the task's metrics goes to ``problems``."""
    if not examples.labels or any(target is None for target in examples.labels):
        return  # no labels to score, or rows were refused: those problems come first
    try:
        get_kind(task.kind).check_validation(examples.labels, task.metrics)
    except LabelProblem as err:
        problems.add(DataError(err.problem, fix=err.fix, file=validation.source, split="validation",
                               column=task.label_field))


def split_examples(task: TaskConfig, raw: dict[str, RawSplit],
                   problems: ProblemCollector | None = None) -> tuple[Examples, Examples, list[str] | None]:
    """Train and validation examples of a run and the output names, every label problem of both splits raised
    together (one `DataError`, or `DataProblems`) with those ``problems`` already holds (the texts')."""
    problems = problems if problems is not None else ProblemCollector()
    keys = label_keys(task, raw["train"], "train", problems)  # the whole split: the names come from all of it
    label_names = names_from_keys(task, raw["train"], keys)
    warn_if_names_look_alike(task, label_names)
    warn_if_ids_mix_with_names(task, raw["train"], keys)
    train = to_examples(task, raw["train"], "train", label_names, task.max_train_samples, problems, keys)
    validation = to_examples(task, raw["validation"], "validation", label_names, task.max_eval_samples, problems)
    check_training_targets(task, raw["train"], train, label_names, problems)
    check_validation_targets(task, raw["validation"], validation, problems)
    raise_problems(problems)
    return train, validation, label_names


def warn_if_names_look_alike(task: TaskConfig, label_names: list[str] | None) -> None:
    """Warn when class names read from the training labels differ only in case or surrounding spaces ('pos',
    'Pos', 'pos '): most likely one class written two ways, which the model would learn as two. Names the task
    declares (task.label_names) are as meant."""
    from nlptune.utils.console import warn

    if not label_names or declared_names(task):
        return
    spellings: dict[str, list[str]] = {}
    for name in label_names:
        spellings.setdefault(str(name).strip().casefold(), []).append(str(name))
    alike = [names for names in spellings.values() if len(names) > 1]
    if alike:
        shown = "; ".join(", ".join(map(repr, names)) for names in alike[:5])
        warn(f"the training labels hold classes that differ only in case or spaces ({shown}"
             f"{'; ...' if len(alike) > 5 else ''}): each is learnt as a class of its own -> write each class one "
             "way in the data files")
    joined = _joined_names(label_names)
    if joined:
        shown = "; ".join(f"{name!r} = {' + '.join(map(repr, parts))}" for name, parts in joined[:5])
        warn(f"the training labels hold classes that join other classes ({shown}{'; ...' if len(joined) > 5 else ''})"
             ": each is learnt as a class of its own, apart from the classes it joins -> give such a row its labels "
             "separately (a multi-label task: a JSON list per row, or task.label_separator for a text column)")


def _joined_names(label_names: list) -> list[tuple[str, list[str]]]:
    """Class names made of two or more other class names and separators (``joy, anger`` beside ``joy`` and
    ``anger``): several labels written as one."""
    names = {str(name) for name in label_names}
    joined = []
    for name in map(str, label_names):
        parts = [part.strip() for part in re.split(r"[,;|/+]", name)]
        if len(parts) > 1 and all(part in names and part != name for part in parts):
            joined.append((name, parts))
    return joined


def warn_if_ids_mix_with_names(task: TaskConfig, train: RawSplit, keys: list) -> None:
    """Warn when some training rows give their labels as integer ids (``1``) and others as class names
    (``"pos"``): each id is then learnt as a class of its own named by its number, beside the named classes,
    which is most likely a file written two ways. Names the task declares (task.label_names) map ids to names.
    A row's key is its class, or a tuple of them (labels, tags); a score (a float) is neither."""
    from nlptune.utils.console import warn

    if declared_names(task):
        return
    ids, names = {}, {}  # the rows of each: {class: [row index, ...]}
    for i, key in enumerate(keys):
        for item in (key if isinstance(key, tuple) else () if key is _INVALID else (key,)):
            if isinstance(item, (int, str)):
                (ids if isinstance(item, int) else names).setdefault(item, []).append(i)
    if not ids or not names:
        return
    rows = {side: sorted({i for found in group.values() for i in found}) for side, group in
            (("ids", ids), ("names", names))}
    fewer = "ids" if len(rows["ids"]) <= len(rows["names"]) else "names"
    lines = ", ".join(str(train.line_of(i)) for i in rows[fewer][:5]) + (", ..." if len(rows[fewer]) > 5 else "")
    warn(f"{train.source}: the training labels mix integer ids and class names: {len(rows['ids'])} row(s) with "
         f"ids ({listed(sorted(ids), 5, quote=True)}), {len(rows['names'])} with names "
         f"({listed(sorted(names), 5, quote=True)}); the {fewer} are on line(s) {lines}. Each id is learnt as a "
         "class of its own named by its number -> write every label one way: names, or ids with task.label_names "
         "listing the names in id order")


LEAK_SHARE = 0.05  # validation rows that are training rows too, from which a run's scores are said to be inflated


def warn_if_validation_in_train(train: Examples, validation: Examples) -> int:
    """Warn when at least `LEAK_SHARE` of the validation rows (their texts, all fields) are training rows too (the
    same file given twice, or a split that leaks): their scores then measure what the model saw, not how it does on
    new text. Public splits share a few rows (CoLA 12 of 516, GoEmotions 43 of 5,426), below the share. Returns
    how many validation rows were found in train."""
    from nlptune.utils.console import warn

    wanted = set(_rows(validation.texts))  # held for the smaller split only: train is passed over once
    in_train = {row for row in _rows(train.texts) if row in wanted}
    shared = sum(row in in_train for row in _rows(validation.texts))
    total = len(validation.labels)
    if total and shared >= LEAK_SHARE * total:
        how = "every validation row is" if shared == total else f"{shared} of the {total} validation rows are"
        warn(f"{how} also in the training data ({validation.source} / {train.source}): the validation scores "
             "measure what the model was trained on, not how it does on new text -> give validation rows that are "
             "not training rows")
    return shared


def _rows(texts: list):
    """Each row's texts (all fields) as one hashable value; a tagger's word lists become tuples."""
    return (tuple(tuple(t) if isinstance(t, list) else t for t in row) for row in zip(*texts))
