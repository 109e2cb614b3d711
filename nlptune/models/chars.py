"""Character features of each word, over its UTF-8 bytes: the CNN of Ma & Hovy (2016) and the BiLSTM of
Lample et al. (2016).

Input ``char_ids [B, T, C]``: byte + 1 (ids 1..256), left-aligned, 0 = padding; a word with no bytes (a special
token, a padded position) gets a zero feature vector. All ``B * T`` words go through one ``[B * T, C]`` call.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from nlptune.models.layers import check_int, masked_max
from nlptune.models.unpacked_rnn import needs_fp32

NUM_BYTE_IDS = 257  # 0 = padding, 1..256 = byte + 1


class CharCNN(nn.Module):
    """Byte embedding -> conv1d of width 3 -> max over the word's real bytes; ``output_dim = char_dim``."""

    def __init__(self, char_dim: int):
        super().__init__()
        check_int("char_dim", char_dim)
        self.embed = nn.Embedding(NUM_BYTE_IDS, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, char_dim, kernel_size=3, padding=1)
        self.output_dim = char_dim

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        batch, length, chars = char_ids.shape
        ids = char_ids.reshape(batch * length, chars)
        mask = ids != 0
        # zero past the word's last byte, so a window there sees the same zeros whatever C is
        x = self.embed(ids) * mask.unsqueeze(-1).to(self.embed.weight.dtype)
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # [N, C, char_dim]
        return masked_max(h, mask).reshape(batch, length, -1)  # masked_max gives 0 for a byte-less word


class CharLSTM(nn.Module):
    """Byte embedding -> BiLSTM over the word's real bytes -> final forward and backward states concatenated;
    ``output_dim = 2 * char_dim``."""

    def __init__(self, char_dim: int):
        super().__init__()
        check_int("char_dim", char_dim)
        self.embed = nn.Embedding(NUM_BYTE_IDS, char_dim, padding_idx=0)
        self.lstm = nn.LSTM(char_dim, char_dim, batch_first=True, bidirectional=True)
        self.output_dim = 2 * char_dim

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        batch, length, chars = char_ids.shape
        ids = char_ids.reshape(batch * length, chars)
        counts = (ids != 0).sum(dim=1)
        if torch.onnx.is_in_onnx_export():  # the ONNX exporters cannot trace packing (see _unpacked_states)
            return self._unpacked_states(ids, counts).reshape(batch, length, -1)
        embedded = self.embed(ids)
        fp32 = needs_fp32(nn.LSTM, embedded)  # bf16 autocast on a CPU without a bf16 LSTM kernel (unpacked_rnn)
        # packing needs the lengths on the CPU (one host sync, as in the word RNN); an empty word runs one
        # padding step and is zeroed below
        packed = pack_padded_sequence(embedded.float() if fp32 else embedded, counts.clamp(min=1).cpu(),
                                      batch_first=True, enforce_sorted=False)
        with torch.autocast("cpu", enabled=False) if fp32 else contextlib.nullcontext():
            _, (h_n, _) = self.lstm(packed)  # h_n: [2, N, char_dim], forward then backward
        out = torch.cat([h_n[0], h_n[1]], dim=-1) * (counts > 0).unsqueeze(-1).to(h_n.dtype)
        return out.reshape(batch, length, -1)

    def _unpacked_states(self, ids: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The packed run's final states without packing (which neither ONNX exporter traces: TorchScript fails
        inside its pass, torch.export on the data-dependent lengths). The forward state after a word's last byte
        is the forward output there, whatever padding follows; the backward state after its first byte is the
        backward output at the first byte of the word *right-aligned*, whatever padding precedes it. Two
        unpacked runs, for export only; `nlptune export` checks the graph against the packed model."""
        chars = ids.shape[1]
        positions = torch.arange(chars, device=ids.device).unsqueeze(0)  # [1, C]
        shift = (chars - counts).unsqueeze(1)  # [N, 1]: where the right-aligned word starts
        source = positions - shift  # the byte that lands at each position once right-aligned; < 0 = padding
        right = torch.where(source >= 0, ids.gather(1, source.clamp(min=0)), torch.zeros_like(ids))
        hidden = self.lstm.hidden_size
        forward_out, _ = self.lstm(self.embed(ids))
        backward_out, _ = self.lstm(self.embed(right))
        last = (counts - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, hidden)
        first = shift.clamp(max=chars - 1).view(-1, 1, 1).expand(-1, 1, hidden)
        forward_state = forward_out[..., :hidden].gather(1, last).squeeze(1)
        backward_state = backward_out[..., hidden:].gather(1, first).squeeze(1)
        out = torch.cat([forward_state, backward_state], dim=-1)
        return out * (counts > 0).unsqueeze(-1).to(out.dtype)


CHAR_ENCODERS = {"cnn": CharCNN, "lstm": CharLSTM}
