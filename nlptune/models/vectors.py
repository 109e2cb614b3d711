"""Pretrained word vectors for a model's vocabulary: from a GloVe / word2vec text file, or from a pretrained
transformer's input embeddings.

Files such as GloVe 840B are several GB, so the file is streamed line by line and only the rows
of words in the vocabulary are kept. A transformer (a model folder, ``packaged:<hub id>`` or a hub id) gives each
word the mean of its subword embeddings: the word split by the transformer's own tokenizer, each piece's row of
its input embedding matrix. That is how a small student starts from its teacher's (or any encoder's) vocabulary
knowledge when no word-vector file is at hand (distillation: `nlptune distill`).
"""
from __future__ import annotations

import gzip
import io
import re
from pathlib import Path
from typing import Iterator, TextIO

import torch

from nlptune.models.layers import ModelArgumentError

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
                raise ModelArgumentError(f"pretrained_vectors file {path}, line {lineno}: expected a word and "
                                         f"{dim} values, got {len(parts)} fields; fix or drop that line")
            yield lineno, " ".join(parts[:-dim]), parts[-dim:]


def _check_dim(path: str, file_dim: int, embedding_dim: int) -> None:
    if file_dim < 1:  # one field on the first line: no vector, e.g. a binary file read as text
        raise ModelArgumentError(f"pretrained_vectors file {path} is not a GloVe or word2vec text file (its first "
                                 "line holds no vector); give a text file of lines 'word value value ...'")
    if file_dim != embedding_dim:
        raise ModelArgumentError(f"pretrained_vectors file {path} has dimension {file_dim}, "
                                 f"but embedding_dim is {embedding_dim}; set model.embedding_dim={file_dim}")


# the endings of word-vector text files: a value with one of them is always read as a file
TEXT_SUFFIXES = (".txt", ".vec", ".gz", ".w2v", ".bin", ".zip")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_transformer_source(value: str) -> bool:
    """Whether ``pretrained_vectors`` names a transformer — a model folder, ``packaged:<hub id>``, or a hub id
    (``org/name``, when no such file exists) — rather than a word-vector text file."""
    from nlptune.config.sources import PACKAGED_PREFIX

    path = Path(value)
    if value.startswith(PACKAGED_PREFIX) or path.is_dir():
        return True
    return not path.exists() and HUB_ID.fullmatch(value) is not None and not value.lower().endswith(TEXT_SUFFIXES)


def transformer_vectors(source: str, vocab: dict[str, int], embedding_dim: int, *, vocab_size: int,
                        pad_token_id: int | None = None) -> tuple[torch.Tensor, float]:
    """Vectors of ``vocab``'s words from the input embeddings of the transformer ``source``: a token that is in the
    transformer's vocabulary takes its row; any other word the mean of its subwords' rows (unknown pieces left out).
    Returns ``(weights, coverage)`` as `load_vectors`; coverage: the fraction of entries that got a vector."""
    from transformers import AutoModel, AutoTokenizer

    from nlptune.config.sources import resolve_model_source

    name = resolve_model_source(source)
    tokenizer = AutoTokenizer.from_pretrained(name)
    table = AutoModel.from_pretrained(name).get_input_embeddings().weight.detach().float()
    if table.shape[1] != embedding_dim:
        raise ModelArgumentError(f"pretrained_vectors {source!r} has embeddings of dimension {table.shape[1]}, but "
                                 f"embedding_dim is {embedding_dim}; set model.embedding_dim={table.shape[1]}")
    weights = torch.randn(vocab_size, embedding_dim) * MISSING_STD
    found = torch.zeros(vocab_size, dtype=torch.bool)
    own = tokenizer.get_vocab()
    words = sorted(vocab, key=vocab.get)
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"]
    for word, ids in zip(words, pieces):
        index = vocab[word]
        ids = [own[word]] if word in own else [i for i in ids if i != tokenizer.unk_token_id]
        if ids and index < vocab_size:
            weights[index] = table[ids].mean(dim=0)
            found[index] = True
    if pad_token_id is not None:
        weights[pad_token_id] = 0.0
    indices = sorted(i for i in set(vocab.values()) if i < vocab_size)
    return weights, float(found[indices].sum()) / len(indices)


def load_vectors(path: str, vocab: dict[str, int], embedding_dim: int, *,
                 vocab_size: int | None = None,
                 pad_token_id: int | None = None) -> tuple[torch.Tensor, float]:
    """Read the vectors of ``vocab``'s words from ``path`` (GloVe or word2vec text, optionally .gz; or a
    transformer, see `is_transformer_source` and `transformer_vectors`).

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
    if is_transformer_source(str(path)):
        return transformer_vectors(str(path), vocab, embedding_dim, vocab_size=size, pad_token_id=pad_token_id)
    # the random rows come from torch's global RNG, so the run seed makes them reproducible
    weights = torch.randn(size, embedding_dim) * MISSING_STD
    found = torch.zeros(size, dtype=torch.bool)
    for lineno, word, values in _records(path, embedding_dim):
        idx = vocab.get(word)
        if idx is None or found[idx]:
            continue
        try:
            vector = torch.tensor([float(v) for v in values])
        except ValueError:
            vector = None
        if vector is None or not torch.isfinite(vector).all():  # a nan row would make the first loss nan
            raise ModelArgumentError(f"pretrained_vectors file {path}, line {lineno}: the vector of {word!r} "
                                     "holds a value that is not a finite number; fix or drop that line")
        weights[idx] = vector
        found[idx] = True
    if pad_token_id is not None:
        weights[pad_token_id] = 0.0
    coverage = float(found[list(set(vocab.values()))].sum()) / len(set(vocab.values()))
    if coverage == 0:  # an empty file, or one of another language or casing: training would start from noise
        raise ModelArgumentError(f"pretrained_vectors file {path} has a vector for no word of the vocabulary; "
                                 "check the file (its language, its casing against model.lowercase)")
    return weights, coverage
