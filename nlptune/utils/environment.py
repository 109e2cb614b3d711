"""What a run ran on: package versions, git commit, python, OS, devices, command line."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from nlptune.utils.shipped import CHECKOUT_ROOT

PACKAGES = ("nlptune", "torch", "transformers", "datasets", "accelerate", "tokenizers", "safetensors", "hydra-core",
            "optuna", "numpy")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape a run's result (None when absent)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the nlptune checkout (with '-dirty' when modified), or None outside git."""
    root = path or CHECKOUT_ROOT
    if path is None and not (root / ".git").exists():
        return None  # an installed nlptune: its site-packages may sit inside someone else's repository
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask: a container's or taskset's share, not the
    machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def devices() -> list[str]:
    """Names of the compute devices this process can see."""
    import torch

    if torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return [f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"]


def describe() -> dict:
    """The environment section of a run manifest."""
    return {"versions": package_versions(), "git_commit": git_commit(), "python": sys.version.split()[0],
            "os": platform.platform(), "devices": devices(), "command": sys.argv}
