"""Fast CPU dropout (trainer.fast_dropout): its rate and scale, its gradient, seeding, and the model switch."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nlptune.config import build_run_config
from nlptune.config.compose import compose, load_run_config, to_plain
from nlptune.models import build_model
from nlptune.models.fast_dropout import (LEVELS, FastDropout, _attention_with_dropout, _install_attention,
                                         dropout_mask, fast_dropout, use_fast_dropout)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_mask_drops_at_the_rate_and_scales_the_rest_to_keep_the_mean(p):
    torch.manual_seed(0)
    dropped, scale = dropout_mask(torch.Size([1000, 1000]), p)
    rate = round(p * LEVELS) / LEVELS
    assert dropped.dtype == torch.bool and dropped.shape == (1000, 1000)
    assert abs(dropped.float().mean().item() - rate) < 0.002  # 1M draws: ~0.0005 standard error
    assert scale == pytest.approx(1 / (1 - rate))
    assert abs(rate - p) <= 1 / LEVELS


def test_every_quarter_of_a_draw_is_used_evenly():
    # the four 16-bit levels of one 64-bit draw: a bias in any (e.g. a sign bit never set) shows as a column
    torch.manual_seed(1)
    dropped, _ = dropout_mask(torch.Size([250_000, 4]), 0.5)
    for column in dropped.float().mean(dim=0).tolist():
        assert abs(column - 0.5) < 0.005


def test_forward_and_gradient_are_the_masked_scaled_input():
    torch.manual_seed(2)
    x = (torch.rand(64, 33) + 0.5).requires_grad_()  # no zeros: a zero output means dropped
    y = fast_dropout(x, 0.25)
    kept = y != 0
    rate = round(0.25 * LEVELS) / LEVELS
    assert 0.6 < kept.float().mean().item() < 0.9
    assert torch.allclose(y[kept], x.detach()[kept] / (1 - rate))
    weights = torch.randn(64, 33)
    (y * weights).sum().backward()
    assert torch.allclose(x.grad, kept.float() * weights / (1 - rate))


def test_same_seed_same_masks_and_another_seed_others():
    x = torch.ones(4096)
    torch.manual_seed(3)
    first = fast_dropout(x, 0.1)
    torch.manual_seed(3)
    assert torch.equal(fast_dropout(x, 0.1), first)
    torch.manual_seed(4)
    assert not torch.equal(fast_dropout(x, 0.1), first)


def test_eval_mode_and_rates_that_round_to_all_or_nothing_are_torchs():
    x = torch.randn(100)
    assert torch.equal(fast_dropout(x, 0.5, training=False), x)
    assert torch.equal(fast_dropout(x, 0.0), x)
    assert torch.equal(fast_dropout(x, 1.0), torch.zeros(100))
    module = FastDropout(0.4).eval()
    assert torch.equal(module(x), x)


def _tiny_bert(hidden_dropout=0.1, attention_dropout=0.1):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, num_labels=3, hidden_dropout_prob=hidden_dropout,
                        attention_probs_dropout_prob=attention_dropout)
    return BertForSequenceClassification._from_config(config, attn_implementation="sdpa")


def _inputs():
    ids = torch.randint(1, 40, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_a_hugging_face_model_switches_every_dropout_and_saves_as_before(tmp_path):
    model = _tiny_bert()
    (tmp_path / "before").mkdir()
    model.save_pretrained(tmp_path / "before")
    inputs = _inputs()
    model.eval()
    expected = model(**inputs).logits
    plain = sum(type(m) is nn.Dropout for m in model.modules())
    assert use_fast_dropout(model) == plain > 0
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert torch.equal(model(**inputs).logits, expected)  # evaluation: no dropout, the same outputs
    model.save_pretrained(tmp_path / "after")
    for name in ("config.json", "model.safetensors"):  # a switched model saves exactly what it would have
        assert (tmp_path / "after" / name).read_bytes() == (tmp_path / "before" / name).read_bytes(), name
    assert "_nlptune" not in json.dumps(json.loads((tmp_path / "after" / "config.json").read_text()))
    model.train()
    torch.manual_seed(5)
    loss = model(**inputs, labels=torch.tensor([0, 1, 2])).loss
    loss.backward()  # trains through both kinds of dropout
    assert torch.isfinite(loss) and model.classifier.weight.grad is not None


def test_attention_dropout_path_is_sdpa_when_nothing_is_dropped():
    _install_attention()
    module = nn.Module()
    module.is_causal = False
    setattr(module, "_nlptune_fast_dropout", True)
    torch.manual_seed(6)
    q, k, v = (torch.randn(2, 3, 5, 4) for _ in range(3))
    keep = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    keep[1, :, :, 3:] = False  # the second row's last two keys are padding
    # a rate this small rounds to no dropped level: the scores, mask, softmax and values alone
    out, _ = _attention_with_dropout(module.train(), q, k, v, keep, dropout=1e-9, scaling=0.5)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=0.5)
    assert torch.allclose(out, expected.transpose(1, 2), atol=1e-6)
    additive = torch.zeros(2, 1, 5, 5).masked_fill(~keep, torch.finfo(torch.float32).min)
    out, _ = _attention_with_dropout(module, q, k, v, additive, dropout=1e-9, scaling=0.5)
    assert torch.allclose(out, expected.transpose(1, 2), atol=1e-6)


def test_attention_dropout_drops_probabilities_in_training_only():
    _install_attention()
    module = nn.Module()
    module.is_causal = False
    setattr(module, "_nlptune_fast_dropout", True)
    q, k, v = (torch.randn(1, 2, 6, 4) for _ in range(3))
    torch.manual_seed(7)
    first, _ = _attention_with_dropout(module.train(), q, k, v, None, dropout=0.5)
    torch.manual_seed(8)
    second, _ = _attention_with_dropout(module, q, k, v, None, dropout=0.5)
    assert not torch.allclose(first, second)  # other masks
    evaluated, _ = _attention_with_dropout(module.eval(), q, k, v, None, dropout=0.0)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(evaluated, expected.transpose(1, 2), atol=1e-6)


def test_a_scratch_model_switches_its_dropout_modules():
    model = build_model("lstm", vocab_size=50, pad_token_id=0, num_labels=2, pair=False, embedding_dim=8,
                        hidden_size=8, dropout=0.3)
    rates = sorted(m.p for m in model.modules() if type(m) is nn.Dropout)
    assert 0.3 in rates and use_fast_dropout(model) == len(rates)
    assert sorted(m.p for m in model.modules() if isinstance(m, FastDropout)) == rates


def test_on_by_default_and_off_for_configs_from_before_the_key():
    assert load_run_config([]).trainer.fast_dropout is True
    assert load_run_config(["trainer.fast_dropout=false"]).trainer.fast_dropout is False
    plain = to_plain(compose([]))
    del plain["trainer"]["fast_dropout"]  # a run directory, checkpoint or recipe written before the key existed
    assert build_run_config(plain).trainer.fast_dropout is False  # it trains as it did: torch's dropout
