"""A (bi)LSTM/GRU over right-padded rows, computed as a packed sequence would be, without packing.

On a CPU, PyTorch runs a `PackedSequence` step by step in separately dispatched ops (a matrix product per time
step and direction, and under bf16 autocast a cast of the weights at every step), while a padded tensor goes to one
fused oneDNN kernel (cuDNN runs packed sequences in one call: the encoders keep packing on a GPU). The result is
the same when padding never reaches a real token's state, which holds here by construction:

- the forward direction reads each row left to right: its padding comes after the real tokens, so their outputs
  are those of the packed run (outputs past a row's length are set to zero, as `pad_packed_sequence` gives);
- the backward direction runs forward in time over each row with its real tokens reversed (padding left at the
  end), and its outputs are reversed back into place.

The final state of each direction (``h_n``, what ``pooling=last`` reads) is its output at the row's last real
step. Layers are computed one at a time (a layer's input is the previous layer's two directions), with the
module's inter-layer dropout in training. The parameters are the `nn.LSTM` / `nn.GRU` module's own, so
checkpoints are unchanged.

oneDNN has no bf16 (or fp16) LSTM on CPUs without bf16 units (AVX2, or AVX-512 without its bf16 extension), yet
autocast sends the LSTM there in bf16 all the same, and the kernel fails ("could not create a primitive
descriptor"). Whether the fused kernel runs in a precision is probed once per process (a 2-unit RNN, forward and
backward); where it does not, the layer runs the same fused kernel in fp32, as a GRU does under autocast anyway.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

_KERNELS = {nn.LSTM: torch.lstm, nn.GRU: torch.gru}


def reversal_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """``[B, T]`` time indices that reverse each row's first ``lengths[b]`` positions and leave the rest in place
    (the permutation is its own inverse)."""
    positions = torch.arange(steps, device=lengths.device).unsqueeze(0)
    lengths = lengths.unsqueeze(1)
    return torch.where(positions < lengths, lengths - 1 - positions, positions)


def _gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))


def _kernel(cell: type, x: torch.Tensor, params: list, hidden_size: int, bias: bool, training: bool) -> torch.Tensor:
    """The fused kernel of ``cell`` (one layer, one direction, zero initial states) over ``x``: its outputs."""
    zeros = x.new_zeros(1, x.size(0), hidden_size)
    state = (zeros, zeros) if cell is nn.LSTM else zeros
    output, *_ = _KERNELS[cell](x, state, params, bias, 1, 0.0, training, False, True)
    return output


@functools.lru_cache(maxsize=None)
def fused_kernel_runs(cell: type, dtype: torch.dtype, autocast_dtype: torch.dtype | None) -> bool:
    """Whether ``cell``'s fused CPU kernel runs (inference, training forward and backward) on ``dtype`` inputs,
    under CPU autocast to ``autocast_dtype`` (None: no autocast). The module docstring says why it may not."""
    gates = 4 if cell is nn.LSTM else 3
    # constant weights, not a module's random ones: the probe must not move the caller's random stream
    params = [torch.full(shape, 0.1, dtype=dtype, requires_grad=True) for shape in ((gates * 2, 2), (gates * 2, 2),
                                                                                     (gates * 2,), (gates * 2,))]
    x = torch.ones(1, 3, 2, dtype=dtype, requires_grad=True)
    try:
        with torch.enable_grad(), torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16,
                                                 enabled=autocast_dtype is not None):
            for training in (False, True):
                output = _kernel(cell, x, params, 2, True, training)
            output.float().sum().backward()
    except RuntimeError:
        return False
    return True


def needs_fp32(cell: type, x: torch.Tensor) -> bool:
    """Whether ``cell`` (`nn.LSTM` / `nn.GRU`), run on ``x`` here (its dtype, the CPU autocast in force), would
    reach a fused CPU kernel that cannot run in that precision, so must run in fp32 without autocast instead."""
    autocast_on = torch.is_autocast_enabled("cpu")
    if x.device.type != "cpu" or (x.dtype == torch.float32 and not autocast_on):
        return False
    return not fused_kernel_runs(cell, x.dtype, torch.get_autocast_dtype("cpu") if autocast_on else None)


def _one_direction(rnn: nn.Module, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
    """The outputs ``[B, T, H]`` of one layer and direction of ``rnn`` run forward in time from zero states."""
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if rnn.bias else [])
    params = [getattr(rnn, f"{name}_l{layer}{suffix}") for name in names]
    cell = type(rnn)
    if needs_fp32(cell, x):
        with torch.autocast("cpu", enabled=False):
            output = _kernel(cell, x.float(), [p.float() for p in params], rnn.hidden_size, rnn.bias, rnn.training)
        return output.to(x.dtype)
    return _kernel(cell, x, params, rnn.hidden_size, rnn.bias, rnn.training)


def run_unpacked(rnn: nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs ``[B, T, directions * H]`` with zeros past each row's length, final states
    ``[layers * directions, B, H]``) of ``rnn`` (a batch_first `nn.LSTM` / `nn.GRU`) over ``x [B, T, input]``
    whose rows hold ``lengths`` (>= 1) real positions then padding: what the packed sequence gives."""
    if type(rnn) not in _KERNELS or not rnn.batch_first or getattr(rnn, "proj_size", 0):
        raise ValueError(f"run_unpacked takes a batch_first nn.LSTM or nn.GRU without projections, got {rnn}")
    lengths = lengths.to(x.device)
    if bool((lengths >= x.size(1)).all()):  # a host tensor here (a GPU packs instead): no device sync
        return _run_full(rnn, x)
    return _run_padded(rnn, x, lengths)


def _run_padded(rnn: nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`run_unpacked` for rows of any lengths (the module docstring says how)."""
    steps = x.size(1)
    valid = (torch.arange(steps, device=x.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
    reverse = reversal_index(lengths, steps) if rnn.bidirectional else None
    last = (lengths - 1).view(-1, 1)  # each row's last real step
    finals = []
    for layer in range(rnn.num_layers):
        if layer > 0 and rnn.dropout > 0:
            x = F.dropout(x, rnn.dropout, rnn.training)
        outputs = [_one_direction(rnn, x, layer, "")]
        finals.append(_gather_time(outputs[0], last).squeeze(1))
        if reverse is not None:
            backward = _one_direction(rnn, _gather_time(x, reverse), layer, "_reverse")
            finals.append(_gather_time(backward, last).squeeze(1))
            outputs.append(_gather_time(backward, reverse))
        x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        x = x * valid  # padding's outputs are zero, as pad_packed_sequence gives them
    return x, torch.stack(finals)


def _run_full(rnn: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`run_unpacked` for rows without padding (a single text, a batch of equal lengths): the reversal is a flip
    and nothing needs masking. The same kernels on the same values, so the same bits, without the index building,
    gathers and masking (a batch-1 prediction's overhead; benchmarks/RESULTS.md, "Distillation")."""
    finals = []
    for layer in range(rnn.num_layers):
        if layer > 0 and rnn.dropout > 0:
            x = F.dropout(x, rnn.dropout, rnn.training)
        outputs = [_one_direction(rnn, x, layer, "")]
        if rnn.bidirectional:
            outputs.append(_one_direction(rnn, x.flip(1), layer, "_reverse").flip(1))
        # the forward direction ends at the last step, the backward one (flipped back) at the first
        finals += [outputs[0][:, -1]] + ([outputs[1][:, 0]] if rnn.bidirectional else [])
        x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
    return x, torch.stack(finals)
