"""Unit tests for the per-token models (nlptune.models.tagger, chars, the encoders' contextual features): tiny
dims, CPU, a few seconds in all."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nlptune.kinds.crf import allowed_transitions, crf_nll, viterbi
from nlptune.models import build_model, load_scratch_model, model_builder, save_scratch_model
from nlptune.models.chars import CharCNN, CharLSTM
from nlptune.models.cnn import CNNEncoder
from nlptune.models.layers import ModelArgumentError, TokenEmbedding, masked_mean
from nlptune.models.tagger import TokenTagger

TAGGERS = ("lstm", "gru", "cnn", "transformer")
VOCAB_SIZE, PAD, LABELS, CHARS = 30, 0, 4, 6
TINY = dict(vocab_size=VOCAB_SIZE, pad_token_id=PAD, num_labels=LABELS, pair=False, embedding_dim=8,
            hidden_size=8, dropout=0.0, char_dim=4)
EXTRA = {"cnn": dict(kernel_sizes=[2, 3], num_filters=6), "transformer": dict(num_heads=2, ff_size=16)}


def tagger(name, *, char_embedding=None, crf=False, seed=0, **kwargs):
    torch.manual_seed(seed)
    return build_model(name, per_token=True, char_embedding=char_embedding, crf=crf,
                       **{**TINY, **EXTRA.get(name, {}), **kwargs})


def batch(lengths=(6, 3, 1), seed=0, chars=CHARS):
    """Right-padded word ids [B, T], char ids [B, T, chars] (1..6 bytes per real word, zeros elsewhere), tags."""
    g = torch.Generator().manual_seed(seed)
    length = max(lengths)
    mask = torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    ids = torch.randint(1, VOCAB_SIZE, (len(lengths), length), generator=g).masked_fill(~mask, PAD)
    nbytes = torch.randint(1, CHARS + 1, (len(lengths), length, 1), generator=g).masked_fill(~mask.unsqueeze(-1), 0)
    char_ids = torch.randint(1, 257, (len(lengths), length, chars), generator=g)
    char_ids = char_ids.masked_fill(torch.arange(chars) >= nbytes, 0)
    tags = torch.randint(0, LABELS, (len(lengths), length), generator=g).masked_fill(~mask, -100)
    return ids, char_ids, tags, mask


def run(model, ids, char_ids):
    return model(ids, attention_mask=ids != PAD, char_ids=char_ids)


def loss_of(out, tags, mask):
    if "transitions" in out:
        return crf_nll(out["logits"], tags, mask, out["transitions"])
    return F.cross_entropy(out["logits"].flatten(0, 1), tags.flatten(), ignore_index=-100)


COMBOS = [(name, chars, crf) for name in TAGGERS for chars in (None, "cnn", "lstm") for crf in (False, True)]


@pytest.mark.parametrize("name,chars,crf", COMBOS)
def test_tagger_shapes_padding_invariance_and_gradients(name, chars, crf):
    model = tagger(name, char_embedding=chars, crf=crf)
    assert isinstance(model, TokenTagger)
    ids, char_ids, tags, mask = batch()
    model.eval()
    with torch.no_grad():
        out = run(model, ids, char_ids)
        assert out["logits"].shape == (3, 6, LABELS)
        assert ("transitions" in out) == crf
        if crf:
            assert out["transitions"].shape == (LABELS + 2, LABELS + 2)
        # the 3-word sentence alone (and with its bytes padded wider) scores the same as inside the batch
        alone = run(model, ids[1:2, :3], F.pad(char_ids[1:2, :3], (0, 3)))["logits"]
        torch.testing.assert_close(alone[0], out["logits"][1, :3], atol=1e-5, rtol=1e-5)
        # no attention_mask: derived from the pad id
        torch.testing.assert_close(model(ids, char_ids=char_ids)["logits"], out["logits"])
    model.train()
    loss = loss_of(run(model, ids, char_ids), tags, mask)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.encoder.embedding.embed.weight.grad.abs().sum() > 0
    if chars:
        assert model.chars.embed.weight.grad.abs().sum() > 0
        assert model.chars.embed.weight.grad[0].abs().sum() == 0  # the byte padding id never learns
    if crf:
        assert model.crf.transitions.grad.abs().sum() > 0


def test_char_ids_required_when_char_features_are_configured():
    model = tagger("lstm", char_embedding="cnn")
    ids, _, _, _ = batch()
    with pytest.raises(ValueError, match="char_ids"):
        model(ids)


@pytest.mark.parametrize("cls,width", [(CharCNN, 5), (CharLSTM, 10)])
def test_char_features(cls, width):
    torch.manual_seed(0)
    chars = cls(5)
    assert chars.output_dim == width
    _, char_ids, _, mask = batch()
    out = chars(char_ids)
    assert out.shape == (3, 6, width)
    assert out[~mask].abs().sum() == 0 and out[mask].abs().sum(-1).gt(0).all()  # byte-less words give zeros
    torch.testing.assert_close(chars(F.pad(char_ids, (0, 4))), out)  # wider byte padding changes nothing
    changed = char_ids.clone()
    changed[0, 0, 0] = changed[0, 0, 0] % 256 + 1
    assert not torch.allclose(chars(changed)[0, 0], out[0, 0]) and torch.equal(chars(changed)[0, 1:], out[0, 1:])


def test_char_lstm_export_path_gives_the_packed_states(monkeypatch):
    """Under ONNX export the byte BiLSTM runs unpacked (no exporter traces packing): the same final states, for
    words of every length, byte-less ones (zeros) and wider padding included."""
    torch.manual_seed(0)
    chars = CharLSTM(5).eval()
    _, char_ids, _, mask = batch(chars=9)
    char_ids[0, 0] = torch.arange(1, 10)  # a word filling every byte slot: no padding after it
    with torch.no_grad():
        packed = chars(char_ids)
        monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
        unpacked = chars(char_ids)
        torch.testing.assert_close(unpacked, packed, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(chars(F.pad(char_ids, (0, 3))), packed, rtol=1e-5, atol=1e-6)
    assert unpacked[~mask].abs().sum() == 0


@pytest.mark.parametrize("kernel", ["this cpu's", "without bf16"])
def test_char_lstm_runs_under_bf16_autocast_on_any_cpu(monkeypatch, kernel):
    """Where oneDNN has no bf16 LSTM (CPUs without bf16 units) the character BiLSTM runs in fp32 under autocast:
    the same bits as without autocast, gradients included; on this CPU, whichever it is, it runs."""
    from nlptune.models import unpacked_rnn
    if kernel == "without bf16":
        monkeypatch.setattr(unpacked_rnn, "fused_kernel_runs", lambda *key: False)
    torch.manual_seed(0)
    chars = CharLSTM(5)
    _, char_ids, _, _ = batch()
    expected = chars(char_ids)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = chars(char_ids)
    if kernel == "without bf16":
        assert got.dtype == torch.float32 and torch.equal(got, expected)
    torch.testing.assert_close(got.float(), expected, atol=0.05, rtol=0.05)
    grads = [torch.autograd.grad(out.float().sum(), list(chars.parameters())) for out in (expected, got)]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b.float(), atol=0.05, rtol=0.05)


def test_cnn_contextual_windows_are_centred():
    """Position t sees the width-k window [t - (k-1)//2, t + k//2]: a change at s moves exactly those outputs."""
    torch.manual_seed(0)
    for width in (1, 2, 3, 4):
        enc = CNNEncoder(TokenEmbedding(5, 3, 0), kernel_sizes=[width], num_filters=4, activation="tanh",
                         dropout=0.0)
        x, mask = torch.randn(1, 9, 3), torch.ones(1, 9, dtype=torch.bool)
        moved = x.clone()
        moved[0, 4] += 1.0
        diff = (enc.contextual(moved, mask) - enc.contextual(x, mask)).abs().sum(-1)[0]
        hit = [t for t in range(9) if t - (width - 1) // 2 <= 4 <= t + width // 2]
        assert diff.nonzero().flatten().tolist() == hit


@pytest.mark.parametrize("name,extra", [("lstm", dict(pooling="mean")), ("gru", dict(pooling="max")),
                                        ("transformer", dict(pooling="mean", num_heads=2, ff_size=16))])
def test_classifier_forward_pools_the_contextual_features(name, extra):
    torch.manual_seed(0)
    model = build_model(name, **{**TINY, **extra}).eval()
    ids, _, _, mask = batch()
    enc = model.encoder
    with torch.no_grad():
        h = enc.contextual(enc.embedding(ids), mask)
        pooled = masked_mean(h, mask) if extra["pooling"] == "mean" else \
            h.masked_fill(~mask.unsqueeze(-1), torch.finfo(h.dtype).min).amax(1)
        torch.testing.assert_close(enc(ids, mask), pooled)


def test_crf_tagger_learns_a_toy_pattern():
    """Tag = word id % 4, except that a word right after word 1 takes tag 3: emissions and transitions must
    both learn."""
    torch.manual_seed(0)
    model = tagger("lstm", crf=True, char_embedding="cnn", embedding_dim=12, hidden_size=12)
    ids, char_ids, _, mask = batch(lengths=(8, 7, 6, 5, 8, 4), seed=1)
    tags = (ids % LABELS).masked_fill(~mask, -100)
    after_one = F.pad(ids[:, :-1] == 1, (1, 0), value=False) & mask
    tags[after_one] = 3
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = loss_of(run(model, ids, char_ids), tags, mask)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    with torch.no_grad():
        out = run(model.eval(), ids, char_ids)
        best = viterbi(out["logits"], mask, out["transitions"])
    assert (best[mask] == tags[mask]).float().mean() > 0.95


@pytest.mark.parametrize("name", TAGGERS)
def test_save_load_round_trip(tmp_path, name):
    model = tagger(name, char_embedding="lstm", crf=True).eval()
    model.crf.constrain(allowed_transitions(["O", "B-X", "I-X", "B-Y"], "iob2"))
    with torch.no_grad():
        model.crf.transitions.normal_()
    args = model.builder_args
    assert args["per_token"] is True and args["char_embedding"] == "lstm" and args["crf"] is True
    assert args["char_dim"] == 4
    loaded = load_scratch_model(save_scratch_model(model, tmp_path / name)).eval()
    assert isinstance(loaded, TokenTagger)
    ids, char_ids, _, _ = batch()
    with torch.no_grad():
        a, b = run(model, ids, char_ids), run(loaded, ids, char_ids)
    assert torch.equal(a["logits"], b["logits"]) and torch.equal(a["transitions"], b["transitions"])
    assert torch.equal(loaded.crf.allowed, model.crf.allowed) and not loaded.crf.allowed.all()


def test_bag_refuses_per_token():
    assert model_builder("bag").per_token is False
    assert all(model_builder(name).per_token is True for name in TAGGERS)
    args = {k: v for k, v in TINY.items() if k != "char_dim"}
    with pytest.raises(ModelArgumentError, match="lstm, gru, cnn, transformer or a pretrained"):
        build_model("bag", **args, per_token=True)
    assert build_model("bag", **args).builder_args["per_token"] is False


@pytest.mark.parametrize("name", TAGGERS)
def test_token_arguments_are_refused_for_sentence_models(name):
    base = {**TINY, **EXTRA.get(name, {})}
    with pytest.raises(ModelArgumentError, match="crf=True is only for task.kind=tokens"):
        build_model(name, **base, crf=True)
    with pytest.raises(ModelArgumentError, match="char_embedding='cnn' is only for task.kind=tokens"):
        build_model(name, **base, char_embedding="cnn")
    with pytest.raises(ModelArgumentError, match="pair=True"):
        build_model(name, **{**base, "pair": True}, per_token=True)
    with pytest.raises(ModelArgumentError, match="char_embedding='gru'.*cnn, lstm"):
        build_model(name, **base, per_token=True, char_embedding="gru")
    with pytest.raises(ModelArgumentError, match="char_dim"):
        build_model(name, **{**base, "char_dim": 0}, per_token=True, char_embedding="cnn")
