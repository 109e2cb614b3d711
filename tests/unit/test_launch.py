"""The Accelerator a run gets: a device the config asks for that is not there is refused, never swapped."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from nlptune.config.errors import NlptuneError
from nlptune.train.launch import make_accelerator


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a CUDA GPU")
def test_cuda_asked_for_without_a_gpu_is_refused_not_run_on_the_cpu():
    trainer = SimpleNamespace(device="cuda", mixed_precision="no", gradient_accumulation_steps=1, compile=False,
                              dist_timeout_s=300, threads=0)
    with pytest.raises(NlptuneError, match="trainer.device=cuda, but no CUDA GPU is visible"):
        make_accelerator(trainer)
