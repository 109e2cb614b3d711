"""The transfer set (nlptune/data/transfer.py): seeded and pure, laid out row by row, each operation at its
probability, pairs noised field by field, never an empty copy of a text."""
from __future__ import annotations

import pytest

from nlptune.config.compose import section_config
from nlptune.data.transfer import MAX_NGRAM, settings, transfer_texts

MASK, UNK = "[MASK]", "[UNK]"
# 400 texts of 10 distinct words each: a replaced word can be told from the word it replaced
WORDS = [f"w{i}" for i in range(4000)]
TEXTS = [[" ".join(WORDS[i * 10:(i + 1) * 10]) for i in range(400)]]


def distill(**values):
    return section_config("distill", "none", teacher="/runs/t", **values)


def augment(**probs):
    return section_config("augment", "none", **probs)


def copies(texts=TEXTS, seed=42, noise=None, mask=MASK, **values):
    return transfer_texts(texts, distill(**values), noise or augment(), seed, mask=mask, unknown=UNK)


def test_layout_row_by_row_and_pure():
    out = copies(TEXTS, augment_copies=3)
    assert len(out) == 1 and len(out[0]) == 3 * len(TEXTS[0])
    assert out == copies(TEXTS, augment_copies=3)  # the same texts, settings and seed: the same copies
    for row in (0, 7, 399):  # row i's copies come from row i's words, masks and (rarely) replacements
        original = set(TEXTS[0][row].split())
        for text in out[0][row * 3:row * 3 + 3]:
            kept = [w for w in text.split() if w != MASK]
            assert sum(w in original for w in kept) >= len(kept) - 4


def test_seeded_and_independent_of_the_other_rows():
    first = copies(TEXTS, augment_copies=2, replace_prob=0.0)
    assert copies(TEXTS, seed=43, augment_copies=2, replace_prob=0.0) != first
    # without replacement a row's copies are its own draws: the first 10 rows alone give the same ones
    assert copies([TEXTS[0][:10]], augment_copies=2, replace_prob=0.0)[0] == first[0][:20]


def test_mask_and_replacement_rates_in_one_pass():
    out = copies(TEXTS, augment_copies=5, mask_prob=0.2, replace_prob=0.1, ngram_prob=0.0)
    masked = replaced = total = 0
    for i, text in enumerate(out[0]):
        original = TEXTS[0][i // 5].split()
        words = text.split()
        assert len(words) == len(original)  # neither masking nor replacement changes the length
        masked += sum(w == MASK for w in words)
        replaced += sum(w != MASK and w != o for w, o in zip(words, original))
        total += len(words)
    assert masked / total == pytest.approx(0.2, abs=0.02)
    assert replaced / total == pytest.approx(0.1, abs=0.015)  # a replacement drawing the same word is rare here


def test_ngram_sampling_rate_and_lengths():
    out = copies(TEXTS, augment_copies=5, mask_prob=0.0, replace_prob=0.0, ngram_prob=0.25)
    cut = [text.split() for text in out[0] if len(text.split()) < 10]
    assert len(cut) / len(out[0]) == pytest.approx(0.25, abs=0.03)
    assert {len(words) for words in cut} == set(range(1, MAX_NGRAM + 1))
    for i, text in enumerate(out[0]):  # an n-gram is consecutive words of its text
        assert text in TEXTS[0][i // 5]


def test_pairs_are_noised_field_by_field_and_nothing_becomes_empty():
    pairs = [["a b c d", "", "one"], ["x y", "p q r", "z"]]
    out = copies(pairs, augment_copies=50, mask_prob=0.5, replace_prob=0.2, ngram_prob=0.5)
    assert [len(column) for column in out] == [150, 150]
    assert all(text == "" for text in out[0][50:100])  # an empty text stays empty
    assert all(text for text in out[0][:50] + out[0][100:] + out[1])
    assert out[0][:50] != out[1][:50]


def test_rendering_for_another_tokenizer_changes_only_the_mask():
    ours = copies(TEXTS, augment_copies=2, mask_prob=0.3)
    theirs = copies(TEXTS, augment_copies=2, mask_prob=0.3, mask="<mask>")
    assert [t.replace("<mask>", MASK) for t in theirs[0]] == ours[0]


def test_augmentation_noises_the_copies_too():
    noisy = copies(TEXTS, augment_copies=2, mask_prob=0.0, replace_prob=0.0, ngram_prob=0.0,
                   noise=augment(delete_prob=0.3, unk_prob=0.2))
    words = [w for text in noisy[0] for w in text.split()]
    assert len(words) / (len(TEXTS[0]) * 2 * 10) == pytest.approx(0.7, abs=0.03)  # deletion
    assert words.count(UNK) / len(words) == pytest.approx(0.2, abs=0.02)  # word dropout
    assert settings(distill(augment_copies=2), augment(delete_prob=0.3), 1)["augment"] == \
        {"delete": 0.3, "swap": 0.0, "unk": 0.0}
    assert settings(distill(augment_copies=2), augment(), 1)["augment"] is None


def test_no_copies_no_rows():
    assert copies(TEXTS, augment_copies=0) == [[]]
