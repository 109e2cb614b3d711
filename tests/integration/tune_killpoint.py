"""Test helper: run ``nlptune`` and freeze the process (SIGSTOP) as soon as sweep trial K has started, so a
test can SIGKILL the sweep mid-trial at a known point, however slow the machine is. Test-only: it wraps
nlptune.tuning.objective.evaluate_config from the outside; nothing in nlptune reads it.

    python tune_killpoint.py 1 tune task=sst2 ...     # freeze when trial 1 starts training
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


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


def kill_in_trial(number: int, args: list[str], env: dict, folder: Path) -> None:
    """Run ``nlptune ARGS`` until sweep trial ``number`` starts, then SIGKILL the whole sweep (its log:
    ``folder``/killed.log)."""
    with (folder / "killed.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, __file__, str(number), *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=folder)
        try:
            wait_stopped(proc)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


if __name__ == "__main__":
    install(int(sys.argv[1]))
    from nlptune.cli import main

    main(sys.argv[2:])
