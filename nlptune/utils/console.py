"""One rich console for the whole program; quiet on every rank but 0."""
from __future__ import annotations

import os

from rich.console import Console

_console: Console | None = None


def process_rank() -> int:
    """This process's global rank as set by torchrun / accelerate launch (0 when not distributed)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


def console() -> Console:
    """The shared console; on ranks other than 0 it writes nothing."""
    global _console
    if _console is None:
        _console = Console(stderr=False, quiet=process_rank() != 0, highlight=False)
    return _console


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) progress and tables, e.g. for logs meant for files."""
    console().quiet = quiet or process_rank() != 0


def warn(message: str) -> None:
    """A one-line warning, printed once on rank 0."""
    console().print(f"[yellow]warning:[/yellow] {message}")
