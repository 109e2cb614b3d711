"""The base of every error a user can cause, and what an operating-system error means for the user.

They live in utils, the bottom layer, so that the file helpers (utils/files.py) can raise user errors too;
nlptune.config.errors re-exports `NlptuneError` and uses `explain_os_error` for the CLI's last line of defence.
"""
from __future__ import annotations

import errno
import os
import re


class NlptuneError(Exception):
    """A problem the user can fix (config, data, command line); printed as one clear message, no traceback."""


# errno -> (what happened, what to do): the one table for writes (DiskError) and the CLI (describe_os_error)
_OS_REASONS = {
    errno.ENOSPC: ("no space left on the device (the disk is full)", "free some space (or choose a folder on "
                   "another disk), then run the command again"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space within your quota (or use another folder)"),
    errno.EROFS: ("the file system is read-only", "choose a folder on a writable file system (e.g. "
                  "output_dir=...)"),
    errno.EACCES: ("permission denied", "check the permissions of the path, or choose one you can write to / read"),
    errno.EPERM: ("operation not permitted", "check the permissions of the path, or choose one you can use"),
    errno.ENOENT: ("no such file or folder", "check the path: it (or a folder above it) does not exist"),
    errno.ENOTDIR: ("a file is in the way where a folder is expected", "move that file away (or choose another "
                    "path)"),
    errno.EISDIR: ("a folder where a file is expected", "give the path of a file (or move the folder away)"),
    errno.EEXIST: ("something else is already there", "move it away (or choose another path)"),
    errno.ENAMETOOLONG: ("the path is too long", "shorten the path"),
    errno.ELOOP: ("the path is a symbolic link (or a loop of them) and nlptune never writes through one",
                  "remove the link (or choose another path)"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) or close other programs"),
}


def file_in_the_way(path) -> str | None:
    """The first existing part of ``path`` (itself or a folder above) that is not a folder, if any."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None
    current = os.path.abspath(os.fsdecode(path))
    while True:
        if os.path.lexists(current):
            return None if os.path.isdir(current) else current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def explain_os_error(code: int | None, path=None, detail: str = "") -> tuple[str, str]:
    """``(what happened, what to do)`` for an OS error ``code`` on ``path``; a file standing where a folder
    is expected is named (mkdir under a file says only "File exists")."""
    what, fix = _OS_REASONS.get(code, (detail or (os.strerror(code) if code else "an OS error"),
                                       "check the path and the disk"))
    blocker = file_in_the_way(path) if code in (errno.EEXIST, errno.ENOTDIR) else None
    if blocker is not None:
        what = f"{blocker} is a file where a folder is expected"
        fix = "choose another path, or move the file away"
    return what, fix


# What torch's allocators say when an allocation fails: the CPU allocator raises a plain RuntimeError
# ("DefaultCPUAllocator: can't allocate memory: you tried to allocate N bytes"), CUDA an OutOfMemoryError.
_OUT_OF_MEMORY = ("can't allocate memory", "out of memory")
_ALLOCATION = re.compile(r"tried to allocate (\d+(?:\.\d+)?) ?(bytes|[KMGT]i?B)", re.IGNORECASE)


def out_of_memory(err: BaseException) -> str | None:
    """One line for an error that means memory ran out (Python's MemoryError, torch's CPU or CUDA allocator): what
    was asked for when the allocator says; None for any other error."""
    text = str(err)
    if not (isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError"
            or (isinstance(err, RuntimeError) and any(sign in text.lower() for sign in _OUT_OF_MEMORY))):
        return None
    found = _ALLOCATION.search(text)
    if found and found.group(2) == "bytes":
        size = float(found.group(1))
        asked = f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"
    else:
        asked = f"{found.group(1)} {found.group(2)}" if found else None
    return f"out of memory ({f'an allocation of {asked} failed' if asked else type(err).__name__})"
