"""Data: task loading, tokenization (cached by content hash), batching."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from nlptune.config.schema import RunConfig
from nlptune.data.errors import DataError
from nlptune.data.labels import split_examples
from nlptune.data.loading import load_raw_splits

__all__ = ["DataError", "PreparedData", "prepare_data", "cache_dir"]


@dataclass
class PreparedData:
    train: "EncodedDataset"  # noqa: F821
    validation: "EncodedDataset"  # noqa: F821
    tokenizer: object
    label_names: list[str] | None
    data_sha256: dict[str, str]
    sources: dict[str, str]
    joint_pairs: bool  # pairs encoded as one sequence (pretrained) or two (scratch encoders)


def cache_dir() -> Path:
    """Where tokenized splits are cached (`NLPTUNE_CACHE_DIR`, default ~/.cache/nlptune)."""
    return Path(os.environ.get("NLPTUNE_CACHE_DIR", Path.home() / ".cache" / "nlptune"))


def _encode_cached(tokenizer, texts, *, max_length: int, joint_pairs: bool, key_parts: list) -> dict:
    import datasets

    from nlptune.data.batching import RaggedIds
    from nlptune.data.tokenization import encode

    datasets.disable_progress_bars()

    # the tokenizer's truncation/padding settings are call state (set by the last encode), not part of what it
    # produces here: max_length is keyed separately, so they are left out or the key would depend on history
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    state.pop("truncation", None)
    state.pop("padding", None)
    fingerprint = json.dumps(key_parts + [state, max_length, joint_pairs], sort_keys=True)
    path = cache_dir() / "tokenized" / hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
    if (path / "dataset_info.json").is_file():
        try:
            return _columns_from_arrow(datasets.load_from_disk(str(path)).data.table)
        except Exception:  # a corrupt cache entry is rebuilt, never trusted
            pass
    columns = encode(tokenizer, texts, max_length=max_length, joint_pairs=joint_pairs)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        datasets.Dataset.from_dict(columns).save_to_disk(str(tmp))
        os.replace(tmp, path) if not path.exists() else None
    except OSError:
        pass  # caching is an optimisation; a read-only home must not stop training
    return {name: values if name == "length" else RaggedIds.from_rows(values) for name, values in columns.items()}


def _columns_from_arrow(table) -> dict:
    from nlptune.data.batching import RaggedIds

    return {name: table.column(name).to_pylist() if name == "length" else RaggedIds.from_arrow(table.column(name))
            for name in table.column_names}


def _refuse_all_empty(tokenizer, columns: dict, source: str, split: str, task, joint_pairs: bool) -> None:
    """Refuse a split in which tokenization left every example with special tokens only (e.g. texts made of
    control or zero-width characters, which a tokenizer's normalizer removes)."""
    from nlptune.data.tokenization import encode

    empty = encode(tokenizer, [[""] for _ in task.text_fields], max_length=task.max_length,
                   joint_pairs=joint_pairs)["length"][0]
    if all(length <= empty for length in columns["length"]):
        raise DataError("every text is empty after preprocessing (the tokenizer's normalisation left no tokens)",
                        file=source, split=split, column=task.text_fields[0],
                        fix="check task.text_fields and the file's encoding and content")


def prepare_data(run: RunConfig, pretrained: bool) -> PreparedData:
    """Load, validate, tokenize and wrap both splits of ``run.task``."""
    from nlptune.data.batching import EncodedDataset
    from nlptune.data.tokenization import MARKED_MODELS, load_tokenizer, train_tokenizer

    task = run.task
    raw = load_raw_splits(task)
    train, validation, label_names = split_examples(task, raw)
    if pretrained:
        tokenizer = load_tokenizer(run.model.args["name_or_path"], run.model.args.get("revision"), task.max_length,
                                   trust_remote_code=bool(run.model.args.get("trust_remote_code")))
    else:
        tokenizer = train_tokenizer((t for column in train.texts for t in column), run.model.tokenizer,
                                    task.max_length, markers=run.model.name in MARKED_MODELS)
    datasets_ = {}
    for split, examples in (("train", train), ("validation", validation)):
        key = [raw[split].sha256, len(examples.labels), list(task.text_fields)]
        columns = _encode_cached(tokenizer, examples.texts, max_length=task.max_length, joint_pairs=pretrained,
                                 key_parts=key)
        _refuse_all_empty(tokenizer, columns, raw[split].source, split, task, pretrained)
        datasets_[split] = EncodedDataset(columns, examples.labels)
    return PreparedData(train=datasets_["train"], validation=datasets_["validation"], tokenizer=tokenizer,
                        label_names=label_names, data_sha256={s: r.sha256 for s, r in raw.items()},
                        sources={s: r.source for s, r in raw.items()}, joint_pairs=pretrained)
