"""The learned part of a linear-chain CRF output layer: the tag-to-tag transition scores.

The loss and Viterbi decoding are pure functions in nlptune/kinds/crf.py (the problem kind calls them); the
model only returns its emissions (logits) and these transitions.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from nlptune.models.layers import check_int

# what a disallowed transition scores: low enough that no path takes it, finite so sums stay finite
DISALLOWED = -1e4


class CRFTransitions(nn.Module):
    """Transition scores ``[L + 2, L + 2]`` (row = from, column = to; START = L, END = L + 1), learned from 0.

    ``allowed`` (a persistent buffer, so it is saved with the weights) marks the transitions the tag scheme
    permits; ``forward()`` returns the scores with the others set to ``DISALLOWED``.
    """

    def __init__(self, num_labels: int):
        super().__init__()
        check_int("num_labels", num_labels)
        self.num_labels = num_labels
        size = num_labels + 2
        self.transitions = nn.Parameter(torch.zeros(size, size))
        self.register_buffer("allowed", torch.ones(size, size, dtype=torch.bool))

    def constrain(self, allowed: Sequence[Sequence[bool]] | torch.Tensor) -> None:
        """Permit only the transitions ``allowed[i][j]`` (e.g. ``nlptune.kinds.crf.allowed_transitions``)."""
        allowed = torch.as_tensor(allowed, dtype=torch.bool)
        if allowed.shape != self.allowed.shape:
            raise ValueError(f"allowed has shape {tuple(allowed.shape)}; this CRF needs "
                             f"{tuple(self.allowed.shape)} (num_labels + 2 for START and END)")
        self.allowed.copy_(allowed)

    def forward(self) -> torch.Tensor:
        return self.transitions.masked_fill(~self.allowed, DISALLOWED)
