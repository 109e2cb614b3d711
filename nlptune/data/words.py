"""Encode tagged sentences (tokens kind) into windows of sub-tokens, and map per-position values back to words.

A sentence is a list of words; its tokenizer (a model's fast tokenizer, or the word-level one of scratch
taggers) turns each word into sub-tokens (``is_split_into_words`` and ``word_ids()``). A word that yields no
sub-token at all (a zero-width or control character, an empty string) is the tokenizer's unk token, so every
word keeps exactly one scored position: its first sub-token.

A sentence whose sub-tokens exceed the budget (max_length minus the special tokens) is cut into overlapping
windows: each window owns a contiguous run of words, which it scores, and carries up to a quarter of the
budget of whole words of context on each side; windows come in sentence order and every word is owned exactly
once. A word longer than the budget keeps only its first sub-tokens.

Columns per window (one list entry per window): input_ids, labels (the tag id at the first sub-token of every
word in the window, context words included; -100 elsewhere and everywhere when there are no tags), row_id,
word_offset, owned_from, owned_to, length, word_index and, with char features, char_ids.

``word_index`` (list[int], like labels one per position; pad with -1) is the index within the window of the
word whose FIRST sub-token sits at that position, -1 elsewhere: the scored positions at prediction time, when
labels are all -100 (``word_index >= 0`` is exactly ``labels != -100`` when tags are given). `word_level` reads
it to map per-position values (predicted ids, gold ids) back to one value per word of each sentence.
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


def encode_words(tokenizer, sentences: list[list[str]], tags: list[list[int]] | None, *, max_length: int,
                 char_features: bool = False) -> dict[str, list]:
    """The windows of ``sentences`` (tag ids ``tags`` per word, or None to predict) as columns (module doc)."""
    budget = _check_tokenizer(tokenizer, max_length)
    prefix, suffix = special_tokens(tokenizer)
    unk = tokenizer.unk_token_id
    names = ["input_ids", "labels", "row_id", "word_offset", "owned_from", "owned_to", "length", "word_index"]
    columns: dict[str, list] = {name: [] for name in names + (["char_ids"] if char_features else [])}
    for row, (sentence, pieces) in enumerate(zip(sentences, _word_pieces(tokenizer, sentences))):
        if unk is None and any(not p for p in pieces):
            raise NlptuneError(f"sentence {row + 1}: a word yields no sub-token and the tokenizer has no unk token "
                               "to stand for it")
        pieces = [(p or [unk])[:budget] for p in pieces]
        for start, owned, end_owned, end in plan_windows([len(p) for p in pieces], budget):
            ids, labels, index = list(prefix), [IGNORE] * len(prefix), [-1] * len(prefix)
            chars = [0] * (CHAR_LENGTH * len(prefix)) if char_features else None
            for k, word in enumerate(range(start, end)):
                width = len(pieces[word])
                ids += pieces[word]
                labels += [IGNORE if tags is None else tags[row][word]] + [IGNORE] * (width - 1)
                index += [k] + [-1] * (width - 1)
                if chars is not None:
                    chars += _char_ids(sentence[word]) * width
            ids += suffix
            labels += [IGNORE] * len(suffix)
            index += [-1] * len(suffix)
            for name, value in (("input_ids", ids), ("labels", labels), ("row_id", row), ("word_offset", start),
                                ("owned_from", owned - start), ("owned_to", end_owned - start),
                                ("length", len(ids)), ("word_index", index)):
                columns[name].append(value)
            if chars is not None:
                columns["char_ids"].append(chars + [0] * (CHAR_LENGTH * len(suffix)))
    return columns


def word_level(values: Sequence, columns: dict[str, list]) -> list[list]:
    """Per sentence (by row_id), one value per word, from per-window per-position ``values`` (lists or tensors
    at least as long as each window, e.g. predicted tag ids): each word's value is read at its first sub-token
    in the window that owns it."""
    sentences: list[list] = [[] for _ in range(max(columns["row_id"], default=-1) + 1)]
    for w, row in enumerate(columns["row_id"]):
        window = values[w].tolist() if hasattr(values[w], "tolist") else values[w]
        owned_from, owned_to = columns["owned_from"][w], columns["owned_to"][w]
        if len(sentences[row]) != columns["word_offset"][w] + owned_from:
            raise ValueError(f"window {w} of sentence {row} owns words from {columns['word_offset'][w] + owned_from}"
                             f" but {len(sentences[row])} words are placed: the windows are out of order")
        sentences[row].extend(window[position] for position, word in enumerate(columns["word_index"][w])
                              if owned_from <= word < owned_to)
    return sentences
