"""Who a process is (host, pid, start time) and whether it still runs: a reused pid is not taken for alive.

Used by the run-directory lock (utils/lock.py) and by the sweep's orphaned-trial detection (tuning/study.py).
"""
from __future__ import annotations

import os
import socket
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None when there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, ValueError):
        return None
    return fields if len(fields) > 19 else None


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, from /proc), or None when it does not run
    (a zombie, which has exited, included)."""
    fields = _stat(pid)
    return None if fields is None or fields[0] in "ZX" else fields[19]


def process_state(pid: int) -> str:
    """'gone', 'stopped' or 'alive' for the process ``pid`` of this host."""
    fields = _stat(pid)
    if fields is None:
        return "gone"
    return {"Z": "gone", "X": "gone", "T": "stopped", "t": "stopped"}.get(fields[0], "alive")


def identity() -> dict:
    """This process: host, pid and start time."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": process_start(os.getpid())}


def alive(holder: dict | None) -> bool:
    """Whether the process ``holder`` (an `identity`) still runs. Another machine's process cannot be checked
    from here and counts as alive; on this machine the pid must run and have the same start time."""
    if not holder or holder.get("host") != socket.gethostname():
        return True
    try:
        pid = int(holder.get("pid", 0))
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    if process_start(os.getpid()) is None:  # no /proc (macOS): the pid alone has to do
        return _pid_runs(pid)
    start = process_start(pid)
    return start is not None and start == holder.get("start")


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # runs, as another user
        return True
    return True


def forget_unhandled_interrupt() -> None:
    """A Ctrl-C that lands while an extension runs Python code through PyRun_String (seen while training
    writes checkpoints) marks the KeyboardInterrupt "unhandled" in CPython even though it is handled, and at
    exit CPython then kills itself with SIGINT instead of exiting with 130 (a shell sees 130 either way, a
    parent process sees -2). Evaluating any code through PyRun_SimpleString resets that mark: call this once a
    KeyboardInterrupt is handled and the process is to exit with its own code."""
    import ctypes

    try:
        ctypes.pythonapi.PyRun_SimpleString(b"pass")
    except (AttributeError, OSError):  # not CPython: no such mark
        pass
