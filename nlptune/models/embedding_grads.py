"""Embedding gradients written into one kept buffer, only where a batch's tokens are (CPU training).

Why: an embedding's gradient is dense by default, so every backward pass allocates and zeroes the whole table
before adding the few rows the batch used: for MiniLM's 30522 x 384 word embeddings that is 47 MB, about 12 ms of a
~170 ms step on 2 cores (fresh pages from the kernel each time, then a fill), for a gradient that is non-zero in
~500 rows. Here each lookup's backward sums its rows into a small table of the rows it used (a coalesced sparse
gradient), and right after autograd has accumulated the step's gradient it is added into a buffer kept for the
whole run, after zeroing only the rows the last step left there. The parameter's ``.grad`` is that buffer, dense
as before: clipping, the optimizer and checkpoints see the same tensor, holding bit for bit the values the dense
gradient holds (each row is summed from zero in the same order, and several lookups of one table in a step are
added row by row as dense gradients are; tests check it), so results do not change. The buffer stays allocated
between steps (one table's size, which the dense gradient took during every backward pass anyway).

Used for a single process on the CPU: a GPU zeroes memory for next to nothing, and data-parallel processes
reduce dense gradients (a sparse one would go through a different collective).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# below this many weights a table's dense gradient costs next to nothing (position and type embeddings)
MIN_ELEMENTS = 1 << 20


class _RowSumLookup(torch.autograd.Function):
    """``F.embedding`` whose weight gradient is coalesced sparse: the used rows (sorted, the padding row left out,
    as the dense gradient leaves it at zero) and each one's sum of its positions' gradients, added from zero in
    position order as the dense backward adds them."""

    @staticmethod
    def forward(ctx, ids: torch.Tensor, weight: torch.Tensor, padding_idx: int | None) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.shape, ctx.padding_idx = weight.shape, padding_idx
        return F.embedding(ids, weight, padding_idx)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (ids,) = ctx.saved_tensors
        ids, grad = ids.reshape(-1), grad.reshape(ids.numel(), -1)
        if ctx.padding_idx is not None:
            keep = ids != ctx.padding_idx
            ids, grad = ids[keep], grad[keep]
        rows, position = torch.unique(ids, sorted=True, return_inverse=True)
        sums = grad.new_zeros(rows.numel(), grad.size(1)).index_add_(0, position, grad)
        return None, torch.sparse_coo_tensor(rows.unsqueeze(0), sums, ctx.shape, is_coalesced=True,
                                             check_invariants=False), None


class RowGradientEmbedding(nn.Embedding):
    """An ``nn.Embedding`` (same weights and state dict) whose training lookups use `_RowSumLookup`; the module's
    gradient is then gathered into `_KeptGradient`'s buffer (`use_row_gradients`). Evaluation is the plain one."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not (torch.is_grad_enabled() and self.weight.requires_grad):
            return super().forward(ids)
        return _RowSumLookup.apply(ids, self.weight, self.padding_idx)

    def _get_name(self) -> str:
        return "Embedding"  # printed models read as before


class _KeptGradient:
    """The kept gradient buffer of one embedding table and the rows of it that may be non-zero."""

    def __init__(self, weight: nn.Parameter):
        self.buffer = torch.zeros_like(weight, memory_format=torch.contiguous_format)
        self.dirty: list[torch.Tensor] = []  # row indices written since the buffer was last cleared

    def before_accumulation(self, param: nn.Parameter, grad: torch.Tensor) -> None:
        """A tensor hook: a sparse gradient about to be added to a ``.grad`` that is already the buffer (gradient
        accumulation over several batches: autograd adds it in place) dirties its rows."""
        if grad.is_sparse and param.grad is self.buffer:
            self.dirty.append(grad._indices()[0])

    def after_accumulation(self, param: nn.Parameter) -> None:
        """A post-accumulate hook: a sparse ``.grad`` (the first batch since ``zero_grad(set_to_none=True)``) is
        moved into the buffer, whose rows from the last step are zeroed first."""
        grad = param.grad
        if grad is None or not grad.is_sparse:
            return
        for rows in self.dirty:
            self.buffer.index_fill_(0, rows, 0)
        rows = grad._indices()[0]
        self.buffer.index_add_(0, rows, grad._values())  # distinct rows: each is 0 + its sum, exactly
        self.dirty = [rows]
        param.grad = self.buffer


def nonzero_rows(param: nn.Parameter) -> torch.Tensor:
    """``param.grad``, or where that is a kept buffer, only its rows that may be non-zero (the same norm for a
    fraction of the reading: what gradient clipping measures)."""
    kept = getattr(param, "_nlptune_kept_gradient", None)
    if kept is None or param.grad is not kept.buffer:
        return param.grad
    rows = kept.dirty[0] if len(kept.dirty) == 1 else torch.cat(kept.dirty).unique()  # each row once
    return kept.buffer.index_select(0, rows)


def _tied(model: nn.Module) -> set[int]:
    """Parameters held by more than one module (tied weights): their gradient has dense parts too."""
    seen: dict[int, int] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        seen[id(param)] = seen.get(id(param), 0) + 1
    return {pid for pid, count in seen.items() if count > 1}


def use_row_gradients(model: nn.Module) -> int:
    """Switch ``model``'s large trainable ``nn.Embedding`` tables (at least `MIN_ELEMENTS` weights; not tied to
    another module; no ``max_norm``, ``scale_grad_by_freq`` or sparse gradient of their own) to row gradients kept
    in one buffer (module docstring). Returns how many were switched. Weights, state dicts, saved models and every
    gradient value are unchanged."""
    tied, switched = _tied(model), 0
    for module in model.modules():
        if type(module) is not nn.Embedding or not module.weight.requires_grad or id(module.weight) in tied \
                or module.weight.numel() < MIN_ELEMENTS \
                or module.max_norm is not None or module.scale_grad_by_freq or module.sparse:
            continue
        weight, kept = module.weight, _KeptGradient(module.weight)
        weight.register_hook(lambda grad, param=weight, kept=kept: kept.before_accumulation(param, grad))
        weight.register_post_accumulate_grad_hook(kept.after_accumulation)
        weight._nlptune_kept_gradient = kept  # for `nonzero_rows`
        # the module object stays (its parameter, hooks and place in the model): only its lookup changes
        module.__class__ = RowGradientEmbedding
        switched += 1
    return switched
