"""Embedding gradients kept in one buffer (nlptune/models/embedding_grads.py): the same values, bit for bit, as
the dense gradient, through clipping, gradient accumulation, padding rows and tables used twice a step."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nlptune.models.embedding_grads import MIN_ELEMENTS, RowGradientEmbedding, use_row_gradients

VOCAB, DIM = 4096, 256  # 1M weights: just large enough to be switched


class Pair(nn.Module):
    """An embedding table (padding row 0) read twice a step, as a siamese pair encoder does, then a head."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM, padding_idx=0)
        self.positions = nn.Embedding(64, DIM)  # small: stays dense
        self.head = nn.Linear(2 * DIM, 3)

    def forward(self, first, second):
        steps = torch.arange(first.size(1))
        a = (self.embed(first) + self.positions(steps)).mean(1)
        b = (self.embed(second) + self.positions(steps)).mean(1)
        return self.head(torch.cat([a, b], dim=-1))


def _batches(seed: int, count: int):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(count):
        ids = torch.randint(0, 300, (2, 8, 12), generator=generator)  # rows repeat within and across batches
        ids[:, :, -3:] = 0  # padding
        yield ids[0], ids[1], torch.randint(0, 3, (8,), generator=generator)


def _train(model: nn.Module, accumulation: int, steps: int = 6) -> list[torch.Tensor]:
    """Fused AdamW with weight decay and clipping; the word-embedding gradient after every optimizer step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01, fused=True)
    grads = []
    for index, (first, second, labels) in enumerate(_batches(0, steps * accumulation)):
        loss = nn.functional.cross_entropy(model(first, second), labels) / accumulation
        loss.backward()
        if (index + 1) % accumulation == 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)  # small: the clip always scales
            grads.append(model.embed.weight.grad.clone())
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize("accumulation", [1, 3])
def test_training_is_bit_for_bit_the_dense_gradients(accumulation):
    torch.manual_seed(0)
    dense = Pair()
    kept = copy.deepcopy(dense)
    assert use_row_gradients(kept) == 1
    assert type(kept.embed) is RowGradientEmbedding and type(kept.positions) is nn.Embedding
    assert repr(kept) == repr(dense)
    dense_grads, kept_grads = _train(dense, accumulation), _train(kept, accumulation)
    for a, b in zip(dense_grads, kept_grads):
        assert not b.is_sparse and torch.equal(a, b)
    for (name, a), b in zip(dense.state_dict().items(), kept.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_gradient_is_one_kept_buffer_holding_only_the_last_steps_rows():
    torch.manual_seed(1)
    model = Pair()
    use_row_gradients(model)
    seen = set()
    for first, second, labels in _batches(1, 3):
        nn.functional.cross_entropy(model(first, second), labels).backward()
        grad = model.embed.weight.grad
        seen.add(id(grad))
        used = set(torch.cat([first.flatten(), second.flatten()]).tolist()) - {0}
        nonzero = set(grad.abs().sum(1).nonzero().flatten().tolist())
        assert nonzero == used  # rows of earlier steps were cleared; the padding row gets nothing
        model.zero_grad(set_to_none=True)
    assert len(seen) == 1


def test_small_frozen_and_tied_tables_stay_dense():
    small = nn.Embedding(MIN_ELEMENTS // DIM - 1, DIM)
    frozen = nn.Embedding(VOCAB, DIM).requires_grad_(False)
    tied = nn.Embedding(VOCAB, DIM)
    output = nn.Linear(DIM, VOCAB, bias=False)
    output.weight = tied.weight  # a language-model head sharing the input table
    model = nn.ModuleList([small, frozen, tied, output])
    assert use_row_gradients(model) == 0
    assert all(type(module) is nn.Embedding for module in (small, frozen, tied))


@pytest.mark.parametrize("threads", [1, 2])
def test_a_long_batch_sums_rows_as_the_dense_backward_does(threads):
    # many repeats of few rows: the order each row's additions run in shows in the last bits
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(2)
        table = nn.Embedding(VOCAB, DIM, padding_idx=3)
        kept = copy.deepcopy(table)
        assert use_row_gradients(kept) == 1
        ids = torch.randint(0, 50, (32, 400))
        upstream = torch.randn(32, 400, DIM)
        (table(ids) * upstream).sum().backward()
        (kept(ids) * upstream).sum().backward()
        assert torch.equal(table.weight.grad, kept.weight.grad)
    finally:
        torch.set_num_threads(before)
