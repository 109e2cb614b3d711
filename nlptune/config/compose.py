"""Compose `conf/` with Hydra's compose API and the user's overrides, checking every key first.

Hydra stops at the first bad override with its own wording; we check all of them against the
composed defaults first so the user gets every typo at once, each with the closest valid key.
"""
from __future__ import annotations

import copy
import math
import functools
import difflib
import os
import re
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Mapping, Sequence

from nlptune.config.errors import ConfigError, ConfigIssue, NlptuneError
from nlptune.utils.shipped import shipped_dir

GROUPS = ("task", "model", "optimizer", "scheduler", "trainer", "augment", "distill", "tune")


def conf_dir() -> Path:
    """The folder holding config.yaml and the groups: `NLPTUNE_CONF_DIR` when set, else the conf/ nlptune
    ships (inside the installed package, or the checkout's top-level folder: `nlptune.utils.shipped`)."""
    env = os.environ.get("NLPTUNE_CONF_DIR")
    folder = Path(env).resolve() if env else shipped_dir("conf")
    if not (folder / "config.yaml").is_file():
        fix = "point NLPTUNE_CONF_DIR at a folder like nlptune's conf/" if env else \
            "reinstall nlptune (its wheel ships conf/), or set NLPTUNE_CONF_DIR to a conf/ folder"
        raise ConfigError([ConfigIssue("NLPTUNE_CONF_DIR" if env else "conf/", f"{folder} holds no config.yaml", fix)])
    return folder


def group_options(group: str) -> list[str]:
    """The selectable names of a config group (its YAML files)."""
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


# keys whose value is a mapping the user fills with keys of their own (TaskConfig.column_map: {source: target});
# tune.constraints' names are checked by the tune section's own checks, which say why a metric is no constraint
MAPPING_KEYS = ("task.column_map", "tune.constraints")


def _as_text(key: str, value: str) -> str | None:
    """``key=value`` with the value quoted for Hydra, inside the shell's quotes (None: no quoting fits)."""
    inner = f'"{value}"' if '"' not in value else f"'{value}'" if "'" not in value else None
    if inner is None:
        return None
    return f"'{key}={inner}'" if "'" not in inner else f'"{key}={inner}"'


def _syntax_issues(overrides: Sequence[str]) -> tuple[list[str], list[ConfigIssue]]:
    """The overrides Hydra can read as one plain value each, and an issue for every other one (Hydra's parser
    stops at the first; a value such as ``;`` or ``,`` needs quoting that the shell's own quotes do not give)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser, readable, issues = OverridesParser.create(), [], []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            readable.append(item)  # _parse names it
            continue
        try:
            sweep = parser.parse_overrides([item])[0].is_sweep_override()
        except HydraException as err:
            odd = sorted(set(re.sub(r"[A-Za-z0-9_.\-@/+~]", "", key)))
            if odd:  # the key, not the value, is what Hydra stopped at
                issues.append(ConfigIssue(key.lstrip("+~"), f"is not a key Hydra can read: it holds "
                                          f"{', '.join(map(repr, odd))} (keys are ASCII letters, digits, '_', '-' "
                                          "and dots)", "rename the column in the file, or map it in a recipe "
                                          "file (config.task.column_map), whose YAML takes any name"
                                          if _in_mapping(key.lstrip("+~")) else
                                          "check its spelling; `nlptune train --cfg job` lists the keys"))
                continue
            problem, sweep = f"Hydra cannot read the value {value!r} ({str(err).splitlines()[0]})", False
        else:
            if not sweep:
                readable.append(item)
                continue
            problem = f"{value!r} is a list of values to sweep, which a single run cannot take (a list is [a,b])"
        quoted = _as_text(key, value)
        fix = f"to give the value as text, quote it for Hydra inside the shell's quotes: {quoted}" if quoted \
            else "check the override syntax"
        issues.append(ConfigIssue(key.lstrip("+~"), problem, fix))
    return readable, issues


def _in_mapping(key: str) -> bool:
    """Whether ``key`` names one entry of a `MAPPING_KEYS` mapping (``task.column_map.review``)."""
    return any(key.startswith(f"{mapping}.") for mapping in MAPPING_KEYS)


def _open_mappings(values: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Overrides of `MAPPING_KEYS` as Hydra takes them in struct mode: ``task.column_map={a:b}`` replaces the
    mapping (delete, then add), ``task.column_map.a=b`` adds or changes one entry (Hydra's ``++``)."""
    opened = []
    for key, item in values:
        value = item.partition("=")[2]
        if key in MAPPING_KEYS:
            opened += [(f"~{key}", f"~{key}"), (f"+{key}", f"+{key}={value}")]
        elif _in_mapping(key):
            opened.append((f"++{key}", f"++{item}"))
        else:
            opened.append((key, item))
    return opened


def _parse(overrides: Sequence[str], issues: list[ConfigIssue]) -> tuple[list[str], list[tuple[str, str]]]:
    groups, values = [], []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            issues.append(ConfigIssue(item, "not a key=value override", "write it as key=value, e.g. trainer.max_epochs=5"))
            continue
        bare = key.lstrip("+~")
        if bare in GROUPS:
            options = group_options(bare)
            if value not in options:
                close = difflib.get_close_matches(value, options, n=1)
                hint = f"did you mean '{bare}={close[0]}'? " if close else ""
                problem = f"unknown {bare} {value!r}"
                if os.path.isfile(value) or os.sep in value:  # a file, but not a YAML one (group_files.py)
                    problem += f": a {bare} of one's own is a YAML file of {bare} keys (.yaml or .yml)"
                issues.append(ConfigIssue(bare, problem, f"{hint}choose one of: {', '.join(options)}"))
            else:
                groups.append(item)
        else:
            values.append((key, item))
    return groups, values


def _all_keys(node: Any, prefix: str = "") -> list[str]:
    from omegaconf import DictConfig

    keys = []
    if isinstance(node, DictConfig):
        for k in node.keys():
            path = f"{prefix}{k}"
            keys.append(path)
            keys += _all_keys(node._get_node(k), path + ".")
    return keys


def _check_keys(base, values: list[tuple[str, str]], issues: list[ConfigIssue], more_keys=None,
                origins: dict | None = None) -> None:
    """An issue for each override whose key ``base`` lacks, with the closest known key (``more_keys()``: more
    keys to suggest from); ``origins``: the file an override was read from (`expand_group_files`)."""
    from omegaconf import OmegaConf

    known = None
    for key, item in values:
        if key.startswith(("+", "~")):
            continue  # explicit additions/deletions are checked by the schema afterwards
        if OmegaConf.select(base, key, default=_MISSING) is _MISSING:
            known = known or _all_keys(base) + (more_keys() if more_keys else [])
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else "run `nlptune train --cfg job` to list the keys"
            where = f"in {origins[item]}" if origins and item in origins else f"in override '{item}'"
            issues.append(ConfigIssue(key, f"unknown config key {where}", hint))


_MISSING = object()


def compose(overrides: Sequence[str] = ()) -> "Any":
    """Compose the config (an OmegaConf DictConfig in struct mode) or raise `ConfigError` with every problem."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from nlptune.config.group_files import expand_group_files
    from nlptune.config.safety import check_conf_dir, check_overrides

    overrides, origins = expand_group_files(overrides, GROUPS, group_options)  # task=my_task.yaml: its keys
    check_overrides(overrides)  # _target_, trust flags, ...: refused before Hydra reads anything (safety.py)
    check_conf_dir(conf_dir())
    readable, issues = _syntax_issues(overrides)
    groups, values = _parse(readable, issues)
    values = _open_mappings(values)
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        base = hydra_compose("config", overrides=groups)
        _check_keys(base, values, issues, origins=origins)
        if issues:
            raise ConfigError(issues)
        try:
            return hydra_compose("config", overrides=groups + [item for _, item in values])
        except (HydraException, OmegaConfBaseException) as err:
            raise ConfigError([_composition_issue(err)]) from None


def _composition_issue(err: Exception) -> ConfigIssue:
    """The issue of an override Hydra could not merge: a mapping given for a list key, say (the other type
    errors are the schema's, reported with their key)."""
    key = getattr(err.__cause__, "full_key", None)
    if key:
        cause = str(err.__cause__).splitlines()[0].replace("DictConfig", "a mapping").replace("ListConfig", "a list")
        return ConfigIssue(key, f"{str(err).splitlines()[0]}: {cause}", f"give {key} a value of its type (`nlptune "
                           "train --cfg job` shows it)")
    return ConfigIssue("overrides", str(err).splitlines()[0], "check the override syntax")


def override_value(value: Any) -> str:
    """``value`` (plain data: None, a bool, number, string, list or mapping) written in Hydra's override grammar,
    read back by Hydra as the same value; a string is always quoted (a choice "1e-3" or "null" stays a string).
    ValueError for anything else, and for a mapping key the grammar cannot hold."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                          "inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_mapping_key(k)}:{override_value(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"{value!r} is not a plain value")


def _quoted(text: str) -> str:
    """``text`` as a single-quoted Hydra string: a quote escaped, and so is every backslash of a run that
    precedes a quote or the end (the only places the grammar reads them)."""
    out, run = [], 0
    for char in text + "'":  # the closing quote ends the last run
        if char == "\\":
            run += 1
            continue
        if char == "'":
            out.append("\\" * (2 * run) + "\\'")
        else:
            out.append("\\" * run + char)
        run = 0
    return "'" + "".join(out)[:-2] + "'"


def _mapping_key(name: Any) -> str:
    text = str(name)
    if not text.replace("_", "a").replace("-", "a").isalnum() or not text.isascii():
        raise ValueError(f"the key {text!r} cannot be written in an override (only letters, digits, _ and -)")
    return text


def to_plain(cfg) -> dict:
    """Resolve interpolations (e.g. ${oc.env:NLPTUNE_DATA_DIR,null}) and return plain Python data."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError([ConfigIssue(str(getattr(err, "full_key", "config")), str(err).splitlines()[0],
                                       "fix the interpolation")]) from None


def load_run_config(overrides: Sequence[str] = ()):
    """Compose conf/ with ``overrides``, resolve and validate: the typed `RunConfig`. (A command line that
    starts from a recipe, ``recipe=NAME_OR_PATH``, goes through `nlptune.recipes.run.load_run_config`.)"""
    from nlptune.config.schema import build_run_config
    from nlptune.config.sources import resolve_plain

    try:
        composed = compose(overrides)
    except ConfigError as err:
        raise ConfigError(err.issues + issues_of_the_rest(overrides, err.issues)) from None
    return build_run_config(resolve_plain(to_plain(composed)))


def issues_of_the_rest(overrides: Sequence[str], found: list[ConfigIssue], build=None) -> list[ConfigIssue]:
    """What checking the config gives without the overrides ``found`` names (a typo'd key, an unreadable
    value): a range error beside a typo is then reported with it, not on the next run. ``build(plain)`` checks
    the composed config (default: the run config's checks). [] when every problem is already found, or an issue
    cannot be traced to one override."""
    from nlptune.config.schema import build_run_config

    from nlptune.config.group_files import expand_group_files

    named = {issue.key for issue in found}
    try:  # a group file's keys, one override each, so that one bad key leaves the file's others checked
        overrides = expand_group_files(overrides, GROUPS, group_options)[0]
    except ConfigError:
        return []  # the files' own problems are in ``found``
    rest = [item for item in overrides if item.partition("=")[0].lstrip("+~") not in named]
    if len(rest) == len(overrides):
        return []
    try:
        (build or build_run_config)(to_plain(compose(rest)))
    except ConfigError as err:
        return [issue for issue in err.issues if issue.key not in named]
    except NlptuneError:
        return []  # a problem of another kind: it shows once the config's own are fixed
    return []


def conf_defaults(config: Mapping[str, Any]) -> dict:
    """conf/'s composed plain values for the task and model a (recipe's) ``config`` names: a conf/ option's
    own values when the name is one, the root defaults otherwise; empty when conf/ cannot be composed."""
    task, model = (section.get("name") if isinstance(section, Mapping) else None
                   for section in (config.get("task"), config.get("model")))  # not a mapping: the checks say so
    overrides = [f"task={task}"] if task in group_options("task") else []
    overrides += [f"model={model}"] if model in group_options("model") else []
    try:
        plain = to_plain(compose(overrides))
    except NlptuneError:
        return {}
    plain.pop("tune", None)
    return plain


def apply_overrides(config: dict, overrides: Sequence[str]) -> dict:
    """``config`` (plain) with Hydra-syntax overrides applied; `ConfigError` lists every bad one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    from nlptune.config.safety import check_overrides

    check_overrides(overrides)
    readable, issues = _syntax_issues(overrides)  # reported with the other overrides' problems
    try:
        parsed = OverridesParser.create().parse_overrides(list(readable))
    except HydraException as err:
        raise ConfigError([ConfigIssue("overrides", str(err).splitlines()[0], "check the override syntax")]) from None
    cfg = OmegaConf.create(copy.deepcopy(config))
    OmegaConf.set_struct(cfg, True)
    # conf/'s config for the recipe's task and model, composed at most once and only when a key is missing
    defaults = functools.cache(lambda: OmegaConf.create(conf_defaults(config)))
    later = _later_keys(cfg, defaults, [o.key_or_group for o in parsed])
    for item, override in zip(readable, parsed):
        key = override.key_or_group
        if override.is_sweep_override() or override.package is not None:
            issues.append(ConfigIssue(key, f"'{item}' is a sweep or package override", "give one plain value"))
        elif key in GROUPS and not override.is_delete():
            issues.append(ConfigIssue(key, f"'{item}' would replace the recipe's whole '{key}' section",
                                      f"override single keys, e.g. {key}.<key>=VALUE (or train without recipe=)"))
        elif not override.is_add() and key not in later and not _in_mapping(key):
            # a typo: suggest from conf/'s keys too
            _check_keys(cfg, [(key, item)], issues, lambda: _all_keys(defaults()))
    if issues:
        raise ConfigError(issues, source="overrides of the recipe")
    for override in parsed:
        key = override.key_or_group
        try:
            if override.is_delete():
                parent, _, leaf = key.rpartition(".")
                with open_dict(cfg):
                    node = OmegaConf.select(cfg, parent) if parent else cfg
                    node.pop(leaf, None)
            else:
                with open_dict(cfg) if override.is_add() or key in later or _in_mapping(key) else nullcontext():
                    OmegaConf.update(cfg, key, override.value(), merge=False)
        except OmegaConfBaseException as err:
            raise ConfigError([ConfigIssue(key, str(err).splitlines()[0], "check the override")]) from None
    return to_plain(cfg)


def _later_keys(cfg, defaults, keys: Sequence[str]) -> set[str]:
    """The ``keys`` a stored config ``cfg`` lacks but conf/ (``defaults()``) has for its task and model: keys added
    to nlptune after the config was written (a recipe from before `model.reinit_layers`, say). Overriding one adds
    it; without an override the run behaves as it did (the schema's and the builders' defaults)."""
    from omegaconf import OmegaConf

    missing = [key for key in keys if OmegaConf.select(cfg, key, default=_MISSING) is _MISSING]
    return {key for key in missing if OmegaConf.select(defaults(), key, default=_MISSING) is not _MISSING}


def section_config(group: str, option: str, **changes):
    """One typed section (optimizer, scheduler, trainer, augment or distill) with conf/<group>/<option>.yaml's values,
    then ``changes``: conf/'s defaults for code and tests that need one section rather than a whole run.

    Raises `ConfigError` like a whole config would (unknown or missing keys, wrong types).
    """
    from nlptune.config import schema
    from nlptune.config.safety import safe_load_file

    classes = {"optimizer": schema.OptimizerConfig, "scheduler": schema.SchedulerConfig,
               "trainer": schema.TrainerConfig, "augment": schema.AugmentConfig, "distill": schema.DistillConfig}
    if group not in classes:
        raise ValueError(f"section_config takes one of {', '.join(classes)}, not {group!r}")
    options = group_options(group)
    if option not in options:
        raise ConfigError([ConfigIssue(group, f"unknown {group} {option!r}", f"choose one of: {', '.join(options)}")])
    issues: list[ConfigIssue] = []
    values = {**safe_load_file(conf_dir() / group / f"{option}.yaml", recipe=False), **changes}
    section = schema.build_section(classes[group], group, values, issues)
    if issues:
        raise ConfigError(issues)
    return section


def to_yaml(cfg) -> str:
    """The composed config as YAML, interpolations unresolved (what `--cfg job` prints)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg)
