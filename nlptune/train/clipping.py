"""Gradient-norm clipping, done by the optimizer where it can (``trainer.clip_in_optimizer``).

Clipping scales every gradient by min(1, max_norm / total norm) before the optimizer step: one more pass over all
the gradients (22.7M floats for MiniLM, ~3 % of a CPU step). Torch's fused Adam/AdamW kernels take a ``grad_scale``
that they divide each gradient by as they read it (the hook a ``GradScaler`` uses), so the clip's scale is handed
to them instead, as its reciprocal: the same clipping, with one rounding in another place (x / (1 / c) for
x * c), hence a key of its own, off for configs written before it. The total norm is computed as torch computes
it, except that a kept embedding gradient (nlptune/models/embedding_grads.py) contributes the norm of its non-zero
rows only.

Elsewhere (another optimizer, a loss scaler for fp16, FSDP or DeepSpeed, whose clipping Accelerate does its own
way) Accelerate's ``clip_grad_norm_`` runs as before.
"""
from __future__ import annotations

import torch
from accelerate.utils import DistributedType

from nlptune.models.embedding_grads import nonzero_rows

EPS = 1e-6  # torch's clip_grad_norm_: coefficient = max_norm / (norm + 1e-6)


def _unwrapped(optimizer):
    return getattr(optimizer, "optimizer", optimizer)  # Accelerate's wrapper holds torch's optimizer


def clips_in_optimizer(accelerator, optimizer) -> bool:
    """Whether ``optimizer`` (as prepared by Accelerate) can apply the clip's scale inside its step."""
    inner = _unwrapped(optimizer)
    return isinstance(inner, (torch.optim.Adam, torch.optim.AdamW)) and bool(inner.defaults.get("fused")) \
        and accelerator.scaler is None \
        and accelerator.distributed_type in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)


def clip_gradients(accelerator, model, optimizer, max_norm: float, in_optimizer: bool) -> None:
    """Clip ``model``'s gradients to total norm ``max_norm``: through the optimizer's ``grad_scale`` when
    ``in_optimizer`` (`clips_in_optimizer` said it can), else with Accelerate's ``clip_grad_norm_``."""
    if not in_optimizer:
        accelerator.clip_grad_norm_(model.parameters(), max_norm)
        return
    grads = [nonzero_rows(param) for param in model.parameters() if param.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads, foreach=True) if grads else torch.zeros(())
    coefficient = torch.clamp(max_norm / (norm + EPS), max=1.0)
    # read by torch's Adam/AdamW step (the attribute GradScaler sets); the kernel divides each gradient by it
    _unwrapped(optimizer).grad_scale = torch.reciprocal(coefficient)
