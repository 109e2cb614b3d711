"""Columns of a data file held compactly, built as the file is parsed.

A Python string costs ~57 bytes besides its characters (the object and a list's pointer to it), and a row dict
~200 more: a million short texts read as row dicts took over 1 GB before a token was made. Here the rows are
turned into columns `CHUNK_ROWS` at a time, and each chunk whose values are all strings (or all integers,
floats, booleans; None allowed) becomes an Arrow array: a text then costs its UTF-8 bytes and a 4-byte
offset. A chunk of mixed values (a number in a text column, which the checks refuse with its line) or of lists
(words of a sentence, label lists) stays a Python list, so every value reads back exactly as it was parsed.

`Column` reads like the list it replaces (length, index, slice, iteration, equality with a list) and gives up
its leading rows when deleted (`del column[:n]`), so that a split encoded once frees its texts as it goes.
"""
from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc

# Rows parsed into Python objects at a time before they are packed. A chunk of texts of 32 characters or more is
# then 2 MiB or more: allocated by the system allocator (`_POOL`), it gets its own mmap (training fixes glibc's
# threshold there, nlptune/utils/memory.py), so its memory goes back to the OS as soon as it is dropped.
CHUNK_ROWS = 65_536
_ARROW_TYPES = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
_ABSENT = object()
# pyarrow's default pool (mimalloc or jemalloc) keeps freed memory for reuse: texts dropped while their ids are
# made (`Column.__delitem__`) would still count in the process's memory
_POOL = pa.system_memory_pool()


def _pack(values: list):
    """``values`` as an Arrow array when they are of one plain type (None allowed), else the list itself."""
    kinds = {type(value) for value in values}
    kinds.discard(type(None))
    if len(kinds) != 1 or next(iter(kinds)) not in _ARROW_TYPES:
        return pa.nulls(len(values)) if not kinds else values
    try:
        packed = pa.array(values, type=_ARROW_TYPES[kinds.pop()], memory_pool=_POOL)
        if isinstance(packed, pa.ChunkedArray):  # over 2 GiB of text: 64-bit offsets
            packed = pa.array(values, type=pa.large_string(), memory_pool=_POOL)
        return packed
    except (pa.ArrowException, OverflowError, ValueError):  # an int beyond 64 bits, a lone surrogate in a str
        return values


class Column(Sequence):
    """A read-only sequence of values stored in chunks (Arrow arrays, or Python lists) - see the module doc."""

    def __init__(self, chunks: list):
        self._hold(chunks)

    def _hold(self, chunks: list) -> None:
        self._chunks = [chunk for chunk in chunks if len(chunk)]
        self._starts = [0]  # the row each chunk starts at, then the length
        for chunk in self._chunks:
            self._starts.append(self._starts[-1] + len(chunk))

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            return Column(self._pieces(start, stop)) if step == 1 else list(self)[index]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError("Column index out of range")
        which = bisect.bisect_right(self._starts, position) - 1
        chunk, offset = self._chunks[which], position - self._starts[which]
        return chunk[offset].as_py() if isinstance(chunk, pa.Array) else chunk[offset]

    def _pieces(self, start: int, stop: int) -> list:
        pieces = []
        for chunk, first in zip(self._chunks, self._starts):
            lo, hi = max(start - first, 0), min(stop - first, len(chunk))
            if lo < hi:
                pieces.append(chunk.slice(lo, hi - lo) if isinstance(chunk, pa.Array) else chunk[lo:hi])
        return pieces

    def __iter__(self) -> Iterator[Any]:
        for chunk in self._chunks:
            yield from chunk.to_pylist() if isinstance(chunk, pa.Array) else chunk

    def __delitem__(self, index: slice) -> None:
        """Drop the leading rows ``index`` names (``del column[:n]``): a chunk's memory goes with its last row."""
        start, stop, step = index.indices(len(self)) if isinstance(index, slice) else (None, None, None)
        if start != 0 or step != 1:
            raise TypeError("a Column only deletes its leading rows (del column[:n])")
        self._hold(self._pieces(stop, len(self)))

    def __eq__(self, other) -> bool:
        if not isinstance(other, (list, tuple, Column)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # mutable (rows can be deleted), like a list

    def __repr__(self) -> str:
        return f"Column({list(self)!r})"

    def all_text(self) -> bool:
        """Whether every value is a string or None (decided from the chunks' types, without reading a value)."""
        return all(isinstance(chunk, pa.Array) and (pa.types.is_string(chunk.type) or pa.types.is_large_string(
            chunk.type) or pa.types.is_null(chunk.type)) for chunk in self._chunks)

    def texts(self) -> "Column":
        """An `all_text` column with None read as "" (an empty text), sharing the chunks that hold no None."""
        return Column([_filled(chunk) if chunk.null_count else chunk for chunk in self._chunks])


def _filled(chunk: pa.Array) -> pa.Array:
    """A string (or all-null) chunk with "" for None."""
    if pa.types.is_null(chunk.type):
        return pa.array([""] * len(chunk), type=pa.string(), memory_pool=_POOL)
    return pc.coalesce(chunk, pa.scalar("", chunk.type), memory_pool=_POOL)


class ColumnsBuilder:
    """Columns of parsed rows (dicts), added one at a time, packed every `CHUNK_ROWS` rows: a key a row lacks is
    None there (and the row is recorded in ``absent``), a key first seen at a later row is None before it.
    ``line``: the file line each row starts on, kept as a column too when given."""

    def __init__(self):
        self.rows = 0
        self._packed: dict[str, list] = {}  # name -> its packed chunks
        self._open: dict[str, list] = {}  # name -> the values of the chunk being filled
        self._line_chunks: list = []
        self._open_lines: list[int] = []
        self.absent: dict[str, list[int]] = {}

    def add(self, row: dict, line: int | None = None) -> None:
        for name in row:
            if name not in self._open:  # a new key: None (absent) in every row so far
                self._packed[name] = [pa.nulls(CHUNK_ROWS)] * (self.rows // CHUNK_ROWS)
                self._open[name] = [None] * (self.rows % CHUNK_ROWS)
                self.absent[name] = list(range(self.rows))
        for name, values in self._open.items():
            value = row.get(name, _ABSENT)
            if value is _ABSENT:
                value = None
                self.absent[name].append(self.rows)
            values.append(value)
        if line is not None:
            self._open_lines.append(line)
        self.rows += 1
        if self.rows % CHUNK_ROWS == 0:
            self._pack()

    def _pack(self) -> None:
        for name, values in self._open.items():
            self._packed[name].append(_pack(values))
            self._open[name] = []
        if self._open_lines:
            self._line_chunks.append(_pack(self._open_lines))
            self._open_lines = []

    def finish(self) -> tuple[dict[str, Column], Column | None, dict[str, list[int]]]:
        """(the columns, the lines column or None when no line was given, {name: rows lacking it} for the keys
        some row lacks)."""
        if self.rows % CHUNK_ROWS:
            self._pack()
        columns = {name: Column(chunks) for name, chunks in self._packed.items()}
        lines = Column(self._line_chunks) if self._line_chunks else None
        return columns, lines, {name: rows for name, rows in self.absent.items() if rows}
