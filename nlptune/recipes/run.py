"""Running a recipe: `nlptune train recipe=NAME_OR_PATH [key=value ...] [strict_pins=true]`.

The recipe's config is the base; command-line overrides apply on top of it with the same syntax and the same
checks as with conf/ (a typo'd key names the closest one). Pins are compared with this machine: differences
are warned about (refused with ``strict_pins=true``) and recorded in the run's manifest via
``RunConfig.provenance``.

Where the data comes from: a recipe whose task has no ``data_dir``, ``train_file`` or generator reads
``$NLPTUNE_DATA_DIR/<task>/`` when that variable is set, as conf/ does, and the hub otherwise; the data pins
tell whether the files are the ones the recipe was measured on.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

from nlptune.config import sources
from nlptune.config.compose import apply_overrides
from nlptune.recipes import pins as pinning
from nlptune.config.errors import ConfigError, ConfigIssue
from nlptune.utils.files import sha256_file

RECIPE_KEY = "recipe"
STRICT_KEY = "strict_pins"
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def split_recipe_overrides(overrides: Sequence[str]) -> tuple[str | None, bool, list[str]]:
    """``(recipe, strict_pins, other overrides)`` from a command line's ``key=value`` items."""
    recipe, strict, rest, issues = None, False, [], []
    for item in overrides:
        key, sep, value = item.partition("=")
        if key == RECIPE_KEY and sep:
            if not value.strip():  # else resolved as the current folder, a misleading "is a folder"
                issues.append(ConfigIssue(RECIPE_KEY, "is empty", "give a shipped recipe's name or a recipe file, "
                                          "e.g. recipe=sst2-lstm (see `nlptune recipes list`)"))
            elif recipe is not None and value != recipe:  # which one would train is not what either says
                issues.append(ConfigIssue(RECIPE_KEY, f"is given twice ({recipe!r}, {value!r})", "give one recipe"))
            recipe = value
        elif key == STRICT_KEY and sep:
            if value.lower() not in _TRUE + _FALSE:
                issues.append(ConfigIssue(STRICT_KEY, f"expected true or false, got {value!r}", "strict_pins=true"))
            strict = value.lower() in _TRUE
        else:
            rest.append(item)
    if strict and recipe is None:
        issues.append(ConfigIssue(STRICT_KEY, "strict_pins only applies to a recipe run",
                                  "add recipe=NAME_OR_PATH, or drop strict_pins"))
    if issues:
        raise ConfigError(issues)
    return recipe, strict, rest


def has_recipe(overrides: Sequence[str]) -> bool:
    """Whether a command line selects a recipe."""
    return any(item.startswith(RECIPE_KEY + "=") for item in overrides)


def _default_data_dir(plain: dict) -> None:
    task = plain.get("task")
    env = os.environ.get("NLPTUNE_DATA_DIR")
    if isinstance(task, dict) and env and not any(task.get(k) for k in ("data_dir", "train_file", "generator")):
        task["data_dir"] = env


def run_config_from_recipe(name_or_path: str, overrides: Sequence[str] = (), strict_pins: bool = False,
                           warn_drift: bool = True):
    """The `RunConfig` of a recipe plus ``overrides``; drift is warned about (``warn_drift``), or refused when
    ``strict_pins``.

    ``RunConfig.provenance["recipe"]`` records the recipe (name, file, sha256), the overrides, the pins, the
    drift found and the expected result, for the manifest.
    """
    from nlptune.recipes.format import load_recipe, resolve_recipe
    from nlptune.config.schema import build_run_config, with_later_sections
    from nlptune.utils.console import warn

    path = resolve_recipe(name_or_path)
    recipe = load_recipe(path)
    # a recipe frozen before a section existed runs as it did, and its keys can still be overridden
    plain = apply_overrides(with_later_sections(recipe["config"]), overrides)
    _default_data_dir(plain)
    source = (plain.get("model") or {}).get("name_or_path")
    sources.resolve_plain(plain)
    drift = pinning.drift(recipe["pins"], plain)
    if drift and strict_pins:
        raise ConfigError([ConfigIssue(d["pin"], f"the recipe pins {d['expected']!r}, this machine has "
                                       f"{d['found']!r}", "install/use what the recipe pins, or drop strict_pins=true")
                           for d in drift], source=f"{path} (strict_pins=true)")
    if drift and warn_drift:
        warn(f"this machine differs from the pins of recipe {path} (recorded in the run's manifest; "
             f"strict_pins=true refuses to run):\n{pinning.describe_drift(drift)}")
    if warn_drift and (plain.get("model") or {}).get("tokenizer") == "wordpiece":
        warn("model.tokenizer=wordpiece: the tokenizers library trains WordPiece vocabularies in hash-map order "
             "(huggingface/tokenizers#1794), so reruns of this recipe may differ slightly; wordlevel is exact")
    try:
        run = build_run_config(plain)
    except ConfigError as err:
        raise ConfigError(err.issues, source=f"{path} with overrides {list(overrides)}") from None
    provenance = {"recipe": {
        "name": recipe["recipe"]["name"], "path": str(Path(path).resolve()), "sha256": sha256_file(path),
        "schema_version": recipe["recipe"]["schema_version"], "overrides": list(overrides),
        "strict_pins": strict_pins, "model_source": source, "pins": recipe["pins"], "drift": drift,
        "expected": recipe["expected"]}}
    return dataclasses.replace(run, provenance={**dict(run.provenance), **provenance})


def load_run_config(overrides: Sequence[str] = ()):
    """The typed `RunConfig` of a command line: from the recipe that ``recipe=NAME_OR_PATH`` names (with
    ``strict_pins=``), or composed from conf/ when it names none."""
    from nlptune.config.compose import load_run_config as compose_run_config

    recipe, strict, rest = split_recipe_overrides(overrides)
    if recipe is None:
        return compose_run_config(rest)
    return run_config_from_recipe(recipe, rest, strict_pins=strict)
