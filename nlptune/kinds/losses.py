"""Losses for imbalanced labels: class weights, positive weights, focal loss and label smoothing.

`LossSettings` is computed once per run from the trainer config and the training targets (nlptune/train/setup.py)
and reaches `Kind.loss` as the keyword ``loss_settings``: the kinds stay stateless, and a run without the keyword
(lr-find, `nlptune eval`) uses the plain loss. Weights are plain floats here (no torch at import time); tensors
are made on the logits' device when the loss is computed.

Distillation's losses against a teacher's outputs (`Kind.soft_loss`) are here too: the KL divergence between softened
class distributions (Hinton et al. 2015), its per-label binary form, and the squared error between logits (Tang et al.
2019).

"balanced" weights are scikit-learn's ``compute_class_weight("balanced")``: n_rows / (n_classes * count) over the
classes present in train (a class without a training example gets 1.0: it never is a target). ``pos_weight``
"balanced" is BCEWithLogitsLoss's recommendation: negatives / positives per label (1.0 for a label never positive).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

WEIGHT_MODES = ("none", "balanced")
LOSSES = ("cross_entropy", "focal")


@dataclass(frozen=True)
class LossSettings:
    """What a classification loss adds to the plain one; all off by default."""

    class_weights: tuple[float, ...] | None = None
    pos_weight: tuple[float, ...] | None = None
    focal_gamma: float | None = None  # None: cross-entropy; a value: focal loss with that gamma
    label_smoothing: float = 0.0

    def describe(self, names: Sequence[str] | None) -> dict:
        """The settings as metrics.json records them (weights by output name)."""
        def named(values):
            if values is None:
                return None
            return {str(n): float(v) for n, v in zip(names or range(len(values)), values)}

        return {"class_weights": named(self.class_weights), "pos_weight": named(self.pos_weight),
                "loss": "cross_entropy" if self.focal_gamma is None else "focal", "focal_gamma": self.focal_gamma,
                "label_smoothing": self.label_smoothing}


def balanced_weights(counts: Sequence[int]) -> tuple[float, ...]:
    """n / (k * count_c) over the k classes present (scikit-learn's "balanced"); 1.0 for an absent class."""
    counts = np.asarray(counts, dtype=float)
    present = counts > 0
    total, classes = counts.sum(), max(int(present.sum()), 1)
    return tuple(float(total / (classes * c)) if c > 0 else 1.0 for c in counts)


def balanced_pos_weight(positives: Sequence[int], rows: int) -> tuple[float, ...]:
    """negatives / positives per label (1.0 for a label without a positive training row)."""
    return tuple(float((rows - p) / p) if p > 0 else 1.0 for p in positives)


def _weights(setting: Any, computed, outputs: int, key: str) -> tuple[float, ...] | None:
    if setting in (None, "none"):
        return None
    if setting == "balanced":
        return computed()
    values = tuple(float(v) for v in setting)
    if len(values) != outputs:
        raise ValueError(f"trainer.{key} lists {len(values)} weights but the task has {outputs} outputs")
    return values


def build_settings(trainer: Any, counts: Sequence[int] | None, rows: int, outputs: int) -> LossSettings:
    """The run's `LossSettings` from trainer.class_weights / pos_weight / loss / focal_gamma / label_smoothing
    and the training targets' ``counts`` per output (class rows, or a label's positive rows) out of ``rows``."""
    counts = list(counts) if counts is not None else [0] * outputs
    return LossSettings(
        class_weights=_weights(trainer.class_weights, lambda: balanced_weights(counts), outputs, "class_weights"),
        pos_weight=_weights(trainer.pos_weight, lambda: balanced_pos_weight(counts, rows), outputs, "pos_weight"),
        focal_gamma=float(trainer.focal_gamma) if trainer.loss == "focal" else None,
        label_smoothing=float(trainer.label_smoothing))


def _tensor(values, like):
    import torch

    return None if values is None else torch.tensor(values, dtype=torch.float32, device=like.device)


def cross_entropy(logits, target, settings: LossSettings | None, ignore_index: int = -100):
    """Cross-entropy over classes (``logits`` [N, C], ``target`` [N]) with the settings' class weights, label
    smoothing and focal modulation; the weighted mean over the targets that are not ``ignore_index``."""
    import torch
    import torch.nn.functional as F

    logits = logits.float()
    if settings is None or settings.focal_gamma is None:
        smoothing = settings.label_smoothing if settings else 0.0
        weight = _tensor(settings.class_weights, logits) if settings else None
        return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, label_smoothing=smoothing)
    keep = target != ignore_index
    logits, target = logits[keep], target[keep]
    log_p = F.log_softmax(logits, dim=-1)
    classes = logits.shape[-1]
    smooth = settings.label_smoothing
    soft = F.one_hot(target, classes).float() * (1 - smooth) + smooth / classes
    per_class = -(1 - log_p.exp()) ** settings.focal_gamma * log_p * soft  # focal term of each class
    weight = _tensor(settings.class_weights, logits)
    row_weight = weight[target] if weight is not None else torch.ones_like(target, dtype=torch.float32)
    if per_class.shape[0] == 0:
        return logits.sum() * 0.0
    return (per_class.sum(-1) * row_weight).sum() / row_weight.sum()


def binary_cross_entropy(logits, target, settings: LossSettings | None):
    """Per-label sigmoid loss (``logits`` and 0/1 ``target`` [N, L]): BCE with the settings' positive weights,
    label weights (class_weights), smoothing of the targets towards 0.5, and focal modulation; the mean."""
    import torch
    import torch.nn.functional as F

    logits, target = logits.float(), target.float()
    if settings is None:
        return F.binary_cross_entropy_with_logits(logits, target)
    if settings.label_smoothing:
        target = target * (1 - settings.label_smoothing) + settings.label_smoothing / 2
    loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=_tensor(settings.pos_weight, logits),
                                              reduction="none")
    if settings.focal_gamma is not None:
        p = torch.sigmoid(logits)
        p_true = p * target + (1 - p) * (1 - target)
        loss = loss * (1 - p_true) ** settings.focal_gamma
    if settings.class_weights is not None:
        loss = loss * _tensor(settings.class_weights, logits)
    return loss.mean()


# ---- distillation: losses against a teacher's logits (same shape as the student's) ------------------------------
def softmax_kl(student, teacher, temperature: float):
    """KL(softmax(teacher / T) || softmax(student / T)) summed over classes, averaged over rows, times T^2 (so that
    the gradients keep their size whatever T; Hinton et al. 2015)."""
    import torch.nn.functional as F

    t = float(temperature)
    log_q = F.log_softmax(student.float() / t, dim=-1)
    log_p = F.log_softmax(teacher.float() / t, dim=-1)
    return F.kl_div(log_q, log_p, log_target=True, reduction="batchmean") * t * t


def sigmoid_kl(student, teacher, temperature: float):
    """Per-label Bernoulli KL(sigmoid(teacher / T) || sigmoid(student / T)), averaged over rows and labels, times
    T^2: binary cross-entropy against the teacher's probabilities less their own entropy (0 when they agree)."""
    import torch.nn.functional as F

    t = float(temperature)
    s, z = student.float() / t, teacher.float() / t
    p = z.sigmoid()
    cross = F.binary_cross_entropy_with_logits(s, p, reduction="none")
    entropy = F.binary_cross_entropy_with_logits(z, p, reduction="none")
    return (cross - entropy).mean() * t * t


def logit_mse(student, teacher):
    """Squared error between the student's and the teacher's logits, averaged over rows and outputs (Tang et al.
    2019 sum over the outputs: the constant factor is the number of outputs)."""
    import torch.nn.functional as F

    return F.mse_loss(student.float(), teacher.float())
