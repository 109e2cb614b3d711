"""Weights to and from safetensors whatever their storage: cuDNN-packed RNN weights (a GRU or LSTM trained on a
GPU), tied tensors, and a file that does not fit the model."""
from __future__ import annotations

import pytest
import torch

from nlptune.models import build_model, load_scratch_model, save_scratch_model
from nlptune.utils.weights import load_module, save_module, writable_state

TINY = dict(vocab_size=40, pad_token_id=0, embedding_dim=8, hidden_size=8, num_labels=2, pair=False)


def pack_rnn_weights(model: torch.nn.Module) -> int:
    """Make every RNN's parameters views of one buffer, as cuDNN's flatten_parameters does on a GPU."""
    packed = 0
    for rnn in (m for m in model.modules() if isinstance(m, torch.nn.RNNBase)):
        names = [name for name, _ in rnn.named_parameters(recurse=False)]
        flat = torch.cat([getattr(rnn, name).detach().reshape(-1) for name in names])
        offset = 0
        for name in names:
            size = getattr(rnn, name).numel()
            setattr(rnn, name, torch.nn.Parameter(flat[offset:offset + size].view_as(getattr(rnn, name))))
            offset += size
        packed += 1
    return packed


def logits(model, ids):
    with torch.no_grad():
        return model.eval()(ids, attention_mask=ids != 0).logits


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_packed_rnn_weights_save_and_load(tmp_path, name):
    """A GRU/LSTM trained on a GPU holds its weights in one cuDNN buffer: saving best/ failed ("no suitable name
    to keep ... None is covering the entire storage"); each is written on its own and read back into a packed
    model too (a resume on the GPU)."""
    torch.manual_seed(0)
    model = build_model(name, **TINY)
    assert pack_rnn_weights(model) == 1
    ids = torch.randint(1, 40, (3, 6))
    loaded = load_scratch_model(save_scratch_model(model, tmp_path / "m"))
    assert torch.equal(logits(model, ids), logits(loaded, ids))

    torch.manual_seed(1)
    other = build_model(name, **TINY)
    pack_rnn_weights(other)
    save_module(model, tmp_path / "w.safetensors")
    load_module(other, tmp_path / "w.safetensors")
    assert torch.equal(logits(model, ids), logits(other, ids))


def test_tied_tensors_are_written_once_and_restored_through_the_tie(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    model[1].weight = model[0].weight
    assert set(writable_state(model)) == {"0.weight", "0.bias", "1.bias"}
    save_module(model, tmp_path / "w.safetensors")
    other = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    other[1].weight = other[0].weight
    load_module(other, tmp_path / "w.safetensors")
    assert torch.equal(other[1].weight, model[0].weight) and other[1].weight is other[0].weight


def test_weights_that_do_not_fit_name_every_difference(tmp_path):
    save_module(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2)), tmp_path / "w.safetensors")
    other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2, bias=False), torch.nn.Linear(2, 2))
    with pytest.raises(ValueError) as err:
        load_module(other, tmp_path / "w.safetensors")
    message = str(err.value)
    assert "missing: 2.weight, 2.bias" in message and "unexpected: 1.bias" in message
    assert "0.weight (3, 3) vs (4, 3)" in message
