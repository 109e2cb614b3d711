"""Kim (2014) style convolutional encoder ("cnn"): one conv1d per width, max over time, concat."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nlptune.config.registry import register
from nlptune.models.classifier import finish, make_embedding
from nlptune.models.layers import (ACTIVATIONS, ModelArgumentError, TokenEmbedding, check_int, make_activation,
                                   masked_max)
from nlptune.models.tagger import CHAR_EMBEDDINGS, encoder_input_dim, make_chars


def _check_kernel_sizes(kernel_sizes) -> tuple[int, ...]:
    if isinstance(kernel_sizes, int) and not isinstance(kernel_sizes, bool):
        kernel_sizes = (kernel_sizes,)
    if not isinstance(kernel_sizes, (list, tuple)) or not kernel_sizes or any(
            isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in kernel_sizes):
        raise ModelArgumentError(f"kernel_sizes={kernel_sizes!r} is not valid; it must be a non-empty list "
                         "of positive integers, e.g. [3, 4, 5]")
    return tuple(kernel_sizes)


class CNNEncoder(nn.Module):
    """Conv1d per kernel width -> activation -> max over the real windows -> concat -> dropout."""

    def __init__(self, embedding: TokenEmbedding, *, kernel_sizes: Sequence[int], num_filters: int,
                 activation: str, dropout: float, input_dim: int | None = None):
        super().__init__()
        self.kernel_sizes = _check_kernel_sizes(kernel_sizes)
        check_int("num_filters", num_filters)
        self.embedding = embedding
        self.convs = nn.ModuleList(nn.Conv1d(input_dim or embedding.dim, num_filters, k)
                                   for k in self.kernel_sizes)
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = num_filters * len(self.kernel_sizes)

    def contextual(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-position features ``[B, T, output_dim]`` of embedded inputs ``x [B, T, input_dim]``: position t
        sees the window of each width centred on t (for an even width k: (k-2)/2 before, k/2 after), with zeros
        outside the sentence, so the result does not depend on the batch's padded length."""
        x = (x * mask.unsqueeze(-1).to(x.dtype)).transpose(1, 2)  # [B, D, T]
        features = []
        for width, conv in zip(self.kernel_sizes, self.convs):
            h = conv(F.pad(x, ((width - 1) // 2, width // 2)))  # [B, F, T]: same length as the input
            features.append(self.activation(h).transpose(1, 2))
        return torch.cat(features, dim=-1)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Zero the padding and append (widest kernel - 1) zero steps, so that every real token
        # starts a window that sees zeros past the sentence end: the result is then the same
        # whatever the batch's padded length, and short sentences still get a window.
        x = self.embedding(input_ids)
        x = x * mask.unsqueeze(-1).to(x.dtype)
        extra = max(self.kernel_sizes) - 1
        x = F.pad(x, (0, 0, 0, extra)).transpose(1, 2)  # [B, D, T]
        mask = F.pad(mask, (0, extra), value=False)
        pooled = []
        for conv in self.convs:
            h = self.activation(conv(x)).transpose(1, 2)  # [B, T - k + 1, F]
            # a window counts when it starts on a real token; this keeps extra padding invisible
            pooled.append(masked_max(h, mask[:, : h.size(1)]))
        return self.dropout(torch.cat(pooled, dim=-1))


def _check_cnn_args(args: dict) -> None:
    if args["num_layers"] != 1:  # accepted so shared model defaults apply, but Kim's CNN has one layer
        raise ModelArgumentError(f"num_layers={args['num_layers']!r} is not valid for cnn; it has exactly 1 "
                                 "convolution layer (widen it with kernel_sizes / num_filters instead)")
    _check_kernel_sizes(args["kernel_sizes"])


@register("model", "cnn")
def build_cnn(*, vocab_size: int, pad_token_id: int, num_labels: int, pair: bool,
              vocab: dict[str, int] | None = None, embedding_dim: int = 300, hidden_size: int = 256,
              num_layers: int = 1, dropout: float = 0.3, embedding_dropout: float = 0.0,
              activation: str = "relu", pretrained_vectors: str | None = None,
              freeze_embeddings: bool = False,
              kernel_sizes: Sequence[int] = (3, 4, 5), num_filters: int = 100, per_token: bool = False,
              char_embedding: str | None = None, char_dim: int = 50, crf: bool = False,
              pair_attention: bool = False) -> nn.Module:
    """Kim-style CNN sentence classifier; ``num_layers`` is accepted (shared arg) but must be 1.

    ``per_token=True`` (set by the trainer for task.kind=tokens) builds a `TokenTagger` instead: each word's
    features are the convolutions centred on it, with ``char_embedding`` ("cnn" | "lstm", ``char_dim`` wide) and a
    CRF layer (``crf``) optional. ``pair_attention=True`` (sentence-pair tasks) aligns the two texts' per-position
    features with each other before pooling (nlptune/models/pair_attention.py)."""
    args = dict(locals())  # first statement: exactly the arguments, for builder_args
    _check_cnn_args(args)  # before the (maybe slow) vectors file is read
    chars = make_chars(args)
    encoder = CNNEncoder(make_embedding(args), kernel_sizes=kernel_sizes, num_filters=num_filters,
                         activation=activation, dropout=dropout, input_dim=encoder_input_dim(args, chars))
    return finish("cnn", args, encoder, chars)


# read by config validation: the arguments that take one of a few values; it can tag tokens (task.kind=tokens)
build_cnn.choices = {"activation": ACTIVATIONS, "char_embedding": CHAR_EMBEDDINGS}
build_cnn.check_args = _check_cnn_args  # read by config validation: the arguments' checks, before any data
build_cnn.per_token = True
