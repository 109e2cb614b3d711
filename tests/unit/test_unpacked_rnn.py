"""The unpacked (bi)RNN computes what the packed sequence computes: outputs, final states and gradients."""
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlptune.models import unpacked_rnn
from nlptune.models.unpacked_rnn import reversal_index, run_unpacked


def packed(rnn, x, lengths):
    out, state = rnn(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))
    h_n = state[0] if isinstance(state, tuple) else state
    return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0], h_n


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_outputs_states_and_gradients_equal_the_packed_runs(cell, bidirectional, num_layers):
    torch.manual_seed(0)
    rnn = cell(5, 4, num_layers=num_layers, bidirectional=bidirectional, batch_first=True).eval()
    lengths = torch.tensor([7, 1, 4, 7, 2])
    x = torch.randn(5, 7, 5, requires_grad=True)
    with torch.no_grad():  # padding holds anything: it must not matter
        x[torch.arange(7).unsqueeze(0) >= lengths.unsqueeze(1)] = 100.0
    expected_out, expected_h = packed(rnn, x, lengths)
    got_out, got_h = run_unpacked(rnn, x, lengths)
    torch.testing.assert_close(got_out, expected_out)
    torch.testing.assert_close(got_h, expected_h)
    weights = torch.randn_like(expected_out)
    expected_grads = torch.autograd.grad((expected_out * weights).sum() + expected_h.sum(), [x, *rnn.parameters()])
    got_grads = torch.autograd.grad((got_out * weights).sum() + got_h.sum(), [x, *rnn.parameters()])
    for expected, got in zip(expected_grads, got_grads):
        torch.testing.assert_close(got, expected)


def test_bf16_autocast_stays_close_to_fp32():
    torch.manual_seed(0)
    rnn = nn.LSTM(8, 16, bidirectional=True, batch_first=True).eval()
    x, lengths = torch.randn(3, 6, 8), torch.tensor([6, 3, 1])
    reference, _ = packed(rnn, x, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = run_unpacked(rnn, x, lengths)
    torch.testing.assert_close(got.float(), reference, atol=0.05, rtol=0.05)


def test_reversal_index_reverses_each_rows_real_positions_only():
    index = reversal_index(torch.tensor([3, 1, 4]), 4)
    assert index.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3], [3, 2, 1, 0]]
    assert torch.equal(index.gather(1, index), torch.arange(4).expand(3, 4))  # its own inverse


def test_other_modules_are_refused():
    with pytest.raises(ValueError, match="batch_first"):
        run_unpacked(nn.LSTM(3, 2), torch.randn(2, 2, 3), torch.tensor([2, 1]))
    with pytest.raises(ValueError, match="projections"):
        run_unpacked(nn.LSTM(3, 4, proj_size=2, batch_first=True), torch.randn(2, 2, 3), torch.tensor([2, 1]))


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("autocast", [False, True])
def test_rows_without_padding_take_a_shortcut_with_the_same_bits(cell, bidirectional, autocast):
    """A batch of full rows (every single text) skips the reversal gathers and the mask: outputs, final states and
    gradients are bit for bit those of the general path."""
    torch.manual_seed(0)
    rnn = cell(5, 4, num_layers=2, dropout=0.3, bidirectional=bidirectional, batch_first=True).train()
    x = torch.randn(3, 6, 5, requires_grad=True)
    lengths = torch.full((3,), 6)
    results = []
    for path in (unpacked_rnn._run_full, lambda rnn, x: unpacked_rnn._run_padded(rnn, x, lengths)):
        torch.manual_seed(1)  # the same inter-layer dropout masks
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out, h_n = path(rnn, x)
        grads = torch.autograd.grad(out.float().square().sum() + h_n.float().sum(), [x, *rnn.parameters()])
        results.append([out, h_n, *grads])
    for fast, general in zip(*results):
        assert torch.equal(fast, general)
    with torch.no_grad():
        assert torch.equal(run_unpacked(rnn.eval(), x, lengths)[0], unpacked_rnn._run_full(rnn, x)[0])


def test_a_precision_the_fused_kernel_lacks_runs_it_in_fp32(monkeypatch):
    """oneDNN has no bf16 LSTM on CPUs without bf16 units, yet autocast sends it there: where the probe says the
    fused kernel fails, the layer computes in fp32, the same bits as without autocast, gradients included."""
    torch.manual_seed(0)
    rnn = nn.LSTM(5, 4, bidirectional=True, batch_first=True).train()
    x, lengths = torch.randn(3, 6, 5, requires_grad=True), torch.tensor([6, 3, 1])
    expected, expected_h = run_unpacked(rnn, x, lengths)
    monkeypatch.setattr(unpacked_rnn, "fused_kernel_runs", lambda *key: False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, got_h = run_unpacked(rnn, x, lengths)
    assert got.dtype == torch.float32 and torch.equal(got, expected) and torch.equal(got_h, expected_h)
    grads = [torch.autograd.grad(out.sum(), [x, *rnn.parameters()]) for out in (expected, got)]
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_the_probe_tells_a_failing_kernel_and_leaves_the_random_stream_alone(monkeypatch):
    probe = unpacked_rnn.fused_kernel_runs.__wrapped__  # uncached
    state = torch.random.get_rng_state()
    assert probe(nn.GRU, torch.float32, None) is True
    assert torch.equal(torch.random.get_rng_state(), state)

    def no_primitive(*args):
        raise RuntimeError("could not create a primitive descriptor for the LSTM forward propagation primitive")
    monkeypatch.setitem(unpacked_rnn._KERNELS, nn.LSTM, no_primitive)
    assert probe(nn.LSTM, torch.float32, torch.bfloat16) is False
