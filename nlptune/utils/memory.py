"""Process memory settings for training (both leave a user's own environment setting alone)."""
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


# oneDNN keeps every primitive (one per op kind and input shape) it has built; with dynamic padding each new
# sequence length builds new ones for the bf16 matmuls, and the default cache of 1024 held ~200 MB in a
# MiniLM run. 64 kept the speed (within 2 %) and cut the peak RSS by ~160 MB (benchmarks/RESULTS.md).
ONEDNN_PRIMITIVE_CACHE = 64


def limit_onednn_cache() -> None:
    """Cap oneDNN's primitive cache; it reads the variable when it builds its first primitive, so call this
    before the first matmul of the process."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_PRIMITIVE_CACHE))
