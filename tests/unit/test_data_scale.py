"""Data preparation at scale: token ids encoded in batches into flat arrays, and length-grouped batches drawn
with numpy, give exactly what the one-call / Python-list versions gave."""
from __future__ import annotations

import random

import numpy as np
import pytest

from nlptune.config.schema import TokenizerConfig
from nlptune.data import tokenization
from nlptune.data.batching import LengthGroupedBatchSampler, RaggedIdsBuilder, eval_order
from nlptune.data.demo import generate
from nlptune.data.tokenization import encode, load_tokenizer, text_batches, train_tokenizer


def _list_sampler_batches(lengths, batch_size, seed, epoch, group_by_length, group, short_batch_last):
    """The sampler as it was written with Python lists (the reference the numpy version must reproduce)."""
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        size = batch_size * group
        chunks = [sorted(order[i: i + size], key=lengths.__getitem__, reverse=True)
                  for i in range(0, len(order), size)]
        order = [i for chunk in chunks for i in chunk]
    batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    if short_batch_last:
        batches.sort(key=lambda batch: len(batch) < batch_size)
    return batches


def test_sampler_draws_the_batches_the_list_version_drew():
    rng = random.Random(0)
    for _ in range(150):
        lengths = [rng.randint(0, 30) for _ in range(rng.randint(0, 600))]  # many ties: their order matters
        options = dict(batch_size=rng.randint(1, 40), seed=rng.randint(0, 99), group_by_length=rng.random() < 0.7,
                       group=rng.randint(1, 8), short_batch_last=rng.random() < 0.5)
        sampler = LengthGroupedBatchSampler(np.asarray(lengths, dtype=np.int32), **options)
        for epoch in range(2):
            sampler.set_epoch(epoch)
            assert list(sampler) == _list_sampler_batches(lengths, epoch=epoch, **options)
        assert all(type(i) is int for batch in sampler for i in batch)  # plain ints, as a DataLoader expects
        assert eval_order(np.asarray(lengths)) == sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)


def test_ragged_builder_fills_the_rows_in_order_growing_its_buffer():
    rows = [[1, 2], [], [3], [4, 5, 6, 7, 8, 9, 10, 11], [12]]
    builder = RaggedIdsBuilder(len(rows))
    builder.add(rows[:2])  # mean 1 id a row: the buffer first holds ~6, then grows
    builder.add([])
    builder.add(rows[2:])
    built = builder.finish()
    assert built.tolist() == rows and built.values.dtype == np.int32 and built.nbytes == 12 * 4 + 6 * 8
    assert built.lengths().tolist() == [2, 0, 1, 8, 1] and built.lengths().dtype == np.int32
    assert RaggedIdsBuilder(0).finish().tolist() == []
    with pytest.raises(ValueError, match="2 rows added, 3 announced"):
        short = RaggedIdsBuilder(3)
        short.add([[1], [2]])
        short.finish()


@pytest.fixture(scope="module")
def scratch():
    cfg = TokenizerConfig(kind="wordpiece", vocab_size=200, min_frequency=1, lowercase=True, normalization="nfkc")
    return train_tokenizer(iter(generate("train")["text"]), cfg, max_length=12)


@pytest.mark.parametrize("fields", [1, 2])
@pytest.mark.parametrize("joint_pairs", [False, True])
def test_encoding_in_batches_gives_the_ids_of_one_call(scratch, tiny_pretrained, monkeypatch, fields, joint_pairs):
    tokenizer = load_tokenizer(str(tiny_pretrained)) if joint_pairs else scratch
    texts = [generate("validation")["text"][i::2][:23] for i in range(fields)]
    kwargs = dict(truncation=True, max_length=12, return_attention_mask=False)
    if fields == 2 and joint_pairs:
        out = tokenizer(texts[0], texts[1], return_token_type_ids=True, **kwargs)
        expected = {"input_ids": out["input_ids"], "token_type_ids": out["token_type_ids"]}
    else:
        expected = {"input_ids": tokenizer(texts[0], **kwargs)["input_ids"]}
        if fields == 2:
            expected["input_ids_b"] = tokenizer(texts[1], **kwargs)["input_ids"]
    monkeypatch.setattr(tokenization, "ENCODE_BATCH", 5)  # 23 rows: 4 full batches and a short one
    columns = encode(tokenizer, texts, max_length=12, joint_pairs=joint_pairs)
    assert set(columns) == {*expected, "length"}
    assert {name: columns[name].tolist() for name in expected} == expected
    assert columns["length"].tolist() == [sum(len(expected[name][i]) for name in expected if name != "token_type_ids")
                                          for i in range(23)]


def test_consumed_texts_are_emptied_batch_by_batch():
    texts = [[f"a{i}" for i in range(7)], [f"b{i}" for i in range(7)]]
    seen = []
    for batch in text_batches(texts, 3, consume=True):
        seen.append(batch)
        assert len(texts[0]) == len(texts[1]) == 7 - sum(len(b[0]) for b in seen)
    assert [b[0] for b in seen] == [["a0", "a1", "a2"], ["a3", "a4", "a5"], ["a6"]]
    assert [b[1][0] for b in seen] == ["b0", "b3", "b6"] and texts == [[], []]
    kept = [["x", "y"]]
    assert list(text_batches(kept, 1)) == [[["x"]], [["y"]]] and kept == [["x", "y"]]


def test_an_empty_split_encodes_to_empty_columns(scratch):
    columns = encode(scratch, [[], []], max_length=12, joint_pairs=False)
    assert set(columns) == {"input_ids", "input_ids_b", "length"}
    assert len(columns["input_ids"]) == len(columns["input_ids_b"]) == len(columns["length"]) == 0
