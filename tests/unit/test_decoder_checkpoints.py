"""A pretrained decoder (GPT-2 style) whose tokenizer has no padding token and whose config has no padding id:
the tokenizer pads with its end-of-sequence token, the classifier's config gets that id, and batches of texts of
different lengths train and predict (transformers' GPT-2 head refuses a batch of several texts otherwise)."""
from __future__ import annotations

import pytest
import torch

from nlptune.config.errors import NlptuneError
from nlptune.data.tokenization import load_tokenizer
from nlptune.models import build_model

EOS = "<|endoftext|>"


def save_decoder(folder, special_tokens: dict) -> None:
    """A tiny random GPT-2 and its byte-level BPE tokenizer, trained here on a few words (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(["a good film, a bad plot, a fine cast"] * 20, trainers.BpeTrainer(
        vocab_size=300, special_tokens=list(dict.fromkeys(special_tokens.values())),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special_tokens)
    torch.manual_seed(0)
    GPT2Model(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=len(fast), bos_token_id=0,
                         eos_token_id=0)).save_pretrained(folder)
    fast.save_pretrained(folder)


def test_a_decoder_without_a_padding_token_pads_with_its_end_token_and_takes_batches(tmp_path):
    save_decoder(tmp_path, {"eos_token": EOS, "bos_token": EOS})
    tokenizer = load_tokenizer(str(tmp_path), max_length=16)
    assert tokenizer.pad_token == EOS and tokenizer.pad_token_id == tokenizer.eos_token_id
    model = build_model("pretrained", name_or_path=str(tmp_path), num_labels=2,
                        pad_token_id=tokenizer.pad_token_id)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    batch = tokenizer(["a good film", "a bad plot, a fine cast"], padding=True, return_tensors="pt")
    logits = model(**batch).logits
    assert logits.shape == (2, 2)
    # padding changes nothing: the short text alone scores as it does in the padded batch
    alone = model(**tokenizer(["a good film"], return_tensors="pt")).logits
    torch.testing.assert_close(alone[0], logits[0])


def test_a_tokenizer_with_nothing_to_pad_with_is_refused(tmp_path):
    save_decoder(tmp_path, {"bos_token": "<s>"})
    with pytest.raises(NlptuneError, match="has no padding token, and no end-of-sequence or unknown token"):
        load_tokenizer(str(tmp_path))
