"""Bag-of-embeddings encoder ("bag"): embed, pool over the words, then a small MLP."""
from __future__ import annotations

import torch
from torch import nn

from nlptune.config.registry import register
from nlptune.models.classifier import SequenceClassifier, finish, make_embedding
from nlptune.models.layers import (ACTIVATIONS, MLP, ModelArgumentError, TokenEmbedding, check_choice, check_int,
                                   pool)

POOLINGS = ("mean", "max")


class BagEncoder(nn.Module):
    """Masked mean/max of the word vectors followed by ``num_layers`` MLP layers (0 allowed)."""

    def __init__(self, embedding: TokenEmbedding, *, pooling: str, hidden_size: int,
                 num_layers: int, activation: str, dropout: float):
        super().__init__()
        check_choice("pooling", pooling, POOLINGS)
        check_int("num_layers", num_layers, minimum=0)
        self.embedding, self.pooling = embedding, pooling
        self.mlp = MLP(embedding.dim, [hidden_size] * num_layers, activation=activation, dropout=dropout)
        self.output_dim = self.mlp.out_dim

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.mlp(pool(self.embedding(input_ids), mask, self.pooling))


@register("model", "bag")
def build_bag(*, vocab_size: int, pad_token_id: int, num_labels: int, pair: bool,
              vocab: dict[str, int] | None = None, embedding_dim: int = 300, hidden_size: int = 256,
              num_layers: int = 1, dropout: float = 0.3, embedding_dropout: float = 0.0,
              activation: str = "relu", pretrained_vectors: str | None = None,
              freeze_embeddings: bool = False, pooling: str = "mean", per_token: bool = False) -> SequenceClassifier:
    """Bag-of-embeddings classifier (fastText-like when ``num_layers=0``); it cannot tag tokens (``per_token``)."""
    args = dict(locals())  # first statement: exactly the arguments, for builder_args
    if per_token:
        raise ModelArgumentError("name='bag' cannot tag tokens (task.kind=tokens): the bag pools the words away "
                                 "before its layers, so no per-word output is left; choose lstm, gru, cnn, "
                                 "transformer or a pretrained model")
    check_choice("pooling", pooling, POOLINGS)  # before the (maybe slow) vectors file is read
    encoder = BagEncoder(make_embedding(args), pooling=pooling, hidden_size=hidden_size,
                         num_layers=num_layers, activation=activation, dropout=dropout)
    return finish("bag", args, encoder)


# read by config validation: num_layers=0 is the fastText-like bag; the arguments that take one of a few values
build_bag.min_layers = 0
build_bag.choices = {"pooling": POOLINGS, "activation": ACTIVATIONS}
build_bag.per_token = False  # read by config validation: refused for task.kind=tokens before any data is read
