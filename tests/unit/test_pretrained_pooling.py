"""model.pooling for pretrained encoders: what the classification head reads (the first token, or the mean over
the real tokens), kept with the saved weights and put back on loading."""
from __future__ import annotations

import pytest
import torch

from nlptune.models import build_model
from nlptune.models.layers import ModelArgumentError
from nlptune.models.pretrained import POOLING_ATTRIBUTE, restore_pooling, saved_pooling

RUNTIME = dict(vocab_size=123, pad_token_id=0, pair=False, vocab=None)


def _save(tmp_path_factory, name, config_class, model_class, **sizes):
    torch.manual_seed(0)
    config = config_class(vocab_size=100, max_position_embeddings=40, pad_token_id=0, **sizes)
    path = tmp_path_factory.mktemp(name)
    model_class(config).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel

    return _save(tmp_path_factory, "bert", BertConfig, BertModel, hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=37)


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory):
    """A head that reads the first token's state itself (no pooler)."""
    from transformers import RobertaConfig, RobertaModel

    return _save(tmp_path_factory, "roberta", RobertaConfig, RobertaModel, hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=37)


def _classifier(path, pooling="cls", **extra):
    torch.manual_seed(1)  # the same fresh head for every pooling
    return build_model("pretrained", name_or_path=path, num_labels=3, pooling=pooling, **RUNTIME, **extra).eval()


def _inputs():
    ids = torch.tensor([[5, 17, 23, 9, 31], [5, 44, 12, 0, 0]])
    return ids, (ids != 0).long()


def test_mean_pooling_feeds_the_head_the_mean_of_the_real_tokens(tiny_bert):
    model = _classifier(tiny_bert, "mean")
    ids, mask = _inputs()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
        hidden = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state  # hooked: mean at position 0
        plain = [model.bert.encoder(model.bert.embeddings(input_ids=ids[i:i + 1, :n]))[0][0]
                 for i, n in enumerate(mask.sum(1).tolist())]
        means = torch.stack([rows.mean(0) for rows in plain])
        expected = model.classifier(means)  # BERT's head: dropout (off in eval) then the classifier
    assert torch.allclose(hidden[:, 0], means, atol=1e-5)
    assert torch.allclose(logits, expected, atol=1e-5)
    # padding changes nothing: the second row alone gives the same logits
    with torch.no_grad():
        alone = model(input_ids=ids[1:, :3], attention_mask=mask[1:, :3]).logits
    assert torch.allclose(alone, logits[1:], atol=1e-5)
    assert getattr(model.config, POOLING_ATTRIBUTE) == "mean"


def test_cls_pooling_is_the_checkpoints_own_head(tiny_bert):
    cls, mean = _classifier(tiny_bert), _classifier(tiny_bert, "mean")
    ids, mask = _inputs()
    with torch.no_grad():
        first = cls(input_ids=ids, attention_mask=mask).logits
        assert not torch.allclose(first, mean(input_ids=ids, attention_mask=mask).logits)
        pooled = cls.bert.pooler(cls.bert(input_ids=ids, attention_mask=mask).last_hidden_state)
        assert torch.allclose(first, cls.classifier(pooled), atol=1e-6)
    assert not hasattr(cls.config, POOLING_ATTRIBUTE)  # nothing recorded: config.json as transformers writes it


def test_a_head_reading_the_first_token_reads_the_mean(tiny_roberta):
    model = _classifier(tiny_roberta, "mean")
    ids, mask = _inputs()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
        alone = model(input_ids=ids[1:, :3], attention_mask=mask[1:, :3]).logits
        assert not torch.allclose(logits, _classifier(tiny_roberta)(input_ids=ids, attention_mask=mask).logits)
    assert torch.allclose(alone, logits[1:], atol=1e-5)


def test_the_choice_is_saved_with_the_weights_and_restored(tiny_bert, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = _classifier(tiny_bert, "mean")
    model.save_pretrained(tmp_path / "saved")
    assert saved_pooling(tmp_path / "saved") == "mean"
    ids, mask = _inputs()
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved").eval()
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask).logits
        plain = loaded(input_ids=ids, attention_mask=mask).logits  # transformers alone reads the first token
        restored = restore_pooling(restore_pooling(loaded))(input_ids=ids, attention_mask=mask).logits
    assert not torch.allclose(before, plain)
    assert torch.equal(before, restored)
    assert len(loaded.bert._forward_hooks) == 1  # restoring twice hooks once
    # fine-tuned again from the saved folder with pooling=cls: the recorded choice goes, so loading reads cls
    again = _classifier(str(tmp_path / "saved"))
    assert not hasattr(again.config, POOLING_ATTRIBUTE)
    again.save_pretrained(tmp_path / "again")
    assert saved_pooling(tmp_path / "again") == "cls"
    assert saved_pooling(tmp_path / "missing") == "cls"


def test_pooling_refusals(tiny_bert, tmp_path_factory):
    from transformers import GPT2Config, GPT2Model

    with pytest.raises(ModelArgumentError, match="pooling='max' is not valid; choose one of: cls, mean"):
        _classifier(tiny_bert, "max")
    with pytest.raises(ModelArgumentError, match="word tagger.*pooling=cls"):
        _classifier(tiny_bert, "mean", auto_model="AutoModelForTokenClassification")
    gpt2 = _save(tmp_path_factory, "gpt2", GPT2Config, GPT2Model, n_embd=32, n_layer=1, n_head=2)
    with pytest.raises(ModelArgumentError, match="model type 'gpt2'.*set pooling=cls"):
        _classifier(gpt2, "mean")
    assert _classifier(gpt2).config.model_type == "gpt2"  # its own head (the last token) stays available
