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


@pytest.mark.parametrize("requested, emulated, warned", [("bf16", True, True), ("bf16", False, False),
                                                          ("no", True, False), ("auto", True, False)])
def test_bf16_on_a_cpu_that_emulates_it_is_warned_about(monkeypatch, capsys, requested, emulated, warned):
    """An explicit bf16 run on a CPU without bf16 units trains many times slower than fp32: the run says so and
    how to avoid it. ``auto`` never picks bf16 there (no AMX), so it is never warned about."""
    from nlptune.train import precision

    monkeypatch.setattr(precision, "emulates_bf16", lambda: emulated)
    precision._say_once.cache_clear()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: not emulated, raising=False)
    trainer = SimpleNamespace(device="cpu", mixed_precision=requested, gradient_accumulation_steps=1, compile=False,
                              dist_timeout_s=300, threads=0)
    make_accelerator(trainer)
    make_accelerator(trainer)  # a second run in the same process (a sweep's trial) is not told again
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert err.count("no bf16 units") <= 1
    assert ("no bf16 units" in err and f"trainer.mixed_precision={requested}" in err
            and "set trainer.mixed_precision=auto" in err) is warned


@pytest.mark.parametrize("precision, threads, expected", [
    ("fp16", 0, ["mixed_precision=fp16 has no effect on a CPU"]),
    ("no", 3, ["trainer.threads=3 is more than the 2 CPU core(s)", "set trainer.threads=2 or fewer"]),
    ("no", 2, []), ("auto", 0, [])])
def test_cpu_settings_that_are_ignored_or_slow_are_warned_about_once(monkeypatch, capsys, precision, threads,
                                                                     expected):
    """fp16 on a CPU runs in fp32 (Accelerate has no CPU fp16), and threads beyond the usable cores compete for
    them: both train, with a warning that says what to set instead; a second run in the process is not told again."""
    from nlptune.train import launch
    from nlptune.utils import environment

    monkeypatch.setattr(environment, "usable_cores", lambda: 2)
    monkeypatch.setattr(torch, "set_num_threads", lambda count: None)  # the test process keeps its threads
    launch._warn_once.cache_clear()
    trainer = SimpleNamespace(device="cpu", mixed_precision=precision, gradient_accumulation_steps=1, compile=False,
                              dist_timeout_s=300, threads=threads)
    make_accelerator(trainer)
    make_accelerator(trainer)
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("warning:") == (1 if expected else 0), err
    assert all(text in err for text in expected), err


@pytest.mark.parametrize("accumulate, warned", [(10, True), (7, False), (1, False)])
def test_accumulating_more_batches_than_an_epoch_holds_is_warned_about(capsys, accumulate, warned):
    """gradient_accumulation_steps=1000 on a 7-batch epoch trained one step an epoch over 7 batches, silently."""
    from nlptune.train import launch

    launch._warn_once.cache_clear()
    trainer = SimpleNamespace(gradient_accumulation_steps=accumulate, batch_size=32)
    launch.warn_if_a_step_outlasts_an_epoch(trainer, 7, rows=224)
    err = " ".join(capsys.readouterr().err.split())
    assert ("each optimizer step accumulates one epoch (7 batches of 32), not 10" in err) == warned, err
    assert ("set trainer.gradient_accumulation_steps=7 or fewer" in err) == warned


def test_a_batch_larger_than_the_training_set_is_warned_about(capsys):
    """trainer.batch_size=100000 on 2,000 rows trained one step an epoch, silently."""
    from nlptune.train import launch

    launch._warn_once.cache_clear()
    launch.warn_if_a_step_outlasts_an_epoch(SimpleNamespace(gradient_accumulation_steps=1, batch_size=100000), 1,
                                            rows=2000)
    err = " ".join(capsys.readouterr().err.split())
    assert "trainer.batch_size=100000 is more than the 2000 training rows" in err and "(e.g. 32)" in err
    launch.warn_if_a_step_outlasts_an_epoch(SimpleNamespace(gradient_accumulation_steps=1, batch_size=2000), 1,
                                            rows=2000)
    assert "warning" not in capsys.readouterr().err
