"""Building blocks shared by the from-scratch encoders: embedding, pooling, activations, MLP, checks.

Masks are boolean ``[batch, seq]`` tensors, True on real tokens. Everything here is written with
tensor ops only (no ``.item()``, no data-dependent Python branching) so it never syncs a GPU.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import nn

from nlptune.config.errors import NlptuneError

ACTIVATIONS = ("relu", "gelu", "tanh")


# ---------------------------------------------------------------------------------------------
# argument checks: every message names the argument, the bad value and what is allowed
# ---------------------------------------------------------------------------------------------
class ModelArgumentError(NlptuneError, ValueError):
    """A model argument with a value the model cannot take: the user's to fix (exit 2), and a ValueError for
    code that builds models directly."""

    def __init__(self, message: str):
        super().__init__(f"model.{message}")


def check_choice(arg: str, value, choices: Sequence) -> None:
    """Raise `ModelArgumentError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ModelArgumentError(f"{arg}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


def check_int(arg: str, value, minimum: int = 1) -> None:
    """Raise `ModelArgumentError` unless ``value`` is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ModelArgumentError(f"{arg}={value!r} is not valid; it must be an integer >= {minimum}")


def check_prob(arg: str, value) -> None:
    """Raise `ModelArgumentError` unless ``value`` is a dropout probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ModelArgumentError(f"{arg}={value!r} is not valid; it must be a probability in [0, 1)")


def make_activation(name: str) -> nn.Module:
    """The activation module called ``name`` (relu, gelu or tanh)."""
    check_choice("activation", name, ACTIVATIONS)
    return {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}[name]()


# ---------------------------------------------------------------------------------------------
# embedding
# ---------------------------------------------------------------------------------------------
class TokenEmbedding(nn.Module):
    """Word embedding with optional pretrained initialisation, freezing and dropout.

    ``embedding_dropout`` (default 0.0 in every builder) drops whole coordinates of the token
    vectors; it is separate from ``dropout`` because the two are tuned very differently.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, pad_token_id: int, *,
                 dropout: float = 0.0, vectors_path: str | None = None,
                 vocab: dict[str, int] | None = None, freeze: bool = False):
        super().__init__()
        check_int("vocab_size", vocab_size)
        check_int("embedding_dim", embedding_dim)
        check_prob("embedding_dropout", dropout)
        if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int) \
                or not 0 <= pad_token_id < vocab_size:
            raise ValueError(f"pad_token_id={pad_token_id!r} is not valid; it must be in [0, {vocab_size})")
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_token_id)
        self.dropout = nn.Dropout(dropout)
        self.coverage: float | None = None  # fraction of the vocab found in the vectors file
        if vectors_path is not None:
            if vocab is None:
                raise ModelArgumentError(f"pretrained_vectors={vectors_path!r} needs the vocab "
                                 "({token: id}), got vocab=None")
            from nlptune.models.vectors import load_vectors  # only needed when a file is given

            try:
                weights, self.coverage = load_vectors(vectors_path, vocab, embedding_dim,
                                                      vocab_size=vocab_size, pad_token_id=pad_token_id)
            except ModelArgumentError:
                raise
            except (OSError, ValueError) as err:  # unreadable, or a folder transformers cannot load
                raise ModelArgumentError(f"pretrained_vectors={vectors_path!r} cannot be read: "
                                         f"{str(err).strip().splitlines()[0][:300]}; give a GloVe/word2vec text "
                                         "file, a transformer's folder, packaged:<hub id> or a hub id") from None
            with torch.no_grad():
                self.embed.weight.copy_(weights)
        if freeze:
            self.embed.weight.requires_grad_(False)

    @property
    def dim(self) -> int:
        return self.embed.embedding_dim

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.embed(input_ids))


# ---------------------------------------------------------------------------------------------
# pooling over the sequence axis
# ---------------------------------------------------------------------------------------------
def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` [B, T, D] over the real positions of ``mask`` [B, T] -> [B, D]."""
    m = mask.unsqueeze(-1).to(x.dtype)
    # clamp: an all-padding row gives zeros instead of 0/0
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max of ``x`` [B, T, D] over the real positions of ``mask`` [B, T] -> [B, D]."""
    m = mask.unsqueeze(-1)
    # finfo.min rather than -inf so an all-padding row stays finite; it is then zeroed
    out = x.masked_fill(~m, torch.finfo(x.dtype).min).amax(dim=1)
    return out.masked_fill(~m.any(dim=1), 0.0)


class AttentionPooling(nn.Module):
    """Additive self-attention pooling: softmax(w . tanh(W x_t)) weighted sum of the states."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(torch.tanh(self.proj(x))).squeeze(-1)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights.unsqueeze(1), x).squeeze(1)


def pool(x: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Masked ``mean`` or ``max`` pooling (the parameter-free strategies)."""
    return masked_mean(x, mask) if how == "mean" else masked_max(x, mask)


# ---------------------------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------------------------
class MLP(nn.Sequential):
    """``Linear -> activation -> Dropout`` per hidden size, then an optional output Linear."""

    def __init__(self, in_dim: int, hidden_sizes: Iterable[int], out_dim: int | None = None, *,
                 activation: str = "relu", dropout: float = 0.0):
        check_prob("dropout", dropout)
        layers: list[nn.Module] = []
        for size in hidden_sizes:
            layers += [nn.Linear(in_dim, size), make_activation(activation), nn.Dropout(dropout)]
            in_dim = size
        if out_dim is not None:
            layers.append(nn.Linear(in_dim, out_dim))
            in_dim = out_dim
        super().__init__(*layers)
        self.out_dim = in_dim
