"""Process memory settings for training (leaving a user's own environment setting alone).

oneDNN's primitive cache is left at its default (1024). It was capped at 64 to save memory (~160 MB in a MiniLM
run), but with dynamic padding a bf16 run needs about a thousand primitives (one per op, shape and sequence length),
so the cap rebuilt them all the time: MiniLM sst2 at batch 32 trained 9 % slower under it (178.9 vs 195.0
samples/s, peak RSS 1405 vs 1604 MB, still below the Trainer's 1748; benchmarks/RESULTS.md).
"""
from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt parameter number for the size from which an allocation gets its own mmap
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 2 * 1024 * 1024


def limit_heap_fragmentation() -> bool:
    """Give every allocation of ``MMAP_THRESHOLD_BYTES`` or more its own mmap (glibc only).

    Why: with dynamic padding every batch has other tensor shapes. glibc raises its mmap threshold to the
    largest block freed so far (up to 32 MiB), after which activations come from the heap, where blocks of ever
    different sizes fragment it and freed memory is never returned: the peak RSS of a MiniLM fine-tuning run on
    CPU measured ~90 MB higher, at the same speed (benchmarks/RESULTS.md). A fixed threshold also turns off
    that dynamic raise. Returns whether the setting was applied; a user's own ``MALLOC_MMAP_THRESHOLD_`` wins.
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl, ...): leave the allocator alone
        return False
