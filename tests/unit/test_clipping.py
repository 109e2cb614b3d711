"""Gradient clipping inside the fused optimizer step (trainer.clip_in_optimizer): the same clipping as torch's
clip_grad_norm_ up to rounding, measured on a model with a kept embedding gradient; where it applies."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from accelerate.utils import DistributedType
from torch import nn

from nlptune.config import build_run_config
from nlptune.config.compose import compose, load_run_config, to_plain
from nlptune.models.embedding_grads import nonzero_rows, use_row_gradients
from nlptune.train.clipping import clip_gradients, clips_in_optimizer

CPU = SimpleNamespace(scaler=None, distributed_type=DistributedType.NO)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(4096, 256)  # large enough for a kept gradient
        self.head = nn.Linear(256, 2)

    def forward(self, ids):
        return self.head(self.embed(ids).mean(1))


def _train(model: nn.Module, clip) -> list[torch.Tensor]:
    """Five AdamW steps; the first moments at the end (Adam's step barely shows a constant scale of the
    gradients, its running mean of them does)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01, fused=True)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        ids, labels = torch.randint(0, 500, (16, 10), generator=generator), torch.randint(0, 2, (16,), generator=generator)
        nn.functional.cross_entropy(model(ids), labels).backward()
        clip(model, optimizer)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return [optimizer.state[param]["exp_avg"] for param in model.parameters()]


def test_clipping_in_the_step_is_torchs_clipping_up_to_rounding():
    torch.manual_seed(0)
    reference = Model()
    fused, unclipped = copy.deepcopy(reference), copy.deepcopy(reference)
    use_row_gradients(fused)
    expected = _train(reference, lambda model, _: torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01))
    found = _train(fused, lambda model, optimizer: clip_gradients(CPU, model, optimizer, 0.01, in_optimizer=True))
    free = _train(unclipped, lambda model, optimizer: None)
    for a, b, c in zip(expected, found, free):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-9)
        assert not torch.allclose(a, c, rtol=0.1)  # the clip bites: without it the gradients are larger
    for a, b in zip(reference.parameters(), fused.parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_a_kept_gradient_is_measured_on_its_nonzero_rows():
    torch.manual_seed(1)
    model = Model()
    use_row_gradients(model)
    model(torch.randint(0, 300, (8, 12))).sum().backward()
    rows = nonzero_rows(model.embed.weight)
    assert rows.shape[0] < 300  # the used rows, not the table
    assert torch.allclose(rows.norm(), model.embed.weight.grad.norm())
    assert nonzero_rows(model.head.weight) is model.head.weight.grad


@pytest.mark.parametrize("optimizer, scaler, kind, expected", [
    (lambda p: torch.optim.AdamW(p, fused=True), None, DistributedType.NO, True),
    (lambda p: torch.optim.Adam(p, fused=True), None, DistributedType.MULTI_CPU, True),
    (lambda p: torch.optim.AdamW(p, foreach=True), None, DistributedType.NO, False),  # no grad_scale input
    (lambda p: torch.optim.SGD(p, lr=0.1, fused=True), None, DistributedType.NO, False),
    (lambda p: torch.optim.AdamW(p, fused=True), object(), DistributedType.NO, False),  # fp16's loss scaler
    (lambda p: torch.optim.AdamW(p, fused=True), None, DistributedType.FSDP, False),
])
def test_where_clipping_goes_into_the_step(optimizer, scaler, kind, expected):
    accelerator = SimpleNamespace(scaler=scaler, distributed_type=kind)
    assert clips_in_optimizer(accelerator, optimizer(nn.Linear(2, 2).parameters())) is expected


def test_on_by_default_and_off_for_configs_from_before_the_key():
    assert load_run_config([]).trainer.clip_in_optimizer is True
    plain = to_plain(compose([]))
    del plain["trainer"]["clip_in_optimizer"]  # a run directory, checkpoint or recipe written before the key
    assert build_run_config(plain).trainer.clip_in_optimizer is False
