"""Unit tests for nlptune.train.optim: parameter groups, optimizers by name, learning-rate schedules."""
from __future__ import annotations

import math

import pytest
import torch

from nlptune.config.compose import section_config
from nlptune.config.schema import OPTIMIZERS
from nlptune.models import build_model
from nlptune.train.optim import (base_lr, build_optimizer, build_scheduler, lr_scales, parameter_groups,
                                   warmup_steps)

CPU = torch.device("cpu")
TINY = dict(vocab_size=40, pad_token_id=0, embedding_dim=16, hidden_size=16, num_labels=2, pair=False)
EXTRA = {"cnn": dict(kernel_sizes=[2, 3], num_filters=8), "transformer": dict(num_heads=2, ff_size=32)}


def tiny(name: str):
    torch.manual_seed(0)
    return build_model(name, **TINY, **EXTRA.get(name, {}))


def decayed_names(model, groups) -> set[str]:
    decayed = {id(p) for p in groups[0]["params"]}
    return {n for n, p in model.named_parameters() if id(p) in decayed}


def is_norm_or_bias(model, name: str) -> bool:
    module_name, _, param = name.rpartition(".")
    module = model.get_submodule(module_name)
    return "bias" in param or isinstance(module, (torch.nn.LayerNorm, torch.nn.BatchNorm1d, torch.nn.RMSNorm))


# RNN biases are named bias_ih_l0 / bias_hh_l0_reverse: they must be caught too
@pytest.mark.parametrize("name", ["bag", "cnn", "lstm", "gru", "transformer"])
def test_no_weight_decay_on_biases_and_norms(name):
    model = tiny(name)
    groups = parameter_groups(model, weight_decay=0.1)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    decayed = decayed_names(model, groups)
    all_names = {n for n, _ in model.named_parameters()}
    assert decayed == {n for n in all_names if not is_norm_or_bias(model, n)}
    # every trainable parameter is in exactly one group
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_transformer_norm_weights_are_not_decayed():
    model = tiny("transformer")
    decayed = decayed_names(model, parameter_groups(model, 0.01))
    norms = [n for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms, "the transformer encoder has LayerNorms"
    assert not any(n.startswith(tuple(f"{norm}." for norm in norms)) for n in decayed)
    assert any(n.endswith("linear1.weight") for n in decayed)


def test_pretrained_layernorm_and_bias_not_decayed(tiny_pretrained):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_pretrained, num_labels=2)
    decayed = decayed_names(model, parameter_groups(model, 0.01))
    assert decayed
    assert not any("LayerNorm" in n or n.endswith(".bias") for n in decayed)
    assert "bert.encoder.layer.0.attention.self.query.weight" in decayed
    assert "classifier.weight" in decayed


def test_frozen_parameters_are_left_out():
    model = tiny("bag")
    model.encoder.embedding.requires_grad_(False)
    ids = {id(p) for g in parameter_groups(model, 0.1) for p in g["params"]}
    assert all(id(p) not in ids for p in model.encoder.embedding.parameters())
    assert ids == {id(p) for p in model.parameters() if p.requires_grad}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_builds_and_steps(name):
    model = tiny("bag")
    cfg = section_config("optimizer", name, lr=0.05, weight_decay=0.01, momentum=0.9 if name == "sgd" else 0.0)
    optimizer = build_optimizer(model, cfg, CPU)
    assert type(optimizer).__name__.lower() == name
    assert all(g["lr"] == pytest.approx(0.05) for g in optimizer.param_groups)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]
    before = [p.detach().clone() for p in model.parameters()]
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    torch.nn.functional.cross_entropy(model(ids)["logits"], torch.tensor([0, 1])).backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_optimizer_hyperparameters_are_passed():
    model = tiny("bag")
    adamw = build_optimizer(model, section_config("optimizer", "adamw", betas=(0.8, 0.95), eps=1e-6), CPU)
    assert adamw.defaults["betas"] == (0.8, 0.95) and adamw.defaults["eps"] == 1e-6
    sgd = build_optimizer(model, section_config("optimizer", "sgd", momentum=0.9, nesterov=True), CPU)
    assert sgd.defaults["momentum"] == 0.9 and sgd.defaults["nesterov"] is True
    # nesterov without momentum is invalid in torch: it is dropped rather than crashing
    plain = build_optimizer(model, section_config("optimizer", "sgd", momentum=0.0, nesterov=True), CPU)
    assert plain.defaults["nesterov"] is False


# ---------------------------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------------------------
PEAK = 0.1


def lrs(name: str, total: int, **kwargs) -> list[float]:
    """The learning rate before step 0, 1, ..., total (as the loop steps it: once per optimizer step)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=PEAK)
    scheduler = build_scheduler(optimizer, section_config("scheduler", name, **kwargs), total)
    values = [optimizer.param_groups[0]["lr"]]
    for _ in range(total):
        optimizer.step()
        scheduler.step()
        values.append(optimizer.param_groups[0]["lr"])
    return values


@pytest.mark.parametrize("name", ["constant", "linear", "cosine", "polynomial"])
def test_linear_warmup_reaches_peak_at_warmup_end(name):
    values = lrs(name, 20, warmup_steps=4)
    assert values[0] == 0.0
    assert values[2] == pytest.approx(PEAK * 2 / 4)
    assert values[4] == pytest.approx(PEAK)
    assert max(values) == pytest.approx(PEAK)


def test_constant():
    values = lrs("constant", 10, warmup_steps=2)
    assert values[2:] == pytest.approx([PEAK] * 9)
    assert lrs("constant", 5) == pytest.approx([PEAK] * 6)


def test_linear_decays_to_zero():
    values = lrs("linear", 20, warmup_steps=4)
    assert values[12] == pytest.approx(PEAK * 0.5)  # halfway through the decay
    assert values[20] == pytest.approx(0.0)
    assert all(a >= b for a, b in zip(values[4:], values[5:]))
    assert lrs("linear", 10)[0] == pytest.approx(PEAK)  # no warmup: starts at the peak


def test_cosine_decays_to_zero():
    values = lrs("cosine", 20, warmup_steps=4)
    assert values[12] == pytest.approx(PEAK * 0.5)
    assert values[8] == pytest.approx(PEAK * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert values[20] == pytest.approx(0.0, abs=1e-12)


def test_polynomial_decays_to_lr_end():
    values = lrs("polynomial", 20, warmup_steps=4, power=2.0, lr_end=0.01)
    assert values[12] == pytest.approx(0.01 + (PEAK - 0.01) * 0.5 ** 2)
    assert values[20] == pytest.approx(0.01)
    linear = lrs("polynomial", 20, warmup_steps=4, power=1.0, lr_end=0.0)
    assert linear == pytest.approx(lrs("linear", 20, warmup_steps=4))


def test_warmup_ratio():
    values = lrs("linear", 40, warmup_ratio=0.25)
    assert values[5] == pytest.approx(PEAK * 0.5)
    assert values[10] == pytest.approx(PEAK)
    assert warmup_steps(section_config("scheduler", "linear", warmup_ratio=0.25), 10) == 3  # rounded up
    assert warmup_steps(section_config("scheduler", "linear", warmup_ratio=0.0), 10) == 0


def test_warmup_steps_win_over_warmup_ratio():
    assert warmup_steps(section_config("scheduler", "linear", warmup_steps=2, warmup_ratio=0.5), 100) == 2
    assert lrs("linear", 20, warmup_steps=2, warmup_ratio=0.5)[2] == pytest.approx(PEAK)


def _tiny_bert_classifier(num_layers: int = 3):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=num_layers,
                                                    num_attention_heads=2, intermediate_size=16, num_labels=3))


def test_head_and_layer_scales_of_a_pretrained_encoder():
    model = _tiny_bert_classifier(num_layers=3)
    scales = lr_scales(model, head_lr_scale=10.0, layer_decay=0.5)
    by_name = {name: scales[id(p)] for name, p in model.named_parameters()}
    assert by_name["classifier.weight"] == by_name["classifier.bias"] == 10.0  # the new head
    assert by_name["bert.pooler.dense.weight"] == 1.0  # above the blocks, from the checkpoint
    for i in range(3):  # the top block 0.5, the one below 0.25, ...
        assert by_name[f"bert.encoder.layer.{i}.attention.self.query.weight"] == 0.5 ** (3 - i)
    assert by_name["bert.embeddings.word_embeddings.weight"] == by_name["bert.embeddings.LayerNorm.bias"] == 0.5 ** 4


def test_parameter_groups_carry_their_lr_and_cover_every_trainable_parameter_once():
    model = _tiny_bert_classifier()
    groups = parameter_groups(model, weight_decay=0.01, lr=1e-4, head_lr_scale=10.0, layer_decay=0.8)
    members = [id(p) for g in groups for p in g["params"]]
    assert sorted(members) == sorted(id(p) for p in model.parameters()) and len(set(members)) == len(members)
    scales = lr_scales(model, 10.0, 0.8)
    for group in groups:
        assert all(scales[id(p)] == group["lr_scale"] for p in group["params"])
        assert group["lr"] == pytest.approx(1e-4 * group["lr_scale"])
    optimizer = build_optimizer(model, section_config("optimizer", "adamw", head_lr_scale=10.0, layer_decay=0.8), CPU)
    scheduler = build_scheduler(optimizer, section_config("scheduler", "linear", warmup_steps=2), 10)
    optimizer.step()
    scheduler.step()
    assert base_lr(scheduler) == pytest.approx(optimizer.defaults["lr"] * 0.5)  # half way through the warmup
    head = next(g for g in optimizer.param_groups if g["lr_scale"] == 10.0)
    assert head["lr"] == pytest.approx(10 * base_lr(scheduler))


@pytest.mark.parametrize("name", ["bag", "lstm"])
def test_off_by_default_and_scratch_models_get_one_lr(name):
    model = tiny(name)
    assert set(lr_scales(model).values()) == {1.0}
    groups = parameter_groups(model, 0.1, lr=2e-3)
    assert [(g["weight_decay"], g["lr"]) for g in groups] == [(0.1, 2e-3), (0.0, 2e-3)]
