"""Hostile-input checks for configs, overrides and recipes: they are data, never code.

Every check here runs on plain YAML nodes or strings *before* Hydra composes anything and before any
component module is imported, so a shared file cannot make nlptune import or call anything:

- YAML is read with the safe loader; a python tag (``!!python/object/apply:...``) or any tag outside plain
  YAML is refused with its dotted key and line, before the document is even constructed.
- ``_target_`` / ``_component_`` (and Hydra's other instantiate keys) are refused anywhere: components are
  chosen by registered name (``model.name: lstm``).
- Keys that would extend the component registry or Hydra's search path are refused.
- Trust flags (``trust_remote_code``, ``trust_*``, ``use_safetensors``, ``weights_only``, ``allow_pickle``) are
  refused in every file and override: remote code is enabled only by ``nlptune train --trust-remote-code``.
- In a recipe, interpolations (``${...}``) are refused: a recipe holds resolved values, and a resolver such as
  ``${oc.env:AWS_SECRET_ACCESS_KEY}`` would read the user's environment.
- Parsing is bounded: a file over 1 MB is refused before it is read, and a document whose aliases would
  expand to more than 100,000 values ("billion laughs") or refer to themselves is refused before anything
  walks it.

Errors are `ConfigError`s naming the file, the dotted key and why.
"""
from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from nlptune.config.errors import ConfigError, ConfigIssue, NlptuneError

# Keys Hydra's / torchtune's instantiate would turn into an import and a call.
INSTANTIATE_KEYS = ("_target_", "_component_", "_partial_", "_recursive_", "_convert_", "_args_")
# Keys that would add components or config sources (plugins, imports, search paths).
REGISTRY_KEYS = ("registry", "_registry_", "register", "plugins", "_plugins_", "imports", "_imports_",
                 "searchpath", "hydra")
# Flags that would weaken loading safety; only the command line may enable remote code.
TRUST_KEYS = ("trust_remote_code", "use_safetensors", "weights_only", "allow_pickle", "allow_unsafe")
# Tags of plain YAML data; anything else (python/..., custom !tags) is refused.
SAFE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map",
                                                "timestamp", "binary", "merge", "set", "omap", "pairs")}
INTERPOLATION = re.compile(r"\$\{\s*([A-Za-z_.]*)\s*:?")
ENV_RESOLVERS = ("oc.env", "env", "oc.decode")


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def key_issue(path: str, leaf: str) -> ConfigIssue | None:
    """The issue for a key named ``leaf`` at dotted ``path``, or None when the key is harmless."""
    if leaf in INSTANTIATE_KEYS:
        return ConfigIssue(path, f"'{leaf}' would import and call an arbitrary Python object",
                           "remove it: components are chosen by registered name, e.g. model.name: lstm")
    if leaf in TRUST_KEYS or leaf.startswith("trust_"):
        return ConfigIssue(path, f"'{leaf}' cannot be set by a config file, recipe or override (it would let "
                                 "downloaded files run code or unpickle data)",
                           "remove it; remote code is enabled only by `nlptune train --trust-remote-code`")
    if leaf in REGISTRY_KEYS:
        return ConfigIssue(path, f"'{leaf}' would extend the component registry or the config search path",
                           "remove it: components are registered in code, configs only name them")
    return None


def _value_issue(path: str, value: str) -> ConfigIssue | None:
    match = INTERPOLATION.search(value)
    if not match:
        return None
    resolver = match.group(1)
    if resolver in ENV_RESOLVERS:
        why = f"'${{{resolver}:...}}' would read your environment when the recipe is loaded"
    else:
        why = f"interpolation {value!r} is not allowed: a recipe holds resolved values only"
    return ConfigIssue(path, why, "write the value itself (or override it on the command line)")


def hostile_issues(data: Any, *, recipe: bool, prefix: str = "") -> list[ConfigIssue]:
    """Every hostile key (and, for a recipe, every interpolation) in plain YAML ``data``, with dotted keys."""
    issues: list[ConfigIssue] = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = _join(prefix, key)
            issue = key_issue(path, str(key))
            if issue:
                issues.append(issue)
            issues += hostile_issues(value, recipe=recipe, prefix=path)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            issues += hostile_issues(value, recipe=recipe, prefix=f"{prefix}[{index}]")
    elif recipe and isinstance(data, str):
        issue = _value_issue(prefix or "<document>", data)
        if issue:
            issues.append(issue)
    return issues


def _node_issues(node: yaml.Node, prefix: str, seen: set[int]) -> list[ConfigIssue]:
    """Walk the composed (not yet constructed) YAML graph: unsafe tags and duplicate keys."""
    if id(node) in seen:  # aliases point at nodes already checked
        return []
    seen.add(id(node))
    issues = []
    line = node.start_mark.line + 1
    if node.tag not in SAFE_TAGS:
        why = "a python tag would construct and call Python objects" if "python/" in node.tag else \
            "only plain YAML data is read"
        issues.append(ConfigIssue(prefix or "<document>", f"YAML tag '{node.tag}' (line {line}) refused: {why}",
                                  "remove the tag: configs and recipes are read as plain YAML data"))
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "<complex key>"
            path = _join(prefix, key)
            issues += _node_issues(key_node, path, seen)
            if key in keys and key != "<<":
                issues.append(ConfigIssue(path, f"duplicate key (line {key_node.start_mark.line + 1})",
                                          "keep one of them: YAML would silently use the last"))
            keys.add(key)
            issues += _node_issues(value_node, path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            issues += _node_issues(item, f"{prefix}[{index}]", seen)
    return issues


# Bounds on what a YAML file may make nlptune hold: a config or recipe is a few KB with a few hundred nodes.
# Aliases expand by reference, so a "billion laughs" file of a few lines stands for 10^9 nodes that every walk
# over the data (checks, OmegaConf, JSON) would visit; the expanded size is counted on the composed graph first.
MAX_YAML_BYTES = 1_000_000
MAX_YAML_ALIASES = 1_000
MAX_YAML_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing a document with more than `MAX_YAML_ALIASES` alias references."""

    def __init__(self, stream):
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                mark = self.peek_event().start_mark
                raise _LimitExceeded(f"more than {MAX_YAML_ALIASES} alias references (*name) by line {mark.line + 1}")
        return super().compose_node(parent, index)


class _LimitExceeded(Exception):
    """A YAML document beyond nlptune's bounds (internal: turned into a `ConfigError` naming the file)."""


def _limit_error(problem: str, source: str) -> ConfigError:
    return ConfigError([ConfigIssue("<yaml>", f"refused: {problem}; a config or recipe is small plain data",
                                    "write the values out (no deep alias chains) and keep the file under "
                                    f"{MAX_YAML_BYTES // 1_000_000} MB")], source=source)


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes ``root`` stands for once every alias is expanded (linear in the graph, memoised);
    `_LimitExceeded` beyond `MAX_YAML_NODES` or for an alias inside its own anchor (an infinite document)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _LimitExceeded(f"an alias refers to its own anchor (line {node.start_mark.line + 1}): "
                                 "the document would be infinite")
        open_nodes.add(key)
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else []
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                raise _LimitExceeded(f"its aliases expand to more than {MAX_YAML_NODES:,} values")
        open_nodes.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _syntax_error(err: yaml.YAMLError, source: str) -> ConfigError:
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "the file"
    problem = getattr(err, "problem", None) or str(err)
    return ConfigError([ConfigIssue("<yaml>", f"not valid YAML at {where}: {problem}", "fix the YAML syntax")],
                       source=source)


def safe_load_text(text: str, source: str) -> Any:
    """Parse YAML ``text`` as plain data; raise `ConfigError` (naming ``source``) for syntax errors (line and
    column), python/custom tags, duplicate keys, or a document beyond the bounds (size, aliases, expanded
    size). Nothing is constructed before the checks pass."""
    if len(text) > MAX_YAML_BYTES:
        raise _limit_error(f"{len(text):,} characters is over the limit of {MAX_YAML_BYTES:,}", source)
    try:  # the reader refuses control characters as it is made, before any parsing
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as err:  # a binary file, or text with a control character in it
        line = text[:err.position].count("\n") + 1
        raise ConfigError([ConfigIssue(
            "<yaml>", f"not YAML text: a control character (#x{err.character:04x}) at line {line}",
            "give the right file (a config or recipe is plain YAML text), or remove that character")],
            source=source) from None
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _expanded_size(node)
        except yaml.YAMLError as err:
            raise _syntax_error(err, source) from None
        except _LimitExceeded as err:
            raise _limit_error(str(err), source) from None
        except RecursionError:  # nesting deeper than Python's stack: no config is like that
            raise _limit_error("the document is nested too deeply", source) from None
        issues = _node_issues(node, "", set())
        if issues:
            raise ConfigError(issues, source=source)
        try:
            return loader.construct_document(node)  # SafeLoader's constructors, tags already checked
        except yaml.YAMLError as err:  # e.g. a malformed !!timestamp or !!binary value
            raise _syntax_error(err, source) from None
    finally:
        loader.dispose()


def read_yaml_text(path: str | Path, what: str = "file") -> str:
    """The text of a YAML ``path`` after checking, before reading, that it is a file of at most
    `MAX_YAML_BYTES`; `ConfigError` naming the file (``what`` says which kind, e.g. "recipe")."""
    path = Path(path)

    def refuse(problem: str, fix: str) -> ConfigError:
        return ConfigError([ConfigIssue("<file>", problem, fix)], source=str(path))

    try:
        info = path.stat()
    except OSError as err:
        raise refuse(f"cannot read the {what}: {err.strerror}", "check the path") from None
    if stat.S_ISDIR(info.st_mode):
        raise refuse(f"the {what} is a folder, not a YAML file", "give the path of the .yaml file")
    if info.st_size > MAX_YAML_BYTES:
        raise refuse(f"the {what} is {info.st_size:,} bytes, over the limit of {MAX_YAML_BYTES:,} bytes for a "
                     "config or recipe", "give the right file: a config or recipe is a few KB of YAML")
    try:
        with path.open("rb") as handle:  # read no more than the limit, whatever the file grew to since
            raw = handle.read(MAX_YAML_BYTES + 1)
    except OSError as err:
        raise refuse(f"cannot read the {what}: {err.strerror}", "check the path and its permissions") from None
    if len(raw) > MAX_YAML_BYTES:
        raise refuse(f"the {what} is over the limit of {MAX_YAML_BYTES:,} bytes", "give the right file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise refuse(f"the {what} is not UTF-8 text (byte {err.start})", "save it as UTF-8 YAML") from None


def safe_load_file(path: str | Path, *, recipe: bool) -> Any:
    """Read a YAML file as plain data and refuse it if it holds anything hostile (see the module docstring)
    or is beyond the bounds (`read_yaml_text`, `safe_load_text`)."""
    text = read_yaml_text(path, "recipe" if recipe else "file")
    data = safe_load_text(text, str(path))
    issues = hostile_issues(data, recipe=recipe)
    if issues:
        raise ConfigError(issues, source=str(path))
    return data


def load_run_config_file(path: str | Path, fix: str) -> dict:
    """A run's stored config.yaml as plain data (through `safe_load_file`), refused with one `NlptuneError` naming
    the file and ``fix`` when it is not a mapping of sections (emptied, or edited into a list or a scalar), which
    every reader of it would otherwise fail on with a Python error."""
    config = safe_load_file(path, recipe=False)
    if not isinstance(config, dict):
        what = "nothing" if config is None else f"a {type(config).__name__}"
        raise NlptuneError(f"{path} holds {what}, not the run's config (a mapping of sections: task, model, "
                           f"trainer, ...); {fix}")
    return config


def override_issues(overrides: Iterable[str]) -> list[ConfigIssue]:
    """Hostile keys in command-line overrides (``a.b.c=value``), and instantiate keys hidden in values."""
    issues = []
    for item in overrides:
        key, _, value = item.partition("=")
        parts = key.lstrip("+~").split(".")
        for depth, part in enumerate(parts):
            issue = key_issue(".".join(parts[:depth + 1]), part)
            if issue:
                issues.append(ConfigIssue(issue.key, f"{issue.problem} (override '{item}')", issue.fix))
                break
        else:
            for bad in INSTANTIATE_KEYS + TRUST_KEYS:
                if re.search(rf"(^|[{{,\s]){re.escape(bad)}\s*:", value):
                    issues.append(key_issue(f"{key}.{bad}", bad))
                    break
    return issues


def check_overrides(overrides: Sequence[str], source: str = "command-line overrides") -> None:
    """Raise `ConfigError` listing every hostile override."""
    issues = override_issues(overrides)
    if issues:
        raise ConfigError(issues, source=source)


def check_conf_dir(folder: Path) -> None:
    """Refuse a conf/ tree holding a hostile YAML file (each file named); interpolations are allowed there."""
    for path in sorted(Path(folder).rglob("*.yaml")):
        safe_load_file(path, recipe=False)


def with_remote_code(run):
    """``run`` with ``trust_remote_code=True`` passed to the pretrained builder: what `--trust-remote-code`
    (and nothing else) does. Recorded in ``run.provenance`` so the manifest says so; never written to
    config.yaml, so neither a frozen recipe nor a resumed config inherits it."""
    import dataclasses

    from nlptune.config.names import is_pretrained
    from nlptune.utils.plain import freeze

    if not is_pretrained(run.model.name):
        raise ConfigError([ConfigIssue("--trust-remote-code", f"model '{run.model.name}' loads no remote code",
                                       "use it only with model=pretrained")])
    model = dataclasses.replace(run.model, args=freeze({**run.model.args, "trust_remote_code": True}))
    return dataclasses.replace(run, model=model, provenance={**dict(run.provenance), "trust_remote_code": True})
