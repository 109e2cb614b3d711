"""Unit tests for nlptune.models: tiny models only, CPU, a few seconds in all."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nlptune.kinds import get_kind
from nlptune.models import (build_model, is_pretrained, load_scratch_model, parameter_report,
                            save_scratch_model)
from nlptune.models.layers import ModelArgumentError, make_activation, masked_max, masked_mean
from nlptune.models.vectors import load_vectors

SCRATCH = ("bag", "cnn", "lstm", "gru", "transformer")
VOCAB_SIZE, PAD = 50, 0
TINY = dict(vocab_size=VOCAB_SIZE, pad_token_id=PAD, embedding_dim=16, hidden_size=16)
EXTRA = {"cnn": dict(kernel_sizes=[2, 3], num_filters=8), "transformer": dict(num_heads=2, ff_size=32)}


def tiny(name: str, *, num_labels: int = 3, pair: bool = False, **kwargs):
    torch.manual_seed(0)
    return build_model(name, num_labels=num_labels, pair=pair, **{**TINY, **EXTRA.get(name, {}), **kwargs})


def batch(lengths=(7, 5, 2, 1), seed=0) -> torch.Tensor:
    """Right-padded ids, one row per length (lengths differ on purpose)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB_SIZE, (len(lengths), max(lengths)), generator=g)
    for row, n in enumerate(lengths):
        ids[row, n:] = PAD
    return ids


def pad_more(ids: torch.Tensor, extra: int = 4) -> torch.Tensor:
    return torch.nn.functional.pad(ids, (0, extra), value=PAD)


def forward(model, ids, ids_b=None):
    return model(ids, attention_mask=ids != PAD, input_ids_b=ids_b,
                 attention_mask_b=None if ids_b is None else ids_b != PAD)


def class_loss(out, labels=(0, 1, 2, 1)):
    """The single_label kind's loss of a model output (models return logits only)."""
    return get_kind("single_label").loss(out.logits, torch.tensor(labels))


# ---------------------------------------------------------------------------------------------
# every scratch model: shapes, loss, gradients
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SCRATCH)
@pytest.mark.parametrize("pair", [False, True])
@pytest.mark.parametrize("num_labels", [3, 1])
def test_forward_backward(name, pair, num_labels):
    model = tiny(name, num_labels=num_labels, pair=pair)
    ids = batch()
    ids_b = batch((3, 6, 4, 2), seed=1) if pair else None
    labels = torch.tensor([0, 1, 2, 1]) if num_labels > 1 else torch.tensor([0.5, 1.0, -0.2, 3.0])
    out = forward(model, ids, ids_b)
    assert out.logits.shape == (4, num_labels) and out.loss is None  # the problem kind computes the loss
    loss = get_kind("single_label" if num_labels > 1 else "regression").loss(out.logits, labels)
    assert torch.isfinite(loss)
    loss.backward()
    grad = model.encoder.embedding.embed.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert grad[PAD].abs().sum() == 0  # padding row never learns
    assert model.builder_args["name"] == name and "vocab" not in model.builder_args
    json.dumps(model.builder_args)


@pytest.mark.parametrize("name", SCRATCH)
def test_mask_derived_from_pad(name):
    model = tiny(name).eval()
    ids = batch()
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, forward(model, ids).logits)


@pytest.mark.parametrize("name", SCRATCH)
@pytest.mark.parametrize("pair", [False, True])
def test_padding_invariance(name, pair):
    model = tiny(name, pair=pair).eval()
    ids = batch()
    ids_b = batch((3, 6, 4, 2), seed=1) if pair else None
    with torch.no_grad():
        base = forward(model, ids, ids_b).logits
        more = forward(model, pad_more(ids), None if ids_b is None else pad_more(ids_b, 2)).logits
    torch.testing.assert_close(base, more, atol=1e-5, rtol=1e-4)


def test_pair_is_order_sensitive_but_encoder_shared():
    model = tiny("bag", pair=True).eval()
    a, b = batch(), batch((3, 6, 4, 2), seed=1)
    with torch.no_grad():
        ab, ba = forward(model, a, b).logits, forward(model, b, a).logits
    assert not torch.allclose(ab, ba)
    with pytest.raises(ValueError, match="input_ids_b"):
        model(a)


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_rnn_poolings(name, pooling, bidirectional):
    model = tiny(name, pooling=pooling, bidirectional=bidirectional, num_layers=2).eval()
    ids = batch()
    with torch.no_grad():
        logits = forward(model, ids).logits
        more = forward(model, pad_more(ids)).logits
    assert logits.shape == (4, 3)
    torch.testing.assert_close(logits, more, atol=1e-5, rtol=1e-4)
    assert model.encoder.output_dim == 16 * (2 if bidirectional else 1)


def test_rnn_last_is_final_states():
    model = tiny("lstm", pooling="last").eval()
    ids = batch()
    enc = model.encoder
    with torch.no_grad():
        pooled = enc(ids, ids != PAD)
        for row, n in enumerate((7, 5, 2, 1)):
            out, _ = enc.rnn(enc.embedding(ids[row : row + 1, :n]))
            torch.testing.assert_close(pooled[row, :16], out[0, n - 1, :16])  # forward: last token
            torch.testing.assert_close(pooled[row, 16:], out[0, 0, 16:])  # backward: first token


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_options(pooling, positional, norm_first):
    model = tiny("transformer", pooling=pooling, positional=positional, norm_first=norm_first,
                 d_model=8, num_layers=2, activation="gelu")
    out = forward(model, batch())
    assert out.logits.shape == (4, 3)
    class_loss(out).backward()
    assert isinstance(model.encoder.project, torch.nn.Linear)  # 16 -> 8
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(forward(model, batch()).logits, forward(model, pad_more(batch())).logits,
                                   atol=1e-5, rtol=1e-4)


def test_transformer_too_long():
    model = tiny("transformer", max_positions=4)
    with pytest.raises(ValueError, match="max_positions"):
        forward(model, batch())


@pytest.mark.parametrize("name", SCRATCH)
def test_regression_output_starts_at_the_given_bias(name):
    model = tiny(name, num_labels=1, pair=True)
    other = tiny(name, num_labels=1, pair=True)
    model.init_output_bias(2.7)
    model.eval(), other.eval()
    ids, ids_b = batch(), batch((3, 6, 4, 2), seed=1)
    # only the output bias changes (it is set to 2.7; same weights otherwise, no random draw)
    shift = forward(model, ids, ids_b).logits - forward(other, ids, ids_b).logits
    expected = 2.7 - other.head[-1].bias.detach()
    assert torch.allclose(shift, expected.expand(4, 1), atol=1e-5)
    with pytest.raises(ValueError, match="num_labels=1"):
        tiny(name, num_labels=3).init_output_bias(0.5)


@pytest.mark.parametrize("name,pooling", [("bag", "max"), ("bag", "mean")])
def test_bag_options(name, pooling):
    for layers in (0, 2):
        model = tiny(name, pooling=pooling, num_layers=layers, activation="tanh")
        assert forward(model, batch()).logits.shape == (4, 3)


# ---------------------------------------------------------------------------------------------
# invalid arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kwargs,arg", [
    ("bag", dict(pooling="median"), "pooling"),
    ("bag", dict(activation="swish"), "activation"),
    ("bag", dict(dropout=1.5), "dropout"),
    ("bag", dict(embedding_dropout=-0.1), "embedding_dropout"),
    ("bag", dict(num_layers=-1), "num_layers"),
    ("bag", dict(pad_token_id=50), "pad_token_id"),
    ("cnn", dict(kernel_sizes=[]), "kernel_sizes"),
    ("cnn", dict(kernel_sizes=[3, 0]), "kernel_sizes"),
    ("cnn", dict(num_filters=0), "num_filters"),
    ("cnn", dict(num_layers=2), "num_layers"),
    ("lstm", dict(pooling="cls"), "pooling"),
    ("gru", dict(num_layers=0), "num_layers"),
    ("lstm", dict(hidden_size=0), "hidden_size"),
    ("transformer", dict(d_model=10, num_heads=4), "d_model"),
    ("transformer", dict(num_heads=3), "num_heads"),
    ("transformer", dict(pooling="max"), "pooling"),
    ("transformer", dict(positional="rotary"), "positional"),
    ("transformer", dict(activation="swish"), "activation"),
    ("transformer", dict(num_labels=0), "num_labels"),
])
def test_invalid_arguments(name, kwargs, arg):
    with pytest.raises(ValueError, match=arg) as info:
        tiny(name, **kwargs)
    assert repr(next(iter(kwargs.values()))) in str(info.value)  # the bad value is named too


def test_unknown_activation_lists_choices():
    with pytest.raises(ValueError, match="swish.*relu, gelu, tanh"):
        make_activation("swish")


def test_unknown_model_and_argument():
    with pytest.raises(KeyError, match="unknown model"):
        build_model("lsmt", **TINY, num_labels=2, pair=False)
    with pytest.raises(TypeError):
        tiny("bag", kernel_sizes=[3])  # a cnn-only argument


def test_masked_pooling():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[-2.0], [-4.0], [100.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert masked_mean(x, mask).flatten().tolist() == [2.0, -2.0]
    assert masked_max(x, mask).flatten().tolist() == [3.0, -2.0]
    assert masked_max(x, torch.zeros_like(mask)).abs().sum() == 0  # all padding: finite zeros


# ---------------------------------------------------------------------------------------------
# pretrained word vectors
# ---------------------------------------------------------------------------------------------
VOCAB = {"[PAD]": 0, "[UNK]": 1, "the": 2, "cat": 3, "sat": 4, "new york": 5}


def write_vectors(path, word2vec: bool, dim: int = 4):
    lines = [f"{w} " + " ".join(str(i + 0.5 * k) for k in range(dim))
             for i, w in enumerate(["the", "cat", "dog", "new york", "the"], start=1)]
    if word2vec:
        lines.insert(0, f"{len(lines)} {dim}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("word2vec", [False, True])
def test_load_vectors(tmp_path, word2vec):
    path = write_vectors(tmp_path / "vec.txt", word2vec)
    torch.manual_seed(0)
    weights, coverage = load_vectors(str(path), VOCAB, 4, vocab_size=8, pad_token_id=0)
    assert weights.shape == (8, 4)
    torch.testing.assert_close(weights[2], torch.tensor([1.0, 1.5, 2.0, 2.5]))  # first "the" wins
    torch.testing.assert_close(weights[3], torch.tensor([2.0, 2.5, 3.0, 3.5]))
    torch.testing.assert_close(weights[5], torch.tensor([4.0, 4.5, 5.0, 5.5]))  # word with a space
    assert weights[0].abs().sum() == 0
    assert 0 < weights[4].abs().max() < 1  # random N(0, 0.1) row
    assert coverage == pytest.approx(3 / 6)


def test_vector_dim_mismatch(tmp_path):
    path = write_vectors(tmp_path / "vec.txt", word2vec=True)
    with pytest.raises(ValueError, match=r"vec\.txt.*dimension 4.*embedding_dim is 16"):
        load_vectors(str(path), VOCAB, 16)
    with pytest.raises(ValueError, match="dimension 4"):
        tiny("bag", vocab=VOCAB, pretrained_vectors=str(path))


@pytest.mark.parametrize("content, problem", [
    ("the 1 2 3 nan\n", r"line 1: the vector of 'the' holds a value that is not a finite number"),
    ("the 1 2 3 x\n", r"line 1: the vector of 'the' holds a value that is not a finite number"),
    ("cat 1 2 3 4\nthe 1 2\n", r"line 2: expected a word and 4 values, got 3 fields"),
    ("", r"has a vector for no word of the vocabulary"),
    ("elsewhere 1 2 3 4\n", r"has a vector for no word of the vocabulary"),
    ("\x7fELF\x02\x01\n", r"is not a GloVe or word2vec text file"),
])
def test_a_vectors_file_nlptune_cannot_use_is_a_users_error(tmp_path, content, problem):
    path = tmp_path / "vec.txt"
    path.write_text(content)
    with pytest.raises(ModelArgumentError, match=r"model\.pretrained_vectors file .*vec\.txt.*" + problem):
        tiny("bag", vocab=VOCAB, pretrained_vectors=str(path), embedding_dim=4)


def test_a_folder_that_is_no_model_is_a_users_error(tmp_path):
    with pytest.raises(ModelArgumentError, match=r"pretrained_vectors=.* cannot be read: .*give a GloVe/word2vec"):
        tiny("bag", vocab=VOCAB, pretrained_vectors=str(tmp_path), embedding_dim=4)


@pytest.mark.parametrize("word2vec", [False, True])
@pytest.mark.parametrize("freeze", [False, True])
def test_model_with_vectors(tmp_path, word2vec, freeze):
    path = write_vectors(tmp_path / "vec.txt", word2vec, dim=16)
    model = tiny("lstm", vocab=VOCAB, pretrained_vectors=str(path), freeze_embeddings=freeze)
    weight = model.encoder.embedding.embed.weight
    torch.testing.assert_close(weight[3], torch.arange(16) * 0.5 + 2.0)
    assert model.encoder.embedding.coverage == pytest.approx(0.5)
    assert weight.requires_grad is not freeze
    class_loss(forward(model, batch())).backward()
    assert (weight.grad is None) is freeze
    report = parameter_report(model)
    assert report["frozen"] == (weight.numel() if freeze else 0)
    encoder = report["modules"]["encoder"]
    assert encoder["trainable"] == encoder["total"] - report["frozen"]
    with pytest.raises(ValueError, match="vocab"):
        tiny("lstm", pretrained_vectors=str(path))


# ---------------------------------------------------------------------------------------------
# parameter report, save/load
# ---------------------------------------------------------------------------------------------
def test_parameter_report():
    model = tiny("cnn", pair=True)
    report = parameter_report(model)
    assert report["total"] == sum(p.numel() for p in model.parameters())
    assert report["total"] == report["trainable"] + report["frozen"] and report["frozen"] == 0
    assert set(report["modules"]) == {"encoder", "head"}
    assert sum(m["total"] for m in report["modules"].values()) == report["total"]
    # a shared parameter counts once
    shared = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    shared[1].weight = shared[0].weight
    assert parameter_report(shared)["total"] == 9 + 3 + 3


@pytest.mark.parametrize("name", SCRATCH)
def test_save_load_round_trip(tmp_path, name):
    model = tiny(name, pair=name == "bag", num_labels=1 if name == "gru" else 3).eval()
    save_scratch_model(model, tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").exists()
    stored = json.loads((tmp_path / "m" / "nlptune_model.json").read_text())
    assert stored == model.builder_args
    loaded = load_scratch_model(tmp_path / "m").eval()
    ids, ids_b = batch(), batch((3, 6, 4, 2), seed=1) if name == "bag" else None
    with torch.no_grad():
        assert torch.equal(forward(model, ids, ids_b).logits, forward(loaded, ids, ids_b).logits)
    assert loaded.builder_args == model.builder_args


def test_save_load_with_vectors(tmp_path):
    path = write_vectors(tmp_path / "vec.txt", word2vec=False, dim=16)
    model = tiny("bag", vocab=VOCAB, pretrained_vectors=str(path), freeze_embeddings=True).eval()
    save_scratch_model(model, tmp_path / "m")
    path.unlink()  # the vectors file is not needed any more
    loaded = load_scratch_model(tmp_path / "m")
    assert not loaded.encoder.embedding.embed.weight.requires_grad
    assert loaded.builder_args["pretrained_vectors"] == str(path)
    with torch.no_grad():
        assert torch.equal(model(batch()).logits, loaded.eval()(batch()).logits)


# ---------------------------------------------------------------------------------------------
# pretrained checkpoints (a tiny local BERT; no network)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37)
    path = tmp_path_factory.mktemp("bert")
    BertModel(config).save_pretrained(path)
    return str(path)


RUNTIME = dict(vocab_size=123, pad_token_id=0, pair=True, vocab=None)


@pytest.mark.parametrize("num_labels", [2, 1])
def test_pretrained_forward_backward(tiny_bert, num_labels):
    assert is_pretrained("pretrained") and not is_pretrained("lstm")
    kind = get_kind("regression" if num_labels == 1 else "single_label")
    model = build_model("pretrained", name_or_path=tiny_bert, num_labels=num_labels,
                        id2label={0: "neg", 1: "pos"} if num_labels == 2 else None,
                        problem_type=kind.hf_problem_type, **RUNTIME)
    assert model.config.problem_type == ("regression" if num_labels == 1 else "single_label_classification")
    ids = torch.randint(1, 100, (3, 6))
    labels = torch.tensor([0, 1, 1]) if num_labels == 2 else torch.tensor([0.1, 0.5, 2.0])
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
    assert out.logits.shape == (3, num_labels) and torch.isfinite(out.loss)
    # the kind's loss is the loss transformers computes for that problem_type
    torch.testing.assert_close(kind.loss(out.logits, labels), out.loss)
    out.loss.backward()
    assert model.bert.embeddings.word_embeddings.weight.grad is not None
    if num_labels == 2:
        assert model.config.id2label == {0: "neg", 1: "pos"} and model.config.label2id["pos"] == 1
    assert model.builder_args["name"] == "pretrained" and "vocab_size" not in model.builder_args
    json.dumps(model.builder_args)


def test_pretrained_dropout_overrides(tiny_bert):
    model = build_model("pretrained", name_or_path=tiny_bert, num_labels=2, hidden_dropout=0.0,
                        attention_dropout=0.05, classifier_dropout=0.25, **RUNTIME)
    assert model.config.hidden_dropout_prob == 0.0
    assert model.config.attention_probs_dropout_prob == 0.05
    assert model.config.classifier_dropout == 0.25
    assert model.dropout.p == 0.25


def test_pretrained_dropout_attribute_mapping():
    from transformers import DistilBertConfig, GPT2Config

    from nlptune.models.pretrained import apply_dropout_overrides

    config = DistilBertConfig()
    apply_dropout_overrides(config, hidden_dropout=0.01, attention_dropout=0.02, classifier_dropout=0.03)
    assert (config.dropout, config.attention_dropout, config.seq_classif_dropout) == (0.01, 0.02, 0.03)
    with pytest.raises(ValueError, match="hidden_dropout"):
        apply_dropout_overrides(config, hidden_dropout=2.0)
    config = GPT2Config()
    with pytest.raises(ValueError, match="'gpt2'"):
        apply_dropout_overrides(config, classifier_dropout=0.1)  # gpt2 has summary_first_dropout only


def test_pretrained_freezing(tiny_bert):
    model = build_model("pretrained", name_or_path=tiny_bert, num_labels=2, freeze_embeddings=True,
                        freeze_layers=1, **RUNTIME)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    expected = {n for n, _ in model.named_parameters()
                if n.startswith("bert.embeddings.") or n.startswith("bert.encoder.layer.0.")}
    assert frozen == expected and frozen
    report = parameter_report(model)
    assert report["frozen"] == sum(p.numel() for n, p in model.named_parameters() if n in frozen)
    assert report["modules"]["classifier"]["trainable"] == report["modules"]["classifier"]["total"]


def test_pretrained_reinit_top_layers(tiny_bert):
    from safetensors.torch import load_file

    saved = {k.removeprefix("bert."): v for k, v in load_file(str(Path(tiny_bert) / "model.safetensors")).items()}
    torch.manual_seed(5)
    model = build_model("pretrained", name_or_path=tiny_bert, num_labels=2, reinit_layers=1, **RUNTIME)
    state = {k.removeprefix("bert."): v for k, v in model.state_dict().items()}
    top = [k for k in saved if k.startswith("encoder.layer.1.") or k.startswith("pooler.")]
    weights = [k for k in top if k.endswith("weight") and "LayerNorm" not in k]
    assert weights and all(not torch.equal(state[k], saved[k]) for k in weights)  # drawn again
    assert all(torch.equal(state[k], torch.ones_like(saved[k])) for k in top if "LayerNorm.weight" in k)
    kept = [k for k in saved if k.startswith("encoder.layer.0.") or k.startswith("embeddings.")]
    assert kept and all(torch.equal(state[k], saved[k]) for k in kept)  # the rest stays pretrained
    torch.manual_seed(5)
    again = build_model("pretrained", name_or_path=tiny_bert, num_labels=2, reinit_layers=1, **RUNTIME)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())  # seeded
    assert model.builder_args["reinit_layers"] == 1


def test_pretrained_invalid(tiny_bert):
    with pytest.raises(ValueError, match="freeze_layers=5.*2 layers"):
        build_model("pretrained", name_or_path=tiny_bert, num_labels=2, freeze_layers=5, **RUNTIME)
    with pytest.raises(ValueError, match="reinit_layers=3.*2 layers"):
        build_model("pretrained", name_or_path=tiny_bert, num_labels=2, reinit_layers=3, **RUNTIME)
    with pytest.raises(ValueError, match="reinit_layers=-1"):
        build_model("pretrained", name_or_path=tiny_bert, num_labels=2, reinit_layers=-1, **RUNTIME)
    with pytest.raises(ValueError, match="hidden_size"):
        build_model("pretrained", name_or_path=tiny_bert, num_labels=2, hidden_size=16, **RUNTIME)
    with pytest.raises(ValueError, match="id2label"):
        build_model("pretrained", name_or_path=tiny_bert, num_labels=3, id2label={0: "a"}, **RUNTIME)


# pretrained word vectors from a transformer's input embeddings
def test_vectors_from_a_transformer_folder(tiny_pretrained):
    from transformers import AutoModel, AutoTokenizer

    table = AutoModel.from_pretrained(tiny_pretrained).get_input_embeddings().weight.detach()
    own = AutoTokenizer.from_pretrained(tiny_pretrained).get_vocab()
    vocab = {"[PAD]": 0, "[UNK]": 1, "film": 2, "plays": 3, "zzqx": 4}
    weights, coverage = load_vectors(str(tiny_pretrained), vocab, 32, vocab_size=6, pad_token_id=0)
    assert weights.shape == (6, 32) and weights[0].abs().sum() == 0
    torch.testing.assert_close(weights[1], table[own["[UNK]"]])  # a token of its vocabulary: its own row
    torch.testing.assert_close(weights[2], table[own["film"]])
    torch.testing.assert_close(weights[3], table[[own["plays"]]].mean(0))
    assert 0 < weights[4].abs().max() < 1  # every piece unknown: a random row
    assert coverage == pytest.approx(4 / 5)  # [PAD] is in its vocabulary too; zzqx is not


def test_word_pieces_are_averaged(tiny_pretrained):
    from transformers import AutoModel, AutoTokenizer

    table = AutoModel.from_pretrained(tiny_pretrained).get_input_embeddings().weight.detach()
    own = AutoTokenizer.from_pretrained(tiny_pretrained).get_vocab()
    weights, _ = load_vectors(str(tiny_pretrained), {"[PAD]": 0, "filmed": 1}, 32, pad_token_id=0)
    torch.testing.assert_close(weights[1], table[[own["film"], own["##ed"]]].mean(0))


def test_transformer_vectors_check_the_dimension(tiny_pretrained):
    with pytest.raises(ValueError, match=r"dimension 32.*embedding_dim is 16; set model.embedding_dim=32"):
        load_vectors(str(tiny_pretrained), {"[PAD]": 0, "film": 1}, 16)
    model = tiny("lstm", vocab={"[PAD]": 0, "film": 1}, pretrained_vectors=str(tiny_pretrained), embedding_dim=32)
    assert model.encoder.embedding.coverage == pytest.approx(1.0)


@pytest.mark.parametrize("value, transformer", [
    ("packaged:sentence-transformers/all-MiniLM-L6-v2", True), ("org/model-name", True),
    ("glove.6B.300d.txt", False), ("vectors/glove.txt", False), ("org/vectors.vec", False),
    ("a/b/c", False), ("./org/name", False)])
def test_what_names_a_transformer(tmp_path, value, transformer):
    from nlptune.models.vectors import is_transformer_source

    assert is_transformer_source(value) is transformer
    assert is_transformer_source(str(tmp_path)) is True  # a folder
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "name").write_text("w 1.0\n")
    assert is_transformer_source(str(tmp_path / "org" / "name")) is False  # an existing file
