"""regression: one score per text (similarity, rating): a float label, MSE loss, one output."""
from __future__ import annotations

import math
import numbers
import re
import statistics
from typing import Any, Callable, Sequence

from nlptune.config.registry import register
from nlptune.kinds.base import Kind, LabelProblem

CORRELATIONS = ("pearson", "spearman")  # the metrics a constant set of gold scores leaves undefined
# The largest score trained on: the squared errors of a batch of scores near it still fit in float32 (and bf16),
# whose largest value is 3.4e38; a score of 1e30 made the first loss infinite and training stopped at a NaN.
LARGEST_SCORE = 1e16


# A score written with a decimal comma ("4,91"), as spreadsheets in many locales save it (in a semicolon CSV).
_DECIMAL_COMMA = re.compile(r"\s*([+-]?\d+),(\d+)\s*")


def _decimal_point(text: str) -> str:
    """``text`` with a decimal comma read as a decimal point ("4,91" -> "4.91"); any other text unchanged. A comma
    before exactly three digits after a non-zero integer part ("1,000") may as well separate thousands: refused
    rather than guessed."""
    found = _DECIMAL_COMMA.fullmatch(text)
    if not found:
        return text
    whole, fraction = found.groups()
    if len(fraction) == 3 and whole.lstrip("+-").lstrip("0"):
        raise LabelProblem(f"label {text!r} is ambiguous: {whole}.{fraction} with a decimal comma, or "
                           f"{whole}{fraction} with a thousands separator",
                           "write the score with a decimal point and no thousands separator (e.g. 1.5 or 1500)")
    return f"{whole}.{fraction}"


def score(value: Any) -> float:
    """The float of one raw label (a number, or a numeric string from a text file, with a decimal point or a
    decimal comma); raises `LabelProblem`."""
    if isinstance(value, str):
        given, value = value, _decimal_point(value)
        try:
            value = float(value)
        except ValueError:
            raise LabelProblem(f"label {value!r} is not a number", "a regression task needs numeric labels "
                               "(or task.kind=single_label for class names)") from None
        if math.isinf(value) and "inf" not in given.lower():  # '1e400': a number float32 (and float64) cannot hold
            raise LabelProblem(f"label {given!r} is too large to train on (beyond what a float can hold)",
                               "rescale the scores, e.g. divide them by a power of ten or take their logarithm")
    if isinstance(value, (list, tuple, dict)):
        raise LabelProblem(f"label {value!r} is a {type(value).__name__}, not one score",
                           "give each row one number (a regression task predicts one score a text; several labels "
                           "a text: task=multi_label)")
    if isinstance(value, bool):
        raise LabelProblem(f"label {value!r} is a boolean, not a score",
                           "a regression task needs numeric labels (or task.kind=single_label for classes)")
    if not isinstance(value, numbers.Real) or math.isnan(value) or math.isinf(value):
        raise LabelProblem(f"label {value!r} is not a finite number", "fill in or drop that row")
    if abs(value) > LARGEST_SCORE:
        raise LabelProblem(f"label {value!r} is too large to train on (|score| above {LARGEST_SCORE:g}: its squared "
                           "error overflows float32)", "rescale the scores, e.g. divide them by a power of ten "
                           "or take their logarithm")
    return float(value)


@register("kind", "regression")
class Regression(Kind):
    name = "regression"
    hf_problem_type = "regression"
    plots = ("predictions_scatter",)

    def label_key(self, value: Any) -> float:
        return score(value)

    def label_names(self, train_keys: Sequence, declared: Sequence | None) -> None:
        return None  # one unnamed output (config validation refuses task.label_names)

    def encoder(self, names: None, declared: bool) -> Callable[[float], float]:
        return float

    def num_outputs(self, names: None) -> int:
        return 1

    @property
    def label_dtype(self):
        import torch

        return torch.float32

    def loss(self, logits, labels, **extras):
        import torch.nn.functional as F

        return F.mse_loss(logits.squeeze(-1), labels.view(-1).to(logits.dtype))

    def soft_loss(self, logits, teacher_logits, *, mode: str, temperature: float):
        """The squared error to the teacher's score (a score has no distribution to soften: ``mode`` and
        ``temperature`` do not apply; config validation allows mse only)."""
        from nlptune.kinds.losses import logit_mse

        return logit_mse(logits.reshape(logits.shape[0], -1), teacher_logits.reshape(logits.shape[0], -1))

    def check_training(self, targets: Sequence[float], names: None) -> list[str]:
        if len(set(targets)) == 1:
            raise LabelProblem(f"the training scores are all {targets[0]!r}: there is nothing to learn",
                               "a regression needs scores that vary: check task.label_field and the training rows "
                               "(task.max_train_samples keeps only the first ones)")
        return []

    def check_validation(self, targets: Sequence[float], metrics: Sequence[str]) -> None:
        correlations = [name for name in metrics if name in CORRELATIONS]
        if correlations and len(set(targets)) == 1:
            # a correlation with a constant is undefined: every model would score 0 and the best one is arbitrary
            raise LabelProblem(f"the validation scores are all {targets[0]!r}: {' and '.join(correlations)} "
                               "are undefined on them",
                               "validate on rows whose scores vary (task.max_eval_samples keeps only the first "
                               "ones), or score by error alone: task.metrics=[mse] task.main_metric=mse")

    def start_model(self, model, train_targets: Sequence[float], names: None, scheme: str) -> None:
        """Start the output at the mean training label (see SequenceClassifier.init_output_bias)."""
        model.init_output_bias(statistics.fmean(train_targets))

    def predictions(self, logits, mask=None, **extras):
        return logits.reshape(logits.shape[0], -1)[:, 0].float()

    def describe(self, logits, names: None, **extras) -> list[dict]:
        return [{"score": v} for v in self.predictions(logits).tolist()]
