"""The Accelerator a run trains with: device, precision, processes, and the checks that they agree."""
from __future__ import annotations

import functools
import os

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration

from nlptune.config.errors import NlptuneError
from nlptune.train import faults
from nlptune.train.precision import resolve_precision, say_if_bf16_is_emulated


def make_accelerator(trainer, **tracking_kwargs) -> Accelerator:
    """An Accelerator for ``trainer``; refuses to run on a GPU that is not there, or when the launcher and
    Accelerate disagree on processes."""
    if trainer.device == "cuda" and not torch.cuda.is_available():  # Accelerate would train on the CPU instead
        raise NlptuneError("trainer.device=cuda, but no CUDA GPU is visible to this process (torch "
                           f"{torch.__version__}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}): "
                           "set trainer.device=auto or cpu, or run where a GPU and a CUDA build of torch are")
    cpu = trainer.device == "cpu" or (trainer.device == "auto" and not torch.cuda.is_available())
    # one process may train several times (tuning trials, lr-find, tests) with other precisions; Accelerate keeps
    # the first one's settings in a process-wide singleton and refuses a change, so each run starts from a fresh
    # one (the process group lives in PartialState, which is kept)
    AcceleratorState._reset_state()
    # split_batches: the sampler yields global batches (trainer.batch_size x processes) that are cut into one
    # shard per process, so N processes see exactly the batches one process would with the same global batch
    precision = resolve_precision(trainer.mixed_precision, cpu)
    accelerator = Accelerator(cpu=cpu, mixed_precision=precision,
                              dataloader_config=DataLoaderConfiguration(split_batches=True),
                              gradient_accumulation_steps=trainer.gradient_accumulation_steps,
                              dynamo_backend="inductor" if trainer.compile else None,
                              kwargs_handlers=faults.process_group_kwargs(trainer.dist_timeout_s), **tracking_kwargs)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:
        raise NlptuneError(
            f"the launcher started {launched} processes but Accelerate runs {accelerator.num_processes}; "
            "on CPU launch with `torchrun --nproc_per_node N -m nlptune train ...` or "
            "`accelerate launch --multi_gpu --cpu --num_processes N -m nlptune train ...`")
    if trainer.threads:
        torch.set_num_threads(trainer.threads)
    if cpu:
        _warn_about_cpu_settings(trainer, accelerator.num_processes)
    say_if_bf16_is_emulated(precision if cpu else "no", f"trainer.mixed_precision={trainer.mixed_precision}",
                            "set trainer.mixed_precision=auto (fp32 on this CPU), unless this run must compute as "
                            "a bf16 run on a CPU with bf16 units did")
    return accelerator


def _warn_about_cpu_settings(trainer, processes: int) -> None:
    """Settings a CPU run accepts but does not honour, or that slow it: fp16 (Accelerate computes it in fp32 on a
    CPU) and more threads than the cores this process may use (they compete for them). Rank 0 says it, once per
    process (a sweep's in-process trials share the settings)."""
    from nlptune.utils.environment import usable_cores

    if trainer.mixed_precision == "fp16":
        _warn_once("trainer.mixed_precision=fp16 has no effect on a CPU: it computes in fp32 there (fp16 autocast is "
                   "for GPUs) -> set trainer.mixed_precision=auto (bf16 on CPUs with AMX bf16 units, fp32 elsewhere), "
                   "bf16 or no")
    cores = usable_cores()
    if trainer.threads * processes > cores:
        each = f" in each of {processes} processes" if processes > 1 else ""
        _warn_once(f"trainer.threads={trainer.threads}{each} is more than the {cores} CPU core(s) this process may "
                   "use: the threads compete for them and training slows -> set "
                   f"trainer.threads={max(1, cores // processes)} or fewer (0: torch's default)")


def warn_if_a_step_outlasts_an_epoch(trainer, batches_per_epoch: int, rows: int) -> None:
    """An epoch's last batches make an optimizer step whatever the count: a batch larger than the training set, or
    accumulating more batches than an epoch holds, then steps once per epoch over fewer rows than asked, a smaller
    effective batch than the config says."""
    if trainer.batch_size > rows:
        _warn_once(f"trainer.batch_size={trainer.batch_size} is more than the {rows} training rows: each epoch is "
                   f"one batch of {rows}, one optimizer step -> set trainer.batch_size below {rows} (e.g. "
                   f"{min(32, max(rows // 4, 1))})")
    elif trainer.gradient_accumulation_steps > batches_per_epoch:
        _warn_once(f"trainer.gradient_accumulation_steps={trainer.gradient_accumulation_steps} is more than the "
                   f"{batches_per_epoch} batch(es) of an epoch: each optimizer step accumulates one epoch "
                   f"({batches_per_epoch} batches of {trainer.batch_size}), not "
                   f"{trainer.gradient_accumulation_steps} -> set trainer.gradient_accumulation_steps="
                   f"{batches_per_epoch} or fewer, or a smaller trainer.batch_size")


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    from nlptune.utils.console import warn

    warn(message)
