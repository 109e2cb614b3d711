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


CHAR_ENCODERS = {"cnn": CharCNN, "lstm": CharLSTM}
