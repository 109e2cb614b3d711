"""Dropout on the CPU with a faster mask generator (``trainer.fast_dropout``).

Why: torch's CPU dropout draws one float per element with ``bernoulli_`` (~5 ns an element on 2 cores), which was
~13 % of a MiniLM fine-tuning step at batch 32 (20 dropout sites a step: embeddings, each block's attention
probabilities and two residual branches, the head; benchmarks/RESULTS.md). Here one 64-bit draw of the same
generator gives four 16-bit levels, and an element is dropped when its level falls below ``round(p * 65536)``:
the rate is ``p`` to within 1/65536, the kept elements are scaled by exactly 1 / (1 - that rate), and the mask is
saved for the backward pass as one byte an element (torch saves a float). Masks differ from torch's for the same
seed, so a run's numbers differ from a ``fast_dropout=false`` run's like another seed's would; a run is still
exactly repeatable and resumable (the draws come from torch's default generator, which checkpoints save).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 1 << 16
_FLAG = "_nlptune_fast_dropout"  # set on a model's modules: their SDPA attention takes the path below


def dropout_mask(shape: torch.Size, p: float) -> tuple[torch.Tensor, float]:
    """A bool mask of the dropped elements for a tensor of ``shape`` (each dropped with probability
    ``round(p * 65536) / 65536``) and the scale of the kept ones."""
    count = math.prod(shape)
    dropped_levels = round(p * LEVELS)
    # [-2^63, 2^63 - 1): every 16-bit quarter of a draw is uniform over its 65536 values
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_(-(1 << 63), (1 << 63) - 1)
    levels = words.view(torch.int16)[:count].view(shape)
    return levels < dropped_levels - LEVELS // 2, LEVELS / (LEVELS - dropped_levels)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        dropped, scale = dropout_mask(x.shape, p)
        ctx.save_for_backward(dropped)
        ctx.scale = scale
        return x.masked_fill(dropped, 0).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (dropped,) = ctx.saved_tensors
        return grad.masked_fill(dropped, 0).mul_(ctx.scale), None


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)`` with the fast mask on the CPU; torch's own dropout elsewhere (CUDA's is fused
    already) and where the rate rounds to all or nothing."""
    if training and x.device.type == "cpu" and 0 < p < 1 and 0 < round(p * LEVELS) < LEVELS:
        return _Dropout.apply(x, p)
    return F.dropout(x, p, training)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` drawing its masks with `fast_dropout` (never in place: the input is kept for autograd anyway)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def use_fast_dropout(model: nn.Module) -> int:
    """Switch ``model`` to fast dropout in place: every ``nn.Dropout`` module becomes a `FastDropout` of the same
    rate, and the attention-probability dropout of Hugging Face attention modules running SDPA (which passes the
    rate to the fused kernel instead of calling a module) takes `_attention_with_dropout`. Returns the number of
    modules replaced. Weights, state dicts and saved models are unchanged."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:  # subclasses may do more than drop: left alone
                setattr(parent, name, FastDropout(child.p).train(child.training))
                replaced += 1
        if getattr(getattr(parent, "config", None), "_attn_implementation", None) == "sdpa":
            setattr(parent, _FLAG, True)
            _install_attention()
    return replaced


_sdpa = None  # transformers' own SDPA attention, which ours hands everything else to


def _install_attention() -> None:
    """Register `_attention_with_dropout` as transformers' "sdpa" attention (once per process). For a module
    without the flag, or anything but CPU training with dropout, it calls transformers' own function unchanged."""
    global _sdpa
    if _sdpa is not None:
        return
    from transformers import AttentionInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    _sdpa = ALL_ATTENTION_FUNCTIONS["sdpa"]
    AttentionInterface.register("sdpa", _attention_with_dropout)


def _attention_with_dropout(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                            is_causal=None, **kwargs):
    """What SDPA computes with ``dropout_p`` on the CPU (its math path: scores, mask, softmax, dropout, values),
    with the attention probabilities dropped by `fast_dropout`. Causal, grouped-query, biased or soft-capped attention
    and returned attention weights go to transformers' function."""
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    plain = not kwargs.get("output_attentions") and kwargs.get("position_bias") is None \
        and kwargs.get("softcap") is None and key.shape[1] == query.shape[1]
    if not (dropout and module.training and getattr(module, _FLAG, False) and query.device.type == "cpu"
            and plain and not (causal and attention_mask is None and query.shape[2] > 1)):
        return _sdpa(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal,
                     **kwargs)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min) \
            if attention_mask.dtype == torch.bool else scores + attention_mask
    probs = fast_dropout(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(probs.to(value.dtype), value).transpose(1, 2).contiguous(), None
