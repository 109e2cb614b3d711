"""Per-token models (taggers) from the from-scratch encoders: one score vector per position.

word embedding (+ character features of each word, concatenated) -> the encoder's ``contextual`` features
-> dropout -> ``Linear(num_labels)`` per position, plus, with ``crf=True``, the CRF's transition scores. The loss and
the decoding belong to the problem kind (nlptune/kinds/crf.py for the CRF): the model returns scores only.

An encoder here is any module with ``embedding`` (a `TokenEmbedding`), ``output_dim`` and
``contextual(x [B, T, input_dim], mask [B, T] bool) -> [B, T, output_dim]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_outputs import TokenClassifierOutput

from nlptune.models.chars import CHAR_ENCODERS
from nlptune.models.crf import CRFTransitions
from nlptune.models.layers import ModelArgumentError, check_choice, check_int, check_prob

CHAR_EMBEDDINGS = tuple(CHAR_ENCODERS)  # "cnn", "lstm" (None: no character features)


@dataclass
class TokenTaggerOutput(TokenClassifierOutput):
    """``logits [B, T, num_labels]`` and, for a CRF tagger, ``transitions [L + 2, L + 2]`` (disallowed: -1e4)."""

    transitions: torch.FloatTensor | None = None


class TokenTagger(nn.Module):
    """Encoder features per position -> dropout -> Linear(num_labels); optional char features and CRF transitions.

    ``chars`` (a `CharCNN`/`CharLSTM` or None) adds ``chars.output_dim`` features per word, so the encoder must
    have been built with ``input_dim = embedding dim + chars.output_dim``.
    """

    def __init__(self, encoder: nn.Module, *, num_labels: int, pad_token_id: int, chars: nn.Module | None = None,
                 crf: bool = False, dropout: float = 0.0):
        super().__init__()
        check_int("num_labels", num_labels)
        check_prob("dropout", dropout)
        self.encoder, self.chars = encoder, chars
        self.num_labels, self.pad_token_id = num_labels, pad_token_id
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.output_dim, num_labels)
        self.crf = CRFTransitions(num_labels) if crf else None
        self.builder_args: dict = {}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                char_ids: torch.Tensor | None = None) -> TokenTaggerOutput:
        """Logits ``[B, T, num_labels]`` (and ``transitions`` with a CRF) for ``input_ids [B, T]``; ``char_ids
        [B, T, C]`` is required when the tagger has character features (and ignored otherwise)."""
        mask = input_ids != self.pad_token_id if attention_mask is None else attention_mask.bool()
        x = self.encoder.embedding(input_ids)
        if self.chars is not None:
            if char_ids is None:
                raise ValueError("this tagger was built with char_embedding; pass char_ids [batch, seq, chars] "
                                 "(the data pipeline adds them when the model asks for character features)")
            x = torch.cat([x, self.chars(char_ids).to(x.dtype)], dim=-1)
        logits = self.head(self.dropout(self.encoder.contextual(x, mask)))
        return TokenTaggerOutput(logits=logits, transitions=None if self.crf is None else self.crf())


# ---------------------------------------------------------------------------------------------
# helpers for the scratch builders (lstm, gru, cnn, transformer)
# ---------------------------------------------------------------------------------------------
def make_chars(args: dict) -> nn.Module | None:
    """Check a builder's per-token arguments and build its character encoder (None without char features).

    ``per_token=False`` (a sentence classifier) refuses ``char_embedding`` and ``crf``; ``per_token=True`` refuses
    ``pair``. Called before the embedding is built, so a mistake is reported before a vectors file is read.
    """
    kind = args.get("char_embedding")
    if not args.get("per_token", False):
        for key, unset in (("char_embedding", None), ("crf", False)):
            if args.get(key, unset) != unset:
                raise ModelArgumentError(f"{key}={args[key]!r} is only for task.kind=tokens (a model that tags "
                                         "each word); remove it for this task")
        return None
    if args.get("pair"):
        raise ModelArgumentError("pair=True is not valid for a tagger: task.kind=tokens reads one text field "
                                 "(the words of each sentence)")
    if kind is None:
        return None
    check_choice("char_embedding", kind, CHAR_EMBEDDINGS)
    check_int("char_dim", args.get("char_dim"))
    return CHAR_ENCODERS[kind](args["char_dim"])


def encoder_input_dim(args: dict, chars: nn.Module | None) -> int:
    """The encoder's input width: the word embedding plus the character features."""
    return args["embedding_dim"] + (0 if chars is None else chars.output_dim)
