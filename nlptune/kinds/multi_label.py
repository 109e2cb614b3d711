"""multi_label: any number of classes per text (emotions, topics, tags): a sigmoid per label and BCE.

A row's label is the list of its label names: a JSON/parquet list (["joy", "love"]; [] = no label, allowed), a
delimited string in csv/tsv (task.label_separator splits it, in the data layer), or one 0/1 column per label
(task.label_fields: the data layer hands the kind {column: value} as `LabelColumns`). An object in the label
column itself ({"joy": 1, "anger": 0} in JSON, a parquet struct) is refused: it is not one of these forms, and
which of its values would mean "has the label" is a guess. Names are typed like single_label classes
(`class_key`). A training target is a tuple of 0.0/1.0, one per label (a tuple, so batches stack it as one row).

Predictions are probabilities; which of them count as a label is decided at scoring time by thresholds
(nlptune/kinds/thresholds.py): fixed (task.threshold) or tuned on validation outputs, never on the rows scored.
"""
from __future__ import annotations

import functools
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

from nlptune.config.registry import register
from nlptune.kinds import losses, thresholds
from nlptune.kinds.base import Kind, LabelColumns, LabelProblem
from nlptune.kinds.single_label import checked_names, class_key
from nlptune.utils.text import listed

_SHOWN = 12
# how a 0/1 column spells its values in text; an empty cell is neither (a value left out, as JSON's null is)
_ONE, _ZERO = {"1", "1.0", "true"}, {"0", "0.0", "false"}
_listed = functools.partial(listed, shown=_SHOWN, quote=True)  # names as a message lists them


def _separator_in(text: str) -> str:
    """How to set task.label_separator for ``text`` (a row's labels as text): with the first usual separator it
    holds; a text holding none (one label) shows no choice, so the usual ones are named."""
    mark = next((mark for mark in ("|", ";", ",", "+", "/", " ") if mark in text.strip()), None)
    return f"here 'task.label_separator=\"{mark}\"'" if mark else \
        "e.g. 'task.label_separator=\",\"' or \"|\" as the file separates them"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _flag(column: str, value: Any) -> bool:
    """A 0/1 column's value as a bool; anything else is a `LabelProblem` naming the column."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _ONE | _ZERO:
        return value.strip().lower() in _ONE
    raise LabelProblem(f"label column '{column}' holds {_short(value)}, not 0 or 1",
                       "write 1 where the label applies and 0 where it does not", column=column)


@register("kind", "multi_label")
class MultiLabel(Kind):
    name = "multi_label"
    hf_problem_type = "multi_label_classification"
    # the pipeline's sigmoid scores for every label; nlptune applies best/thresholds.json to them
    pipeline_arguments = ', function_to_apply="sigmoid", top_k=None'
    plots = ("label_f1", "label_cooccurrence")

    # ---- labels -------------------------------------------------------------------------------------------
    def label_key(self, value: Any) -> tuple:
        """The row's label names as a sorted tuple of class keys (str, or int ids); raises `LabelProblem`."""
        if isinstance(value, LabelColumns):  # task.label_fields: {column: 0/1}, built by the data layer
            return tuple(column for column, flag in value.items() if _flag(column, flag))
        if isinstance(value, Mapping):  # read from the file: which of its values means "has the label" is a guess
            raise LabelProblem(f"the labels are an object {_short(value)}, not a list of labels",
                               "give each row's labels as a list of names or integer ids (JSON [\"joy\", \"love\"], "
                               "[] for none), or put each label's 0/1 in a column of its own and name those columns "
                               "in task.label_fields")
        if hasattr(value, "tolist") and not isinstance(value, str):  # a parquet list read as an array
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            hint = (f" (a csv/tsv column holds text: set task.label_separator to split it, "
                    f"{_separator_in(value)})" if isinstance(value, str) else "")
            raise LabelProblem(f"the labels are {type(value).__name__} {_short(value)}, not a list of labels{hint}",
                               "give each row's labels as a list (JSON [\"joy\", \"love\"], [] for none), or one "
                               "0/1 column per label with task.label_fields")
        keys = set()
        for position, name in enumerate(value):
            try:
                keys.add(class_key(name, fix="list label names (strings) or integer label ids"))
            except LabelProblem as err:
                raise LabelProblem(f"label {position + 1} of the row: {err.problem}", err.fix) from None
        return tuple(sorted(keys, key=lambda k: (isinstance(k, str), k)))

    def label_names(self, train_keys: Sequence, declared: Sequence | None) -> list[str]:
        """Declared names (task.label_names, or task.label_fields), else every training label: integer ids in
        numeric order, then names sorted."""
        if declared:
            return checked_names(declared, "label")
        keys = {key for row in train_keys for key in row}
        return [str(k) for k in sorted(k for k in keys if isinstance(k, int))] + \
            sorted(k for k in keys if isinstance(k, str))

    def encoder(self, names: list[str], declared: bool) -> Callable[[tuple], tuple[float, ...]]:
        """Label keys -> a 0/1 tuple over ``names``; an unknown label is a `LabelProblem`."""
        index = {name: i for i, name in enumerate(names)}
        positional = declared and not any(str(n).lstrip("+-").isdigit() for n in names)
        unseen = "" if declared else " (it does not occur in train)"
        known = _listed(names) if names else "(none: no training row has a label)"

        def encode(key: tuple) -> tuple[float, ...]:
            target = [0.0] * len(names)
            for label in key:
                if str(label) in index:
                    target[index[str(label)]] = 1.0
                elif positional and isinstance(label, int) and 0 <= label < len(names):
                    target[label] = 1.0
                else:
                    raise LabelProblem(f"label {label!r} is not one of the task's labels {known}{unseen}",
                                       "fix the label, or declare the full set with task.label_names",
                                       undeclared=label)
            return tuple(target)

        return encode

    def check_training(self, targets: Sequence[tuple], names: list[str]) -> list[str]:
        positives = self.class_counts(targets, names)
        if not any(positives):
            raise LabelProblem("no training row has any label", "check task.label_field (or task.label_fields) "
                               "and the training rows (task.max_train_samples keeps only the first ones)")
        missing = [name for name, count in zip(names, positives) if not count]
        if not missing:
            return []
        return [f"label(s) {_listed(missing)} have no example in the training rows: the model can never learn to "
                "predict them (check task.label_names, task.max_train_samples and the training file)"]

    def class_counts(self, targets: Sequence[tuple], names: list[str]) -> list[int]:
        """Training rows holding each label (a row may hold several, or none)."""
        counts = [0] * len(names)
        for target in targets:
            for i, flag in enumerate(target):
                counts[i] += int(flag > 0.5)
        return counts

    def stratify_keys(self, values: Sequence, folds: int = 2) -> list[str]:
        """Each row's rarest label (by training frequency) among the labels with at least ``folds`` rows; rows
        without one, and groups that end up smaller than ``folds``, share one group (rows whose label is invalid
        too: the trial's checks report them)."""
        rows = []
        for value in values:
            try:
                rows.append(tuple(map(str, self.label_key(value))))
            except LabelProblem:
                rows.append(None)
        frequency = Counter(label for row in rows if row for label in row)
        keys = []
        for row in rows:
            eligible = [label for label in (row or ()) if frequency[label] >= folds]
            keys.append(min(eligible, key=lambda label: (frequency[label], label)) if eligible else "(other)")
        sizes = Counter(keys)
        return [key if sizes[key] >= folds else "(other)" for key in keys]

    # ---- model --------------------------------------------------------------------------------------------
    def num_outputs(self, names: list[str]) -> int:
        return len(names)

    @property
    def label_dtype(self):
        import torch

        return torch.float32

    def loss(self, logits, labels, loss_settings=None, **extras):
        """Binary cross-entropy of each label's sigmoid (weights, focal and smoothing from ``loss_settings``)."""
        return losses.binary_cross_entropy(logits, labels.reshape(logits.shape), loss_settings)

    def soft_loss(self, logits, teacher_logits, *, mode: str, temperature: float):
        """Each label's Bernoulli KL at the temperature (times T^2), or the squared error between the logits."""
        if mode == "kl":
            return losses.sigmoid_kl(logits, teacher_logits, temperature)
        return losses.logit_mse(logits, teacher_logits)

    # ---- predictions --------------------------------------------------------------------------------------
    def predictions(self, logits, mask=None, **extras):
        """Each label's probability (thresholds decide at scoring time)."""
        return logits.float().sigmoid()

    def scores(self, metrics, outputs: dict, names: list[str], decision=None) -> dict[str, float]:
        """The metrics at the decision's thresholds (tuned ones cross-fitted: never fitted on the rows they
        score), each also ``<metric>_at_0.5`` at the fixed 0.5, and each label's F1 as ``f1_<label>``."""
        probabilities, gold = outputs["predictions"], outputs["references"]
        predicted = thresholds.decide(probabilities, gold, decision)
        chosen = thresholds.summary_scores(predicted, gold)
        at_fixed = thresholds.summary_scores(thresholds.apply(probabilities, thresholds.FIXED), gold)
        result = {name: chosen[name] for name in metrics}
        result.update({f"{name}_at_0.5": at_fixed[name] for name in metrics})
        f1 = thresholds.label_report(predicted, gold)["f1"]
        result.update({f"f1_{name}": float(value) for name, value in zip(names, f1)})
        return result

    def best_files(self, outputs: dict, names: list[str], decision=None) -> dict[str, dict]:
        """best/thresholds.json: the thresholds `predict`, `eval` and exports apply, with the scores at them."""
        return {"thresholds.json": thresholds.saved_thresholds(outputs, names, decision)}

    def describe(self, logits, names: list[str], thresholds_in_force=None, **extras) -> list[dict]:
        """The labels whose probability reaches their threshold (best/thresholds.json; 0.5 without it)."""
        import numpy as np

        probabilities = logits.float().sigmoid().numpy()
        limits = np.asarray(thresholds.FIXED if thresholds_in_force is None else thresholds_in_force, float)
        chosen = probabilities >= limits
        return [{"labels": [n for n, on in zip(names, flags) if on],
                 "scores": {n: float(p) for n, p in zip(names, row)}} for row, flags in zip(probabilities, chosen)]
