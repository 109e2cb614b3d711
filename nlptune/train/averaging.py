"""Weight averaging (``trainer.average_from``): the mean of the weights at the run's last evaluations.

From a fraction of the optimizer steps on, every evaluation adds the model's weights to a running sum; at the end
the loop scores the mean once more on validation and keeps it as the best model when it beats every single
evaluation (stochastic weight averaging in the form "average the last checkpoints": Izmailov et al. 2018; for
small-data fine-tuning it is one of the fixes issue 18 names). The sum lives on the CPU in fp32, beside the
model, and is written into every checkpoint (checkpoint.AVERAGE_SUM) with its count, so a resumed run averages
exactly the same weights.

Every process keeps its own sum: under data parallelism the processes hold the same weights, and scoring the
mean is a collective evaluation like any other.
"""
from __future__ import annotations

import math

import torch

from nlptune.train.checkpoint import CheckpointError


class WeightAverage:
    """The running sum of a model's floating-point weights at the evaluations from ``start_step`` on."""

    def __init__(self, start_step: int):
        self.start_step = start_step
        self.sum: dict[str, torch.Tensor] | None = None
        self.count = 0
        self.first_step: int | None = None

    @classmethod
    def for_run(cls, average_from: float | None, total_steps: int) -> "WeightAverage | None":
        """The average a run with ``trainer.average_from`` keeps over ``total_steps`` steps; None when off."""
        if average_from is None:
            return None
        return cls(math.ceil(average_from * total_steps))

    def observe(self, model: torch.nn.Module, step: int) -> None:
        """Add ``model``'s weights after optimizer step ``step`` (an evaluation's) when the averaging has begun."""
        if step < self.start_step:
            return
        with torch.no_grad():
            weights = {name: value.detach() for name, value in model.state_dict().items()
                       if value.is_floating_point()}
            if self.sum is None:
                self.sum = {name: value.to("cpu", torch.float32, copy=True) for name, value in weights.items()}
                self.first_step = step
            else:
                for name, value in weights.items():
                    self.sum[name].add_(value.to("cpu", torch.float32))
        self.count += 1

    def averaged_state(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """``model``'s state dict with every floating-point weight replaced by its mean over the evaluations
        (in the weight's own dtype); integer buffers (e.g. position ids) as they are."""
        if not self.count:
            raise ValueError("no evaluation has been averaged yet")
        state = model.state_dict()
        return {name: (self.sum[name] / self.count).to(value.device, value.dtype) if name in self.sum else value
                for name, value in state.items()}

    # ---- checkpoints --------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        """The counters a checkpoint's train state records (the sum itself goes into checkpoint.AVERAGE_SUM)."""
        return {"count": self.count, "first_step": self.first_step}  # the start step follows from the config

    def restore(self, counters: dict | None, tensors: dict[str, torch.Tensor] | None) -> None:
        """Continue from a checkpoint's counters and sum (both None: nothing was averaged before it)."""
        if not counters or not counters.get("count"):
            return
        if tensors is None:
            raise CheckpointError("the checkpoint records averaged weights (trainer.average_from) but holds no sum "
                                  "of them; resume from another checkpoint")
        self.sum = {name: value.float() for name, value in tensors.items()}
        self.count, self.first_step = int(counters["count"]), counters.get("first_step")
