"""model.pair_attention: the two texts of a pair aligned with each other (nlptune/models/pair_attention.py)."""
from __future__ import annotations

import pytest
import torch

from nlptune.models import load_scratch_model, save_scratch_model
from nlptune.models.layers import ModelArgumentError
from nlptune.models.pair_attention import PairAttention
from tests.unit.test_models import PAD, batch, forward, pad_more, tiny

ALIGNING = ("lstm", "gru", "cnn", "transformer")


@pytest.mark.parametrize("name", ALIGNING)
def test_trains_and_ignores_padding(name):
    model = tiny(name, pair=True, num_labels=1, pair_attention=True)
    a, b = batch(), batch((3, 6, 4, 2), seed=1)
    out = forward(model, a, b).logits
    assert out.shape == (4, 1)
    out.sum().backward()
    assert model.pair_attention.compare[0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(forward(model, a, b).logits, forward(model, pad_more(a), pad_more(b, 2)).logits,
                                   atol=1e-5, rtol=1e-4)
        # each row alone gives what it gives in the batch: nothing leaks between rows through the alignment
        for row in range(4):
            alone = forward(model, a[row:row + 1], b[row:row + 1]).logits
            torch.testing.assert_close(alone[0], forward(model, a, b).logits[row], atol=1e-5, rtol=1e-4)


def test_differs_from_siamese_and_depends_on_the_other_text():
    a, b, c = batch(), batch((3, 6, 4, 2), seed=1), batch((3, 6, 4, 2), seed=2)
    aligned = tiny("lstm", pair=True, pair_attention=True).eval()
    siamese = tiny("lstm", pair=True).eval()
    assert sum(p.numel() for p in aligned.parameters()) > sum(p.numel() for p in siamese.parameters())
    with torch.no_grad():
        u_b, _ = aligned._encode_pair(a, a != PAD, b, b != PAD)
        u_c, _ = aligned._encode_pair(a, a != PAD, c, c != PAD)
        siamese_b, _ = siamese._encode_pair(a, a != PAD, b, b != PAD)
        siamese_c, _ = siamese._encode_pair(a, a != PAD, c, c != PAD)
    torch.testing.assert_close(siamese_b, siamese_c)  # a siamese encoding of a never sees its partner
    assert not torch.allclose(u_b, u_c)  # an aligned one does


def test_alignment_is_the_attention_weighted_mean_of_the_other_texts_real_tokens():
    torch.manual_seed(0)
    attention = PairAttention(4).eval()
    a, b = torch.randn(1, 3, 4), torch.randn(1, 5, 4)
    mask_a = torch.tensor([[True, True, False]])
    mask_b = torch.tensor([[True, True, True, False, False]])
    b_padded = b.clone()
    b_padded[0, 3:] = 1e3  # padding that attention would notice if it were not masked
    with torch.no_grad():
        u, v = attention(a, mask_a, b_padded, mask_b)
        weights = torch.softmax(a[0, :2] @ b[0, :3].T, dim=-1)
        aligned = weights @ b[0, :3]
        x = a[0, :2]
        compared = attention.compare(torch.cat([x, aligned, x - aligned, x * aligned], dim=-1))
    torch.testing.assert_close(u[0], torch.cat([compared.mean(0), compared.amax(0), x.amax(0)]))
    assert u.shape == v.shape == (1, 12) and torch.isfinite(v).all()


def test_an_empty_text_stays_finite():
    model = tiny("lstm", pair=True, num_labels=1, pair_attention=True).eval()
    a, b = batch(), batch((3, 6, 4, 2), seed=1)
    b[1] = PAD  # the second pair's other text has no token at all
    with torch.no_grad():
        assert torch.isfinite(forward(model, a, b).logits).all()


def test_saved_and_loaded(tmp_path):
    model = tiny("gru", pair=True, pair_attention=True).eval()
    save_scratch_model(model, tmp_path)
    loaded = load_scratch_model(tmp_path).eval()
    a, b = batch(), batch((3, 6, 4, 2), seed=1)
    with torch.no_grad():
        torch.testing.assert_close(forward(loaded, a, b).logits, forward(model, a, b).logits)


@pytest.mark.parametrize("kwargs", [dict(pair=False), dict(pair=False, per_token=True)])
def test_needs_a_pair(kwargs):
    with pytest.raises(ModelArgumentError, match=r"model\.pair_attention=true is not valid for this task.*"
                                                 r"pair_attention=false"):
        tiny("lstm", pair_attention=True, **kwargs)
