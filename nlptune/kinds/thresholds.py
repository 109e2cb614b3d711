"""Decision thresholds of a multi-label model: which sigmoid probability counts as "this label applies".

A threshold is tuned on validation outputs (probabilities and 0/1 references, numpy only): one global value that
maximises macro F1, or one per label that maximises that label's F1 (a label with too few positives to tune on
takes the global value). Tuning is a pure function of the outputs, so the thresholds of the best model can be
recomputed from its checkpointed validation outputs at any time (resume stays exact).

Scores are never computed with thresholds fitted on the rows they score: `cross_fitted` splits the rows into two
fixed halves, fits on one and applies to the other (both ways). A CV fold's score is thus fitted on the other half
of the fold's held-out rows - never on the training folds' training signal, never on the scored rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

# candidate thresholds; ties are broken towards 0.5 (the untuned default)
GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)
FIXED = 0.5  # the untuned threshold every run also reports (``<metric>_at_0.5``)
# a label with fewer positives than this in the fitting rows takes the global threshold (its own F1 curve is noise)
MIN_POSITIVES = 3
_SPLIT_SEED = 0  # the fixed row permutation that defines the two cross-fitting halves


@dataclass(frozen=True)
class Decision:
    """How an evaluation turns probabilities into labels: ``fixed`` thresholds (a float for every label, or one
    per label), or None to tune them (``per_label``: one per label, else one global value)."""

    fixed: float | tuple[float, ...] | None = None
    per_label: bool = True

    @classmethod
    def from_task(cls, task: Any) -> "Decision":
        """task.threshold (a float fixes it; null tunes) and task.threshold_tuning (per_label | global)."""
        return cls(fixed=task.threshold, per_label=task.threshold_tuning == "per_label")


def counts(predicted: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives per label (over the first axis)."""
    predicted, gold = predicted.astype(bool), gold.astype(bool)
    return ((predicted & gold).sum(0), (predicted & ~gold).sum(0), (~predicted & gold).sum(0))


def _f1(tp, fp, fn) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def label_report(predicted: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
    """Per-label precision, recall, F1 and support (0 where undefined, as sklearn's zero_division=0)."""
    tp, fp, fn = counts(predicted, gold)
    return {"precision": np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0),
            "recall": np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0),
            "f1": _f1(tp, fp, fn), "support": gold.astype(bool).sum(0)}


def summary_scores(predicted: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """macro_f1 (mean of the labels' F1), micro_f1 (pooled counts) and subset_accuracy (every label right)."""
    tp, fp, fn = counts(predicted, gold)
    macro = float(_f1(tp, fp, fn).mean()) if tp.size else 0.0
    micro = float(_f1(tp.sum(), fp.sum(), fn.sum()))
    exact = float(np.mean(np.all(predicted.astype(bool) == gold.astype(bool), axis=1))) if len(gold) else 0.0
    return {"macro_f1": macro, "micro_f1": micro, "subset_accuracy": exact}


def _best(values: np.ndarray) -> np.ndarray:
    """Index into GRID of the best value along the last axis; ties go to the candidate closest to 0.5."""
    order = np.argsort(np.abs(GRID - FIXED), kind="stable")
    return order[np.argmax(values[..., order], axis=-1)]


def fit(probabilities: np.ndarray, gold: np.ndarray, per_label: bool = True) -> np.ndarray:
    """Thresholds [labels] that maximise F1 on these rows: one per label, or one global value (macro F1)."""
    probabilities, gold = np.asarray(probabilities, float), np.asarray(gold).astype(bool)
    above = probabilities[:, :, None] >= GRID[None, None, :]  # rows x labels x candidates
    truth = gold[:, :, None]
    tp, fp, fn = (above & truth).sum(0), (above & ~truth).sum(0), (~above & truth).sum(0)
    f1 = _f1(tp, fp, fn)  # labels x candidates
    overall = GRID[_best(f1.mean(0))]
    thresholds = np.full(gold.shape[1], overall, dtype=float)
    if per_label:
        enough = gold.sum(0) >= MIN_POSITIVES
        thresholds[enough] = GRID[_best(f1[enough])]
    return thresholds


def halves(rows: int) -> np.ndarray:
    """The cross-fitting half (0 or 1) of each of ``rows`` rows: a fixed seeded permutation, alternately."""
    half = np.zeros(rows, dtype=int)
    half[np.random.default_rng(_SPLIT_SEED).permutation(rows)[1::2]] = 1
    return half


def cross_fitted(probabilities: np.ndarray, gold: np.ndarray, per_label: bool = True) -> np.ndarray:
    """0/1 predictions where each row's thresholds were fitted on the other half of the rows only (`halves`)."""
    probabilities, gold = np.asarray(probabilities, float), np.asarray(gold)
    half = halves(len(gold))
    predicted = np.zeros(gold.shape, dtype=bool)
    for side in (0, 1):
        scored, fitted = half == side, half != side
        if not scored.any():
            continue
        thresholds = fit(probabilities[fitted], gold[fitted], per_label) if fitted.any() else \
            np.full(gold.shape[1], FIXED)
        predicted[scored] = probabilities[scored] >= thresholds
    return predicted


def apply(probabilities: np.ndarray, thresholds: float | Sequence[float]) -> np.ndarray:
    """0/1 predictions of ``probabilities`` [rows, labels] at fixed thresholds (a float or one per label)."""
    return np.asarray(probabilities, float) >= np.asarray(thresholds, float)


def decide(probabilities: np.ndarray, gold: np.ndarray, decision: Decision | None) -> np.ndarray:
    """The 0/1 predictions an evaluation scores: at the fixed thresholds, or cross-fitted tuned ones."""
    decision = decision or Decision()
    if decision.fixed is not None:
        return apply(probabilities, decision.fixed)
    return cross_fitted(probabilities, gold, decision.per_label)


def saved_thresholds(outputs: dict, names: Sequence[str], decision: Decision | None) -> dict:
    """best/thresholds.json of the best model: the thresholds in force (fitted on all its validation rows when
    tuned), and the validation scores at them (cross-fitted) and at the fixed 0.5, with each label's P/R/F1."""
    decision = decision or Decision()
    probabilities, gold = outputs["predictions"], outputs["references"]
    tuned = decision.fixed is None
    values = fit(probabilities, gold, decision.per_label) if tuned else \
        np.broadcast_to(np.asarray(decision.fixed, float), (len(names),))
    predicted = decide(probabilities, gold, decision)
    at_fixed = apply(probabilities, FIXED)
    report = label_report(predicted, gold)
    return {"thresholds": {name: float(t) for name, t in zip(names, values)},
            "tuned": tuned, "one_per_label": decision.per_label if tuned else isinstance(decision.fixed, tuple),
            "fitted_on": f"validation ({len(gold)} rows)" if tuned else "fixed (task.threshold)",
            "scores": summary_scores(predicted, gold), "scores_at_0.5": summary_scores(at_fixed, gold),
            "labels": {name: {k: float(report[k][i]) for k in ("precision", "recall", "f1")} |
                          {"support": int(report["support"][i])} for i, name in enumerate(names)},
            "rows_without_label": int((~np.asarray(gold).astype(bool)).all(1).sum())}
