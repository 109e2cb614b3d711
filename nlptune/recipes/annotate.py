"""`nlptune recipes show`: a recipe file as written, with end-of-line notes.

- ``config`` keys whose value differs from what conf/ composes for the same task and model
  (``# conf/ default: ...``), so the recipe's choices stand out;
- ``pins`` compared with this machine (``# installed: ...`` / ``# this machine: ...``, or ``# ok``);
- ``expected.value`` when it has not been measured yet.

Works on the block-style YAML that `write_recipe` produces (and hand-written files of the same shape):
the dotted key of each line follows from its indentation.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from nlptune.config import sources
from nlptune.recipes import pins as pinning
from nlptune.config.compose import conf_defaults
from nlptune.utils.plain import flatten

_KEY_LINE = re.compile(r"^(\s*)([^\s#:][^:#]*?):(\s.*)?$")


def _notes(recipe: dict) -> dict[str, str]:
    """Dotted key -> note, for every key worth a note."""
    config = recipe.get("config") or {}
    notes = {}
    defaults = flatten(conf_defaults(config), "config")
    for key, value in flatten(config, "config").items():
        if key in defaults and defaults[key] != value and key not in ("config.task.data_dir", "config.output_dir"):
            notes[key] = f"conf/ default: {json.dumps(defaults[key])}"
    pins = recipe.get("pins") or {}
    installed = pinning.package_pins()
    for name, version in (pins.get("packages") or {}).items():
        found = installed.get(name)
        notes[f"pins.packages.{name}"] = "ok" if found == version else f"installed: {found}"
    plain = json.loads(json.dumps(config))
    task = plain.get("task") or {}
    if os.environ.get("NLPTUNE_DATA_DIR") and not any(task.get(k) for k in ("data_dir", "train_file", "generator")):
        task["data_dir"] = os.environ["NLPTUNE_DATA_DIR"]
    drifted = {d["pin"]: d["found"] for d in pinning.drift({"data": pins.get("data") or {},
                                                            "model": pins.get("model")}, sources.resolve_plain(plain))}
    for split in pins.get("data") or {}:
        key = f"pins.data.{split}"
        notes[key] = f"this machine: {drifted[key]}" if key in drifted else "ok (same data here)"
    for key in ("sha256", "revision"):
        if f"pins.model.{key}" in drifted:
            notes[f"pins.model.{key}"] = f"this machine: {drifted[f'pins.model.{key}']}"
    if (recipe.get("expected") or {}).get("value") is None:
        notes["expected.value"] = "not measured yet (see expected.note)"
    return notes


def annotate(path: str | Path) -> str:
    """The recipe file's text with notes at the end of the lines they concern."""
    from nlptune.recipes.format import load_recipe

    recipe = load_recipe(path)
    notes = _notes(recipe)
    stack: list[tuple[int, str]] = []
    lines = []
    for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
        match = _KEY_LINE.match(line)
        if match and not line.lstrip().startswith("- "):
            indent, key = len(match.group(1)), match.group(2).strip().strip("'\"")
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, key))
            note = notes.get(".".join(k for _, k in stack))
            if note and "#" not in (match.group(3) or ""):
                line = f"{line}  # {note}"
        lines.append(line)
    return "\n".join(lines) + "\n"
