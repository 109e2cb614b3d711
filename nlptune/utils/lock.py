"""One process per folder: a lock file holding its holder's host, pid, start time and command.

Taken by hard-linking a fully written file into place (`publish_new_file`: atomic, never through a link, never
seen empty) before anything else is written in the folder, removed when the holder is done (also on exceptions
and Ctrl-C). A lock whose holder is gone (same host, and the pid no longer runs or is now another process) is
stale and taken over; the take-over runs under an flock on the folder, so two processes that both found it stale
cannot both take it.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Iterator

from nlptune.utils.errors import NlptuneError
from nlptune.utils.files import disk_error, ensure_dir, publish_new_file, refuse_link, refuse_links_in
from nlptune.utils.plain import parse_json
from nlptune.utils.processes import alive, identity

LOCK_FILE = ".nlptune.lock"


class LockedError(NlptuneError):
    """Another live process holds the folder."""


def describe_holder(holder: dict) -> str:
    """``pid 123 on host h since 2026-01-01 10:00:00 (nlptune train ...)``."""
    command = f" ({holder['command']})" if holder.get("command") else ""
    return f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('since')}{command}"


def read_holder(path: Path) -> dict | None:
    """The holder recorded in the lock file ``path`` (None: no lock file; {} when unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    with os.fdopen(fd, "rb") as handle:
        try:
            holder = parse_json(handle.read(65536) or b"{}")
        except ValueError:  # a holder killed while writing it: empty or cut short
            return {}
    return holder if isinstance(holder, dict) else {}


@contextlib.contextmanager
def _folder_flock(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


class FolderLock:
    """The lock of one folder (a run directory, a sweep directory); `acquire` refuses a live holder."""

    def __init__(self, folder: str | Path, what: str = "folder"):
        self.folder, self.what = Path(folder), what
        self.path = self.folder / LOCK_FILE
        self.me: dict | None = None

    def _try_create(self) -> bool:
        me = {**identity(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": " ".join(["nlptune"] + sys.argv[1:])[:300]}
        try:  # the file appears with its holder in it: an empty one is never a live holder's
            publish_new_file(self.path, (json.dumps(me) + "\n").encode())
        except FileExistsError:
            return False
        self.me = me
        return True

    def acquire(self) -> "FolderLock":
        """Take the lock or raise `LockedError` naming the holder (a stale lock is taken over, with a note)."""
        refuse_link(self.folder, f"(the {self.what})")
        refuse_link(self.path, "(the lock file)")
        try:
            if self._try_create():
                return self
            with _folder_flock(self.folder):
                holder = read_holder(self.path)
                if holder and alive(holder) and holder.get("pid") != os.getpid():
                    raise LockedError(
                        f"{self.folder} is in use by another nlptune process: {describe_holder(holder)}. Two "
                        f"processes writing the same {self.what} would mix their files -> wait for it to end "
                        f"(or stop it), or choose another folder. If that process is gone for sure, delete "
                        f"{self.path}")
                if holder is not None:  # stale: its holder is gone (or it is this very process's leftover)
                    os.unlink(self.path)
                    if holder:
                        print(f"note: taking over the stale lock of {self.folder} ({describe_holder(holder)} "
                              "no longer runs)", file=sys.stderr, flush=True)
                if self._try_create():
                    return self
        except OSError as err:
            raise disk_error(self.path, err) from None
        holder = read_holder(self.path) or {}
        raise LockedError(f"{self.folder} is in use by another nlptune process: {describe_holder(holder)}")

    def release(self) -> None:
        """Remove the lock file if it is still ours (a no-op when not held)."""
        me, self.me = self.me, None
        if me is None:
            return
        holder = read_holder(self.path)
        if holder and holder.get("pid") == me["pid"] and holder.get("start") == me["start"] \
                and holder.get("since") == me["since"]:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def claim_folder(folder: str | Path, what: str = "folder") -> Iterator[Path]:
    """Hold ``folder`` for the block: it must not be a link nor hold links, is created, and is locked
    (`FolderLock`); another process holding it is refused with `LockedError`."""
    folder = Path(folder)
    refuse_links_in(folder, f"(the {what} directory)")
    created = not os.path.lexists(folder)
    ensure_dir(folder, f"(the {what} directory)")
    try:
        with FolderLock(folder, f"{what} directory"):
            yield folder
    finally:
        if created:  # stopped before writing anything: no empty folder left behind
            with contextlib.suppress(OSError):
                folder.rmdir()
