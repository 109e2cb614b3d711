"""Weight averaging (trainer.average_from): the running mean of the weights at evaluations, its start step, its
checkpoint round trip, and the config key's checks."""
from __future__ import annotations

import pytest
import torch

from nlptune.config.compose import load_run_config
from nlptune.config.errors import ConfigError
from nlptune.train.averaging import WeightAverage
from nlptune.train.checkpoint import CheckpointError


class WithBuffer(torch.nn.Module):
    """A linear layer and an integer buffer (as position ids are): only floating-point tensors are averaged."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.register_buffer("ids", torch.arange(4))


def set_weights(model: WithBuffer, value: float) -> None:
    with torch.no_grad():
        model.linear.weight.fill_(value)
        model.linear.bias.fill_(-value)
        model.ids.add_(1)  # integer buffers change too; the mean keeps the model's current ones


def test_the_mean_of_the_evaluations_from_the_start_step_on():
    model, average = WithBuffer(), WeightAverage.for_run(0.5, total_steps=10)
    assert average.start_step == 5
    for step, value in ((2, 100.0), (5, 1.0), (8, 2.0), (10, 6.0)):  # step 2 is before the averaging starts
        set_weights(model, value)
        average.observe(model, step)
    assert (average.count, average.first_step) == (3, 5)
    state = average.averaged_state(model)
    assert torch.equal(state["linear.weight"], torch.full((2, 3), 3.0))
    assert torch.equal(state["linear.bias"], torch.full((2,), -3.0))
    assert torch.equal(state["ids"], model.ids)  # not averaged
    assert torch.equal(model.linear.weight, torch.full((2, 3), 6.0))  # the model itself is left as it is


def test_the_mean_takes_the_weights_dtype_and_the_sum_stays_fp32():
    model, average = WithBuffer().to(torch.bfloat16), WeightAverage(0)
    set_weights(model, 1.5)
    average.observe(model, 1)
    assert average.sum["linear.weight"].dtype == torch.float32
    assert average.averaged_state(model)["linear.weight"].dtype == torch.bfloat16


def test_off_without_the_key_and_nothing_to_average_before_an_evaluation():
    assert WeightAverage.for_run(None, 100) is None
    with pytest.raises(ValueError):
        WeightAverage(0).averaged_state(WithBuffer())


def test_a_restored_average_continues_exactly():
    model, whole, first = WithBuffer(), WeightAverage(0), WeightAverage(0)
    for step, value in ((1, 0.3), (2, 0.7)):
        set_weights(model, value)
        whole.observe(model, step)
        if step == 1:
            first.observe(model, step)
    resumed = WeightAverage(0)
    resumed.restore(first.to_json(), {k: v.clone() for k, v in first.sum.items()})  # what a checkpoint holds
    resumed.observe(model, 2)
    assert resumed.to_json() == whole.to_json()
    for name, value in whole.sum.items():
        assert torch.equal(resumed.sum[name], value)


def test_restore_refuses_a_count_without_its_sum_and_ignores_an_empty_record():
    average = WeightAverage(0)
    average.restore(None, None)  # a checkpoint from before the averaging began (or without the key)
    average.restore({"count": 0, "first_step": None}, None)
    assert average.count == 0
    with pytest.raises(CheckpointError, match="holds no sum"):
        average.restore({"count": 2, "first_step": 4}, None)


@pytest.mark.parametrize("value", ["1.0", "-0.1", "nan", "yes"])
def test_the_key_takes_a_fraction_below_one(value):
    with pytest.raises(ConfigError) as err:
        load_run_config(["task=demo", f"trainer.average_from={value}"])
    assert any(issue.key == "trainer.average_from" for issue in err.value.issues)


def test_the_key_is_off_by_default_and_takes_zero():
    assert load_run_config(["task=demo"]).trainer.average_from is None
    assert load_run_config(["task=demo", "trainer.average_from=0"]).trainer.average_from == 0


@pytest.mark.parametrize("kept", [True, False])
def test_the_model_card_says_which_weights_it_holds(kept):
    from nlptune.train.model_card import _results

    summary = {"best": {"f1": 0.87 if kept else 0.88}, "best_step": 640 if kept else 512, "main_metric": "f1",
               "steps": 640, "epochs": 5, "weight_average": {"evaluations": 6, "from_step": 384, "kept": kept,
                                                             "scores": {"f1": 0.87}}}
    text = "\n".join(_results(summary, []))
    if kept:
        assert "the mean of the weights at 6 evaluations from step 384 to step 640" in text
    else:
        assert "at step 512" in text and "scored 0.87" in text and "not kept" in text
