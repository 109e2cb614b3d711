"""One rich console for the whole program; quiet on every rank but 0."""
from __future__ import annotations

import os

from rich.console import Console

_console: Console | None = None
_warnings: Console | None = None


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
    """A one-line warning on standard error, printed once on rank 0. `--quiet` does not silence warnings: it
    drops progress and tables, not what a user must know about their data, model or settings."""
    global _warnings
    if _warnings is None:
        _warnings = Console(stderr=True, quiet=process_rank() != 0, highlight=False)
    _warnings.print(f"[yellow]warning:[/yellow] {message}")


def quiet_libraries() -> None:
    """Silence the per-call progress bars and load reports of datasets/transformers: nlptune reports itself."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - both are hard dependencies
        pass
