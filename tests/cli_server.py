"""A fork server for the tests' CLI runs: one process imports nlptune's heavy dependencies once, then forks a
fresh child per ``python -m nlptune ...`` the tests ask for.

Why: a CLI process spends ~8 s of its ~10 s in a test importing torch (and torch._dynamo, which every torch
optimizer pulls in), transformers, datasets, accelerate, scikit-learn and SciPy; the suite runs a few hundred of
them on two cores. A forked child is still its own process — its own pid, file descriptors, working directory,
environment, exit status and signals — and it runs `python -m nlptune` through `runpy`, exactly as the
interpreter does; only the imports are already done. Tests whose point is a brand-new interpreter (import rules,
hash seeds across two processes) ask `run_cli(..., fresh=True)` for a real subprocess.

Protocol (its own pipe pair, not stdin/stdout): the client writes one JSON request per line
(``args``, ``env``, ``cwd``, ``stdin``/``stdout``/``stderr`` file paths); the server answers ``pid <n>`` when the
child started and ``exit <code>`` when it ended (negative: killed by that signal, as `subprocess` reports it).
"""
from __future__ import annotations

import gc
import json
import os
import runpy
import sys
from pathlib import Path

# What a training, tuning or evaluation run imports; each is imported once here instead of in every child.
PRELOAD = ("torch", "torch._dynamo", "torch.utils.data", "numpy", "scipy.stats", "sklearn.metrics", "transformers",
           "transformers.models.bert.modeling_bert", "tokenizers", "datasets",
           "accelerate", "hydra", "omegaconf", "optuna", "rich.console", "safetensors.torch", "seqeval.metrics",
           "nlptune.cli", "nlptune.commands.train", "nlptune.train.loop", "nlptune.models", "nlptune.metrics",
           "nlptune.tuning.sweep", "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.ticker")


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # an optional package missing only costs its import time in the child
            pass
    # the imported modules' objects live on unchanged in every child: keep its collector from walking them at each
    # collection (a fresh interpreter walks them; that costs time, not behaviour)
    gc.collect()
    gc.freeze()


# Threads that may run beside the forking one: pyarrow's jemalloc purges in a background thread, and jemalloc's
# fork handlers take and release its locks around a fork (the child restarts the thread when it needs it).
FORK_SAFE_THREADS = {"jemalloc_bg_thd"}


def _unsafe_threads() -> list[str]:
    """The names of this process's other OS threads that could hold a lock at a fork (forking is safe without)."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return ["(unknown: no /proc)"]
    names = [(task / "comm").read_text().strip() for task in tasks.iterdir() if int(task.name) != os.getpid()]
    return [name for name in names if name not in FORK_SAFE_THREADS]


def _serve(requests, replies) -> dict | None:
    """Answer requests until the client closes the pipe; return the request in a forked child, None at the end."""
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            return request
        replies.write(f"pid {pid}\n")
        replies.flush()
        _, status = os.waitpid(pid, 0)
        replies.write(f"exit {os.waitstatus_to_exitcode(status)}\n")
        replies.flush()
    return None


def _become_cli(request: dict, control: tuple[int, int]) -> None:
    """Turn this forked child into ``python -m nlptune *args`` with the request's files, directory and environment."""
    for fd in control:
        os.close(fd)
    for target, path, mode in ((0, request["stdin"], os.O_RDONLY), (1, request["stdout"], os.O_WRONLY),
                               (2, request["stderr"], os.O_WRONLY)):
        fd = os.open(path, mode)
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # `python -m` puts the working directory first on sys.path and the module's path in argv[0] (runpy does that)
    sys.path[0] = os.getcwd()
    sys.argv = ["nlptune", *request["args"]]
    runpy.run_module("nlptune", run_name="__main__", alter_sys=True)


def main() -> None:
    read_fd, write_fd = int(sys.argv[1]), int(sys.argv[2])
    _preload()
    with os.fdopen(read_fd, "r", closefd=False) as requests, os.fdopen(write_fd, "w", closefd=False) as replies:
        unsafe = _unsafe_threads()
        replies.write(f"ready {' '.join(unsafe) or 'to fork'}\n")
        replies.flush()
        if unsafe:
            return
        request = _serve(requests, replies)
    if request is not None:
        _become_cli(request, (read_fd, write_fd))


if __name__ == "__main__":
    main()
