"""The interface of a problem kind: everything that depends on what a label is (ARCHITECTURE.md, "Problem kinds").

A kind is stateless; `nlptune.kinds.get_kind(task.kind)` returns it. The rest of nlptune asks the kind and never
branches on it. Label checks raise `LabelProblem` (problem + fix, no location): the data layer knows the file,
split, line and column and turns it into a `DataError`, collecting every problem of a pass.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

from nlptune.config.schema import METRICS


class LabelProblem(ValueError):
    """A label (or a split's labels) a kind cannot train on; ``fix`` says what to do."""

    def __init__(self, problem: str, fix: str, column: str | None = None, position: int | None = None,
                 in_text: bool = False, undeclared: Any = None, of_column: bool = False):
        super().__init__(problem)
        # ``of_column``: the problem is the column's, not the row's (integer tags and no names to index): the data
        # layer names its first row and counts the others, rather than repeating it for every row
        self.of_column = of_column
        # ``undeclared``: the label (or tag) itself when the problem is that the label names lack it, so that the
        # data layer can say once what the refused rows have in common
        self.undeclared = undeclared
        # ``column``: the column at fault when it is not task.label_field (a 0/1 column of task.label_fields);
        # ``in_text``: the fault is in the row's text (a tagger's words), whose column the data layer knows;
        # ``position``: the 0-based word whose tag is at fault (tokens), so that the data layer can name that
        # word's own line in a file with a word per line (CoNLL), not the line its sentence starts on
        self.problem, self.fix, self.column, self.position = problem, fix, column, position
        self.in_text = in_text


class Note(str):
    """A note on a repaired label (`Kind.check_example`), as text; ``position``: the 0-based word it is about
    (tokens), so that the data layer can name that word's own line (see `LabelProblem`)."""

    position: int | None

    def __new__(cls, text: str, position: int | None = None):
        note = super().__new__(cls, text)
        note.position = position
        return note


class LabelColumns(dict):
    """One row's values of task.label_fields, {column: value}, as the data layer builds them. Its own type, so
    that a kind tells these apart from an object read out of a file's label column (a JSON object, a parquet
    struct), which is no label."""


class Kind:
    """One problem kind. Subclasses set the class attributes and implement the methods that raise here."""

    name: ClassVar[str]
    # a pretrained model's head: the transformers auto class, and PretrainedConfig.problem_type (pipelines read it)
    hf_auto_model: ClassVar[str] = "AutoModelForSequenceClassification"
    hf_problem_type: ClassVar[str | None]
    # the transformers pipeline task that serves the best model (model card); exports carry the model's raw
    # ``logits`` [batch, num_outputs] (inference/export.py), which `describe` turns into predictions
    pipeline_task: ClassVar[str] = "text-classification"
    # the pipeline's extra arguments that make it return what nlptune predicts (a python-literal string)
    pipeline_arguments: ClassVar[str] = ""
    # validation plots of the best model, by name (nlptune/train/plots.py draws them)
    plots: ClassVar[tuple[str, ...]] = ()
    # a tag per word (tokens): the text column holds each row's words, and sentences are encoded as windows
    words_in_text_column: ClassVar[bool] = False

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The metrics this kind can report (task.metrics must be among them)."""
        return METRICS[self.name]

    # ---- labels -------------------------------------------------------------------------------------------
    def label_key(self, value: Any) -> Any:
        """The label of one row, typed and checked (a class key, a float, ...); raises `LabelProblem`."""
        raise NotImplementedError

    def check_example(self, texts: list, key: Any, scheme: str,
                      declared: Sequence | None = None) -> tuple[Any, list[str]]:
        """Check one row's texts (one value per text field) against its label key and return the key to use
        (possibly repaired) with notes on what was repaired (`Note`s); raises `LabelProblem`. ``scheme``:
        task.tag_scheme, ``declared``: task.label_names. Default: the key as it is, no notes."""
        return key, []

    def label_names(self, train_keys: Sequence, declared: Sequence | None) -> list[str] | None:
        """The names of the model's outputs: ``declared`` (task.label_names) or derived from the training keys;
        None when outputs have no names (regression)."""
        raise NotImplementedError

    def encoder(self, names: list[str] | None, declared: bool) -> Callable[[Any], Any]:
        """A function from a label key to its training target (a class id, a float); ``declared``: the names
        came from the config. It raises `LabelProblem` for a key the names do not cover."""
        raise NotImplementedError

    def check_training(self, targets: Sequence, names: list[str] | None) -> list[str]:
        """Refuse (`LabelProblem`) training targets nothing can be learnt from; return warnings to show."""
        return []

    def check_validation(self, targets: Sequence, metrics: Sequence[str]) -> None:
        """Refuse (`LabelProblem`) validation targets on which one of ``metrics`` (task.metrics) means nothing."""

    def stratify_keys(self, values: Sequence, folds: int = 2) -> list[str] | None:
        """Per-row group keys that ``folds`` cross-validation folds keep in proportion, or None (plain k-fold)."""
        return None

    def class_counts(self, targets: Sequence, names: list[str] | None) -> list[int] | None:
        """Training rows per output (a class's rows; a label's positive rows), for trainer.class_weights /
        pos_weight "balanced"; None: the kind has no classes (regression)."""
        return None

    # ---- model --------------------------------------------------------------------------------------------
    def num_outputs(self, names: list[str] | None) -> int:
        """The width of the model's output layer (``num_labels``)."""
        raise NotImplementedError

    @property
    def label_dtype(self):
        """The torch dtype of a batch's ``labels``."""
        raise NotImplementedError

    def loss(self, logits, labels, **extras):
        """The training loss of ``logits`` [batch, outputs] against the batch's ``labels``; ``extras``: the model's
        other outputs a kind may read (a CRF tagger's ``transitions``) and the run's ``loss_settings``
        (`nlptune.kinds.losses.LossSettings`: class weights, focal loss, label smoothing; absent: the plain loss)."""
        raise NotImplementedError

    def soft_loss(self, logits, teacher_logits, *, mode: str, temperature: float):
        """Distillation: the loss of ``logits`` [batch, outputs] against a teacher's ``teacher_logits`` (same shape),
        ``mode`` kl (softened distributions at ``temperature``) or mse (the logits themselves); see
        nlptune/kinds/losses.py. A kind without it cannot be distilled (config validation refuses it first)."""
        raise NotImplementedError(f"distillation is not supported for {self.name} tasks")

    def start_model(self, model, train_targets: Sequence, names: list[str] | None, scheme: str) -> None:
        """Adjust a fresh from-scratch model to the training targets, the output names and the task's tag scheme
        before training (default: nothing)."""

    # ---- predictions --------------------------------------------------------------------------------------
    def decoding(self, names: list[str] | None, scheme: str, constrained: bool):
        """What `predictions` decodes under besides the logits, fixed for a run (tokens: the tag scheme's allowed
        transitions when task.constrained_decoding); None (the default): nothing."""
        return None

    def predictions(self, logits, mask=None, **extras):
        """What the metrics compare with the labels, from ``logits`` [batch, outputs] (a tensor per row);
        ``mask``: the batch's attention mask, ``extras`` as for `loss`, and may hold the batch's ``labels`` and
        the run's ``decoding`` (`decoding`)."""
        raise NotImplementedError

    def outputs(self, parts: list[dict]) -> dict:
        """The validation outputs of a whole evaluation (numpy arrays, checkpointed with the best model for its
        plots) from its batches' ``predictions`` and ``references`` (and row fields): by default joined row-wise."""
        import numpy as np

        return {name: np.concatenate([part[name] for part in parts]) for name in ("predictions", "references")}

    def scores(self, metrics: Sequence[str], outputs: dict, names: list[str] | None,
               decision=None) -> dict[str, float] | None:
        """The metrics of ``outputs``, when the kind computes its own; None: the shared metric functions
        (nlptune/metrics.py) compare ``predictions`` with ``references`` row by row. ``decision``: how
        probabilities become labels (`nlptune.kinds.thresholds.Decision`, multi_label)."""
        return None

    def best_files(self, outputs: dict, names: list[str] | None, decision=None) -> dict[str, dict]:
        """JSON files saved in best/ beside the best model, from its validation ``outputs`` (file name -> content;
        multi_label: thresholds.json). Default: none."""
        return {}

    def describe(self, logits, names: list[str] | None, **extras) -> list[dict]:
        """One JSON-able prediction per row (`nlptune predict`), from float ``logits`` [batch, outputs];
        ``extras`` may hold ``thresholds_in_force`` (best/thresholds.json) for kinds that read it."""
        raise NotImplementedError
