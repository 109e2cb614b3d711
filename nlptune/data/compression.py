"""Compressed data files: ``train.jsonl.gz``, ``dev.csv.bz2``, ``words.conll.xz`` are read as the file inside them.

A data file's format is the suffix before the compression's (`data_suffix`); its identity (the sha256 recorded in
manifests and recipe pins) stays the digest of the file's own bytes, compressed. Standard library only: the data
sources (`nlptune.data.sources`) name files with it without loading any data library.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from pathlib import Path

# suffix -> (the compression's name, its module: each has open(), decompress() and compress())
COMPRESSIONS = {".gz": ("gzip", gzip), ".bz2": ("bzip2", bz2), ".xz": ("xz", lzma)}


def compression(path: str | Path) -> str | None:
    """The compressed file's suffix (".gz", ".bz2", ".xz"), or None for a plain file."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in COMPRESSIONS else None


def data_suffix(path: str | Path) -> str:
    """The suffix that says a data file's format, lower-cased: ".csv" for both data.csv and data.csv.gz."""
    path = Path(path)
    return Path(path.stem).suffix.lower() if compression(path) else path.suffix.lower()


def open_decompressed(stream, path: str | Path):
    """``stream`` (the binary file ``path``, opened) read through its decompression; ``stream`` itself when the
    file is not compressed."""
    suffix = compression(path)
    if suffix is None:
        return stream
    return COMPRESSIONS[suffix][1].open(stream, "rb")  # each module's open() takes a file object too


class TooLarge(ValueError):
    """The data inside a compressed file is more than may be held in memory at once."""


def memory_budget() -> int:
    """Bytes a file read whole may decompress to: a quarter of the memory free now (the text decoded from it, and
    the rows parsed from that, take as much again)."""
    import psutil  # accelerate's dependency: installed with nlptune

    return psutil.virtual_memory().available // 4


def decompress(raw: bytes, path: str | Path, limit: int | None = None) -> bytes:
    """The bytes inside ``raw`` (the whole file ``path``); ``raw`` itself when it is not compressed. Read in chunks,
    so that a file that would decompress to more than ``limit`` bytes (default `memory_budget`: a few KB can hold
    gigabytes) raises `TooLarge` before memory runs out; damaged data raises what the decompression does
    (see `is_damaged`)."""
    suffix = compression(path)
    if suffix is None:
        return raw
    limit = memory_budget() if limit is None else limit
    parts, size = [], 0
    with COMPRESSIONS[suffix][1].open(io.BytesIO(raw), "rb") as stream:
        while chunk := stream.read(1 << 24):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"more than {limit / 2 ** 20:,.0f} MB uncompressed, a quarter of the memory free now")
            parts.append(chunk)
    return b"".join(parts)


# what reading compressed data raises besides a disk's OSError: damaged or cut-short data
DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


def is_damaged(err: BaseException) -> bool:
    """Whether ``err`` says compressed data is damaged or cut short (not a disk or permission error, which carry
    an errno): gzip's BadGzipFile, zlib.error, lzma.LZMAError, bz2's OSError("Invalid data stream"), EOFError."""
    if isinstance(err, (EOFError, zlib.error, lzma.LZMAError)):
        return True
    return isinstance(err, OSError) and err.errno is None


def damage_problem(err: BaseException, path: str | Path) -> tuple[str, str]:
    """(problem, fix) for a compressed file whose data cannot be decompressed."""
    name = COMPRESSIONS[compression(path)][0]
    cut = isinstance(err, EOFError)
    return (f"the {name} data is {'cut short' if cut else 'damaged'} ({type(err).__name__}: {err})",
            "compress the file again (or copy it again in full), or give it uncompressed")


def compress(data: bytes, path: str | Path) -> bytes:
    """``data`` compressed as ``path``'s suffix says (``data`` itself for a plain file): what is written there."""
    suffix = compression(path)
    return data if suffix is None else COMPRESSIONS[suffix][1].compress(data)
