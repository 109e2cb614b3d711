"""The precision a run computes in (``trainer.mixed_precision``) and the autocast that gives it, for training,
evaluation, the cost measure, a distillation teacher and a finished run's eval and predict.

No Accelerate here: `nlptune eval` and `nlptune predict` read a run's precision without importing it.
"""
from __future__ import annotations

import contextlib
import functools
import platform

import torch

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # anything else: fp32, no autocast


def resolve_precision(requested: str, cpu: bool) -> str:
    """``trainer.mixed_precision`` as Accelerate takes it. ``auto`` is bf16 autocast on CPUs with AMX bf16 tiles
    (MiniLM: 1.4x the fp32 samples/s at the same accuracy, benchmarks/RESULTS.md) and fp32 elsewhere: on GPUs,
    fine-tuning batches are launch-bound and bf16 autocast measured slower there."""
    if requested != "auto":
        return requested
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private, so probed: absent means no
    return "bf16" if cpu and amx is not None and amx() else "no"


def cpu_precision(requested: str) -> str:
    """What a CPU computes a run of ``trainer.mixed_precision`` = ``requested`` in: "bf16" (autocast) or "fp32"
    (Accelerate runs fp16 in fp32 on a CPU, so evaluation there did too)."""
    return "bf16" if resolve_precision(requested, cpu=True) == "bf16" else "fp32"


def emulates_bf16() -> bool:
    """Whether this is an x86 CPU without bf16 units (neither AMX tiles nor AVX-512 BF16: an AVX2-only EPYC, say),
    where oneDNN emulates bf16 autocast. There MiniLM trained at 2.0 samples/s in bf16 against 39 in fp32, a BiLSTM
    at the same speed either way (benchmarks/RESULTS.md, "bf16 on a CPU without bf16 units"). Other architectures
    are not judged (False)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return not any(probe is not None and probe() for probe in probes)  # private, so probed: absent means no


def say_if_bf16_is_emulated(precision: str, what: str, fix: str) -> None:
    """Warn, once per process for each ``what`` (a sweep's in-process trials, or repeated predictions, would repeat
    it), when ``precision`` is bf16 on a CPU that `emulates_bf16`; the warning ends in ``fix``."""
    if precision == "bf16" and emulates_bf16():
        _say_once(what, fix)


@functools.lru_cache(maxsize=None)
def _say_once(what: str, fix: str) -> None:
    from nlptune.utils.console import warn

    warn(f"{what} computes in bf16 autocast, but this CPU has no bf16 units (no AMX, no AVX-512 BF16): bf16 is "
         "emulated here, and models made of large matrix products run many times slower than in fp32 (a MiniLM "
         f"trained 20x slower on an AVX2 CPU; a BiLSTM about as fast); {fix}")


def autocast(device_type: str, precision: str):
    """The autocast context of ``precision`` (bf16, fp16) on ``device_type``; a no-op for anything else (fp32)."""
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device_type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


class Autocast(torch.nn.Module):
    """``model`` whose forward pass runs under the autocast of ``precision`` on the CPU and returns its floating
    outputs as float32: what Accelerate makes of a model it prepares for mixed precision, so that the losses,
    predictions and thresholds read the outputs exactly as they did when the run evaluated during training."""

    def __init__(self, model: torch.nn.Module, precision: str):
        super().__init__()
        self.model, self.precision = model, precision

    def forward(self, **inputs) -> dict:
        with autocast("cpu", self.precision):
            output = self.model(**inputs)
        return {name: value.float() if torch.is_tensor(value) and value.is_floating_point() else value
                for name, value in output.items()}


def at_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """``model`` computing in ``precision`` on the CPU: itself for fp32, else wrapped in `Autocast`."""
    return Autocast(model, precision) if precision in AUTOCAST_DTYPES else model
