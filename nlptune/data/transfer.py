"""The transfer set of distillation: noised copies of the training texts that only the teacher labels (Tang et al.
2019, "Distilling task-specific knowledge from BERT into simple neural networks", section 3.3).

Each copy of a text is made in one pass over its words (split at whitespace): a word is masked with ``mask_prob``
(it becomes the tokenizer's mask token), else replaced with ``replace_prob`` by a word drawn from the training
texts' words by frequency (their unigram distribution; Tang et al. draw it among the words of the same part of
speech), else kept. Then, with ``ngram_prob``, the copy keeps only n consecutive words, n drawn from 1..5. When
augmentation is on (``augment.*``), its deletion, swap and word dropout (nlptune/data/augment.py) noise the copy's
words too. Each text of a pair is noised on its own; an empty text stays empty, and no other text ever becomes
empty.

Copy ``c`` of row ``i`` draws from its own generator, seeded by (seed, i, c): the copies are a pure function of
the texts, the settings and the seed, and a row's draws do not depend on the other rows (only the words that
replacement picks from do). Only the training split is ever passed here: validation is never noised.
"""
from __future__ import annotations

import random
from typing import Any

from nlptune.config.schema import AugmentConfig, DistillConfig
from nlptune.data.augment import augment_ids, is_active

# Part of every cache key of transfer rows (their tokens, the teacher's outputs): bump it when the copies that the
# same settings and seed give change.
VERSION = 1
MAX_NGRAM = 5  # n-gram sampling draws n from 1..MAX_NGRAM (Tang et al.)
_DROPPED = -1  # augment_ids' "unknown token" in the word positions it is given


def settings(distill: DistillConfig, augment: AugmentConfig, seed: int) -> dict[str, Any]:
    """Everything the copies depend on besides the texts (for cache keys)."""
    noise = {"delete": augment.delete_prob, "swap": augment.swap_prob, "unk": augment.unk_prob} \
        if is_active(augment) else None
    return {"version": VERSION, "copies": distill.augment_copies, "mask_prob": distill.mask_prob,
            "replace_prob": distill.replace_prob, "ngram_prob": distill.ngram_prob, "max_ngram": MAX_NGRAM,
            "augment": noise, "seed": seed}


def transfer_texts(texts: list[list[str]], distill: DistillConfig, augment: AugmentConfig, seed: int, *,
                   mask: str, unknown: str) -> list[list[str]]:
    """``distill.augment_copies`` noised copies of every row of ``texts`` (one list per text field, as
    `nlptune.data.labels.Examples` holds them), in the same layout: row i's copies are rows i*N .. i*N+N-1.
    ``mask`` and ``unknown``: the tokens a masked word and a dropped word become (a tokenizer's own, so that the
    same copies can be written for the student's tokenizer and the teacher's)."""
    vocabulary = [word for column in texts for text in column for word in text.split()]
    copies = distill.augment_copies
    out: list[list[str]] = [[] for _ in texts]
    for row in range(len(texts[0]) if texts else 0):
        for copy in range(copies):
            rng = random.Random(f"{seed}/{row}/{copy}")  # str seeds are hashed with sha512: stable everywhere
            for field, column in enumerate(texts):
                words = _noised(column[row].split(), distill, augment, rng, vocabulary, mask, unknown)
                out[field].append(" ".join(words))
    return out


def _noised(words: list[str], distill: DistillConfig, augment: AugmentConfig, rng: random.Random,
            vocabulary: list[str], mask: str, unknown: str) -> list[str]:
    """One copy of one text's ``words``: masking and replacement in one pass, then n-gram sampling, then the
    augmentation's noise when it is on."""
    if not words:
        return words
    noised = []
    for word in words:
        draw = rng.random()  # one draw per word decides between masking, replacement and keeping it
        if draw < distill.mask_prob:
            noised.append(mask)
        elif draw < distill.mask_prob + distill.replace_prob:
            noised.append(rng.choice(vocabulary))
        else:
            noised.append(word)
    if rng.random() < distill.ngram_prob:
        n = min(rng.randint(1, MAX_NGRAM), len(noised))
        start = rng.randrange(len(noised) - n + 1)
        noised = noised[start:start + n]
    if is_active(augment):  # deletion and swaps of positions, word dropout to the unknown token; never empty
        positions, _ = augment_ids(list(range(len(noised))), augment, rng, frozenset(), _DROPPED)
        noised = [unknown if p == _DROPPED else noised[p] for p in positions]
    return noised
