"""Small Transformer encoder trained from scratch ("transformer")."""
from __future__ import annotations

import math

import torch
from torch import nn

from nlptune.config.registry import register
from nlptune.models.classifier import finish, make_embedding
from nlptune.models.layers import (ACTIVATIONS, ModelArgumentError, TokenEmbedding, check_choice, check_int,
                                   check_prob, masked_mean)
from nlptune.models.tagger import CHAR_EMBEDDINGS, encoder_input_dim, make_chars

POOLINGS = ("cls", "mean")
POSITIONALS = ("sinusoidal", "learned")


def sinusoidal_table(max_positions: int, d_model: int) -> torch.Tensor:
    """The fixed sin/cos position table of Vaswani et al. (2017), ``[max_positions, d_model]``."""
    position = torch.arange(max_positions, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_positions, d_model + d_model % 2)  # room for odd d_model, sliced below
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table[:, :d_model]


def check_transformer_args(*, num_heads, d_model, ff_size, positional, max_positions, pooling,
                           num_layers, activation) -> None:
    """Validate the transformer-specific arguments (ValueError naming the argument)."""
    check_int("num_heads", num_heads)
    check_int("d_model", d_model)
    check_int("ff_size", ff_size)
    check_int("max_positions", max_positions)
    check_int("num_layers", num_layers)
    check_choice("positional", positional, POSITIONALS)
    check_choice("pooling", pooling, POOLINGS)
    check_choice("activation", activation, ACTIVATIONS)
    if d_model % num_heads:
        raise ModelArgumentError(f"d_model={d_model} is not divisible by num_heads={num_heads}; "
                         "choose num_heads among the divisors of d_model (d_model defaults to embedding_dim)")


class TransformerEncoder(nn.Module):
    """Embedding (+ projection to ``d_model``) + positions -> ``nn.TransformerEncoder`` -> pooling."""

    def __init__(self, embedding: TokenEmbedding, *, d_model: int, num_heads: int, ff_size: int,
                 num_layers: int, dropout: float, activation: str, positional: str,
                 max_positions: int, pooling: str, norm_first: bool, input_dim: int | None = None):
        super().__init__()
        check_transformer_args(num_heads=num_heads, d_model=d_model, ff_size=ff_size,
                               positional=positional, max_positions=max_positions, pooling=pooling,
                               num_layers=num_layers, activation=activation)
        check_prob("dropout", dropout)
        self.embedding, self.pooling, self.max_positions = embedding, pooling, max_positions
        input_dim = input_dim or embedding.dim
        self.project = nn.Linear(input_dim, d_model) if input_dim != d_model else nn.Identity()
        if positional == "learned":
            self.positions = nn.Embedding(max_positions, d_model)
        else:  # not persistent: recomputed on build, so checkpoints stay small
            self.register_buffer("sin_table", sinusoidal_table(max_positions, d_model), persistent=False)
            self.positions = None
        self.input_dropout = nn.Dropout(dropout)
        # relu/gelu as strings (not modules) keep PyTorch's fused inference fast path available
        act = torch.tanh if activation == "tanh" else activation
        layer = nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward=ff_size, dropout=dropout,
                                           activation=act, batch_first=True, norm_first=bool(norm_first))
        # pre-norm stacks need a final LayerNorm; nested tensors are not supported with norm_first
        final_norm = nn.LayerNorm(d_model) if norm_first else None
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=final_norm, enable_nested_tensor=False)
        self.output_dim = d_model

    def contextual(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The encoder stack's output ``[B, T, d_model]`` for embedded inputs ``x [B, T, input_dim]`` (projected to
        d_model, positions added); padding is masked out of the attention."""
        length = x.size(1)
        if length > self.max_positions:  # a shape check, not a data-dependent sync
            raise ValueError(f"sequence length {length} exceeds max_positions={self.max_positions}; "
                             "raise max_positions or lower the task's max_length")
        x = self.project(x)
        if self.positions is not None:
            x = x + self.positions.weight[:length]
        else:
            x = x + self.sin_table[:length].to(x.dtype)
        return self.encoder(self.input_dropout(x), src_key_padding_mask=~mask)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.contextual(self.embedding(input_ids), mask)
        # tokenizers put [CLS] first, so "cls" pooling is position 0
        return x[:, 0] if self.pooling == "cls" else masked_mean(x, mask)


@register("model", "transformer")
def build_transformer(*, vocab_size: int, pad_token_id: int, num_labels: int, pair: bool,
                      vocab: dict[str, int] | None = None, embedding_dim: int = 300,
                      hidden_size: int = 256, num_layers: int = 1, dropout: float = 0.3,
                      embedding_dropout: float = 0.0, activation: str = "relu",
                      pretrained_vectors: str | None = None, freeze_embeddings: bool = False,
                      num_heads: int = 4, d_model: int | None = None, ff_size: int = 512,
                      positional: str = "sinusoidal", max_positions: int = 512, pooling: str = "cls",
                      norm_first: bool = True, per_token: bool = False, char_embedding: str | None = None,
                      char_dim: int = 50, crf: bool = False,
                      pair_attention: bool = False) -> nn.Module:
    """Transformer classifier; ``d_model`` None means ``embedding_dim`` (else the embeddings are
    projected); ``hidden_size`` is the head's hidden size, ``ff_size`` the feed-forward width.

    ``per_token=True`` (set by the trainer for task.kind=tokens) builds a `TokenTagger` instead: the encoder stack's
    output at every position (no pooling), with ``char_embedding`` ("cnn" | "lstm", ``char_dim`` wide; the
    concatenation is projected to d_model) and a CRF layer (``crf``) optional. ``pair_attention=True`` (sentence-pair
    tasks) aligns the two texts' outputs with each other before pooling (nlptune/models/pair_attention.py)."""
    args = dict(locals())  # first statement: exactly the arguments, for builder_args
    width = embedding_dim if d_model is None else d_model
    _check_args(args)  # before the vectors file is read
    chars = make_chars(args)
    encoder = TransformerEncoder(make_embedding(args), d_model=width, num_heads=num_heads,
                                 ff_size=ff_size, num_layers=num_layers, dropout=dropout,
                                 activation=activation, positional=positional,
                                 max_positions=max_positions, pooling=pooling, norm_first=norm_first,
                                 input_dim=encoder_input_dim(args, chars))
    return finish("transformer", args, encoder, chars)


def _check_args(args: dict) -> None:
    """`check_transformer_args` on a builder's arguments (``d_model`` None: the embedding width)."""
    check_transformer_args(num_heads=args["num_heads"], d_model=args["d_model"] or args["embedding_dim"],
                           ff_size=args["ff_size"], positional=args["positional"],
                           max_positions=args["max_positions"], pooling=args["pooling"],
                           num_layers=args["num_layers"], activation=args["activation"])


# read by config validation: the arguments that take one of a few values, their other checks (before any data is
# read); it can tag tokens (task.kind=tokens)
build_transformer.choices = {"pooling": POOLINGS, "positional": POSITIONALS, "activation": ACTIVATIONS,
                             "char_embedding": CHAR_EMBEDDINGS}
build_transformer.check_args = _check_args
build_transformer.per_token = True
