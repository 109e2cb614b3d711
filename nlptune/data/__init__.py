"""Data: task loading, tokenization (cached by content hash), batching."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from nlptune.config.schema import RunConfig
from nlptune.data.errors import DataError, ProblemCollector
from nlptune.data.labels import split_examples, warn_if_validation_in_train
from nlptune.data.loading import load_raw_splits
from nlptune.utils.memory import MappedPages

__all__ = ["DataError", "PreparedData", "prepare_data", "cache_dir", "encode_split"]


@dataclass
class PreparedData:
    train: "EncodedDataset"  # noqa: F821
    validation: "EncodedDataset"  # noqa: F821
    tokenizer: object
    label_names: list[str] | None
    data_sha256: dict[str, str]
    sources: dict[str, str]
    joint_pairs: bool  # pairs encoded as one sequence (pretrained) or two (scratch encoders)
    char_features: bool = False  # per-word tasks: each position also carries its word's bytes (model.char_embedding)
    # distillation (nlptune/data/soft_targets.py): the transfer set's rows, labelled by the teacher only, and what
    # the run records of the teacher; None without
    transfer: "EncodedDataset | None" = None  # noqa: F821
    teacher: dict | None = None

    def training_rows(self) -> "EncodedDataset":  # noqa: F821
        """The rows the model trains on: train's, then the transfer set's when there is one."""
        return self.train if self.transfer is None else self.train.concat(self.transfer)


def cache_dir() -> Path:
    """Where tokenized splits are cached (`NLPTUNE_CACHE_DIR`, default ~/.cache/nlptune)."""
    return Path(os.environ.get("NLPTUNE_CACHE_DIR", Path.home() / ".cache" / "nlptune"))


def encode_split(tokenizer, texts: list, labels: list | None, *, words: bool, max_length: int, joint_pairs: bool,
                 char_features: bool = False, consume: bool = False) -> dict:
    """The model's input columns for one split: ``texts`` (one sequence per text field) tokenized, or for a
    per-word task (``words``) its sentences cut into windows with a label per position (nlptune/data/words.py;
    ``labels``: the tag ids of each sentence, None when predicting). ``consume``: the texts are emptied as they
    are encoded (their memory goes as the ids' comes), for a caller that needs them no more (not for words)."""
    if words:
        from nlptune.data.words import encode_words

        return encode_words(tokenizer, texts[0], labels, max_length=max_length, char_features=char_features)
    from nlptune.data.tokenization import encode

    return encode(tokenizer, texts, max_length=max_length, joint_pairs=joint_pairs, consume=consume)


def _encode_cached(tokenizer, build, key_parts: list, release=None) -> dict:
    """``build()``'s columns, cached on disk under a digest of ``key_parts`` and the tokenizer. ``release()``, when
    given, is called once a cached entry has been opened, before its arrays are read: what ``build`` would have
    encoded (and freed as it went) can go before the ids take its place."""
    import datasets
    from datasets.table import InMemoryTable

    from nlptune.data.batching import RaggedIds

    datasets.disable_progress_bars()

    # the tokenizer's truncation/padding settings are call state (set by the last encode), not part of what it
    # produces here: max_length is keyed separately, so they are left out or the key would depend on history
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    state.pop("truncation", None)
    state.pop("padding", None)
    fingerprint = json.dumps(key_parts + [state], sort_keys=True)
    path = cache_dir() / "tokenized" / hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
    table = None
    if (path / "dataset_info.json").is_file():
        try:
            table = datasets.load_from_disk(str(path)).data.table  # memory-mapped: nothing is read yet
        except Exception:  # a corrupt cache entry is rebuilt, never trusted
            pass
    if table is not None:
        if release is not None:
            release()
        return _columns_from_arrow(table, MappedPages(path))
    columns = build()
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        # the cache key as the fingerprint: else datasets hashes the table, a copy of every id
        datasets.Dataset(InMemoryTable(_arrow_table(columns)), fingerprint=path.name).save_to_disk(str(tmp))
        os.replace(tmp, path) if not path.exists() else None
    except OSError:
        pass  # caching is an optimisation; a read-only home must not stop training
    return {name: RaggedIds.from_rows(values) if _rows_of_ids(values) else values for name, values in columns.items()}


def _rows_of_ids(values) -> bool:
    return isinstance(values, list) and bool(values) and isinstance(values[0], list)


def _arrow_table(columns: dict):
    """The columns as an Arrow table, the id arrays shared with it rather than copied (a per-word task's columns
    come as Python lists)."""
    import pyarrow as pa

    from nlptune.data.batching import RaggedIds

    return pa.table({name: pa.LargeListArray.from_arrays(pa.array(values.offsets), pa.array(values.values))
                     if isinstance(values, RaggedIds) else pa.array(values) for name, values in columns.items()})


def _columns_from_arrow(table, pages: MappedPages | None = None) -> dict:
    """A cached split's columns; ``pages``: the cache entry's file mappings, whose pages each id chunk gives back
    once copied (else the peak memory holds the ids twice)."""
    import pyarrow as pa

    from nlptune.data.batching import RaggedIds

    def copied(chunk) -> None:
        for buffer in chunk.buffers():
            if buffer is not None:
                pages.release(buffer.address, buffer.size)

    def column(name: str):
        kind = table.schema.field(name).type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            return RaggedIds.from_arrow(table.column(name), copied if pages is not None else None)
        return table.column(name).to_numpy() if name == "length" else table.column(name).to_pylist()

    return {name: column(name) for name in table.column_names}


def _refuse_all_empty(tokenizer, columns: dict, source: str, split: str, task, joint_pairs: bool) -> None:
    """Refuse a split in which tokenization left every example with special tokens only (e.g. texts made of
    control or zero-width characters, which a tokenizer's normalizer removes)."""
    import numpy as np

    from nlptune.data.tokenization import encode

    empty = encode(tokenizer, [[""] for _ in task.text_fields], max_length=task.max_length,
                   joint_pairs=joint_pairs)["length"][0]
    if (np.asarray(columns["length"]) <= empty).all():
        raise DataError("every text is empty after preprocessing (the tokenizer's normalisation left no tokens)",
                        file=source, split=split, column=task.text_fields[0],
                        fix="check task.text_fields and the file's encoding and content")


def prepare_data(run: RunConfig, pretrained: bool, teacher=None) -> PreparedData:
    """Load, validate, tokenize and wrap both splits of ``run.task``. With a ``teacher`` (distillation,
    nlptune/train/teacher.py) the training rows carry its outputs, and the transfer set follows them."""
    from nlptune.data.batching import EncodedDataset
    from nlptune.data.tokenization import (refuse_a_length_without_room, refuse_an_empty_vocabulary, warn_if_cut,
                                           warn_if_mostly_unknown)
    from nlptune.kinds import get_kind

    task = run.task
    words = get_kind(task.kind).words_in_text_column  # a tag per word: sentences become windows of positions
    char_features = words and bool(run.model.args.get("char_embedding"))
    problems = ProblemCollector()  # the texts' problems and the labels' are reported in one message
    raw = load_raw_splits(task, problems=problems)
    train, validation, label_names = split_examples(task, raw, problems)
    warn_if_validation_in_train(train, validation)
    sha256, sources = {s: r.sha256 for s, r in raw.items()}, {s: r.source for s, r in raw.items()}
    del raw  # the examples hold what training needs of it: the rest goes before the texts are encoded
    if teacher is not None:  # a teacher of other labels or another kind is refused before any tokenization
        teacher.check(label_names)
    tokenizer = _tokenizer(run, pretrained, train.texts, words)
    refuse_a_length_without_room(tokenizer, task, joint_pairs=pretrained)
    if not pretrained and not char_features:  # a learnt vocabulary without a word: the model would read nothing
        refuse_an_empty_vocabulary(tokenizer, run.model.tokenizer, len(train.labels), sources["train"])
    datasets_ = {}
    for split, examples in (("train", train), ("validation", validation)):
        key = [sha256[split], len(examples.labels), list(task.text_fields), task.max_length, pretrained]
        if words:  # the positions' labels are part of what is cached: they follow from the names and the scheme
            key += [label_names, task.tag_scheme, char_features]
        # once encoded, the texts are needed no more (but by a teacher, which reads the training texts later):
        # they are freed as their ids are made, so a split's texts and ids are never both held whole
        done = not words and (split == "validation" or teacher is None)
        columns = _encode_cached(tokenizer, lambda: encode_split(
            tokenizer, examples.texts, examples.labels if words else None, words=words, max_length=task.max_length,
            joint_pairs=pretrained, char_features=char_features, consume=done), key_parts=key,
            release=(lambda: _drop(examples.texts)) if done else None)
        if not words:  # a word that normalises to nothing is encoded as the unknown token instead
            _refuse_all_empty(tokenizer, columns, sources[split], split, task, pretrained)
            warn_if_cut(columns, task.max_length, split, sources[split])  # a tagger's windows cut no sentence
        if split == "validation":
            warn_if_mostly_unknown(tokenizer, columns, sources[split],
                                   run.model.args["name_or_path"] if pretrained else None)
        datasets_[split] = EncodedDataset(columns, None if words else examples.labels)
    data = PreparedData(train=datasets_["train"], validation=datasets_["validation"], tokenizer=tokenizer,
                        label_names=label_names, data_sha256=sha256, sources=sources, joint_pairs=pretrained,
                        char_features=char_features)
    return data if teacher is None else _distilled(run, data, teacher, train.texts)


def _drop(texts: list) -> None:
    """Empty ``texts`` (one sequence per text field) in place."""
    for column in texts:
        del column[:]


def _distilled(run: RunConfig, data: PreparedData, teacher, texts: list[list[str]]) -> PreparedData:
    """``data`` whose training rows carry the teacher's outputs, with the transfer set (validation unchanged)."""
    import dataclasses

    from nlptune.data.soft_targets import distil

    tokenizer, max_length, pretrained = data.tokenizer, run.task.max_length, data.joint_pairs

    def encode(make_texts, key: list) -> dict:  # extra training texts, tokenized and cached like a split
        return _encode_cached(tokenizer, lambda: encode_split(tokenizer, make_texts(), None, words=False,
                                                              max_length=max_length, joint_pairs=pretrained),
                              key_parts=key + [max_length, pretrained])

    done = distil(run, teacher, tokenizer, texts, data.train, encode)
    return dataclasses.replace(data, train=done.train, transfer=done.transfer, teacher=done.info)


def _tokenizer(run: RunConfig, pretrained: bool, train_texts: list, words: bool):
    """The pretrained model's tokenizer, or one trained on the training texts (a word vocabulary for taggers)."""
    from nlptune.data.tokenization import MARKED_MODELS, load_tokenizer, train_tokenizer

    task = run.task
    if pretrained:
        return load_tokenizer(run.model.args["name_or_path"], run.model.args.get("revision"), task.max_length,
                              trust_remote_code=bool(run.model.args.get("trust_remote_code")))
    if words:
        from nlptune.data.tokenization import train_word_tokenizer

        return train_word_tokenizer((w for sentence in train_texts[0] for w in sentence), run.model.tokenizer,
                                    task.max_length)
    return train_tokenizer((t for column in train_texts for t in column), run.model.tokenizer, task.max_length,
                           markers=run.model.name in MARKED_MODELS)
