"""The wrapper that turns a sentence encoder into a model with ``num_labels`` outputs per text (per word: tagger.py).

What the outputs mean (class scores, a regression score) and their loss belong to the task's problem kind
(nlptune/kinds/): the model returns logits only.

An encoder is any module with an ``output_dim`` attribute and
``forward(input_ids [B, T], mask [B, T] bool) -> [B, output_dim]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from nlptune.models.layers import MLP, ModelArgumentError, TokenEmbedding, check_int, check_prob
from nlptune.models.pair_attention import PairAttention
from nlptune.models.tagger import TokenTagger
from nlptune.utils.plain import plain_data


class SequenceClassifier(nn.Module):
    """Encoder + MLP head with ``num_labels`` outputs; single sentences or sentence pairs.

    For pairs the one (shared) encoder maps both sentences to ``u`` and ``v`` and the head sees
    ``[u, v, |u - v|, u * v]``. With ``pair_attention`` the two come from the encoder's per-token outputs aligned
    with each other (`PairAttention`; the encoder's own pooling is then unused), so the encoder needs ``embedding``
    and ``contextual`` as a tagger's does. Logits are ``[batch, num_labels]``; the problem kind computes the loss.
    """

    def __init__(self, encoder: nn.Module, *, num_labels: int, pair: bool, pad_token_id: int,
                 hidden_size: int, activation: str = "relu", dropout: float = 0.0, pair_attention: bool = False):
        super().__init__()
        check_int("num_labels", num_labels)
        check_int("hidden_size", hidden_size)
        self.encoder = encoder
        self.num_labels, self.pair, self.pad_token_id = num_labels, bool(pair), pad_token_id
        self.pair_attention = _pair_attention(encoder, pair, pair_attention, dropout)
        pooled_dim = encoder.output_dim if self.pair_attention is None else self.pair_attention.output_dim
        in_dim = pooled_dim * (4 if self.pair else 1)
        self.head = MLP(in_dim, [hidden_size], num_labels, activation=activation, dropout=dropout)
        self.builder_args: dict = {}

    def init_output_bias(self, value: float) -> None:
        """Start a one-output model's predictions at ``value`` (the mean training label) instead of 0. With labels
        far from 0 (STS-B: 0-5, mean 2.7) an Adam-trained bias moves ~lr a step, so a zero start spends most
        of a short run learning the mean. One epoch of stsb, Pearson from a zero start -> from the mean:
        bag 0.557 -> 0.647, cnn (lr 1e-3) 0.165 -> 0.300, lstm 0.605 -> 0.681, gru 0.626 -> 0.695,
        transformer 0.514 -> 0.625 (benchmarks/model_matrix.py)."""
        if self.num_labels != 1:
            raise ValueError(f"init_output_bias sets the one output of a num_labels=1 model; this one has "
                             f"{self.num_labels} outputs")
        with torch.no_grad():
            self.head[-1].bias.fill_(float(value))

    def _mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is None:
            return input_ids != self.pad_token_id
        return attention_mask.bool()

    def _encode_pair(self, ids_a, mask_a, ids_b, mask_b) -> tuple[torch.Tensor, torch.Tensor]:
        # One encoder call on the stacked batch instead of two: the encoders are padding
        # invariant, so right-padding the shorter side to a common length changes nothing.
        length = max(ids_a.size(1), ids_b.size(1))
        ids = torch.cat([F.pad(t, (0, length - t.size(1)), value=self.pad_token_id) for t in (ids_a, ids_b)])
        mask = torch.cat([F.pad(m, (0, length - m.size(1)), value=False) for m in (mask_a, mask_b)])
        if self.pair_attention is None:
            return self.encoder(ids, mask).split(ids_a.size(0))
        tokens = self.encoder.contextual(self.encoder.embedding(ids), mask)
        (a, b), (mask_a, mask_b) = tokens.split(ids_a.size(0)), mask.split(ids_a.size(0))
        return self.pair_attention(a, mask_a, b, mask_b)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                input_ids_b: torch.Tensor | None = None, attention_mask_b: torch.Tensor | None = None
                ) -> SequenceClassifierOutput:
        """Logits ``[batch, num_labels]`` for a batch of sentences or pairs."""
        mask = self._mask(input_ids, attention_mask)
        if self.pair:
            if input_ids_b is None:
                raise ValueError("this model was built with pair=True; pass input_ids_b as well")
            u, v = self._encode_pair(input_ids, mask, input_ids_b, self._mask(input_ids_b, attention_mask_b))
            features = torch.cat([u, v, (u - v).abs(), u * v], dim=-1)
        else:
            if input_ids_b is not None:
                raise ValueError("this model was built with pair=False but got input_ids_b")
            features = self.encoder(input_ids, mask)
        return SequenceClassifierOutput(logits=self.head(features))


NOT_A_PAIR = ("pair_attention=true is not valid for this task: it aligns the two texts of a sentence pair, and the "
              "task has one text field; set model.pair_attention=false")


def _pair_attention(encoder: nn.Module, pair: bool, wanted: bool, dropout: float) -> PairAttention | None:
    if not wanted:
        return None
    if not pair:
        raise ModelArgumentError(NOT_A_PAIR)
    if not hasattr(encoder, "contextual"):
        raise ModelArgumentError("pair_attention=true is not valid for this model: its encoder has no per-token "
                                 "outputs to align (lstm, gru, cnn and transformer have); set "
                                 "model.pair_attention=false")
    return PairAttention(encoder.output_dim, dropout)


# ---------------------------------------------------------------------------------------------
# helpers used by every scratch builder
# ---------------------------------------------------------------------------------------------
def make_embedding(args: dict) -> TokenEmbedding:
    """The token embedding described by a builder's arguments."""
    return TokenEmbedding(args["vocab_size"], args["embedding_dim"], args["pad_token_id"],
                          dropout=args["embedding_dropout"], vectors_path=args["pretrained_vectors"],
                          vocab=args["vocab"], freeze=args["freeze_embeddings"])


def finish(name: str, args: dict, encoder: nn.Module, chars: nn.Module | None = None) -> nn.Module:
    """Wrap ``encoder`` in the classifier head (a `TokenTagger` with ``chars`` when ``args["per_token"]``) and record
    ``builder_args`` (name included, vocab not), from which nlptune.models.io rebuilds the model."""
    check_prob("dropout", args["dropout"])
    if args.get("per_token", False):
        if args.get("pair_attention", False):  # a word-level task has one text per row
            raise ModelArgumentError(NOT_A_PAIR)
        model = TokenTagger(encoder, num_labels=args["num_labels"], pad_token_id=args["pad_token_id"],
                            chars=chars, crf=args["crf"], dropout=args["dropout"])
    else:
        model = SequenceClassifier(encoder, num_labels=args["num_labels"], pair=args["pair"],
                                   pad_token_id=args["pad_token_id"], hidden_size=args["hidden_size"],
                                   activation=args["activation"], dropout=args["dropout"],
                                   pair_attention=args.get("pair_attention", False))
    model.builder_args = {"name": name, **{k: plain_data(v) for k, v in args.items() if k != "vocab"}}
    return model
