"""Test helper: run ``nlptune`` and freeze the process (SIGSTOP) as soon as sweep trial K has started, so a
test can SIGKILL the sweep mid-trial at a known point, however slow the machine is. Test-only: it wraps
nlptune.tuning.objective.evaluate_config from the outside; nothing in nlptune reads it.

    python tune_killpoint.py 1 tune task=sst2 ...     # freeze when trial 1 starts training
"""
from __future__ import annotations

import os
import signal
import sys
import time


def install(number: int) -> None:
    from nlptune.tuning import objective

    original = objective.evaluate_config

    def evaluate_config(plan, overrides, run_dir, trial=None):
        if trial is not None and trial.number == number:
            os.kill(os.getpid(), signal.SIGSTOP)
        return original(plan, overrides, run_dir, trial)

    objective.evaluate_config = evaluate_config


def wait_stopped(proc, timeout: float = 300) -> None:
    """Wait until ``proc`` froze itself; fail if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the sweep exited ({proc.returncode}) before the kill point")
        try:
            state = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            state = "?"
        if state in ("T", "t"):
            return
        time.sleep(0.05)
    raise AssertionError("the sweep did not reach the kill point in time")


if __name__ == "__main__":
    install(int(sys.argv[1]))
    from nlptune.cli import main

    main(sys.argv[2:])
