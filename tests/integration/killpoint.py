"""Test helper: run ``nlptune`` and freeze the process (SIGSTOP) at an exact checkpoint event, so the test
can SIGKILL it at a known point. Test-only: it wraps functions of nlptune.train.checkpoint from the outside;
nothing in nlptune reads these settings.

    python killpoint.py after_save:4 train ...        # stop once the checkpoint of step 4 is complete
    python killpoint.py before_manifest:6 train ...   # stop while step 6 is being written (files, no manifest)
    torchrun --nproc_per_node 2 killpoint.py ...      # the same in every process that reaches the event
    torchrun --nproc_per_node 2 killpoint.py after_save:2@1 ...   # only in rank 1

The process stops itself, so the test's kill lands at exactly that point, however slow the machine is.
"""
from __future__ import annotations

import os
import signal
import sys


def _freeze() -> None:
    os.kill(os.getpid(), signal.SIGSTOP)


def install(spec: str) -> None:
    from nlptune.train import checkpoint

    event, _, where = spec.partition(":")
    step, _, only_rank = where.partition("@")
    step = int(step)
    if only_rank and os.environ.get("RANK", "0") != only_rank:
        return
    if event == "after_save":
        original = checkpoint.save

        def save(root, at_step, *args, **kwargs):
            path = original(root, at_step, *args, **kwargs)
            if at_step == step:
                _freeze()
            return path

        checkpoint.save = save
    elif event == "before_manifest":
        original = checkpoint._finish

        def finish(tmp, final, at_step):
            if at_step == step:
                _freeze()
            return original(tmp, final, at_step)

        checkpoint._finish = finish
    else:
        raise SystemExit(f"unknown kill point {spec!r}")


if __name__ == "__main__":
    install(sys.argv[1])
    from nlptune.cli import main

    main(sys.argv[2:])


# ---------------------------------------------------------------- process control for the tests (Linux /proc)


def _stat(pid: int) -> list[str] | None:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (torchrun's workers run in their own sessions, so no killpg)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def rank_pid(root: int, rank: int) -> int | None:
    """The process of ``rank`` under ``root`` (``root`` itself when it is a single, unlaunched process)."""
    for pid in descendants(root):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return pid
    return root if rank == 0 and not descendants(root) else None


def wait_stopped(proc, rank: int = 0, timeout: float = 300) -> None:
    """Wait until ``rank`` froze itself at the kill point; fail if the run ends first."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run exited ({proc.returncode}) before reaching the kill point")
        pid = rank_pid(proc.pid, rank)
        if pid is not None and (_stat(pid) or ["?"])[0] in ("T", "t"):
            return
        time.sleep(0.05)
    raise AssertionError("the run did not reach the kill point in time")


def kill_all(proc) -> None:
    """SIGKILL the launched process and everything below it, as a preemption would."""
    for pid in [proc.pid] + descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
