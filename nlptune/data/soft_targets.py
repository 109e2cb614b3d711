"""Distillation's data: the teacher's outputs for every training row, computed once and cached on disk, and the
transfer set's rows (nlptune/data/transfer.py) encoded for the student.

The teacher itself (reading its run, checking that it fits the task, running its model) belongs to
nlptune/train/teacher.py. This module asks it for what follows, and for its outputs only when the cache lacks them,
so a second run with the same teacher, data and transfer set (a resumed run, a sweep's trials) never loads its model:

    teacher.identity      what its outputs depend on besides the texts (its best/ sha256, precision, max_length)
    teacher.check(names)  raise one ConfigError naming every way it does not fit the task's outputs
    teacher.mask_token, teacher.unk_token    what a masked / dropped word of a transfer copy is for its tokenizer
    teacher.logits(texts) float32 [rows, outputs] for ``texts`` (one list per text field), in their order
    teacher.describe()    what the manifest and metrics.json record of it

The cache key is the sha256 of (teacher identity, the training texts, the transfer set's settings and seed): any
change to one of them computes the outputs again, nothing else does.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nlptune.config.errors import NlptuneError
from nlptune.config.schema import RunConfig
from nlptune.data.batching import EncodedDataset
from nlptune.data.transfer import settings as transfer_settings
from nlptune.data.transfer import transfer_texts
from nlptune.utils.files import DiskError, atomic_write_bytes, ensure_dir

TEACHER_CACHE = "teacher-logits"  # the folder under the data cache (`nlptune.data.cache_dir`)


def texts_digest(texts: list[list[str]]) -> str:
    """The sha256 of every text of every field, in order."""
    digest = hashlib.sha256()
    for column in texts:
        for text in column:
            digest.update(text.encode("utf-8", "surrogatepass") + b"\x00")
        digest.update(b"\x01")
    return digest.hexdigest()


@dataclass
class Distilled:
    """The student's training rows: ``train`` carries the teacher's logits (and ``gold`` = True when a transfer
    set follows), ``transfer`` is the transfer set (``gold`` = False: its labels, its source rows', are never
    read), ``info`` what the run records of the teacher."""

    train: EncodedDataset
    transfer: EncodedDataset | None
    info: dict


def distil(run: RunConfig, teacher, tokenizer, texts: list[list[str]], train: EncodedDataset,
           encode: Callable[[Callable[[], list[list[str]]], list], dict]) -> Distilled:
    """The training rows of ``train`` (encoded from ``texts``) with the teacher's logits, plus the transfer set
    when ``distill.augment_copies`` > 0. ``encode(make_texts, key)``: the student's columns for the texts
    ``make_texts()`` gives, cached under ``key`` (called only when that cache misses)."""
    distill = run.distill
    digest = texts_digest(texts)
    settings = transfer_settings(distill, run.augment, run.seed) if distill.augment_copies else None

    def copies(mask: str, unknown: str) -> list[list[str]]:
        return transfer_texts(texts, distill, run.augment, run.seed, mask=mask, unknown=unknown)

    transfer = None
    if settings is not None:
        mask = tokenizer.mask_token or tokenizer.unk_token  # a tokenizer without a mask token: its unknown token
        columns = encode(lambda: copies(mask, tokenizer.unk_token), ["transfer", digest, settings])
        labels = [label for label in train.labels for _ in range(distill.augment_copies)]
        transfer = EncodedDataset(columns, labels)

    def teacher_texts() -> list[list[str]]:  # the training texts, then the transfer set in the teacher's tokens
        extra = copies(teacher.mask_token, teacher.unk_token) if settings is not None else [[] for _ in texts]
        return [list(column) + more for column, more in zip(texts, extra)]

    key = {"teacher": teacher.identity, "texts": digest, "transfer": settings}
    rows = len(train) + (len(transfer) if transfer is not None else 0)
    logits, path, cached = cached_logits(key, rows, lambda: teacher.logits(teacher_texts()))
    info = {**teacher.describe(), "logits_cache": str(path), "logits_from_cache": cached,
            "train_rows": len(train), "transfer_rows": 0 if transfer is None else len(transfer)}
    if transfer is None:
        return Distilled(train.with_targets(teacher_logits=logits), None, info)
    n = len(train)
    return Distilled(train.with_targets(teacher_logits=logits[:n], gold=np.ones(n, dtype=bool)),
                     transfer.with_targets(teacher_logits=logits[n:], gold=np.zeros(len(transfer), dtype=bool)),
                     info)


def cached_logits(key: dict[str, Any], rows: int, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, Path, bool]:
    """``(logits, cache file, whether they came from it)``: the cached array of ``key`` when it holds ``rows``
    finite rows, else ``compute()``'s, written to the cache atomically (a cache that cannot be written is warned
    about, not fatal)."""
    from nlptune.data import cache_dir
    from nlptune.utils.console import warn

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    path = cache_dir() / TEACHER_CACHE / f"{digest[:32]}.npy"
    if path.is_file():
        try:
            logits = np.load(path, allow_pickle=False)
            if logits.ndim == 2 and len(logits) == rows and np.isfinite(logits).all():
                return logits, path, True
        except (OSError, ValueError):
            pass  # a damaged cache file is computed again, never trusted
    logits = np.asarray(compute(), dtype=np.float32)
    if logits.ndim != 2 or len(logits) != rows or not np.isfinite(logits).all():
        raise NlptuneError(f"the teacher's outputs are not {rows} rows of finite numbers (shape {logits.shape}); "
                           "check the teacher run: `nlptune eval TEACHER_RUN`")
    buffer = io.BytesIO()
    np.save(buffer, logits, allow_pickle=False)
    try:
        ensure_dir(path.parent, "(the teacher outputs' cache)")
        atomic_write_bytes(path, buffer.getvalue())
    except DiskError as err:
        warn(f"the teacher's outputs could not be cached ({err}); the next run computes them again")
    return logits, path, False
