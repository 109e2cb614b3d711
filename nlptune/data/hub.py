"""Load a task's splits from the Hugging Face hub (`datasets.load_dataset`, revision pinned when set).

When offline mode is on or the hub cannot be reached (asked once per process, `nlptune.utils.network`), the
dataset is looked up in the local datasets cache only, which answers at once: a task that was downloaded
before still runs offline, and one that was not fails in about a second with the fix (point
NLPTUNE_DATA_DIR at local files) instead of after half a minute of retries.
"""
from __future__ import annotations

from nlptune.config.schema import TaskConfig
from nlptune.data.errors import DataError
from nlptune.data.loading import RawSplit
from nlptune.data.sources import EXTENSIONS, hub_identity, hub_source


def _local_data_fix(task: TaskConfig) -> str:
    others = "/".join(ext.lstrip(".") for ext in EXTENSIONS[1:])
    return (f"set NLPTUNE_DATA_DIR=/path/to/data, a folder holding {task.name}/train.jsonl and "
            f"{task.name}/validation.jsonl (or {others}), or set task.train_file=PATH task.validation_file=PATH")


def _load(task: TaskConfig, reachable: bool):
    import datasets

    from nlptune.utils.network import offline_hub

    if reachable:
        return datasets.load_dataset(task.hub_id, task.hub_config, revision=task.hub_revision)
    with offline_hub():
        return datasets.load_dataset(task.hub_id, task.hub_config, revision=task.hub_revision)


def load_hub_splits(task: TaskConfig) -> dict[str, RawSplit]:
    """The train and validation splits of ``task.hub_id`` (``task.train_split`` / ``validation_split``)."""
    from nlptune.utils.network import hub_status

    status = hub_status()
    name = f"'{task.hub_id}'" + (f" (config {task.hub_config})" if task.hub_config else "")
    try:
        loaded = _load(task, status.reachable)
    except Exception as err:  # network, missing dataset or revision, cache miss: all surface to the user alike
        if status.reachable:
            raise DataError(f"could not load {name} from the hub: {err}",
                            fix=f"check the network and the dataset name/revision; or use local files: "
                                f"{_local_data_fix(task)}") from None
        raise DataError(f"task '{task.name}' has no local data configured (NLPTUNE_DATA_DIR / task.data_dir and "
                        f"task.train_file are unset), so it would be downloaded from the hub, but {status.reason}, "
                        f"and {name} is not in the local datasets cache",
                        fix=f"{_local_data_fix(task)}; or go online to download it from the hub") from None
    out = {}
    for split, split_name in (("train", task.train_split), ("validation", task.validation_split)):
        if split_name not in loaded:
            raise DataError(f"the hub dataset has no split '{split_name}' (it has {', '.join(loaded)})", split=split,
                            fix=f"set task.{split}_split to one of them")
        out[split] = RawSplit(columns=_named_tags(loaded[split_name], task.label_field), source=hub_source(task),
                              sha256=hub_identity(task, loaded[split_name]._fingerprint))
    return out


def _named_tags(dataset, label_field: str) -> dict[str, list]:
    """The split's columns, a label column that is a sequence of `ClassLabel` ids (conll2003's ner_tags) spelt as
    the feature's names: per-word tags then read the same from the hub as from a jsonl file of tag strings."""
    import datasets

    columns = dataset.to_dict()
    inner = getattr(dataset.features.get(label_field), "feature", None)
    if isinstance(inner, datasets.ClassLabel) and label_field in columns:
        names = inner.names
        columns[label_field] = [None if row is None else [names[i] if isinstance(i, int) and 0 <= i < len(names)
                                                           else i for i in row] for row in columns[label_field]]
    return columns
