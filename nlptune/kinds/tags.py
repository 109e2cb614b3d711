"""Tag schemes of the ``tokens`` kind: how per-word tags mark entities (pure Python).

A tag is ``O`` or ``<prefix>-<type>`` ("B-PER"): iob2 and iob1 use the prefixes B and I, bioes B, I, E and S;
``plain`` tags (part of speech, chunks without a scheme) are opaque names.

Entities are read the way conlleval (and seqeval's default, non-strict mode) reads them, so an invalid sequence
still means something definite: an entity starts at B or S, at an I or E that does not continue an entity of
its type, or where the type changes; it ends after E or S, before B, S or O, and where the type changes.
`repair` rewrites a sequence into the scheme's canonical form of exactly those entities, so repairing never
changes what is counted:

- iob2: every entity starts with B-X, continues with I-X (an I-X that does not follow B-X/I-X becomes B-X).
- iob1: entities are I-X, with B-X only for an entity that directly follows one of the same type
  (a B-X elsewhere becomes I-X, an I-X right after an X entity that conlleval ends there becomes B-X).
- bioes: one word S-X; longer B-X, I-X..., E-X (a lone B-X or I-X or E-X becomes S-X, an entity's
  first word B-X, its last E-X).
- plain: nothing to repair. Its "entities" are the words themselves: every word whose tag is not ``O`` is a
  one-word span of its tag, so entity counts are per-word counts.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

PREFIXES = {"iob2": ("B", "I"), "iob1": ("B", "I"), "bioes": ("B", "I", "E", "S")}
PREFIX_ORDER = ("B", "I", "E", "S")
OUTSIDE = "O"
_TAG = re.compile(r"([BIES])-(.+)", re.DOTALL)

Span = tuple[str, int, int]  # (type, start, end exclusive)


def parse_tag(tag: str) -> tuple[str, str]:
    """(prefix, type) of a scheme tag: "B-PER" -> ("B", "PER"), "O" -> ("O", ""); the type is everything after
    the first hyphen ("B-ORG-X" -> ("B", "ORG-X")). A tag of no scheme raises ValueError."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    match = _TAG.fullmatch(tag)
    if match is None:
        raise ValueError(f"tag {tag!r} is neither 'O' nor PREFIX-TYPE (B-PER)")
    return match.group(1), match.group(2)


def tag_problem(tag: str, scheme: str) -> str | None:
    """Why ``tag`` is not a tag of ``scheme`` (e.g. "E-PER" in iob2), or None when it is (plain: any string)."""
    if scheme == "plain":
        return None
    try:
        prefix, _ = parse_tag(tag)
    except ValueError as err:
        return f"{err} as the {scheme} scheme needs"
    if prefix != OUTSIDE and prefix not in PREFIXES[scheme]:
        return f"tag {tag!r}: {scheme} tags use the prefixes {', '.join(PREFIXES[scheme])} (and O), not {prefix}"
    return None


def invalid_tags(tags: Iterable[str], scheme: str) -> list[str]:
    """The distinct tags of ``tags`` that ``scheme`` does not allow, in first-seen order."""
    return [tag for tag in dict.fromkeys(tags) if tag_problem(tag, scheme) is not None]


def _chunk_ends(prev: str, prev_type: str, prefix: str, type_: str) -> bool:
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and prefix in ("B", "S", OUTSIDE):
        return True
    return prev != OUTSIDE and prev_type != type_


def _chunk_starts(prev: str, prev_type: str, prefix: str, type_: str) -> bool:
    if prefix in ("B", "S"):
        return True
    if prefix in ("I", "E") and prev in ("E", "S", OUTSIDE):
        return True
    return prefix != OUTSIDE and prev_type != type_


def entity_spans(tags: Sequence[str], scheme: str) -> list[Span]:
    """The entities of ``tags`` as (type, start, end exclusive), read as conlleval reads them (equal to
    seqeval.metrics.sequence_labeling.get_entities with end + 1); plain: each non-O word is its own span."""
    if scheme == "plain":
        return [(tag, i, i + 1) for i, tag in enumerate(tags) if tag != OUTSIDE]
    spans, start = [], 0
    prev, prev_type = OUTSIDE, ""
    for i, tag in enumerate([*tags, OUTSIDE]):
        prefix, type_ = parse_tag(tag)
        if _chunk_ends(prev, prev_type, prefix, type_):
            spans.append((prev_type, start, i))
        if _chunk_starts(prev, prev_type, prefix, type_):
            start = i
        prev, prev_type = prefix, type_
    return spans


def spans_to_tags(spans: Iterable[Span], length: int, scheme: str) -> list[str]:
    """The canonical ``scheme`` tags of ``length`` words holding the entities ``spans`` (non-overlapping)."""
    tags = [OUTSIDE] * length
    previous_end, previous_type = -1, None
    for type_, start, end in sorted(spans, key=lambda span: span[1]):
        if scheme == "plain":
            tags[start:end] = [type_] * (end - start)
        elif scheme == "iob2":
            tags[start:end] = [f"B-{type_}"] + [f"I-{type_}"] * (end - start - 1)
        elif scheme == "iob1":
            first = "B" if previous_end == start and previous_type == type_ else "I"
            tags[start:end] = [f"{first}-{type_}"] + [f"I-{type_}"] * (end - start - 1)
        else:  # bioes
            tags[start:end] = ([f"S-{type_}"] if end - start == 1 else
                               [f"B-{type_}"] + [f"I-{type_}"] * (end - start - 2) + [f"E-{type_}"])
        previous_end, previous_type = end, type_
    return tags


def repair(tags: Sequence[str], scheme: str) -> tuple[list[str], list[int]]:
    """``tags`` rewritten into the canonical form of the entities conlleval reads in them (see the module doc),
    and the positions whose tag changed. Every tag must be valid for ``scheme`` (`tag_problem`)."""
    if scheme == "plain":
        return list(tags), []
    fixed = spans_to_tags(entity_spans(tags, scheme), len(tags), scheme)
    return fixed, [i for i, (old, new) in enumerate(zip(tags, fixed)) if old != new]


def _order_key(tag: str) -> tuple:
    if tag == OUTSIDE:
        return (0,)
    match = _TAG.fullmatch(tag)
    if match is None:  # a plain tag sorts as a type of its own
        return (1, tag, -1)
    return (1, match.group(2), PREFIX_ORDER.index(match.group(1)))


def ordered_names(tags: Iterable[str]) -> list[str]:
    """The distinct ``tags``: O first, then by entity type, within a type by prefix (B, I, E, S); a tag without
    a prefix (plain) sorts by its whole name among the types."""
    return sorted(set(tags), key=_order_key)
