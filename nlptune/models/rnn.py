"""Recurrent encoders ("lstm", "gru"): a (bi)RNN over the real tokens only, then last/mean/max/attention pooling."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlptune.config.registry import register
from nlptune.models.classifier import finish, make_embedding
from nlptune.models.layers import ACTIVATIONS, AttentionPooling, TokenEmbedding, check_choice, check_int, pool
from nlptune.models.tagger import CHAR_EMBEDDINGS, encoder_input_dim, make_chars
from nlptune.models.unpacked_rnn import run_unpacked

POOLINGS = ("last", "mean", "max", "attention")
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class RNNEncoder(nn.Module):
    """LSTM/GRU over the real tokens only, so padding never reaches the states: a packed sequence on a GPU (cuDNN
    runs it in one call), on a CPU the same computed without packing (nlptune/models/unpacked_rnn.py).

    The output size is ``hidden_size`` per direction (``2 * hidden_size`` when bidirectional).
    ``activation`` is not used here (the cells have their own); it only shapes the head.
    """

    def __init__(self, embedding: TokenEmbedding, *, cell: str, hidden_size: int, num_layers: int,
                 bidirectional: bool, pooling: str, dropout: float, input_dim: int | None = None):
        super().__init__()
        check_choice("pooling", pooling, POOLINGS)
        check_int("hidden_size", hidden_size)
        check_int("num_layers", num_layers)
        self.embedding, self.pooling = embedding, pooling
        # inter-layer dropout only: PyTorch warns (and does nothing) with one layer
        self.rnn = CELLS[cell](input_dim or embedding.dim, hidden_size, num_layers=num_layers, batch_first=True,
                               bidirectional=bool(bidirectional),
                               dropout=dropout if num_layers > 1 else 0.0)
        self.output_dim = hidden_size * (2 if bidirectional else 1)
        self.attention = AttentionPooling(self.output_dim) if pooling == "attention" else None

    def _run(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = mask.sum(dim=1).clamp(min=1)  # clamp: an empty row still gets one step
        if x.device.type != "cuda":
            return run_unpacked(self.rnn, x, lengths)
        # cuDNN runs a packed sequence in one call, from its own flattened copy of the weights
        out, state = self.rnn(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))
        out = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]
        return out, state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)

    def contextual(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-position outputs ``[B, T, output_dim]`` of the (bi)RNN over embedded inputs ``x [B, T, input_dim]``
        (zeros past each row's length)."""
        return self._run(x, mask)[0]

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embedding(input_ids)
        if self.pooling == "last":
            _, h_n = self._run(x, mask)
            # h_n: [layers * directions, B, H]; the top layer's final forward (and backward) state
            return torch.cat(list(h_n[-(2 if self.rnn.bidirectional else 1):]), dim=-1)
        out = self.contextual(x, mask)
        if self.attention is not None:
            return self.attention(out, mask)
        return pool(out, mask, self.pooling)


def _build(cell: str, args: dict) -> nn.Module:
    check_choice("pooling", args["pooling"], POOLINGS)  # before the vectors file is read
    chars = make_chars(args)
    encoder = RNNEncoder(make_embedding(args), cell=cell, hidden_size=args["hidden_size"],
                         num_layers=args["num_layers"], bidirectional=args["bidirectional"],
                         pooling=args["pooling"], dropout=args["dropout"], input_dim=encoder_input_dim(args, chars))
    return finish(cell, args, encoder, chars)


@register("model", "lstm")
def build_lstm(*, vocab_size: int, pad_token_id: int, num_labels: int, pair: bool,
               vocab: dict[str, int] | None = None, embedding_dim: int = 300, hidden_size: int = 256,
               num_layers: int = 1, dropout: float = 0.3, embedding_dropout: float = 0.0,
               activation: str = "relu", pretrained_vectors: str | None = None,
               freeze_embeddings: bool = False, bidirectional: bool = True,
               pooling: str = "max", per_token: bool = False, char_embedding: str | None = None,
               char_dim: int = 50, crf: bool = False,
               pair_attention: bool = False) -> nn.Module:
    """(Bi)LSTM classifier; ``hidden_size`` is per direction and also the head's hidden size.

    ``per_token=True`` (set by the trainer for task.kind=tokens) builds a `TokenTagger` instead: the per-position
    (bi)LSTM outputs, with ``char_embedding`` ("cnn" | "lstm", ``char_dim`` wide) and a CRF layer (``crf``)
    optional; ``pooling`` is then unused. ``pair_attention=True`` (sentence-pair tasks) aligns the two texts'
    per-token outputs with each other before pooling (nlptune/models/pair_attention.py)."""
    return _build("lstm", dict(locals()))


@register("model", "gru")
def build_gru(*, vocab_size: int, pad_token_id: int, num_labels: int, pair: bool,
              vocab: dict[str, int] | None = None, embedding_dim: int = 300, hidden_size: int = 256,
              num_layers: int = 1, dropout: float = 0.3, embedding_dropout: float = 0.0,
              activation: str = "relu", pretrained_vectors: str | None = None,
              freeze_embeddings: bool = False, bidirectional: bool = True,
              pooling: str = "max", per_token: bool = False, char_embedding: str | None = None,
              char_dim: int = 50, crf: bool = False,
              pair_attention: bool = False) -> nn.Module:
    """(Bi)GRU classifier; ``hidden_size`` is per direction and also the head's hidden size.

    ``per_token=True`` (set by the trainer for task.kind=tokens) builds a `TokenTagger` instead: the per-position
    (bi)GRU outputs, with ``char_embedding`` ("cnn" | "lstm", ``char_dim`` wide) and a CRF layer (``crf``)
    optional; ``pooling`` is then unused. ``pair_attention=True`` (sentence-pair tasks) aligns the two texts'
    per-token outputs with each other before pooling (nlptune/models/pair_attention.py)."""
    return _build("gru", dict(locals()))


# read by config validation: the arguments that take one of a few values
build_lstm.choices = build_gru.choices = {"pooling": POOLINGS, "activation": ACTIVATIONS,
                                           "char_embedding": CHAR_EMBEDDINGS}
# read by config validation: these builders can tag tokens (task.kind=tokens)
build_lstm.per_token = build_gru.per_token = True
