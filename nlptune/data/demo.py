"""The built-in demo task: short synthetic reviews generated deterministically by nlptune itself.

Each review has one or three clauses; every clause praises or pans some aspect of a film, and the
label is the majority sentiment. No external text is involved, so the demo runs fully offline.
"""
from __future__ import annotations

import random

_POSITIVE = ["good", "great", "excellent", "wonderful", "delightful", "charming", "superb", "brilliant",
             "moving", "clever", "gripping", "lovely"]
_NEGATIVE = ["bad", "awful", "terrible", "boring", "dull", "poor", "dreadful", "weak", "clumsy",
             "tedious", "bland", "messy"]
_ASPECTS = ["film", "story", "plot", "cast", "music", "ending", "script", "acting", "pacing", "dialogue",
            "camera work", "soundtrack"]
_INTENSIFIERS = ["", "", "really", "very", "quite", "rather", "truly", "somewhat"]
_TEMPLATES = ["the {aspect} was {adverb} {adjective}", "i found the {aspect} {adverb} {adjective}",
              "{adverb} {adjective} {aspect}", "what a {adverb} {adjective} {aspect}",
              "the {aspect} felt {adverb} {adjective}"]
_JOINERS = [" and ", " , ", " but ", " ; ", " while "]
SIZES = {"train": 2000, "validation": 500}
_SEEDS = {"train": 7001, "validation": 7002}


def _clause(rng: random.Random, positive: bool) -> str:
    text = rng.choice(_TEMPLATES).format(
        aspect=rng.choice(_ASPECTS), adverb=rng.choice(_INTENSIFIERS),
        adjective=rng.choice(_POSITIVE if positive else _NEGATIVE))
    return " ".join(text.split())


def generate(split: str) -> dict[str, list]:
    """Columns ``text`` and ``label`` (1 = positive) for ``split`` ("train" or "validation")."""
    rng = random.Random(_SEEDS[split])
    texts, labels = [], []
    for _ in range(SIZES[split]):
        n_clauses = rng.choice([1, 3])
        votes = [rng.random() < 0.5 for _ in range(n_clauses)]
        texts.append(rng.choice(_JOINERS).join(_clause(rng, v) for v in votes))
        labels.append(int(sum(votes) * 2 > n_clauses))
    return {"text": texts, "label": labels}
