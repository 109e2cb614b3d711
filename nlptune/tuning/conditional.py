"""Conditional search spaces: a sweep whose space picks the model (`tune.space.model='choice(bag,cnn,lstm,pretrained)'`,
or any other config group) searches, in each trial, only what that trial's model has.

- The default space of each model kind (`tune.default_space.scratch` / `.pretrained`) applies to the trials whose
  model is of that kind. A key both kinds search over different ranges (the learning rate) becomes one dimension
  per kind, `<key>@scratch` and `<key>@pretrained`, so that the sampler models each kind's values apart.
- A dimension under a group dimension's section (`model.hidden_size` under `model`) applies only to the options of
  that group that have its key: `model.hidden_size` is skipped by pretrained trials, `model.name_or_path` (a choice of
  one checkpoint, say) by the scratch ones. A key that no option has is left to `plan.check_space`, which names it.

Both end up as `Dimension.when` (stored in the plan as `conditions`); Optuna's define-by-run sampling takes a
parameter only in the trials it applies to (`space.suggest_all`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from nlptune.config.errors import ConfigError, ConfigIssue
from nlptune.config.names import is_pretrained
from nlptune.config.tune import TuneConfig
from nlptune.tuning.space import KIND_MARK, MODEL_KINDS, Dimension, config_key, parse_dimension, parse_space_lenient

MODEL = "model"


def kind_of(model: str) -> str:
    """A model's kind, as the default space and the `@kind` dimensions name it."""
    return "pretrained" if is_pretrained(model) else "scratch"


def model_options(space: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The options of a `model` choice in ``space``; None without one (or when it does not parse: that is
    reported with the rest of the space)."""
    spec = space.get(MODEL)
    if not spec:
        return None
    try:
        dim = parse_dimension(MODEL, spec)
    except ConfigError:
        return None
    return tuple(str(v) for v in dim.values) if dim.kind == "choice" else None


def _merged_defaults(tune: TuneConfig, by_kind: dict[str, list[str]]) -> tuple[dict[str, str], dict[str, dict]]:
    """The default spaces of several kinds as one: a key searched alike by every kind once, a key of one kind for
    that kind's models, a key the kinds search differently once per kind (`<key>@<kind>`)."""
    defaults = {kind: dict((tune.default_space or {}).get(kind) or {}) for kind in by_kind}
    dims, when = {}, {}
    for key in dict.fromkeys(k for kind_dims in defaults.values() for k in kind_dims):
        specs = {kind: kind_dims[key] for kind, kind_dims in defaults.items() if key in kind_dims}
        if len(specs) == len(by_kind) and len(set(specs.values())) == 1:
            dims[key] = next(iter(specs.values()))
            continue
        for kind, spec in specs.items():
            name = key if len(specs) == 1 else f"{key}{KIND_MARK}{kind}"
            dims[name], when[name] = spec, {MODEL: by_kind[kind]}
    return dims, when


def search_space(tune: TuneConfig, base_model: str) -> tuple[dict[str, str], dict[str, dict], list[ConfigIssue]]:
    """The dimensions a sweep searches ({name: spec}), the model conditions of some ({name: {"model": [options]}})
    and the problems of `@kind` dimensions; ``base_model`` is the model of the sweep's own config."""
    options = model_options(tune.space)
    by_kind: dict[str, list[str]] = {}
    for model in options or (base_model,):
        by_kind.setdefault(kind_of(model), []).append(model)
    if len(by_kind) == 1:
        dims, when = tune.effective_space(next(iter(by_kind.values()))[0]), {}
    else:
        dims, when = _merged_defaults(tune, by_kind)
    issues = []
    for key, spec in tune.space.items():
        names = [key] if KIND_MARK in key else [key, *(f"{key}{KIND_MARK}{kind}" for kind in MODEL_KINDS)]
        for name in names:
            dims.pop(name, None)
            when.pop(name, None)
        if spec is None:
            continue
        dims[key] = spec
        kind = key.partition(KIND_MARK)[2]
        if kind in MODEL_KINDS and kind not in by_kind:
            searched = ", ".join(options or (base_model,))
            issues.append(ConfigIssue(f"tune.space.{key}", f"no trial's model is {kind} (models searched: "
                                      f"{searched})", f"drop it, or add a {kind} model to tune.space.model"))
        elif kind in MODEL_KINDS and len(by_kind) > 1:
            when[key] = {MODEL: by_kind[kind]}
    return dims, when, issues


def _has(section: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(section, Mapping) or part not in section:
            return False
        section = section[part]
    return True


def gate_sections(dims: Sequence[Dimension], groups: Sequence[str]) -> dict[str, dict[str, Any]]:
    """For each group dimension (`model=choice(...)`), each option's own section as conf/ composes it (None for
    an option that does not compose: `plan.check_space` reports it)."""
    from nlptune.config.compose import compose, to_plain

    sections: dict[str, dict[str, Any]] = {}
    for gate in dims:
        if gate.key not in groups or gate.kind != "choice":
            continue
        if not any(d.config_key.startswith(f"{gate.key}.") for d in dims):
            continue
        sections[gate.key] = {}
        for option in gate.values:
            try:
                sections[gate.key][str(option)] = to_plain(compose([f"{gate.key}={option}"])).get(gate.key)
            except ConfigError:
                sections[gate.key][str(option)] = None
    return sections


def key_conditions(dims: Sequence[Dimension], sections: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """The options of each group dimension that have a dimension's key, for the dimensions not every option has."""
    conditions: dict[str, dict] = {}
    for group, by_option in sections.items():
        for dim in dims:
            if not dim.config_key.startswith(f"{group}."):
                continue
            rest = dim.config_key[len(group) + 1:]
            having = [o for o, section in by_option.items() if section is None or _has(section, rest)]
            if len(having) < len(by_option) and any(s is not None and _has(s, rest) for s in by_option.values()):
                conditions.setdefault(dim.key, {})[group] = having
    return conditions


def override_issues(overrides: Sequence[str], sections: Mapping[str, Mapping[str, Any]]) -> list[ConfigIssue]:
    """A plain override of a key that some option of a group dimension lacks would break those trials: it must be
    a dimension (which applies only where the key exists)."""
    issues = []
    for item in overrides:
        key, _, value = item.partition("=")
        group, _, rest = key.partition(".")
        if key.startswith(("+", "~")) or group not in sections or not rest:
            continue
        lacking = [o for o, section in sections[group].items() if section is not None and not _has(section, rest)]
        if lacking:
            issues.append(ConfigIssue(key, f"{group}={lacking[0]}, an option of tune.space.{group}, has no key "
                                      f"{rest}", f"search it as a dimension, which applies only to the options "
                                      f"that have it: tune.space.{key}='choice({value})'"))
    return issues


def _combined(first: Mapping[str, dict], second: Mapping[str, dict]) -> dict[str, dict]:
    """Both sets of conditions: where both restrict the same group, the options both allow."""
    combined = {name: dict(groups) for name, groups in first.items()}
    for name, groups in second.items():
        for group, options in groups.items():
            mine = combined.setdefault(name, {})
            mine[group] = [o for o in mine[group] if o in options] if group in mine else list(options)
    return combined


def with_conditions(dims: Sequence[Dimension], conditions: Mapping[str, Mapping[str, Sequence]]) -> list[Dimension]:
    """``dims`` with the plan's conditions ({name: {group: [options]}}) as their `when`."""
    return [dataclasses.replace(d, when=tuple((g, tuple(o)) for g, o in conditions[d.key].items()))
            if d.key in conditions else d for d in dims]


def conditional_space(tune: TuneConfig, base_model: str, overrides: Sequence[str], groups: Sequence[str]
                      ) -> tuple[list[Dimension], dict[str, dict], list[ConfigIssue], list[ConfigIssue]]:
    """The sweep's dimensions with their conditions, the conditions ({name: {group: [options]}}) for the plan,
    the problems of the space (syntax, `@kind`, dimensions no trial would search) and those of the overrides (a
    key some option of a group dimension lacks: every config of that option would fail to compose)."""
    space, kind_when, issues = search_space(tune, base_model)
    dims, syntax = parse_space_lenient(space)
    sections = gate_sections(dims, groups)
    conditions = _combined(kind_when, key_conditions(dims, sections))
    for name, by_group in conditions.items():
        for group, options in by_group.items():
            if not options:
                issues.append(ConfigIssue(f"tune.space.{name}", f"no option of tune.space.{group} has the key "
                                          f"{config_key(name)}", "drop it, or write it for the kind that has it"))
    return with_conditions(dims, conditions), conditions, syntax + issues, override_issues(overrides, sections)
