"""Models: from-scratch encoders (bag, cnn, lstm, gru, transformer) and pretrained checkpoints.

Every model is built by name through the registry, from flat keyword arguments; see the builder
functions for the arguments each one takes. Importing this package registers every builder (the names are
listed in `nlptune.config.names`).
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from nlptune.config.names import is_pretrained
from nlptune.config.registry import lookup
from nlptune.models import bag, cnn, pretrained, rnn, transformer
from nlptune.models.io import load_scratch_model, save_scratch_model

# importing these registers their builders (@register), so every model is known once this package is imported
BUILDER_MODULES = (bag, cnn, pretrained, rnn, transformer)

__all__ = ["build_model", "model_builder", "is_pretrained", "parameter_report", "save_scratch_model",
           "load_scratch_model"]


def model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered as ``name``: its keyword-only parameters are the arguments a config may set
    (config validation reads its signature)."""
    return lookup("model", name)


def build_model(name: str, **kwargs) -> nn.Module:
    """Build the model registered as ``name`` with keyword arguments ``kwargs``."""
    return model_builder(name)(**kwargs)


def _count(params) -> tuple[int, int]:
    total = trainable = 0
    for p in params:
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def parameter_report(model: nn.Module) -> dict:
    """Parameter counts: total, trainable, frozen, and per top-level child module.

    Shared (tied) parameters are counted once (``parameters()`` deduplicates them).
    """
    total, trainable = _count(model.parameters())
    modules = {}
    for child_name, child in model.named_children():
        child_total, child_trainable = _count(child.parameters())
        modules[child_name] = {"total": child_total, "trainable": child_trainable}
    return {"total": total, "trainable": trainable, "frozen": total - trainable, "modules": modules}
