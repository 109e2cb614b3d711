"""Recipes: one self-contained, schema-versioned YAML file that reproduces a run.

```yaml
recipe:   {name: sst2-lstm, description: ..., schema_version: 1}
config:   the fully resolved run config (no defaults list, no interpolation, no _target_)
pins:     {packages: {nlptune: .., torch: .., transformers: .., datasets: .., accelerate: ..},
           data: {train: <sha256 | hub identity>, validation: ...},
           model: null | {name_or_path: .., revision: <hub commit>, sha256: <folder hash>},
           teacher: {run_dir: .., sha256: <best/ hash>}   (distilled runs only)}
expected: {metric: accuracy, value: 0.83 | null, tolerance: 0.02, hardware: .., wall_time_s: .., note: ..}
```

``expected.value: null`` marks a recipe whose result has not been measured yet (``note`` says how to measure
it); it can be trained, listed and validated, but not reproduced. ``config.model.name_or_path`` may be
``packaged:<hub id>`` (see `nlptune.recipes.pins`).

Public API (the tuner writes ``best_recipe.yaml`` with it): `recipe_from_run`, `write_recipe`, `load_recipe`,
`validate_recipe`. Running a recipe (overrides, drift) is in `nlptune.recipes.run`.
"""
from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from nlptune.config import sources
from nlptune.recipes import pins as pinning
from nlptune.config.checks import range_issues, with_article
from nlptune.config.errors import ConfigError, ConfigIssue, NlptuneError
from nlptune.config.safety import hostile_issues, read_yaml_text, safe_load_text
from nlptune.utils.plain import parse_json, plain_data
from nlptune.utils.shipped import shipped_dir
from nlptune.utils.files import atomic_write_text

SCHEMA_VERSION = 1
DEFAULT_TOLERANCE = 0.02
SECTIONS = ("recipe", "config", "pins", "expected")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
UNMEASURED_NOTE = "not measured yet: run `python benchmarks/measure_recipes.py RECIPE` to fill expected"
_NUMBER = (int, float)
# section -> {key: (accepted types, required)}
SPEC: dict[str, dict[str, tuple[tuple, bool]]] = {
    "recipe": {"name": ((str,), True), "description": ((str, type(None)), False),
               "schema_version": ((int,), True)},
    "pins": {"packages": ((dict,), True), "data": ((dict,), True), "model": ((dict, type(None)), False),
             "teacher": ((dict, type(None)), False)},
    "pins.model": {"name_or_path": ((str,), True), "revision": ((str, type(None)), False),
                   "sha256": ((str, type(None)), False)},
    "pins.teacher": {"run_dir": ((str,), True), "sha256": ((str,), True)},
    "expected": {"metric": ((str,), True), "value": (_NUMBER + (type(None),), True), "tolerance": (_NUMBER, True),
                 "hardware": ((str, type(None)), False), "wall_time_s": (_NUMBER + (type(None),), False),
                 "note": ((str, type(None)), False)},
}


# ------------------------------------------------------------------------------------------ finding recipes
def recipes_dir() -> Path:
    """The shipped recipes: `NLPTUNE_RECIPES_DIR` when set, else the recipes/ nlptune ships (inside the installed
    package, or the checkout's top-level folder: `nlptune.utils.shipped`)."""
    env = os.environ.get("NLPTUNE_RECIPES_DIR")
    return Path(env).resolve() if env else shipped_dir("recipes")


def shipped_recipes() -> list[Path]:
    """Every recipe file in `recipes_dir()`, sorted by name."""
    folder = recipes_dir()
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def resolve_recipe(name_or_path: str | Path) -> Path:
    """A recipe file: an existing path (``~`` expanded; quoted as Hydra values are, 'recipe="~/r.yaml"', the quotes
    dropped as Hydra would), else a shipped recipe's name (with or without .yaml)."""
    from nlptune.utils.files import given_path

    path = given_path(str(name_or_path))
    if path.is_file():
        return path
    if path.is_dir():
        raise NlptuneError(f"recipe {path} is a folder; give a recipe file (e.g. {path / 'my.yaml'}) or a shipped "
                           "recipe's name (see `nlptune recipes list`)")
    shipped = {p.stem: p for p in shipped_recipes()}
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if path.parent == Path(".") and stem in shipped:
        return shipped[stem]
    close = difflib.get_close_matches(stem, list(shipped), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise NlptuneError(f"no recipe file or shipped recipe called '{name_or_path}'. {hint}"
                       f"Shipped: {', '.join(shipped) or 'none'} (see `nlptune recipes list`)")


# ------------------------------------------------------------------------------------------ validation
def _check_section(name: str, data: Any, issues: list[ConfigIssue]) -> dict:
    """Check one mapping against `SPEC`: unknown keys (with the closest valid one), missing keys, types."""
    spec = SPEC[name]
    if not isinstance(data, dict):
        issues.append(ConfigIssue(name, f"expected a mapping, got {data!r}", f"write {name}: with keys "
                                  f"{', '.join(spec)}"))
        return {}
    for key, value in data.items():
        if key not in spec:
            close = difflib.get_close_matches(str(key), list(spec), n=1)
            hint = f"did you mean '{name}.{close[0]}'?" if close else f"valid keys: {', '.join(spec)}"
            issues.append(ConfigIssue(f"{name}.{key}", "unknown key", hint))
            continue
        types, _ = spec[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            issues.append(ConfigIssue(f"{name}.{key}", f"expected {wanted}, got {value!r}",
                                      f"set it to {with_article(wanted)}"))
    for key, (_, required) in spec.items():
        if required and key not in data:
            issues.append(ConfigIssue(f"{name}.{key}", "missing", f"add {name}.{key}"))
    return data


def _header_issues(header: dict) -> list[ConfigIssue]:
    issues = []
    name = header.get("name")
    if isinstance(name, str) and not NAME_PATTERN.match(name):
        issues.append(ConfigIssue("recipe.name", f"{name!r} is not a simple name",
                                  "use letters, digits, '.', '_' and '-', e.g. sst2-lstm"))
    version = header.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version != SCHEMA_VERSION:
        fix = "upgrade nlptune" if version > SCHEMA_VERSION else f"set recipe.schema_version: {SCHEMA_VERSION}"
        issues.append(ConfigIssue("recipe.schema_version", f"schema version {version} is not supported "
                                  f"(this nlptune reads {SCHEMA_VERSION})", fix))
    return issues


def _config_issues(config: Any) -> list[ConfigIssue]:
    """The run config's problems (typos, types, ranges), through the same checks as `nlptune train`."""
    from nlptune.config.compose import conf_defaults
    from nlptune.config.schema import build_run_config

    if not isinstance(config, dict):
        return [ConfigIssue("config", f"expected a mapping, got {config!r}", "write the resolved run config here")]
    if "defaults" in config:
        return [ConfigIssue("config.defaults", "a recipe holds the resolved config, not a defaults list",
                            "freeze a run (`nlptune freeze RUN_DIR my.yaml`) to get a complete config")]
    issues = []
    model = config.get("model")
    problem = sources.packaged_issue(model.get("name_or_path")) if isinstance(model, dict) else None
    if problem:
        issues.append(ConfigIssue("config.model.name_or_path", problem, "fix the value"))
    # build_run_config stops before its value checks when a key is mistyped, missing or of the wrong type;
    # putting conf/'s value in place of each key it reported (or dropping an unknown key) lets a second pass
    # reach the checks behind them, so every problem shows at once
    data, seen, defaults = copy.deepcopy(config), {}, None
    for _ in range(3):
        try:
            build_run_config(copy.deepcopy(data))
            break
        except ConfigError as err:
            new = [i for i in err.issues if (i.key, i.problem) not in seen]
            seen.update({(i.key, i.problem): i for i in new})
            defaults = conf_defaults(config) if defaults is None else defaults
            if not new or not [i for i in err.issues if _stand_in(data, i.key, defaults)]:
                break
    return issues + [ConfigIssue(f"config.{i.key}", i.problem, i.fix) for i in seen.values()]


def _stand_in(data: dict, dotted: str, defaults: dict) -> bool:
    """Put conf/'s value of ``a.b.c`` in place of ``data``'s, or delete the key where conf/ has none; whether
    ``data`` changed."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data.get(part) if isinstance(data, dict) else None
        defaults = defaults.get(part) if isinstance(defaults, dict) else None
    if not isinstance(data, dict):
        return False
    if isinstance(defaults, dict) and leaf in defaults:
        changed = leaf not in data or data[leaf] != defaults[leaf]
        data[leaf] = defaults[leaf]
        return changed
    if leaf in data:
        del data[leaf]
        return True
    return False


def _pins_issues(pins: dict) -> list[ConfigIssue]:
    issues = []
    packages = pins.get("packages") if isinstance(pins.get("packages"), dict) else {}  # else refused as a type
    for name, version in packages.items():
        if not isinstance(version, (str, type(None))):
            issues.append(ConfigIssue(f"pins.packages.{name}", f"expected a version string, got {version!r}",
                                      "quote it, e.g. '2.13.0'"))
    data = pins.get("data") if isinstance(pins.get("data"), dict) else {}
    for split, value in data.items():
        if split not in pinning.SPLITS:
            issues.append(ConfigIssue(f"pins.data.{split}", "unknown split", f"use {' and '.join(pinning.SPLITS)}"))
        elif not isinstance(value, (str, type(None))):
            issues.append(ConfigIssue(f"pins.data.{split}", f"expected a sha256 string, got {value!r}", "quote it"))
    for name in ("model", "teacher"):
        if isinstance(pins.get(name), dict):
            _check_section(f"pins.{name}", pins[name], issues)
    return issues


def _expected_issues(expected: dict, config: Any) -> list[ConfigIssue]:
    issues = []
    task = config.get("task") if isinstance(config, dict) else None
    metrics = task.get("metrics") if isinstance(task, dict) else None
    metric = expected.get("metric")
    if isinstance(metrics, list) and isinstance(metric, str) and metric not in metrics:
        close = difflib.get_close_matches(metric, [str(m) for m in metrics], n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        issues.append(ConfigIssue("expected.metric", f"{metric!r} is not one of config.task.metrics {metrics}",
                                  f"{hint}pick one of them"))
    # a NaN or infinite number passes the type check, yet |got - value| <= tolerance is then never (or always)
    # true: reproduce would give a verdict that means nothing. (Wrong types are reported by _check_section.)
    value = expected.get("value")
    if isinstance(value, float) and not math.isfinite(value):
        issues.append(ConfigIssue("expected.value", f"{value!r} is not a finite number",
                                  "set it to the measured metric, or null (not measured yet)"))
    for key in ("tolerance", "wall_time_s"):
        number = expected.get(key)
        if isinstance(number, _NUMBER) and not isinstance(number, bool):
            issues += range_issues(f"expected.{key}", number, 0)
    return issues


def validate_recipe(data: Any, source: str = "recipe") -> list[ConfigIssue]:
    """Every problem of the recipe ``data`` (parsed YAML), together; empty when it is valid.

    Hostile content (``_target_``, trust flags, interpolations) is reported first, and then nothing is
    imported to check the rest. ``source`` is only used in messages that need it.
    """
    if not isinstance(data, dict):
        return [ConfigIssue("<document>", f"{source} is not a recipe (a mapping with "
                            f"{', '.join(SECTIONS)})", "start from `nlptune recipes copy NAME my.yaml`")]
    issues = hostile_issues(data, recipe=True)
    if issues:
        return issues
    for key in data:
        if key not in SECTIONS:
            close = difflib.get_close_matches(str(key), SECTIONS, n=1)
            issues.append(ConfigIssue(str(key), "unknown section", f"did you mean '{close[0]}'?" if close
                                      else f"a recipe has the sections {', '.join(SECTIONS)}"))
    for key in SECTIONS:
        if key not in data:
            issues.append(ConfigIssue(key, "missing section", f"add {key}: (see `nlptune recipes show sst2-lstm`)"))
    header = _check_section("recipe", data.get("recipe", {}), issues)
    issues += _header_issues(header)
    pins = _check_section("pins", data.get("pins", {}), issues)
    issues += _pins_issues(pins)
    expected = _check_section("expected", data.get("expected", {}), issues)
    issues += _expected_issues(expected, data.get("config"))
    if "config" in data:
        issues += _config_issues(data["config"])
    return issues


def read_recipe(path: str | Path) -> Any:
    """Parse a recipe file as plain YAML data (size, syntax, aliases and tags checked, nothing else)."""
    return safe_load_text(read_yaml_text(path, "recipe"), str(path))


def load_recipe(path_or_name: str | Path) -> dict:
    """The validated recipe (a shipped name or a path); `ConfigError` naming the file lists every problem."""
    path = resolve_recipe(path_or_name)
    data = read_recipe(path)
    issues = validate_recipe(data, str(path))
    if issues:
        raise ConfigError(issues, source=str(path))
    return data


def is_measured(recipe: Mapping) -> bool:
    """Whether the recipe's ``expected.value`` was measured (False for a recipe waiting for a measurement)."""
    return (recipe.get("expected") or {}).get("value") is not None


# ------------------------------------------------------------------------------------------ freezing
def _read_json(path: Path) -> dict:
    try:
        return parse_json(path.read_text())
    except (OSError, ValueError) as err:
        raise NlptuneError(f"{path.parent} is not a finished nlptune run: cannot read {path.name} ({err}); "
                           "freeze a run directory whose training completed") from None


def hardware(manifest: Mapping) -> str:
    """The devices a run used, as written in ``expected.hardware``."""
    devices = (manifest.get("environment") or {}).get("devices") or [str(manifest.get("device", "unknown"))]
    processes = manifest.get("num_processes", 1)
    return ", ".join(dict.fromkeys(devices)) + (f" x{processes} processes" if processes and processes > 1 else "")


def build_recipe(config: Mapping[str, Any], manifest: Mapping[str, Any], *, name: str, description: str = "",
                 metric: str | None, value: float | None, tolerance: float = DEFAULT_TOLERANCE,
                 wall_time_s: float | None = None) -> dict:
    """The recipe of ``config`` (plain, resolved, as in a run's config.yaml) trained in the environment that
    ``manifest`` (a run's manifest.json) describes, with ``expected`` = ``metric``/``value``.

    ``output_dir`` and ``resume`` are cleared (they belong to that run); a model folder shipped by a known
    package becomes ``packaged:<hub id>``; a ``task.data_dir`` that came from ``$NLPTUNE_DATA_DIR`` is written
    as null (a recipe with a null data_dir reads ``$NLPTUNE_DATA_DIR/<task>/`` wherever it runs, so no path of
    this machine ships in it); other data paths are kept (the data pins check that the files are the same).
    """
    config = json.loads(json.dumps(plain_data(config)))  # a deep, plain copy (MappingProxy/tuple -> dict/list)
    config["output_dir"] = None
    task = config.get("task") or {}
    env_dir = os.environ.get("NLPTUNE_DATA_DIR")
    if env_dir and task.get("data_dir") and os.path.realpath(task["data_dir"]) == os.path.realpath(env_dir):
        task["data_dir"] = None
    if "resume" in config:
        config["resume"], config["resume_allow_changes"] = None, False
    model = config.get("model") or {}
    if "name_or_path" in model:
        model["name_or_path"] = sources.packaged_alias(model["name_or_path"])
    versions = (manifest.get("environment") or {}).get("versions") or {}
    return {
        "recipe": {"name": name, "description": description or "", "schema_version": SCHEMA_VERSION},
        "config": config,
        "pins": {"packages": {k: versions.get(k) for k in pinning.PIN_PACKAGES},
                 "data": dict((manifest.get("data") or {}).get("sha256") or {}),
                 "model": pinning.model_pin(model), **pinning.teacher_pin(manifest)},
        "expected": {"metric": metric, "value": None if value is None else float(value),
                     "tolerance": float(tolerance), "hardware": hardware(manifest) if manifest else None,
                     "wall_time_s": wall_time_s, "note": None if value is not None else UNMEASURED_NOTE},
    }


def recipe_from_run(run_dir: str | Path, name: str, description: str = "",
                    tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """The recipe of a finished run directory: its resolved config (config.yaml), the pins it ran with
    (manifest.json) and its best result on the main metric (metrics.json). See `build_recipe`."""
    from nlptune.config.safety import load_run_config_file

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise NlptuneError(f"{run_dir} is not an nlptune run directory (no config.yaml)")
    config = load_run_config_file(run_dir / "config.yaml", "the run directory is damaged: freeze another run, or "
                                  "restore the file from a copy of the run")
    manifest = _read_json(run_dir / "manifest.json")
    metrics = _read_json(run_dir / "metrics.json")
    main = metrics.get("main_metric")
    return build_recipe(config, manifest, name=name, description=description or f"frozen from {run_dir}",
                        metric=main, value=(metrics.get("best") or {}).get(main), tolerance=tolerance,
                        wall_time_s=metrics.get("train_runtime_s"))


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of scalars on one line (``text_fields: [sentence]``)."""


def _represent_list(dumper: yaml.SafeDumper, data: list):
    flow = all(not isinstance(item, (dict, list)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(tuple, _represent_list)


def dump_recipe(recipe: Mapping) -> str:
    """The recipe as YAML text, sections in their canonical order."""
    ordered = {key: recipe[key] for key in SECTIONS if key in recipe}
    ordered.update((key, value) for key, value in recipe.items() if key not in ordered)
    header = (f"# nlptune recipe (schema {SCHEMA_VERSION}). Run it: nlptune train recipe=THIS_FILE [key=value ...]\n"
              "# Check it against `expected`: nlptune reproduce THIS_FILE\n")
    return header + yaml.dump(ordered, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def dump_config(config: Mapping) -> str:
    """A (frozen or plain) config as YAML in the recipe's style."""
    return yaml.dump(plain_data(config), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def write_recipe(path: str | Path, recipe: Mapping) -> Path:
    """Validate ``recipe`` and write it to ``path`` atomically; `ConfigError` if it is not a valid recipe."""
    path = Path(path)
    issues = validate_recipe(dict(recipe), str(path))
    if issues:
        raise ConfigError(issues, source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, dump_recipe(recipe))  # never through a link, never half a file
