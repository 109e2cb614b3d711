"""Pins of a recipe: what a result depends on besides its config, and how the current machine differs.

- packages: the installed versions of nlptune, torch, transformers, datasets and accelerate;
- data: per split, the identity `nlptune.data.sources` gives it (the sha256 of the local file read, the hub
  dataset ``hub:<id>:<config>:<revision>[:<fingerprint>]``, or the built-in generator's identity);
- model (pretrained models only): ``name_or_path``, the hub ``revision`` (commit) when known, and the
  ``sha256`` of the model folder when it is local;
- teacher (distilled runs only): the teacher run's ``run_dir`` and the ``sha256`` of its best/ model
  (`nlptune.data.sources.teacher_sha256`): a student reproduces only with the teacher it learnt from.

The ``packaged:<hub id>`` model value is resolved by `nlptune.config.sources` (conf/ uses it too).

Standard library only (plus huggingface_hub's offline cache lookup): no torch, no data loading.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from nlptune.config.names import is_pretrained
from nlptune.config.sources import resolve_model_source
from nlptune.data.sources import (SPLITS, is_teacher, model_folder_of, same_split_identity, split_identity,
                                  teacher_sha256)
from nlptune.utils.files import folder_sha256

PIN_PACKAGES = ("nlptune", "torch", "transformers", "datasets", "accelerate")


# ------------------------------------------------------------------------------------------ current pins
def package_pins() -> dict[str, str | None]:
    """Installed versions of the pinned packages."""
    from nlptune.utils.environment import package_versions

    versions = package_versions()
    return {name: versions.get(name) for name in PIN_PACKAGES}


def data_pins(task: Mapping) -> dict[str, str]:
    """What each split of ``task`` (plain config) would be read from, identified as the loader records it
    (`nlptune.data.sources.split_identity`). Hub data is identified up to its revision only: its fingerprint
    is known after loading."""
    return {split: split_identity(task, split) for split in SPLITS}


def hub_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit hash of ``repo_id@revision`` in the local Hugging Face cache (offline), or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        path = try_to_load_from_cache(repo_id, "config.json", revision=revision or "main")
    except Exception:  # an invalid repo id or revision simply has no cached commit
        return None
    if not isinstance(path, str):
        return None
    parts = Path(path).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


def model_pin(model: Mapping) -> dict | None:
    """The pin of a pretrained model (plain ``model`` section): source, hub commit, local folder hash."""
    if not is_pretrained(model.get("name")):
        return None
    source = model.get("name_or_path")
    resolved = resolve_model_source(source)
    pin = {"name_or_path": source, "revision": model.get("revision"), "sha256": None}
    if isinstance(resolved, str) and os.path.isdir(resolved):
        pin["sha256"] = folder_sha256(resolved)
    elif isinstance(resolved, str):
        pin["revision"] = hub_commit(resolved, model.get("revision")) or model.get("revision")
    return pin


def teacher_pin(manifest: Mapping) -> dict:
    """``{"teacher": {run_dir, sha256}}`` for a distilled run's manifest, ``{}`` for any other."""
    teacher = manifest.get("teacher") or {}
    if not teacher.get("sha256"):
        return {}
    return {"teacher": {"run_dir": teacher.get("run_dir"), "sha256": teacher["sha256"]}}


def _teacher_now(plain: Mapping) -> str | None:
    """The identity of the teacher ``plain`` names now (None: no such finished run or saved model)."""
    teacher = (plain.get("distill") or {}).get("teacher")
    if not teacher or not model_folder_of(teacher).is_dir():
        return None
    return teacher_sha256(teacher)


# ------------------------------------------------------------------------------------------ drift
def drift(pins: Mapping, plain: Mapping) -> list[dict]:
    """Differences between a recipe's ``pins`` and this machine for the config ``plain`` about to run:
    ``[{"pin": "pins.packages.torch", "expected": ..., "found": ...}, ...]`` (empty when nothing drifted)."""
    out = []
    installed = package_pins()
    for name, expected in (pins.get("packages") or {}).items():
        found = installed.get(name) if name in installed else _version(name)
        if expected != found:
            out.append({"pin": f"pins.packages.{name}", "expected": expected, "found": found})
    current = data_pins(plain.get("task") or {})
    for split, expected in (pins.get("data") or {}).items():
        found = current.get(split)
        if expected is not None and (found is None or not same_split_identity(str(expected), found)):
            out.append({"pin": f"pins.data.{split}", "expected": expected, "found": found})
    pinned_model = pins.get("model")
    if pinned_model:
        found = model_pin(plain.get("model") or {}) or {}
        for key in ("sha256", "revision"):
            if pinned_model.get(key) is not None and pinned_model.get(key) != found.get(key):
                out.append({"pin": f"pins.model.{key}", "expected": pinned_model.get(key), "found": found.get(key)})
    pinned_teacher = pins.get("teacher")
    if pinned_teacher:
        found = _teacher_now(plain)
        if found is None or not is_teacher(plain["distill"]["teacher"], pinned_teacher.get("sha256"), found):
            out.append({"pin": "pins.teacher.sha256", "expected": pinned_teacher.get("sha256"), "found": found})
    return out


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def describe_drift(items: list[dict]) -> str:
    """One line per drifted pin."""
    return "\n".join(f"  - {d['pin']}: recipe has {d['expected']!r}, this machine has {d['found']!r}" for d in items)
