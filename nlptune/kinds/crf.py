"""Linear-chain CRF as pure functions of (emissions, tags, mask, transitions): the tag scheme's allowed
transitions, the negative log-likelihood and Viterbi decoding.

``transitions`` is ``[L + 2, L + 2]`` (row = from, column = to); index ``L`` is START and ``L + 1`` is END, so
``transitions[L, j]`` scores starting with tag ``j`` and ``transitions[i, L + 1]`` scores ending with tag ``i``.
Disallowed transitions already hold a large negative value (the model's CRFTransitions sets them).
Masks are boolean ``[B, T]`` and LEFT-ALIGNED: row ``b`` is True on its first ``n_b`` positions only.

torch is imported inside the functions: ``nlptune.kinds`` stays importable without torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from nlptune.kinds.base import LabelProblem

if TYPE_CHECKING:
    import torch

# the score of a transition the tag scheme bans, as a CRF tagger's layer writes it (models/crf.py DISALLOWED): low
# enough that no path takes it, finite so sums stay finite
BANNED = -1e4
# per scheme: the tag prefixes it knows (besides "O")
_PREFIXES = {"iob2": ("B", "I"), "iob1": ("B", "I"), "bioes": ("B", "I", "E", "S")}


def _split(label: str, scheme: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``, ``"O"`` -> ``("O", "")``; a label the scheme cannot read raises."""
    if label == "O":
        return "O", ""
    prefix, sep, entity = label.partition("-")
    if not sep:  # "B_PER" is also common
        prefix, sep, entity = label.partition("_")
    if prefix in _PREFIXES[scheme]:
        return prefix, entity
    raise LabelProblem(f"the tag {label!r} does not follow the {scheme} tag scheme "
                       f"(expected O or {'/'.join(_PREFIXES[scheme])}-<TYPE>)",
                       "set task.tag_scheme to the scheme of the data, or plain for tags without prefixes")


def _allowed(scheme: str, from_tag: str, from_entity: str, to_tag: str, to_entity: str) -> bool:
    """AllenNLP's ``is_transition_allowed`` (allennlp.modules.conditional_random_field), BIOUL spelled BIOES."""
    if to_tag == "START" or from_tag == "END":
        return False
    same = from_entity == to_entity
    if scheme == "bioes":
        if from_tag == "START":
            return to_tag in ("O", "B", "S")
        if to_tag == "END":
            return from_tag in ("O", "E", "S")
        return ((from_tag in ("O", "E", "S") and to_tag in ("O", "B", "S"))
                or (from_tag in ("B", "I") and to_tag in ("I", "E") and same))
    if scheme == "iob2":
        if from_tag == "START":
            return to_tag in ("O", "B")
        if to_tag == "END":
            return from_tag in ("O", "B", "I")
        return to_tag in ("O", "B") or (to_tag == "I" and from_tag in ("B", "I") and same)
    # iob1: I starts an entity; B only separates two adjacent entities of the same type
    if from_tag == "START":
        return to_tag in ("O", "I")
    if to_tag == "END":
        return from_tag in ("O", "B", "I")
    return to_tag in ("O", "I") or (to_tag == "B" and from_tag in ("B", "I") and same)


def allowed_transitions(label_names: Sequence[str], scheme: str) -> list[list[bool]]:
    """``[L + 2][L + 2]`` booleans: may tag ``i`` (row) be followed by tag ``j`` (column)? START = L, END = L + 1.

    ``scheme`` is iob2, iob1, bioes or plain (plain: everything is allowed). Follows AllenNLP's
    ``allowed_transitions``: nothing goes to START and nothing leaves END.
    """
    size = len(label_names) + 2
    if scheme == "plain":
        return [[True] * size for _ in range(size)]
    if scheme not in _PREFIXES:
        raise ValueError(f"unknown tag scheme {scheme!r}; choose one of: iob2, iob1, bioes, plain")
    parts = [_split(name, scheme) for name in label_names] + [("START", ""), ("END", "")]
    return [[_allowed(scheme, *src, *dst) for dst in parts] for src in parts]


def _split_transitions(transitions: "torch.Tensor", num_labels: int):
    trans = transitions.float()
    return trans[:num_labels, :num_labels], trans[num_labels, :num_labels], trans[:num_labels, num_labels + 1]


def _log_partition(emissions, mask, trans, start, end):
    """log Z per row ``[B]`` by the forward algorithm (a row keeps its scores past its last position)."""
    import torch

    alpha = start + emissions[:, 0]  # [B, L]
    for t in range(1, emissions.size(1)):
        step = torch.logsumexp(alpha.unsqueeze(2) + trans + emissions[:, t].unsqueeze(1), dim=1)
        alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
    return torch.logsumexp(alpha + end, dim=1)


def _path_score(emissions, tags, mask, lengths, trans, start, end):
    """The score ``[B]`` of the given tag paths (only the positions under the mask count)."""
    tags = tags.masked_fill(~mask, 0)  # -100 (or anything) at masked positions becomes a harmless index
    real = mask.to(emissions.dtype)
    score = start[tags[:, 0]] + (emissions.gather(2, tags.unsqueeze(2)).squeeze(2) * real).sum(1)
    if tags.size(1) > 1:
        score = score + (trans[tags[:, :-1], tags[:, 1:]] * real[:, 1:]).sum(1)
    last = tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    return score + end[last]


def crf_nll(emissions: "torch.Tensor", tags: "torch.Tensor", mask: "torch.Tensor",
            transitions: "torch.Tensor") -> "torch.Tensor":
    """Mean over the batch of ``-log p(tags | emissions)`` under the linear-chain CRF.

    emissions ``[B, T, L]`` (any float dtype; computed in float32), tags ``[B, T]`` long (ignored where ``mask`` is
    False, so -100 is fine there), mask ``[B, T]`` bool left-aligned, transitions ``[L + 2, L + 2]``.
    Rows with no position under the mask contribute 0 (they still count in the mean's denominator).
    """
    import torch

    if emissions.size(1) == 0:
        return emissions.float().sum() * 0.0
    mask = mask.bool()
    # zeroed (not just skipped) outside the mask: a NaN there (a fully padded row of an attention encoder) would
    # otherwise reach the sums and the gradients
    emissions = emissions.float().masked_fill(~mask.unsqueeze(2), 0.0)
    trans, start, end = _split_transitions(transitions, emissions.size(2))
    lengths = mask.sum(1)
    nll = _log_partition(emissions, mask, trans, start, end) - _path_score(
        emissions, tags.long(), mask, lengths, trans, start, end)
    return torch.where(lengths > 0, nll, torch.zeros_like(nll)).mean()


def viterbi(emissions: "torch.Tensor", mask: "torch.Tensor", transitions: "torch.Tensor") -> "torch.Tensor":
    """The best tag path ``[B, T]`` long under the CRF; 0 at positions outside the (left-aligned) mask."""
    import torch

    batch, length, num_labels = emissions.shape
    paths = torch.zeros(batch, length, dtype=torch.long, device=emissions.device)
    if length == 0:
        return paths
    mask = mask.bool()
    emissions = emissions.float().masked_fill(~mask.unsqueeze(2), 0.0)
    trans, start, end = _split_transitions(transitions, num_labels)
    score, history = start + emissions[:, 0], []
    for t in range(1, length):
        best, previous = (score.unsqueeze(2) + trans).max(dim=1)  # over the previous tag: [B, L]
        history.append(previous)
        score = torch.where(mask[:, t].unsqueeze(1), best + emissions[:, t], score)
    lengths = mask.sum(1)
    # Walk back from the end: a row's current tag is the one at position t once t < n_b; before that
    # (t >= n_b) it stays the best final tag, which is the tag at position n_b - 1.
    current = (score + end).argmax(dim=1)
    for t in range(length - 1, -1, -1):
        inside = t < lengths
        paths[:, t] = torch.where(inside, current, torch.zeros_like(current))
        if t > 0:
            back = history[t - 1].gather(1, current.unsqueeze(1)).squeeze(1)
            current = torch.where(inside, back, current)
    return paths


def viterbi_at(emissions: "torch.Tensor", positions: "torch.Tensor", transitions: "torch.Tensor") -> "torch.Tensor":
    """Tags ``[B, T]`` long: the best path under ``transitions`` through each row's marked ``positions`` (bool
    ``[B, T]``, anywhere in the row, e.g. the first sub-token of every word) taken as consecutive steps; the
    best-scoring tag at every other position."""
    import torch

    # each row's marked positions first, in their order (a stable sort of 0 = marked before 1 = not)
    order = torch.sort((~positions.bool()).to(torch.uint8), dim=1, stable=True).indices
    lengths = positions.bool().sum(1, keepdim=True)
    inside = torch.arange(positions.shape[1], device=positions.device).unsqueeze(0) < lengths
    compact = emissions.gather(1, order.unsqueeze(2).expand(-1, -1, emissions.shape[2]))
    path = viterbi(compact, inside, transitions.to(emissions.device))
    tags = emissions.argmax(dim=-1)
    return tags.scatter(1, order, torch.where(inside, path, tags.gather(1, order)))
