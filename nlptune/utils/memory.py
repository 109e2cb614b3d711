"""Process memory settings for training (leaving a user's own environment setting alone).

oneDNN's primitive cache is left at its default (1024). It was capped at 64 to save memory (~160 MB in a MiniLM
run), but with dynamic padding a bf16 run needs about a thousand primitives (one per op, shape and sequence length),
so the cap rebuilt them all the time: MiniLM sst2 at batch 32 trained 9 % slower under it (178.9 vs 195.0
samples/s, peak RSS 1405 vs 1604 MB, still below the Trainer's 1748; benchmarks/RESULTS.md).
"""
from __future__ import annotations

import ctypes
import functools
import mmap
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
    libc = _glibc()
    if libc is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def release_free_heap() -> bool:
    """Give the heap's free pages back to the OS (glibc's ``malloc_trim``); False where there is no glibc.

    Why: freed blocks in the middle of the heap stay resident (only its top is trimmed by itself). After the
    training steps of a MiniLM run on a CPU ~340 MB of them were free but counted in the process's memory, and an
    evaluation (other batch sizes and shapes) then grew the heap further: its peak RSS was the run's. Called before
    each evaluation, it costs the page faults of re-touching those pages later (tens of ms), once per evaluation."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


@functools.lru_cache(maxsize=1)
def _glibc():
    """glibc with its allocator's mallopt and malloc_trim, or None (not Linux; musl and others lack them)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # both looked up now: an AttributeError here means not glibc
        return libc
    except (OSError, AttributeError):
        return None


_MADV_DONTNEED = 4  # Linux: drop the pages; a file mapping reads them back from the file if touched again


class MappedPages:
    """Lets the pages of memory-mapped files under ``folder`` go once their data has been copied out.

    Why: a cached split is read from its memory-mapped Arrow file and copied, chunk by chunk, into nlptune's own
    arrays. Every page read stays resident (and counted in the process's memory) until the mapping goes, so the
    peak held both the copy and the file: ~100 MB more for a million rows than tokenizing afresh
    (benchmarks/RESULTS.md). `release` gives back the pages of buffers already copied. Only whole pages inside a
    read-only mapping of a file under ``folder`` are released (listed from /proc/self/maps when created), so
    memory that is not such a file's - a buffer the reader copied, anonymous memory - is never touched. A no-op
    where /proc or madvise is missing (not Linux)."""

    def __init__(self, folder) -> None:
        self.ranges: list[tuple[int, int]] = []
        root = os.path.realpath(folder) + os.sep
        try:
            with open("/proc/self/maps") as maps:
                for line in maps:
                    parts = line.split(maxsplit=5)  # range, permissions, offset, device, inode, path
                    # read-only mappings only: dropping a written private page would lose the write
                    if len(parts) == 6 and parts[1][1] == "-" and parts[5].rstrip("\n").startswith(root):
                        start, end = (int(x, 16) for x in parts[0].split("-"))
                        self.ranges.append((start, end))
            self._madvise = ctypes.CDLL(None, use_errno=True).madvise if self.ranges else None
        except (OSError, AttributeError):
            self.ranges = []

    def release(self, address: int, size: int) -> None:
        """Drop the whole pages of [address, address + size) that lie in one of the file mappings."""
        page = mmap.PAGESIZE
        first, last = -(-address // page) * page, (address + size) // page * page  # inward: whole pages only
        for start, end in self.ranges:
            lo, hi = max(first, start), min(last, end)
            if lo < hi:
                self._madvise(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), _MADV_DONTNEED)
