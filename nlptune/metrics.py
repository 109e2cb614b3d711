"""Offline task metrics: accuracy, F1, macro F1, Matthews correlation, Pearson, Spearman, MSE.

Computed with scikit-learn and SciPy so they never need the network (`evaluate.load` fetches its
scripts from the Hub). Degenerate inputs (constant predictions) give 0.0 rather than NaN so early
stopping and tuning always compare real numbers.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np


def _accuracy(pred, gold) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(gold))) if len(gold) else 0.0


def _f1(pred, gold) -> float:
    from sklearn.metrics import f1_score

    labels = np.union1d(np.unique(gold), np.unique(pred))
    binary = set(labels.tolist()) <= {0, 1}
    # binary tasks report the F1 of the positive class (GLUE convention); others the macro average
    return float(f1_score(gold, pred, average="binary" if binary else "macro", zero_division=0))


def _macro_f1(pred, gold) -> float:
    """The mean F1 of every class, positive or not (what imbalanced tasks compare; f1 of a binary task is the
    positive class's)."""
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, average="macro", zero_division=0)) if len(gold) else 0.0


def _mcc(pred, gold) -> float:
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(gold, pred))


def _correlation(fn: Callable, pred, gold) -> float:
    pred, gold = np.asarray(pred, dtype=np.float64), np.asarray(gold, dtype=np.float64)
    if len(gold) < 2 or np.std(pred) == 0 or np.std(gold) == 0:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(fn(pred, gold)[0])
    return 0.0 if math.isnan(value) else value


def _pearson(pred, gold) -> float:
    from scipy.stats import pearsonr

    return _correlation(pearsonr, pred, gold)


def _spearman(pred, gold) -> float:
    from scipy.stats import spearmanr

    return _correlation(spearmanr, pred, gold)


def _mse(pred, gold) -> float:
    return float(np.mean((np.asarray(pred, float) - np.asarray(gold, float)) ** 2)) if len(gold) else 0.0


METRICS: dict[str, Callable[[Sequence, Sequence], float]] = {
    "accuracy": _accuracy, "f1": _f1, "macro_f1": _macro_f1, "mcc": _mcc, "pearson": _pearson, "spearman": _spearman, "mse": _mse,
}
# metrics where lower is better; everything else is maximised
LOWER_IS_BETTER = {"mse"}


def compute_metrics(names: Sequence[str], predictions: Sequence, references: Sequence) -> dict[str, float]:
    """``{name: value}`` for each metric in ``names``. Classification takes class ids, regression floats."""
    return {name: METRICS[name](predictions, references) for name in names}


def is_improvement(metric: str, value: float, best: float | None) -> bool:
    """Whether ``value`` beats ``best`` for ``metric`` (higher is better unless the metric is a loss)."""
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best
