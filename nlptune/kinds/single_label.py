"""single_label: one class per text (sentiment, acceptability, paraphrase, topic).

Labels keep their type and spelling: a string is a class name as written ("0.5", "true", "pos"), JSON true/false
are the classes "true"/"false", and an integer (1, 1.0, "1") is the class "1" - one class whichever file format
spelt it. Only when the config declares the names (task.label_names) and none of them is an integer does an
integer label index them (GLUE files hold 0/1 for [negative, positive]). A fractional number is no class.
"""
from __future__ import annotations

import math
import numbers
import re
import unicodedata
from typing import Any, Callable, Sequence

from nlptune.config.registry import register
from nlptune.kinds.base import Kind, LabelProblem
from nlptune.utils.text import describe_hidden, hidden_characters, listed

# an integer as a text file writes it: "1", "-2", "+3", "1.0"
_INTEGER = re.compile(r"[+-]?\d+(\.0*)?")


def class_key(value: Any, what: str = "label", fix: str | None = None) -> int | str:
    """The class of one raw label: an int (integer labels) or a str (a class name); raises `LabelProblem`.

    Every kind types its names here (classes, labels, tags, task.label_names), so this is where a name holding a
    character nobody can see (`nlptune.utils.text.hidden_characters`: NUL, zero-width space, ...) is refused.
    ``what`` names the value in messages (label, tag); ``fix``, when given, replaces the fix of a value of the
    wrong type or an empty one (a kind that holds names in a list says how to write the list)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise LabelProblem(f"{what} is empty (null/NaN)", fix or "fill in or drop that row")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if float(value).is_integer():
            return int(value)
        raise LabelProblem(f"{what} {value!r} is a fractional number, not a class",
                           fix or "use class names or integer class ids, or task.kind=regression for scores")
    if isinstance(value, str):
        _refuse_hidden(value, what)
        # one spelling per name: "café" typed as é or as e + a combining accent looks the same and is one class
        text = unicodedata.normalize("NFC", value.strip())
        if not text:  # an empty CSV/TSV cell is that format's null
            raise LabelProblem(f"{what} is empty", fix or "fill in or drop that row")
        return int(text.partition(".")[0]) if _INTEGER.fullmatch(text) else text
    raise LabelProblem(f"{what} {value!r} has an unsupported type {type(value).__name__}",
                       fix or "use class names (strings) or integer class ids")


def _refuse_hidden(value: str, what: str) -> None:
    """A name with hidden characters would silently be a class of its own that looks like another one (or like
    nothing): refused, with the characters named by code point (the repr alone may show them as nothing)."""
    found = hidden_characters(value)
    if found:
        raise LabelProblem(f"{what} {value!r} holds {len(found)} invisible or control character(s): "
                           f"{describe_hidden(found)}",
                           f"delete those characters from the {what} where it is written (they make it a {what} "
                           "of its own that looks like another one); if a tool wrote them into a data file, export "
                           "the file again as plain UTF-8 text")


# From this many classes, fewer than two training rows a class on average is warned about.
MANY_CLASSES = 20


@register("kind", "single_label")
class SingleLabel(Kind):
    name = "single_label"
    hf_problem_type = "single_label_classification"
    plots = ("confusion_matrix",)

    def label_key(self, value: Any) -> int | str:
        return class_key(value)

    def label_names(self, train_keys: Sequence, declared: Sequence | None) -> list[str]:
        """Declared names, else the distinct training classes: integers in numeric order, then names sorted."""
        if declared:
            return checked_names(declared)
        keys = set(train_keys)
        return [str(k) for k in sorted(k for k in keys if isinstance(k, int))] + \
            sorted(k for k in keys if isinstance(k, str))

    def encoder(self, names: list[str], declared: bool) -> Callable[[Any], int]:
        """Class key -> class id: by name; an integer key also by position when the declared names hold no
        integer (declared [negative, positive], label 1 -> positive)."""
        index = {name: i for i, name in enumerate(names)}
        positional = declared and not any(_INTEGER.fullmatch(name) for name in names)
        unseen = "" if declared else " (it does not occur in train)"
        # a dozen names say what the labels look like; all of them, on every refused row, bury the message
        known = f"[{listed(names, 12, quote=True)}]"

        def encode(key) -> int:
            if str(key) in index:
                return index[str(key)]
            if positional and isinstance(key, int) and 0 <= key < len(names):
                return key
            raise LabelProblem(f"label {key!r} is not one of the task's labels {known}{unseen}",
                               "fix the label, or declare the full set with task.label_names", undeclared=key)

        return encode

    def check_training(self, targets: Sequence[int], names: list[str]) -> list[str]:
        present = set(targets)
        if len(present) < 2:
            found = ", ".join(repr(names[i]) for i in sorted(present)) or "none"
            raise LabelProblem(f"the training labels have only one class ({found})",
                               "a classifier needs examples of at least two classes: check task.label_field "
                               "and the training rows (task.max_train_samples keeps only the first ones)")
        warnings = []
        missing = [name for i, name in enumerate(names) if i not in present]
        if missing:
            warnings.append(f"class(es) {', '.join(map(repr, missing))} have no example in the training rows: the "
                            "model can never learn to predict them (check task.label_names, task.max_train_samples "
                            "and the training file)")
        if len(present) >= MANY_CLASSES and len(present) > len(targets) / 2:  # an id or a text read as the label?
            warnings.append(f"{len(present)} classes in {len(targets)} training rows ({len(targets) / len(present):.1f}"
                            " a class): a class needs several examples to be learnt -> check that task.label_field "
                            "is the label column (not an id or a text), or use task.kind=regression for a score")
        return warnings

    def stratify_keys(self, values: Sequence, folds: int = 2) -> list[str]:
        """The class of each row (a row whose label is invalid is its own group: the trial's checks report it)."""
        keys = []
        for value in values:
            try:
                keys.append(str(class_key(value)))
            except LabelProblem:
                keys.append(f"invalid {value!r}")
        return keys

    def class_counts(self, targets: Sequence[int], names: list[str]) -> list[int]:
        counts = [0] * len(names)
        for target in targets:
            counts[target] += 1
        return counts

    def num_outputs(self, names: list[str]) -> int:
        return len(names)

    @property
    def label_dtype(self):
        import torch

        return torch.long

    def loss(self, logits, labels, loss_settings=None, **extras):
        """Cross-entropy (class weights, focal loss and label smoothing from ``loss_settings``)."""
        from nlptune.kinds.losses import cross_entropy

        return cross_entropy(logits, labels.view(-1).long(), loss_settings)

    def soft_loss(self, logits, teacher_logits, *, mode: str, temperature: float):
        """KL between the softened class distributions (times T^2), or the squared error between the logits."""
        from nlptune.kinds.losses import logit_mse, softmax_kl

        if mode == "kl":
            return softmax_kl(logits, teacher_logits, temperature)
        return logit_mse(logits, teacher_logits)

    def predictions(self, logits, mask=None, **extras):
        return logits.argmax(dim=-1)

    def describe(self, logits, names: list[str], **extras) -> list[dict]:
        probabilities = logits.softmax(-1)
        # one conversion of the whole tensor to Python floats: indexing it row by row builds a tensor per value
        best, rows = probabilities.argmax(-1).tolist(), probabilities.tolist()
        return [{"label": names[i], "score": row[i], "probabilities": dict(zip(names, row))}
                for i, row in zip(best, rows)]


def checked_names(declared: Sequence, what: str = "class") -> list[str]:
    """task.label_names spelt like the labels they name (YAML 0 -> "0", true -> "true"); each once. ``what``:
    the name's kind in messages (class, label, tag)."""
    names = []
    for value in declared:
        try:
            names.append(str(class_key(value, fix=f"list the {what} names as strings")))
        except LabelProblem as err:
            raise LabelProblem(f"task.label_names entry {value!r}: {err.problem}", err.fix) from None
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise LabelProblem(f"task.label_names lists {', '.join(map(repr, repeated))} more than once",
                           f"list each {what} name once")
    return names
