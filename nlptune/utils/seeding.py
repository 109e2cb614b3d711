"""Seeding of every random number generator a run touches."""
from __future__ import annotations

import random


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def set_deterministic(enabled: bool) -> None:
    """Make torch pick deterministic kernels (``trainer.deterministic``), or restore its default.

    CPU runs are already bit-identical run to run (same machine, same thread count); on GPU, cuBLAS and some
    CUDA kernels (atomics in scatter/index_add backward, cuDNN autotuning) are not, and this makes them so at
    a speed cost that depends on the model (measure it: `benchmarks/measure_recipes.py --deterministic-cost`).
    An op without a deterministic implementation then raises instead of silently varying.
    Must run before the first CUDA matmul: cuBLAS reads CUBLAS_WORKSPACE_CONFIG when its handle is created.
    """
    import os

    import torch

    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # only on a change: the call imports torch's compiler stack (torch._dynamo), which a run needs for nothing else
    changed = enabled != torch.are_deterministic_algorithms_enabled()
    if changed or torch.is_deterministic_algorithms_warn_only_enabled():
        torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False if enabled else torch.backends.cudnn.benchmark
