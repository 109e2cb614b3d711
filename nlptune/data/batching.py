"""In-memory encoded splits, dynamic padding and length-grouped batches."""
from __future__ import annotations

import copy
import itertools
import math
import random
from array import array
from typing import Callable

import numpy as np
import torch

PADDED_FIELDS = {"input_ids": "attention_mask", "input_ids_b": "attention_mask_b", "token_type_ids": None}
# Per-word tasks (task.kind=tokens): where each encoded window sits in its sentence (nlptune/data/words.py). They
# travel with the batch so evaluation can put windows back together; the model never sees them.
ROW_FIELDS = ("row_id", "word_offset", "owned_from", "owned_to")
IGNORED_LABEL = -100  # a position without a label (a later sub-token, a special token, padding)
# Distillation (nlptune/data/soft_targets.py): what a training row carries for the loss only, besides its label: the
# teacher's logits, and whether the row has a gold label (a transfer-set row has none). The model never sees them.
TARGET_FIELDS = ("teacher_logits", "gold")


class RaggedIds:
    """Variable-length rows of token ids in one flat int32 array plus row offsets: 4 bytes a token, where
    Python lists of ints take ~36 (an int object and a pointer), for the whole training run."""

    def __init__(self, values: np.ndarray, offsets: np.ndarray):
        self.values, self.offsets = values, offsets

    @classmethod
    def from_rows(cls, rows: list[list[int]]) -> "RaggedIds":
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in rows], out=offsets[1:])
        values = np.fromiter((t for r in rows for t in r), dtype=np.int32, count=int(offsets[-1]))
        return cls(values, offsets)

    @classmethod
    def from_arrow(cls, array, copied: Callable | None = None) -> "RaggedIds":
        """From a pyarrow list array or chunked array (a cached split), without building Python lists: each
        chunk's ids are copied once, straight into the result; ``copied(chunk)`` is called after each chunk's
        copy (a memory-mapped cache gives its pages back there)."""
        chunks = array.chunks if hasattr(array, "chunks") else [array]
        flats = [chunk.flatten() for chunk in chunks]  # views of the (memory-mapped) ids of each chunk's rows
        values = np.empty(sum(len(flat) for flat in flats), dtype=np.int32)
        offsets = np.zeros(sum(len(chunk) for chunk in chunks) + 1, dtype=np.int64)
        tokens = rows = 0
        for chunk, flat in zip(chunks, flats):
            starts = np.asarray(chunk.offsets, dtype=np.int64)
            values[tokens: tokens + len(flat)] = np.asarray(flat)  # converted here when cached as int64
            offsets[rows + 1: rows + 1 + len(chunk)] = starts[1:] - starts[0] + tokens
            tokens, rows = tokens + len(flat), rows + len(chunk)
            if copied is not None:
                copied(chunk)
        return cls(values, offsets)

    def lengths(self) -> np.ndarray:
        """The number of ids of each row (int32)."""
        return np.diff(self.offsets).astype(np.int32)

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + self.offsets.nbytes

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> list[int]:
        return self.values[self.offsets[index]: self.offsets[index + 1]].tolist()

    def tolist(self) -> list[list[int]]:
        return [self[i] for i in range(len(self))]

    def concat(self, other: "RaggedIds") -> "RaggedIds":
        """These rows, then ``other``'s."""
        return RaggedIds(np.concatenate([self.values, other.values]),
                         np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]]))


class RaggedIdsBuilder:
    """`RaggedIds` of ``rows`` rows, filled a batch of rows (lists of ids) at a time.

    The ids go straight into one buffer, sized from the first batch's mean length (x1.25; grown x1.5 if that
    falls short): batches kept apart and joined at the end would hold every id twice for a moment, and the
    buffer's unused tail is never written, so it takes no memory (a page is committed when first written)."""

    def __init__(self, rows: int):
        self.offsets = np.zeros(rows + 1, dtype=np.int64)
        self.values = np.empty(0, dtype=np.int32)
        self.rows = 0

    def add(self, batch: list[list[int]]) -> None:
        count = len(batch)
        start = int(self.offsets[self.rows])
        ends = start + np.cumsum(np.fromiter(map(len, batch), dtype=np.int64, count=count))
        self.offsets[self.rows + 1: self.rows + 1 + count] = ends
        self.rows += count
        end = int(ends[-1]) if count else start
        if end > len(self.values):
            estimate = math.ceil(end / self.rows * (len(self.offsets) - 1) * 1.25)
            grown = np.empty(max(end, estimate, int(len(self.values) * 1.5)), dtype=np.int32)
            grown[:start] = self.values[:start]
            self.values = grown
        self.values[start:end] = np.fromiter(itertools.chain.from_iterable(batch), dtype=np.int32, count=end - start)

    def finish(self) -> RaggedIds:
        if self.rows != len(self.offsets) - 1:
            raise ValueError(f"{self.rows} rows added, {len(self.offsets) - 1} announced")
        return RaggedIds(self.values[: self.offsets[-1]], self.offsets)


class EncodedDataset(torch.utils.data.Dataset):
    """Encoded columns (token ids as `RaggedIds`) and labels; indexing returns plain lists, no Arrow round trips.

    ``labels``: one target per row; None when the columns hold them (per-position ``labels`` of word tasks).
    ``targets``: arrays with a row per example that only the training loss reads (`TARGET_FIELDS`)."""

    def __init__(self, columns: dict, labels: list | None = None, targets: dict[str, np.ndarray] | None = None):
        scalars = ("length", "labels", *ROW_FIELDS)
        self.columns = {k: v if isinstance(v, RaggedIds) else RaggedIds.from_rows(v)
                        for k, v in columns.items() if k not in scalars}
        self.rows = {k: list(columns[k]) for k in ROW_FIELDS if k in columns}
        self.lengths = np.asarray(columns["length"], dtype=np.int32)  # a sampler sorts them: numpy, 4 bytes a row
        if labels is None:
            labels = columns["labels"]
            labels = labels if isinstance(labels, RaggedIds) else RaggedIds.from_rows(labels)
        self.labels = labels
        self.targets = dict(targets or {})

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        item = {name: values[index] for name, values in self.columns.items()}
        item.update((name, values[index]) for name, values in self.rows.items())
        item.update((name, values[index]) for name, values in self.targets.items())
        item["labels"] = self.labels[index]
        return item

    def with_targets(self, **targets: np.ndarray) -> "EncodedDataset":
        """The same rows (sharing their arrays) carrying ``targets`` too, one entry per row each."""
        wrong = [name for name, values in targets.items() if len(values) != len(self)]
        if wrong:
            raise ValueError(f"targets {wrong} do not have one entry per row ({len(self)})")
        carried = copy.copy(self)
        carried.targets = {**self.targets, **targets}
        return carried

    def concat(self, other: "EncodedDataset") -> "EncodedDataset":
        """This dataset's rows, then ``other``'s (the same columns, row fields and targets; text labels only)."""
        if set(self.columns) != set(other.columns) or set(self.rows) != set(other.rows) \
                or set(self.targets) != set(other.targets) or isinstance(self.labels, RaggedIds):
            raise ValueError("only datasets with the same columns, row fields and targets, and a label per row, "
                             "can be joined")
        joined = copy.copy(self)
        joined.columns = {name: values.concat(other.columns[name]) for name, values in self.columns.items()}
        joined.rows = {name: values + other.rows[name] for name, values in self.rows.items()}
        joined.lengths = np.concatenate([self.lengths, other.lengths])
        joined.labels = list(self.labels) + list(other.labels)
        joined.targets = {name: np.concatenate([values, other.targets[name]]) for name, values in self.targets.items()}
        return joined


class Collator:
    """Pad each id field to the longest in the batch and build its attention mask; the labels become a tensor of
    ``label_dtype`` (the problem kind's, `Kind.label_dtype`)."""

    def __init__(self, pad_token_id: int, label_dtype: torch.dtype = torch.long, pad_to_multiple_of: int = 1):
        self.pad_token_id = pad_token_id
        self.label_dtype = label_dtype
        self.multiple = pad_to_multiple_of

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        batch = {}
        for field, mask_name in PADDED_FIELDS.items():
            if field not in items[0]:
                continue
            rows = [item[field] for item in items]
            width = max(1, max(len(r) for r in rows))  # a batch of empty texts still gets one (padding) step
            width = int(math.ceil(width / self.multiple) * self.multiple)
            pad = 0 if field == "token_type_ids" else self.pad_token_id
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            for i, row in enumerate(rows):
                ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            batch[field] = ids
            if mask_name:
                lengths = torch.tensor([len(r) for r in rows])
                batch[mask_name] = (torch.arange(width)[None, :] < lengths[:, None]).long()
        if "char_ids" in items[0]:
            batch["char_ids"] = _pad_chars(items, batch["input_ids"].shape[1])
        for name in ROW_FIELDS:
            if name in items[0]:
                batch[name] = torch.tensor([item[name] for item in items], dtype=torch.long)
        for name in TARGET_FIELDS:  # numpy rows (a teacher's logits) or scalars (gold): stacked as they are
            if name in items[0]:
                batch[name] = torch.from_numpy(np.stack([item[name] for item in items]))
        labels = [item["labels"] for item in items]
        if labels and isinstance(labels[0], list):  # a label per position: padded like the ids, with "no label"
            padded = torch.full(batch["input_ids"].shape, IGNORED_LABEL, dtype=self.label_dtype)
            for i, row in enumerate(labels):
                padded[i, : len(row)] = torch.tensor(row, dtype=self.label_dtype)
            batch["labels"] = padded
        else:
            batch["labels"] = torch.tensor(labels, dtype=self.label_dtype)
        return batch


def _pad_chars(items: list[dict], width: int) -> torch.Tensor:
    """Per-position character ids (each item's ``char_ids``: its positions' bytes, flattened) as one
    [batch, width, bytes per position] tensor, zero-padded."""
    sample = next((item for item in items if item["input_ids"]), None)
    per_position = len(sample["char_ids"]) // len(sample["input_ids"]) if sample else 1
    chars = torch.zeros((len(items), width, per_position), dtype=torch.long)
    for i, item in enumerate(items):
        positions = len(item["input_ids"])
        if positions:
            chars[i, :positions] = torch.tensor(item["char_ids"], dtype=torch.long).view(positions, per_position)
    return chars


class LengthGroupedBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of similar-length examples: shuffle, cut into mega-batches of ``group`` batches,
    sort each by length, batch, then shuffle the batch order. Seeded by (seed, epoch), so every process and
    every resumed run sees the same order.

    The order is held as one int64 array and sorted with numpy (8 bytes a row, where lists of Python ints took
    ~36); the random draws are Python's, on the same sequences, so an order is the same as it always was.

    ``longest_first`` (trainer.longest_first): the batch holding the epoch's longest row trades places with the
    epoch's first batch, as the Trainer's length-grouped sampler does. The run then reaches its largest activations
    at its first step: a batch size that does not fit in memory fails at once instead of hours later, and on a CPU
    the heap grows to its high-water mark before later, smaller batches fragment it (a MiniLM run's peak RSS came
    out 30-80 MB lower; benchmarks/RESULTS.md)."""

    def __init__(self, lengths, batch_size: int, seed: int, group_by_length: bool = True,
                 group: int = 50, short_batch_last: bool = False, longest_first: bool = False):
        self.lengths = np.asarray(lengths, dtype=np.int32)  # a dataset's own lengths: not copied
        self.batch_size, self.seed = batch_size, seed
        self.group_by_length, self.group, self.epoch = group_by_length, group, 0
        self.longest_first = longest_first
        # for Accelerate's split batches (several processes): it shards a short batch only when it comes last
        self.short_batch_last = short_batch_last

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> tuple[np.ndarray, list[int]]:
        """The epoch's row order and the order of its batches (batch b = rows b*batch_size ... of the order)."""
        rng = random.Random(self.seed * 100_003 + self.epoch)
        order = array("q", range(len(self.lengths)))
        rng.shuffle(order)  # shuffle only swaps: an array draws exactly what a list of the same length would
        order = np.frombuffer(order, dtype=np.int64)
        if self.group_by_length:
            size = self.batch_size * self.group
            for start in range(0, len(order), size):
                chunk = order[start: start + size]
                # longest first, ties in shuffled order: what a stable sorted(..., reverse=True) gives
                chunk[:] = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
        batches = list(range(len(self)))
        if self.group_by_length:
            rng.shuffle(batches)
        if self.longest_first and len(self.lengths):
            # the first of the longest rows in the order (no random draw: later epochs' orders are unchanged)
            longest = batches.index(int(np.argmax(self.lengths[order])) // self.batch_size)
            batches[0], batches[longest] = batches[longest], batches[0]
        if self.short_batch_last and len(self.lengths) % self.batch_size:
            last = len(self) - 1  # the one short batch holds the order's last rows
            batches.remove(last)
            batches.append(last)
        return order, batches

    def __iter__(self):
        order, batches = self._order()
        for b in batches:
            yield order[b * self.batch_size: (b + 1) * self.batch_size].tolist()

    def batches(self) -> list[list[int]]:
        """The epoch's batches as lists of row indices (what iterating yields, all at once)."""
        return list(self)

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


def eval_order(lengths) -> list[int]:
    """Indices sorted by length (longest first, ties in index order) so evaluation batches carry little padding."""
    return np.argsort(-np.asarray(lengths, dtype=np.int32), kind="stable").tolist()
