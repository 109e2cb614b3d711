"""A config group chosen by a YAML file of one's own: ``task=my_task.yaml``, ``model=my_model.yaml``.

The file holds the group's keys as a file of conf/<group>/ does (a model file may also set other sections, as
conf/model/*.yaml do under ``# @package _global_``). It is read with the checks of every config file
(nlptune/config/safety.py), then turned into the conf/ option it builds on plus one override per key, placed
before the command line's own overrides, which therefore win:

- ``task``: the generic task of its ``kind`` (text_classification, text_regression, multi_label,
  token_classification), so a file needs only the keys it changes (its data files, columns, labels...);
- ``model``: the conf/ model its ``name`` (or ``model.name``) names;
- any other group: its ``name`` when that is a conf/ option, else the default.

A task file's relative ``train_file``, ``validation_file`` and ``data_dir`` are read from the file's folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from nlptune.config.errors import ConfigError, ConfigIssue
from nlptune.utils.files import given_path

YAML_SUFFIXES = (".yaml", ".yml")
# the conf/ task each kind builds on
KIND_BASES = {"single_label": "text_classification", "regression": "text_regression",
              "multi_label": "multi_label", "tokens": "token_classification"}
LEGACY_KINDS = {"classification": "single_label", "regression": "regression"}  # task.problem_type's
PATH_KEYS = ("train_file", "validation_file", "data_dir")  # a task file's paths: relative to its folder


def is_group_file(value: str) -> bool:
    """Whether a group's value names a YAML file rather than a conf/ option."""
    return value.lower().endswith(YAML_SUFFIXES)


def expand_group_files(overrides: Sequence[str], groups: Sequence[str], options) -> tuple[list[str], dict]:
    """``overrides`` with each ``<group>=<file>.yaml`` replaced by the conf/ option it builds on and one override
    per key of the file (``options(group)``: a group's conf/ options), and the file each of those came from
    (``{override: path}``). Every problem, in any file, in one `ConfigError`."""
    import dataclasses

    expanded, origins, issues = [], {}, []
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in groups or not is_group_file(str(given_path(value))):
            expanded.append(item)
            continue
        try:
            from_file = _file_overrides(key, given_path(value), options(key))
        except ConfigError as err:  # named with its file (the safety checks give it as the error's source)
            issues += [issue if value in issue.problem else dataclasses.replace(issue, problem=f"{value}: "
                                                                                   f"{issue.problem}")
                       for issue in err.issues]
            continue
        expanded += from_file
        origins.update(dict.fromkeys(from_file, value))
    if issues:
        raise ConfigError(issues)
    return expanded, origins


def _file_overrides(group: str, path: Path, options: list[str]) -> list[str]:
    from nlptune.config.safety import safe_load_file

    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a file"
        raise ConfigError([ConfigIssue(group, f"{path} {what}", f"give the path of a YAML file holding {group} "
                                       f"keys, or one of the conf/ options: {', '.join(options)}")])
    data = safe_load_file(path, recipe=False)
    if not isinstance(data, dict) or not data:
        raise ConfigError([ConfigIssue(group, f"{path} holds no mapping of {group} keys",
                                       f"write its keys one a line, as conf/{group}/*.yaml do (key: value)")])
    sections = data if group == "model" and isinstance(data.get("model"), dict) else {group: data}
    if group == "task":  # named after its file unless it names itself (the run folders carry the name)
        sections = {"task": {"name": path.stem, **_paths_from(path.parent, data)}}
    base = _base_option(group, sections[group], options, path)
    flat = [f"{section}.{key}={_hydra_value(value, path, f'{section}.{key}')}"
            for section, keys in sections.items() for key, value in _section_items(section, keys, path)]
    return ([f"{group}={base}"] if base else []) + flat


def _paths_from(folder: Path, task: dict) -> dict:
    """``task`` with its relative data paths read from ``folder`` (the task file's), as a file beside its data
    means them; an interpolation (``${oc.env:...}``) is left to resolve."""
    return {key: str(folder / value) if key in PATH_KEYS and isinstance(value, str) and value
            and "${" not in value and not Path(value).is_absolute() else value for key, value in task.items()}


def _section_items(section: str, keys: Any, path: Path) -> list[tuple[str, Any]]:
    if not isinstance(keys, dict):
        raise ConfigError([ConfigIssue(section, f"{path}: '{section}' holds {keys!r}, not a mapping of keys",
                                       f"write {section}'s keys under it (key: value)")])
    return list(keys.items())


def _base_option(group: str, keys: dict, options: list[str], path: Path) -> str | None:
    if group == "task":  # a legacy problem_type says the kind too
        kind = keys.get("kind") or LEGACY_KINDS.get(str(keys.get("problem_type")), "single_label")
        if not isinstance(kind, str) or kind not in KIND_BASES:
            raise ConfigError([ConfigIssue("task.kind", f"{path}: unknown kind {kind!r}",
                                           f"choose one of: {', '.join(KIND_BASES)}")])
        return KIND_BASES[kind]
    name = keys.get("name")
    if group == "model" and name not in options:
        raise ConfigError([ConfigIssue("model.name", f"{path}: {'no model name' if name is None else repr(name)} "
                                       "is not a model", f"set name: to one of: {', '.join(options)}")])
    return name if name in options else None


def _hydra_value(value: Any, path: Path, key: str) -> str:
    from nlptune.config.compose import override_value

    try:
        return override_value(value)
    except ValueError as err:
        raise ConfigError([ConfigIssue(key, f"{path}: {err}", "write a string, number, boolean, null, list or "
                                       "mapping of plain keys; or write the config as a recipe (`nlptune freeze`, "
                                       "then edit its YAML)")]) from None
