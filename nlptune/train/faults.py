"""Faults during training: a non-finite loss, and a process that dies, hangs or fails in a multi-process run.

* `NonFiniteWatch` remembers on the device, without a host sync per step, the first step whose loss was
  NaN/inf; the loop checks it before every log line, evaluation and checkpoint, so no checkpoint ever holds
  the weights of a diverged run.
* `Guard` wraps a run. Every collective has a timeout (`trainer.dist_timeout_s`, given to the process
  group), so a rank waiting on a dead or hung peer stops within that time instead of torch's 10-30 min.
  Each rank publishes its pid and phase in the launcher's key-value store; when a rank fails it records why,
  and a rank that lost its peers reads those records to say which rank failed, how, and in which phase.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import torch

from nlptune.config.errors import NlptuneError
from nlptune.utils.processes import process_state
from nlptune.utils.plain import parse_json

_runs = 0  # runs started in this process: keys of successive runs (tuning trials) never collide


class NonFiniteLossError(NlptuneError):
    """The training loss became NaN or infinite."""


class DistributedFault(NlptuneError):
    """Another process of a multi-process run died, hung or failed."""


class Terminated(BaseException):
    """SIGTERM received (the launcher stops the run, usually because another process failed)."""


def process_group_kwargs(timeout_s: float) -> list:
    """Accelerate kwargs handlers that bound every collective by ``timeout_s`` seconds."""
    from accelerate.utils import InitProcessGroupKwargs

    return [InitProcessGroupKwargs(timeout=timedelta(seconds=timeout_s))]


class NonFiniteWatch:
    """The first step whose loss was not finite, tracked on the device (no host sync per step)."""

    def __init__(self, device: torch.device):
        self.first = torch.full((), -1, dtype=torch.long, device=device)
        self.lrs: dict[int, float] = {}

    def observe(self, loss: torch.Tensor, step: int, lr: float) -> None:
        """Record ``loss`` of a batch that counts towards optimizer step ``step``, taken at learning rate ``lr``."""
        bad = ~torch.isfinite(loss.detach())
        self.first = torch.where(bad & (self.first < 0), step, self.first)
        self.lrs[step] = lr

    def check(self, accelerator, epoch: int, last_checkpoint: Path | None) -> None:
        """Raise `NonFiniteLossError` on every rank if any rank saw a non-finite loss since the last check."""
        first = self.first.reshape(1)
        if accelerator.num_processes > 1:
            first = accelerator.gather(first)
        bad = [int(s) for s in first.tolist() if s >= 0]
        if bad:
            step = min(bad)
            lr = self.lrs.get(step, float("nan"))
            kept = f"the last good checkpoint, {last_checkpoint}, is intact (to continue from it with a lower " \
                "learning rate: resume=auto resume_allow_changes=true optimizer.lr=...)" if last_checkpoint \
                else "no checkpoint had been written yet"
            raise NonFiniteLossError(
                f"the training loss became NaN or infinite at step {step} (epoch {epoch}, learning rate {lr:.4g}); "
                f"the run stopped and {kept}.\n  hint: lower optimizer.lr, keep gradient clipping on "
                "(trainer.max_grad_norm=1.0), add warmup (scheduler.warmup_ratio=0.1), prefer bf16 to fp16, "
                "and check the labels for extreme values")
        self.lrs.clear()


def _is_peer_failure(err: BaseException) -> bool:
    """True for errors that mean "another process is gone or not answering", not a problem of this one."""
    if isinstance(err, Terminated):
        return True
    dist_error = getattr(torch.distributed, "DistError", None)
    if dist_error is not None and isinstance(err, dist_error):
        return True
    text = str(err)
    markers = ("gloo", "NCCL", "Connection closed", "Connection reset", "Timed out", "timed out", "Broken pipe")
    return isinstance(err, RuntimeError) and any(marker in text for marker in markers)


def _process_state(host_pid: str) -> str | None:
    """'gone', 'stopped' or 'alive' for a process on this host; None when it runs elsewhere or is unknown."""
    host, _, pid = host_pid.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return process_state(int(pid))


class Guard:
    """Context manager around one run: phase tracking, failure records, and a report naming the failed rank."""

    def __init__(self, accelerator, timeout_s: float):
        global _runs
        _runs += 1
        self.rank, self.world = accelerator.process_index, accelerator.num_processes
        self.phase, self.step, self.last_checkpoint = "setup", 0, None
        self.grace_s = min(5.0, float(timeout_s))
        self.store = self._connect(timeout_s, f"nlptune/faults/{_runs}/") if self.world > 1 else None
        self._reporting, self._previous_handler = False, None
        self._put("pid", f"{socket.gethostname()}:{os.getpid()}")

    # -- store helpers: failures to reach the store never mask the original error
    def _connect(self, timeout_s: float, prefix: str):
        addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
        if not (addr and port):
            return None
        try:
            store = torch.distributed.TCPStore(addr, int(port), is_master=False, wait_for_workers=False,
                                               timeout=timedelta(seconds=min(10.0, float(timeout_s))))
            return torch.distributed.PrefixStore(prefix, store)
        except Exception:  # the launcher's store is not reachable: reports will be less precise
            return None

    def _put(self, key: str, value: str, rank: int | None = None) -> None:
        if self.store is not None:
            try:
                self.store.set(f"{key}/{self.rank if rank is None else rank}", value)
            except Exception:
                self.store = None

    def _get(self, key: str, rank: int) -> str | None:
        if self.store is None:
            return None
        try:
            full = f"{key}/{rank}"
            return self.store.get(full).decode() if self.store.check([full]) else None
        except Exception:
            return None

    def set_phase(self, phase: str, step: int | None = None) -> None:
        """Note what this rank is doing (setup, data, train, evaluate, checkpoint, save)."""
        if step is not None:
            self.step = step
        if phase != self.phase:
            self.phase = phase
            self._put("phase", f"{phase} (from step {self.step})")

    # -- the context manager
    def __enter__(self) -> "Guard":
        if self.world > 1 and threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def _on_sigterm(self, signum, frame) -> None:
        if not self._reporting:  # while writing the report, finish it: the launcher kills us soon anyway
            raise Terminated("received SIGTERM from the launcher")

    def __exit__(self, kind, err, tb) -> bool:
        try:
            if err is None or self.world == 1:
                return False
            self._reporting = True
            where = f"{self.phase} (step {self.step})"
            if not _is_peer_failure(err):
                self._put("status", json.dumps({"kind": "failed", "where": where,
                                                "error": f"{type(err).__name__}: {str(err)[:300]}"}))
                return False
            self._put("status", json.dumps({"kind": "lost", "where": where}))
            kept = (f"the last complete checkpoint, {self.last_checkpoint}, is intact: resume=auto continues "
                    "from it" if self.last_checkpoint else "no checkpoint had been written yet")
            raise DistributedFault(f"rank {self.rank} stopped during {where}: {self._peer_report()}; {kept}") \
                from (None if isinstance(err, Terminated) else err)
        finally:
            if self._previous_handler is not None:
                signal.signal(signal.SIGTERM, self._previous_handler)
                self._previous_handler = None

    def _peer_report(self) -> str:
        """Which other ranks failed, died or stopped answering, waiting up to a few seconds for their records."""
        if self.store is None:
            return "another process died, failed or stopped responding (see its output and the launcher's)"
        deadline = time.monotonic() + self.grace_s
        while True:
            causes, pending = self._classify()
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        for rank in pending:
            last = self._get("phase", rank) or "setup"
            causes.append(f"rank {rank} stopped responding during {last} (hung, or still failing)")
        return "; ".join(causes) or "another process stopped (no rank recorded a failure)"

    def _classify(self) -> tuple[list[str], list[int]]:
        causes, pending = [], []
        for rank in range(self.world):
            if rank == self.rank:
                continue
            raw = self._get("status", rank)
            status = parse_json(raw) if raw else None
            if status and status["kind"] == "failed":
                causes.append(f"rank {rank} failed during {status['where']}: {status['error']}")
            elif status is None:
                state = _process_state(self._get("pid", rank) or "")
                last = self._get("phase", rank) or "setup"
                if state == "gone":
                    causes.append(f"rank {rank} died (killed or crashed) during {last}")
                elif state == "stopped":
                    causes.append(f"rank {rank} is suspended (stopped by a signal or a debugger) during {last}")
                else:
                    pending.append(rank)
        return causes, pending
