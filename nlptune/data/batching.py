"""In-memory encoded splits, dynamic padding and length-grouped batches."""
from __future__ import annotations

import math
import random

import torch

PADDED_FIELDS = {"input_ids": "attention_mask", "input_ids_b": "attention_mask_b", "token_type_ids": None}


class EncodedDataset(torch.utils.data.Dataset):
    """Columns of token ids and labels kept as Python lists: indexing is cheap, no Arrow round trips."""

    def __init__(self, columns: dict[str, list], labels: list):
        self.columns = {k: v for k, v in columns.items() if k != "length"}
        self.lengths = columns["length"]
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        item = {name: values[index] for name, values in self.columns.items()}
        item["labels"] = self.labels[index]
        return item


class Collator:
    """Pad each id field to the longest in the batch and build its attention mask."""

    def __init__(self, pad_token_id: int, regression: bool, pad_to_multiple_of: int = 1):
        self.pad_token_id = pad_token_id
        self.label_dtype = torch.float32 if regression else torch.long
        self.multiple = pad_to_multiple_of

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        batch = {}
        for field, mask_name in PADDED_FIELDS.items():
            if field not in items[0]:
                continue
            rows = [item[field] for item in items]
            width = max(len(r) for r in rows)
            width = int(math.ceil(width / self.multiple) * self.multiple)
            pad = 0 if field == "token_type_ids" else self.pad_token_id
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            for i, row in enumerate(rows):
                ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            batch[field] = ids
            if mask_name:
                lengths = torch.tensor([len(r) for r in rows])
                batch[mask_name] = (torch.arange(width)[None, :] < lengths[:, None]).long()
        batch["labels"] = torch.tensor([item["labels"] for item in items], dtype=self.label_dtype)
        return batch


class LengthGroupedBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of similar-length examples: shuffle, cut into mega-batches of ``group`` batches,
    sort each by length, batch, then shuffle the batch order. Seeded by (seed, epoch), so every process and
    every resumed run sees the same order."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group_by_length: bool = True,
                 group: int = 50):
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.group_by_length, self.group, self.epoch = group_by_length, group, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + self.epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        if self.group_by_length:
            size = self.batch_size * self.group
            chunks = [sorted(order[i: i + size], key=self.lengths.__getitem__, reverse=True)
                      for i in range(0, len(order), size)]
            order = [i for chunk in chunks for i in chunk]
        batches = [order[i: i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.group_by_length:
            rng.shuffle(batches)
        return batches

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


def eval_order(lengths: list[int]) -> list[int]:
    """Indices sorted by length (longest first) so evaluation batches carry little padding."""
    return sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
