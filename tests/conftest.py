"""Shared fixtures: paths, a CLI runner (child processes, offline; see tests/cli_server.py) and a tiny random
"pretrained" model."""
from __future__ import annotations

import json
import locale
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shared data: $NLPTUNE_DATA_DIR when set (as the README tells users), else ../shared/data next to the
# checkout; never copied into the repository.
DATA_DIR = Path(os.environ.get("NLPTUNE_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")
# The start of the skip reason of a test that needs the shared data and finds none; CI fails on it.
NO_DATA = "shared data not found"

# Words of the tiny BERT vocabulary: enough to tokenize the demo task and simple English sentences.
TINY_WORDS = ("the a an and or but of to in on is was were it this that film story plot cast music ending "
              "script acting good great bad awful boring dull very really quite movie man woman plays "
              "playing guitar dog cat runs running he she they said not no yes , . ! ? ' ##s "
              "##ing ##ed").split()

# Environment variables that would make a child process think it is part of a distributed launch.
_LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                  "ACCELERATE_USE_CPU", "ACCELERATE_MIXED_PRECISION")


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto`` (pyproject.toml): one worker per CPU this process may run on, at most 4. The affinity mask, not
    psutil's count of the host's physical cores, which a VM or container may not have."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder (``$NLPTUNE_DATA_DIR`` or ``../shared/data``: sst2, cola, subj, mrpc, stsb, ...);
    tests that need it skip, saying why, when it is absent (and fail under CI, see `pytest_sessionfinish`)."""
    if not (DATA_DIR / "sst2" / "train.jsonl").is_file():
        source = "$NLPTUNE_DATA_DIR" if os.environ.get("NLPTUNE_DATA_DIR") else "../shared/data next to the checkout"
        pytest.skip(f"{NO_DATA} at {DATA_DIR} ({source}); set NLPTUNE_DATA_DIR to the folder holding "
                    "<task>/train.jsonl")
    return DATA_DIR


_data_skips: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and isinstance(report.longrepr, tuple) and NO_DATA in str(report.longrepr[2]):
        _data_skips.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """Under CI (CI=true) a test skipped for want of the shared data fails the run: CI has the data."""
    if _data_skips and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        print(f"\nerror: {len(_data_skips)} tests skipped because the shared data was not found "
              f"(first: {_data_skips[0]}); CI must have it", file=sys.stderr)
        session.exitstatus = 1


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One tokenization cache for the whole session (NLPTUNE_CACHE_DIR), never the user's ~/.cache."""
    return tmp_path_factory.mktemp("nlptune-cache")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(cache: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: offline, private cache, one thread, no launcher leftovers."""
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCHER_VARS}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "NLPTUNE_CACHE_DIR": str(cache), "TOKENIZERS_PARALLELISM": "false",
                "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def make_env(cache_dir) -> Callable[..., dict[str, str]]:
    """``make_env(extra=None)``: the environment for a subprocess of nlptune (see `child_env`)."""
    return lambda extra=None: child_env(cache_dir, extra)


@pytest.fixture(scope="session", name="free_port")
def free_port_fixture() -> Callable[[], int]:
    """``free_port()``: a TCP port that was free a moment ago (for torchrun's rendezvous)."""
    return free_port


class _CliServer:
    """The client of tests/cli_server.py: runs ``python -m nlptune`` in children forked from one process that has
    imported the heavy dependencies already (see that file for why). Falls back to a plain subprocess when the
    server cannot fork safely or has died."""

    # Extra variables a forked child may get: read by nlptune when it runs. Others (HF_*, OMP_*, PYTHON*, ...) are
    # read by a library at import time, which the server did once with the base environment: those calls get a
    # fresh interpreter instead.
    _RUNTIME_VARS = ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM")

    def __init__(self, env: Mapping[str, str], scratch: Path):
        self.scratch = scratch
        self.lock = threading.Lock()
        to_server, self._request_fd = os.pipe()
        self._reply_fd, from_server = os.pipe()
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("cli_server.py")),
                                         str(to_server), str(from_server)], env=dict(env), cwd=scratch,
                                        pass_fds=(to_server, from_server), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_server)
        os.close(from_server)
        self.requests = os.fdopen(self._request_fd, "w")
        self.pending = b""  # reply bytes read but not yet returned as a line
        self.ready: bool | None = None  # unknown until the first call, so a session with no CLI call never waits

    def accepts(self, extra_env: Mapping[str, str] | None) -> bool:
        if self.ready is None:
            line = self._reply(timeout=300)
            self.ready = line == "ready to fork"
        return self.ready and all(k.startswith("NLPTUNE_") or k in self._RUNTIME_VARS for k in extra_env or {})

    def _reply(self, timeout: float) -> str | None:
        """The server's next line, or None after ``timeout`` seconds (read unbuffered so select sees everything)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            readable, _, _ = select.select([self._reply_fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._reply_fd, 4096) if readable else b""
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode()

    def run(self, args: list[str], env: Mapping[str, str], cwd: Path, stdin: str | None,
            timeout: float) -> subprocess.CompletedProcess | None:
        """The finished child, or None when the server is gone (the caller then starts a fresh interpreter)."""
        files = Path(tempfile.mkdtemp(dir=self.scratch))
        encoding = locale.getpreferredencoding(False)  # what subprocess's text mode would use both ways
        (files / "stdin").write_text(stdin or "", encoding=encoding)
        request = {"args": args, "env": dict(env), "cwd": str(cwd), "stdin": str(files / "stdin"),
                   "stdout": str(files / "stdout"), "stderr": str(files / "stderr")}
        for name in ("stdout", "stderr"):
            (files / name).touch()
        with self.lock:
            self.requests.write(json.dumps(request) + "\n")
            self.requests.flush()
            started = self._reply(timeout=60)
            if not (started or "").startswith("pid "):
                self.ready = False
                shutil.rmtree(files, ignore_errors=True)
                return None
            pid = int(started.split()[1])
            ended = self._reply(timeout=timeout)
            if ended is None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:  # it ended just now; the server has its exit status on the way
                    pass
                self._reply(timeout=60)
        out, err = ((files / name).read_text(encoding=encoding) for name in ("stdout", "stderr"))
        shutil.rmtree(files, ignore_errors=True)
        command = [sys.executable, "-m", "nlptune", *args]
        if ended is None:
            raise subprocess.TimeoutExpired(command, timeout, output=out, stderr=err)
        return subprocess.CompletedProcess(command, int(ended.split()[1]), out, err)

    def close(self) -> None:
        """Stop the server (no child is running: every call waits for its child), even mid-way through its imports."""
        self.requests.close()
        self.process.kill()
        self.process.wait()
        os.close(self._reply_fd)


@pytest.fixture(scope="session")
def run_cli(cache_dir, tmp_path_factory) -> Callable[..., subprocess.CompletedProcess]:
    """``run_cli(args, env=None, timeout=180, cwd=None, stdin=None, fresh=False)``: run ``python -m nlptune *args``
    in a child process (``stdin``: text given to its standard input; none: an empty one).

    Offline (HF_HUB_OFFLINE=1), with the session's NLPTUNE_CACHE_DIR; ``env`` adds or overrides variables.
    The working directory defaults to a scratch folder so a run without output_dir never writes into the repo.
    The child is forked from a process that has imported torch & co. already (tests/cli_server.py); ``fresh=True``
    starts a new interpreter instead. Returns the CompletedProcess (text mode, stdout and stderr captured).
    """
    scratch = tmp_path_factory.mktemp("cli-cwd")
    server = _CliServer(child_env(cache_dir), tmp_path_factory.mktemp("cli-server"))

    def run(args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 180,
            cwd: Path | None = None, stdin: str | None = None, fresh: bool = False) -> subprocess.CompletedProcess:
        args = [str(a) for a in args]
        if not fresh and server.accepts(env):
            done = server.run(args, child_env(cache_dir, env), cwd or scratch, stdin, timeout)
            if done is not None:
                return done
        return subprocess.run([sys.executable, "-m", "nlptune", *args], cwd=cwd or scratch,
                              env=child_env(cache_dir, env), capture_output=True, text=True, timeout=timeout,
                              input=stdin or "")

    yield run
    server.close()


def write_vocab(path: Path, words: Sequence[str] = TINY_WORDS) -> Path:
    """A BERT-style vocab.txt: the special tokens first, then ``words`` (deduplicated, in order)."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(dict.fromkeys(words))
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory) -> Path:
    """A folder holding a tiny random BERT encoder and its WordPiece tokenizer, loadable with Auto* classes."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = write_vocab(tmp_path_factory.mktemp("vocab") / "vocab.txt")
    tokenizer = BertTokenizerFast(vocab=str(vocab), do_lower_case=True)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=128)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
