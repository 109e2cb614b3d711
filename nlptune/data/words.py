"""Encode tagged sentences (tokens kind) into windows of sub-tokens.

A sentence is a list of words; its tokenizer (a model's fast tokenizer, or the word-level one of scratch
taggers) turns each word into sub-tokens (``is_split_into_words`` and ``word_ids()``). A word that yields no
sub-token at all (a zero-width or control character, an empty string) is the tokenizer's unk token, so every
word keeps exactly one scored position: its first sub-token.

A sentence whose sub-tokens exceed the budget (max_length minus the special tokens) is cut into overlapping
windows: each window owns a contiguous run of words, which it scores, and carries up to a quarter of the
budget of whole words of context on each side; windows come in sentence order and every word is owned exactly
once. A word longer than the budget keeps only its first sub-tokens.

Columns per window (one list entry per window): input_ids, labels (the tag id at the first sub-token of every
word in the window, context words included; -100 elsewhere), row_id, word_offset, owned_from, owned_to, length
and, with char features, char_ids. The labels mark where each word is read: evaluation and prediction put the
owned words back into their sentences from them (`nlptune.kinds.entities.word_outputs`); prediction passes any
placeholder tag per word.
"""
from __future__ import annotations

from typing import Sequence

from nlptune.config.errors import NlptuneError

IGNORE = -100  # "no label here": non-first sub-tokens, special tokens, padding
CHAR_LENGTH = 20  # UTF-8 bytes of a word kept for character features
_BATCH = 1024  # sentences per tokenizer call
_PROBES = ("a", "the", "x", "0", ".")  # words nearly every vocabulary encodes, to find the special tokens

Window = tuple[int, int, int, int]  # sentence word indices: start, owned start, owned end, end (exclusive)


def _word_pieces(tokenizer, sentences: list[list[str]]) -> list[list[list[int]]]:
    """Per sentence, per word, its sub-token ids (empty when the tokenizer makes nothing of the word)."""
    pieces: list[list[list[int]]] = [[[] for _ in sentence] for sentence in sentences]
    nonempty = [i for i, sentence in enumerate(sentences) if sentence]
    for begin in range(0, len(nonempty), _BATCH):
        rows = nonempty[begin:begin + _BATCH]
        encoding = tokenizer([list(sentences[i]) for i in rows], is_split_into_words=True, add_special_tokens=False,
                             return_attention_mask=False, return_token_type_ids=False, verbose=False)
        for j, row in enumerate(rows):
            for token, word in zip(encoding["input_ids"][j], encoding.word_ids(j)):
                if word is not None:
                    pieces[row][word].append(token)
    return pieces


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The special token ids the tokenizer puts before and after one sequence ([CLS] and [SEP] for BERT;
    none for the word-level tokenizer of scratch taggers), found by encoding a probe word."""
    for probe in _PROBES:
        encoding = tokenizer([[probe]], is_split_into_words=True, add_special_tokens=True,
                             return_attention_mask=False, return_token_type_ids=False)
        ids, words = encoding["input_ids"][0], encoding.word_ids(0)
        positions = [i for i, word in enumerate(words) if word is not None]
        if positions:
            prefix, suffix = list(ids[:positions[0]]), list(ids[positions[-1] + 1:])
            if len(prefix) + len(suffix) != tokenizer.num_special_tokens_to_add():
                raise NlptuneError(f"the tokenizer adds {tokenizer.num_special_tokens_to_add()} special tokens but "
                                   f"{len(prefix) + len(suffix)} surround a word: its special tokens cannot be "
                                   "placed around word windows")
            return prefix, suffix
    raise NlptuneError(f"the tokenizer encodes none of the words {', '.join(_PROBES)}: its vocabulary is unusable")


def plan_windows(costs: Sequence[int], budget: int) -> list[Window]:
    """The windows of a sentence whose words take ``costs`` sub-tokens (each at most ``budget``): one window
    when they fit, else overlapping windows with up to ``budget // 4`` of whole-word context on each side."""
    n = len(costs)
    if sum(costs) <= budget:
        return [(0, 0, n, n)]
    context = budget // 4
    windows, owned = [], 0
    while owned < n:
        start, used = owned, 0
        while start > 0 and used + costs[start - 1] <= context:
            start -= 1
            used += costs[start]
        while used + costs[owned] > budget:  # the first owned word must fit beside the left context
            used -= costs[start]
            start += 1
        if used + sum(costs[owned:]) <= budget:
            end_owned = n
        else:  # own what fits while keeping room for right context
            end_owned, total = owned + 1, used + costs[owned]
            while end_owned < n and total + costs[end_owned] <= budget - context:
                total += costs[end_owned]
                end_owned += 1
        end, total = end_owned, used + sum(costs[owned:end_owned])
        while end < n and total + costs[end] <= budget:
            total += costs[end]
            end += 1
        windows.append((start, owned, end_owned, end))
        owned = end_owned
    return windows


def _char_ids(word: str) -> list[int]:
    codes = [byte + 1 for byte in word.encode("utf-8")[:CHAR_LENGTH]]
    return codes + [0] * (CHAR_LENGTH - len(codes))


def _check_tokenizer(tokenizer, max_length: int) -> int:
    """The sub-token budget of a window; refuses a slow tokenizer and a max_length with no room for words."""
    if not getattr(tokenizer, "is_fast", False):
        raise NlptuneError(f"{type(tokenizer).__name__} is a slow (Python) tokenizer: tagging needs a fast "
                           "tokenizer (word_ids() maps sub-tokens to words); use a model that ships tokenizer.json")
    budget = max_length - tokenizer.num_special_tokens_to_add()
    if budget < 1:
        raise NlptuneError(f"task.max_length={max_length} leaves no room for words: the tokenizer adds "
                           f"{tokenizer.num_special_tokens_to_add()} special tokens to each window")
    return budget


def encode_words(tokenizer, sentences: list[list[str]], tags: list[list[int]], *, max_length: int,
                 char_features: bool = False) -> dict[str, list]:
    """The windows of ``sentences`` (tag ids ``tags``, one per word) as columns (module doc)."""
    budget = _check_tokenizer(tokenizer, max_length)
    prefix, suffix = special_tokens(tokenizer)
    unk = tokenizer.unk_token_id
    names = ["input_ids", "labels", "row_id", "word_offset", "owned_from", "owned_to", "length"]
    columns: dict[str, list] = {name: [] for name in names + (["char_ids"] if char_features else [])}
    for row, (sentence, pieces) in enumerate(zip(sentences, _word_pieces(tokenizer, sentences))):
        if unk is None and any(not p for p in pieces):
            raise NlptuneError(f"sentence {row + 1}: a word yields no sub-token and the tokenizer has no unk token "
                               "to stand for it")
        pieces = [(p or [unk])[:budget] for p in pieces]
        for start, owned, end_owned, end in plan_windows([len(p) for p in pieces], budget):
            ids, labels = list(prefix), [IGNORE] * len(prefix)
            chars = [0] * (CHAR_LENGTH * len(prefix)) if char_features else None
            for word in range(start, end):
                width = len(pieces[word])
                ids += pieces[word]
                labels += [tags[row][word]] + [IGNORE] * (width - 1)
                if chars is not None:
                    chars += _char_ids(sentence[word]) * width
            ids += suffix
            labels += [IGNORE] * len(suffix)
            for name, value in (("input_ids", ids), ("labels", labels), ("row_id", row), ("word_offset", start),
                                ("owned_from", owned - start), ("owned_to", end_owned - start),
                                ("length", len(ids))):
                columns[name].append(value)
            if chars is not None:
                columns["char_ids"].append(chars + [0] * (CHAR_LENGTH * len(suffix)))
    return columns

