"""Training-data augmentation: what it changes (training batches), what it never touches (validation, special
tokens, the dataset itself), and that it is seeded."""
from __future__ import annotations

import random

import pytest
import torch

from nlptune.config.compose import section_config
from nlptune.config.schema import AugmentConfig
from nlptune.data.augment import AugmentingCollator, augment_ids, is_active, training_collate
from nlptune.data.batching import Collator

CLS, SEP, PAD, UNK = 2, 3, 0, 1
SPECIAL = frozenset({PAD, UNK, CLS, SEP, 4})
PAIR = [CLS, 10, 11, 12, 13, 14, SEP, 20, 21, 22, SEP]  # [CLS] a [SEP] b [SEP], as pretrained tokenizers encode
TYPES = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]


def noise(**probs) -> AugmentConfig:
    """conf/augment/none.yaml with ``probs`` set."""
    return section_config("augment", "none", **probs)


HEAVY = AugmentConfig(name="test", delete_prob=0.3, swap_prob=0.3, unk_prob=0.3)


def _sentences(ids: list[int]) -> list[list[int]]:
    out, current = [], []
    for token in ids:
        if token in SPECIAL - {UNK}:
            out.append(current)
            current = []
        else:
            current.append(token)
    return out + [current]


@pytest.mark.parametrize("seed", range(20))
def test_specials_stay_in_place_and_tokens_stay_in_their_sentence(seed):
    ids, types = augment_ids(PAIR, HEAVY, random.Random(seed), SPECIAL, UNK, TYPES)
    assert [t for t in ids if t in (CLS, SEP)] == [CLS, SEP, SEP]
    assert ids[0] == CLS and ids[-1] == SEP
    first, second = _sentences(ids)[1:3]
    assert first and second, "a sentence is never deleted entirely"
    assert set(first) <= {10, 11, 12, 13, 14, UNK} and set(second) <= {20, 21, 22, UNK}
    # token types follow their tokens: 0 up to the first [SEP], 1 after it
    assert len(types) == len(ids)
    assert types == [0] * (ids.index(SEP) + 1) + [1] * (len(ids) - ids.index(SEP) - 1)


def test_zero_probabilities_change_nothing_and_inputs_are_never_modified():
    original = list(PAIR)
    ids, types = augment_ids(PAIR, noise(), random.Random(0), SPECIAL, UNK, TYPES)
    assert ids == PAIR and types == TYPES
    augment_ids(PAIR, HEAVY, random.Random(0), SPECIAL, UNK, TYPES)
    assert PAIR == original
    assert not is_active(noise()) and is_active(noise(unk_prob=0.1))


def test_each_operation_does_what_it_says():
    sentence = [CLS] + list(range(10, 60)) + [SEP]
    deleted, _ = augment_ids(sentence, noise(delete_prob=0.5), random.Random(1), SPECIAL, UNK)
    assert len(deleted) < len(sentence) and deleted == sorted(deleted, key=sentence.index)  # order kept
    swapped, _ = augment_ids(sentence, noise(swap_prob=0.5), random.Random(1), SPECIAL, UNK)
    assert sorted(swapped) == sorted(sentence) and swapped != sentence  # same tokens, new order
    unked, _ = augment_ids(sentence, noise(unk_prob=0.5), random.Random(1), SPECIAL, UNK)
    assert len(unked) == len(sentence) and 10 < unked.count(UNK) < 40
    assert all(u in (s, UNK) for u, s in zip(unked, sentence))


def _items(n=8):
    g = random.Random(5)
    return [{"input_ids": [CLS] + [g.randrange(10, 99) for _ in range(g.randrange(3, 15))] + [SEP], "labels": i % 2}
            for i in range(n)]


def test_collator_is_seeded_and_draws_new_noise_for_each_batch():
    items = _items()
    make = lambda seed: AugmentingCollator(Collator(PAD), HEAVY, seed=seed, special_ids=SPECIAL, unk_id=UNK)
    a, b, c = make(1), make(1), make(2)
    first_a, first_b, first_c = a(items), b(items), c(items)
    assert torch.equal(first_a["input_ids"], first_b["input_ids"])  # same seed, same batch: same noise
    assert not torch.equal(first_a["input_ids"], first_c["input_ids"])  # another seed: other noise
    assert not torch.equal(a(items)["input_ids"], first_a["input_ids"])  # the next batch draws again
    assert torch.equal(first_a["labels"], torch.tensor([i % 2 for i in range(8)]))  # labels untouched
    assert items == _items()  # the dataset's rows are never modified


def test_unk_dropout_needs_an_unknown_token():
    from nlptune.config.errors import NlptuneError

    class NoUnk:
        all_special_ids, unk_token_id = [0], None

    with pytest.raises(NlptuneError, match="augment.unk_prob"):
        training_collate(Collator(PAD), noise(unk_prob=0.1), 0, NoUnk())
    collate = Collator(PAD)
    assert training_collate(collate, noise(), 0, NoUnk()) is collate  # off: the plain collate


def test_augmentation_changes_training_batches_only(tmp_path, monkeypatch):
    import dataclasses

    from nlptune.config.compose import load_run_config
    from nlptune.data import prepare_data
    from nlptune.train.setup import make_loaders

    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path))
    config = load_run_config(["task=demo", "model=bag", "task.max_train_samples=96", "task.max_eval_samples=64",
                              "trainer.batch_size=16", "trainer.eval_batch_size=16"])
    data = prepare_data(config, pretrained=False)

    def batches(augment: AugmentConfig):
        train, evaluation, _ = make_loaders(data, dataclasses.replace(config, augment=augment), data.tokenizer.pad_token_id)
        return [b["input_ids"] for b in train], [b["input_ids"] for b in evaluation]

    plain_train, plain_eval = batches(noise())
    noisy_train, noisy_eval = batches(HEAVY)
    again_train, _ = batches(HEAVY)
    assert len(plain_eval) == len(noisy_eval) and all(torch.equal(a, b) for a, b in zip(plain_eval, noisy_eval))
    assert len(plain_train) == len(noisy_train)
    assert not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(plain_train, noisy_train))
    assert all(torch.equal(a, b) for a, b in zip(noisy_train, again_train))  # seeded: the same run repeats
