"""Shared fixtures: paths, a CLI runner (subprocess, offline) and a tiny random "pretrained" model."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
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


@pytest.fixture(scope="session")
def run_cli(cache_dir, tmp_path_factory) -> Callable[..., subprocess.CompletedProcess]:
    """``run_cli(args, env=None, timeout=180, cwd=None, stdin=None)``: run ``python -m nlptune *args`` in a
    subprocess (``stdin``: text given to its standard input).

    Offline (HF_HUB_OFFLINE=1), with the session's NLPTUNE_CACHE_DIR; ``env`` adds or overrides variables.
    The working directory defaults to a scratch folder so a run without output_dir never writes into the repo.
    Returns the CompletedProcess (text mode, stdout and stderr captured).
    """
    scratch = tmp_path_factory.mktemp("cli-cwd")

    def run(args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 180,
            cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nlptune", *map(str, args)], cwd=cwd or scratch,
                              env=child_env(cache_dir, env), capture_output=True, text=True, timeout=timeout,
                              input=stdin)

    return run


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
