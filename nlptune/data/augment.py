"""Token-level augmentation of training batches: random deletion, random swap and word dropout to [UNK].

Applied by wrapping the training loader's collate function, so validation data (a different loader)
is never touched and the dataset itself stays as tokenized (and cached). It works on token ids, which makes
it the same for every tokenizer: with the word-level scratch tokenizer a token is a word, with WordPiece
(and pretrained tokenizers) it is a sub-word piece. Special tokens ([CLS], [SEP], [PAD], ...) are never
deleted, moved or replaced, tokens only move inside their own sentence, and a sentence always keeps at least
one token. Lowercasing and unicode normalisation are tokenizer settings, not augmentation
(`model.lowercase`, `model.normalization`).

Randomness is seeded: batch ``k`` of a process uses a generator seeded by (seed, rank, dataloader worker, k),
so a run repeats exactly and distributed ranks draw different noise.
"""
from __future__ import annotations

import os
import random
from typing import Callable

from nlptune.config.errors import NlptuneError
from nlptune.config.schema import AugmentConfig

# id fields that hold text; token_type_ids (when present) follows input_ids position by position
TEXT_FIELDS = ("input_ids", "input_ids_b")


def is_active(cfg: AugmentConfig) -> bool:
    """True when any augmentation probability is above zero."""
    return cfg.delete_prob > 0 or cfg.swap_prob > 0 or cfg.unk_prob > 0


def _segments(ids: list[int], special: frozenset[int]) -> list[tuple[bool, list[int]]]:
    """Split positions into runs: (True, [special position]) or (False, [positions of one sentence])."""
    runs: list[tuple[bool, list[int]]] = []
    for position, token in enumerate(ids):
        if token in special:
            runs.append((True, [position]))
        elif runs and not runs[-1][0]:
            runs[-1][1].append(position)
        else:
            runs.append((False, [position]))
    return runs


def _noise_sentence(positions: list[int], cfg: AugmentConfig, rng: random.Random) -> list[int]:
    """Deletion then swaps on one sentence's positions; never returns an empty sentence."""
    kept = [p for p in positions if rng.random() >= cfg.delete_prob] if cfg.delete_prob > 0 else list(positions)
    if not kept:
        kept = [rng.choice(positions)]
    if cfg.swap_prob > 0 and len(kept) > 1:
        for i in range(len(kept)):
            if rng.random() < cfg.swap_prob:
                j = rng.randrange(len(kept))
                kept[i], kept[j] = kept[j], kept[i]
    return kept


def augment_ids(ids: list[int], cfg: AugmentConfig, rng: random.Random, special: frozenset[int],
                unk_id: int | None, token_types: list[int] | None = None) -> tuple[list[int], list[int] | None]:
    """Noised copies of one example's ``ids`` (and its ``token_types``, kept aligned); the inputs are not changed."""
    order: list[int] = []
    for is_special, positions in _segments(ids, special):
        order += positions if is_special else _noise_sentence(positions, cfg, rng)
    new_ids = [ids[p] for p in order]
    if cfg.unk_prob > 0:
        new_ids = [unk_id if token not in special and rng.random() < cfg.unk_prob else token for token in new_ids]
    new_types = None if token_types is None else [token_types[p] for p in order]
    return new_ids, new_types


class AugmentingCollator:
    """Wraps a collate function: augment each training example's token ids, then collate (pad) them."""

    def __init__(self, collate: Callable, cfg: AugmentConfig, *, seed: int, special_ids, unk_id: int | None):
        if cfg.unk_prob > 0 and unk_id is None:
            raise NlptuneError("augment.unk_prob > 0 needs an unknown token, and this tokenizer has none; "
                               "set augment.unk_prob=0")
        self.collate, self.cfg, self.seed = collate, cfg, seed
        self.special, self.unk_id = frozenset(special_ids), unk_id
        self.rank = int(os.environ.get("RANK", "0"))
        self.batches = 0  # per dataloader worker: each worker holds its own copy

    def _rng(self) -> random.Random:
        import torch

        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id + 1
        key = ((self.seed * 1_000_003 + self.rank) * 1_000_003 + worker) * 1_000_003 + self.batches
        self.batches += 1
        return random.Random(key)

    def __call__(self, items: list[dict]):
        rng = self._rng()
        noised = []
        for item in items:
            item = dict(item)  # the dataset's lists are shared: never modify them in place
            for field in TEXT_FIELDS:
                if field not in item:
                    continue
                types = item.get("token_type_ids") if field == "input_ids" else None
                item[field], new_types = augment_ids(item[field], self.cfg, rng, self.special, self.unk_id, types)
                if new_types is not None:
                    item["token_type_ids"] = new_types
            noised.append(item)
        return self.collate(noised)


def training_collate(collate: Callable, cfg: AugmentConfig, seed: int, tokenizer) -> Callable:
    """The collate function of the training loader: ``collate`` itself when augmentation is off."""
    if not is_active(cfg):
        return collate
    return AugmentingCollator(collate, cfg, seed=seed, special_ids=tokenizer.all_special_ids,
                              unk_id=tokenizer.unk_token_id)
