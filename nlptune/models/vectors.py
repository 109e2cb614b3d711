"""Pretrained word vectors (GloVe / word2vec text format) for a model's vocabulary.

Files such as GloVe 840B are several GB, so the file is streamed line by line and only the rows
of words in the vocabulary are kept.
"""
from __future__ import annotations

import gzip
import io
from typing import Iterator, TextIO

import torch

# Std of the random rows for words missing from the file: small, so they start near the origin
# like most pretrained vectors instead of dominating them.
MISSING_STD = 0.1


def _open_text(path: str) -> TextIO:
    # errors="replace": word2vec dumps often hold a few invalid UTF-8 tokens; they only lose that word
    if str(path).endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _is_word2vec_header(parts: list[str]) -> bool:
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def _records(path: str, embedding_dim: int) -> Iterator[tuple[int, str, list[str]]]:
    """Yield ``(line_number, word, values)``; check the dimension on the first line.

    The word is everything but the last ``dim`` fields, since some GloVe files hold tokens
    with spaces in them.
    """
    with _open_text(path) as f:
        dim = None
        for lineno, line in enumerate(f, start=1):
            parts = line.rstrip("\r\n").rstrip(" ").split(" ")
            if not parts or parts == [""]:
                continue
            if dim is None:
                if _is_word2vec_header(parts):  # word2vec text: "count dim"
                    dim = int(parts[1])
                    _check_dim(path, dim, embedding_dim)
                    continue
                dim = len(parts) - 1  # GloVe: no header
                _check_dim(path, dim, embedding_dim)
            if len(parts) < dim + 1:
                raise ValueError(f"{path}, line {lineno}: expected a word and {dim} values, "
                                 f"got {len(parts)} fields")
            yield lineno, " ".join(parts[:-dim]), parts[-dim:]


def _check_dim(path: str, file_dim: int, embedding_dim: int) -> None:
    if file_dim != embedding_dim:
        raise ValueError(f"pretrained_vectors file {path} has dimension {file_dim}, "
                         f"but embedding_dim is {embedding_dim}; set embedding_dim={file_dim}")


def load_vectors(path: str, vocab: dict[str, int], embedding_dim: int, *,
                 vocab_size: int | None = None,
                 pad_token_id: int | None = None) -> tuple[torch.Tensor, float]:
    """Read the vectors of ``vocab``'s words from ``path`` (GloVe or word2vec text, optionally .gz).

    Returns ``(weights, coverage)``: a float tensor ``[vocab_size, embedding_dim]`` whose rows hold
    the file's vector for words found (exact, case-sensitive match; first occurrence wins) and
    N(0, 0.1) noise otherwise, with the ``pad_token_id`` row zero; and ``coverage``, the fraction
    of vocab entries (special tokens included) found in the file. ``vocab_size`` defaults to
    ``max(id) + 1``. A file whose dimension is not ``embedding_dim`` is a ValueError.
    """
    if not vocab:
        raise ValueError("vocab is empty; pretrained vectors need the tokenizer vocabulary")
    size = max(vocab.values()) + 1 if vocab_size is None else vocab_size
    if max(vocab.values()) >= size:
        raise ValueError(f"vocab has token id {max(vocab.values())} but vocab_size is {size}")
    # the random rows come from torch's global RNG, so the run seed makes them reproducible
    weights = torch.randn(size, embedding_dim) * MISSING_STD
    found = torch.zeros(size, dtype=torch.bool)
    for lineno, word, values in _records(path, embedding_dim):
        idx = vocab.get(word)
        if idx is None or found[idx]:
            continue
        try:
            weights[idx] = torch.tensor([float(v) for v in values])
        except ValueError as err:
            raise ValueError(f"{path}, line {lineno}: bad number in the vector of {word!r}") from err
        found[idx] = True
    if pad_token_id is not None:
        weights[pad_token_id] = 0.0
    coverage = float(found[list(set(vocab.values()))].sum()) / len(set(vocab.values()))
    return weights, coverage
