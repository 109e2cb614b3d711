"""File helpers: sha256, and the one way nlptune writes files it owns.

Every write goes through here so that three promises hold everywhere:

* nothing is written through a symbolic link: a destination that is a link is refused (`LinkError`), new
  files are created with ``O_EXCL | O_NOFOLLOW`` and appends open with ``O_NOFOLLOW``, so a link planted
  in a run directory cannot redirect a write to a file elsewhere;
* a reader never sees half a file: `atomic_write_bytes` writes a temporary file next to the destination,
  flushes it to disk and renames it into place;
* an OS error while writing (disk full, read-only file system, permission denied, a file where a folder
  should be) ends in one message naming the file and the fix (`DiskError`), never a traceback.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO

from nlptune.utils.errors import NlptuneError, explain_os_error

_OS_ERROR_IN_TEXT = re.compile(r"os error (\d+)")  # how Rust libraries (safetensors, tokenizers) report errno


class DiskError(NlptuneError):
    """An OS error while writing a file (disk full, read-only, permission, ...), with the file and the fix."""

    def __init__(self, path: str | Path, code: int | None, detail: str = ""):
        self.path, self.errno = Path(path), code
        what, fix = explain_os_error(code, path, detail)
        super().__init__(f"cannot write {self.path}: {what} -> {fix}")


class LinkError(NlptuneError):
    """A symbolic link where nlptune would write: refused, so a planted link cannot redirect a write."""

    def __init__(self, link: str | Path, what: str = ""):
        self.path = Path(link)
        try:
            target = f" (pointing to {os.readlink(link)})"
        except OSError:
            target = ""
        about = f" {what}" if what else ""
        super().__init__(f"{link}{about} is a symbolic link{target}; nlptune never writes through a link -> "
                         "remove the link, or choose another path")


def _umask() -> int:
    """This process's file-creation mask, read without changing it (Linux), else set and restored at once."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_created(*paths: str | Path) -> None:
    """Give files a library wrote readable by its owner only (safetensors writes 0600) the mode every other file
    of a run gets (0666 less the umask), so that a run shared with a group shares its weights too. Links and
    missing paths are left alone."""
    mode = 0o666 & ~_umask()
    for path in paths:
        if os.path.isfile(path) and not os.path.islink(path):
            os.chmod(path, mode)


def given_path(value: str) -> Path:
    """A file named by a user in ``key=value``: one layer of matching quotes dropped (as Hydra reads a quoted value,
    'recipe="~/r.yaml"') and a leading ``~`` expanded (a shell leaves it to nlptune in a quoted or zsh argument)."""
    text = str(value)
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return Path(text).expanduser()


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks (data files and checkpoints can be large)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_sha256(folder: str | Path, skip: Iterable[str] = (),
                  content: Callable[[Path], str] = sha256_file) -> str:
    """One sha256 over a folder: every regular file (hidden ones, ``__pycache__`` and the relative paths in
    ``skip`` left out) by relative path and ``content(path)`` (by default the sha256 of its bytes)."""
    folder, skipped = Path(folder), set(skip)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative in skipped or any(part.startswith(".") or part == "__pycache__" for part in relative.split("/")):
            continue
        digest.update(relative.encode() + b"\0" + content(path).encode() + b"\n")
    return digest.hexdigest()


def errno_of(err: BaseException) -> int | None:
    """The OS error number behind ``err``: an OSError's own, or the one a Rust library wrote in its text."""
    if isinstance(err, OSError):
        return err.errno
    found = _OS_ERROR_IN_TEXT.search(str(err))
    return int(found.group(1)) if found else None


def disk_error(path: str | Path, err: BaseException, temporary: str | Path | None = None) -> DiskError:
    """``err`` (an OSError, or a library's error that carries an errno) as a `DiskError` about ``path``, or about
    the file the error names; ``temporary``: nlptune's own file written on the way to ``path`` (an atomic write),
    never named to the user, who asked for ``path``."""
    detail = err.strerror if isinstance(err, OSError) and err.strerror else str(err).splitlines()[0][:200]
    named = getattr(err, "filename", None)
    if temporary is not None and named is not None and Path(named) == Path(temporary):
        named = None
    return DiskError(named or path, errno_of(err), detail)


@contextlib.contextmanager
def os_errors_as_disk_errors(path: str | Path) -> Iterator[None]:
    """Inside the block, an OS error while writing ``path`` (or a file under it) becomes a `DiskError`: an
    OSError, or a library's own error that carries one (safetensors, tokenizers: "... (os error 28)")."""
    try:
        yield
    except NlptuneError:
        raise
    except Exception as err:
        if not isinstance(err, OSError) and errno_of(err) is None:
            raise
        raise disk_error(path, err) from None


def refuse_link(path: str | Path, what: str = "") -> None:
    """Raise `LinkError` when ``path`` itself is a symbolic link (a dangling one included)."""
    if os.path.islink(path):
        raise LinkError(path, what)


def refuse_special_file(path: str | Path) -> None:
    """Raise `NlptuneError` when ``path`` exists and is neither a regular file nor a link (which `refuse_link`
    judges): a write renames a new file over its destination, which would replace a device such as /dev/null,
    a named pipe or a socket with a plain file."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:  # missing (or unreadable: the write itself reports that)
        return
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        return
    kind = "a folder" if stat.S_ISDIR(mode) else "a device, named pipe or socket"
    raise NlptuneError(f"{path} is {kind}, not a file; nlptune writes only regular files and never replaces "
                       "anything else -> give the path of a new or regular file")


def links_under(root: str | Path, names: Iterable[str]) -> list[Path]:
    """The symbolic links among ``root/name`` for each name, and anywhere inside those that are folders."""
    root, found = Path(root), []
    for name in names:
        path = root / name
        if path.is_symlink():
            found.append(path)
        elif path.is_dir():
            for folder, dirs, files in os.walk(path):  # os.walk does not descend into linked folders
                found += [Path(folder) / n for n in sorted(dirs + files) if os.path.islink(os.path.join(folder, n))]
    return found


def refuse_links_in(folder: str | Path, what: str = "") -> None:
    """Refuse an output folder nlptune is about to write into when it, or anything inside it, is a link."""
    folder = Path(folder)
    refuse_link(folder, what)
    if folder.is_dir():
        found = links_under(folder, sorted(os.listdir(folder)))
        if found:
            raise LinkError(found[0], f"(in {what or folder})")


def ensure_dir(path: str | Path, what: str = "") -> Path:
    """Create the folder ``path`` (and its parents) unless it exists; refuse it when it is a link."""
    path = Path(path)
    refuse_link(path, what)
    with os_errors_as_disk_errors(path):
        path.mkdir(parents=True, exist_ok=True)
    refuse_link(path, what)  # created between the two checks by someone else
    return path


def create_new_file(path: Path, private: bool = False) -> int:
    """A file descriptor of a file that did not exist (never a link, never someone else's file); ``private``:
    readable by its owner only (it holds a secret)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o600 if private else 0o644)


def fsync_path(path: str | Path) -> None:
    """Flush ``path`` (a file, or a folder's entries) to disk."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # folders cannot be opened on some platforms; the files themselves were synced
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, *, sync: bool = True, private: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically: a fresh temporary file beside it, flushed (``sync``), renamed
    over it. A reader sees the old file or the new one; a destination that is a link is refused; an OS error
    leaves the old file as it was and raises `DiskError`. ``private``: readable by its owner only."""
    path = Path(path)
    refuse_link(path)
    refuse_special_file(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")  # "*.tmp": easy to spot
    try:
        fd = create_new_file(tmp, private)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        refuse_link(path)  # rename replaces a link rather than following it; still, never touch one
        os.replace(tmp, path)
        if sync:
            fsync_path(path.parent)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise disk_error(path, err, temporary=tmp) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str, *, sync: bool = True, encoding: str = "utf-8",
                      private: bool = False) -> Path:
    """`atomic_write_bytes` of ``text``."""
    return atomic_write_bytes(path, text.encode(encoding), sync=sync, private=private)


def publish_new_file(path: str | Path, data: bytes) -> None:
    """Create ``path``, which must not exist (`FileExistsError` otherwise, also for a link there), holding
    ``data`` from the moment it appears: written and flushed under a temporary name beside it, then hard-linked
    into place (atomic, and it never replaces anything). A reader never sees it empty or half written, as it
    could between an ``O_EXCL`` create and its write: a lock file read in that moment looked abandoned and was
    taken over (two runs started together then wrote one run directory). Where hard links are not supported,
    falls back to an ``O_EXCL`` create and a write."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    write_new_bytes(temporary, data, sync=True)
    try:
        os.link(temporary, path, follow_symlinks=False)  # FileExistsError (EEXIST) passes through below
    except OSError as err:  # no hard links on this file system (some network and FUSE mounts)
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        with os.fdopen(create_new_file(path), "wb") as handle:  # FileExistsError when taken meanwhile
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def write_new_bytes(path: str | Path, data: bytes, *, sync: bool = True) -> Path:
    """Write a file that must not exist yet (a file of a folder being built, e.g. a checkpoint's): created
    with ``O_EXCL | O_NOFOLLOW``, so an existing file or link there is never overwritten."""
    path = Path(path)
    with os_errors_as_disk_errors(path):
        with os.fdopen(create_new_file(path), "wb") as handle:
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
    return path


def open_append(path: str | Path, *, buffering: int = 1) -> TextIO:
    """``path`` opened for appending text (created if missing), never through a link."""
    path = Path(path)
    refuse_link(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    with os_errors_as_disk_errors(path):
        return os.fdopen(os.open(path, flags, 0o644), "a", buffering=buffering, encoding="utf-8")


def remove_tree(path: str | Path) -> None:
    """Delete the folder ``path``; a link there is refused (its target is never touched), and links inside
    are removed as links (shutil.rmtree does not follow them)."""
    refuse_link(path)
    with os_errors_as_disk_errors(path):
        shutil.rmtree(path)
