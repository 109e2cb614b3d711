"""Config data in its three shapes: frozen (inside the typed, immutable `RunConfig`), plain (dicts and lists for
YAML, JSON and builder arguments) and flat (dotted keys, for diffs and per-key lookups); and JSON text read into
plain data (`parse_json`). Standard library only.
"""
from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any, Mapping


def freeze(value: Any) -> Any:
    """``value`` made immutable, recursively: mappings -> read-only mapping proxies, lists -> tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def plain_data(value: Any) -> Any:
    """Frozen config values (mapping proxies, tuples) back to plain dicts and lists, recursively."""
    if isinstance(value, Mapping):
        return {k: plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    return value


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one ``{"a.b.c": leaf}`` dict (keys joined with dots under ``prefix``).

    An empty mapping has no leaves, so it contributes nothing; a non-mapping ``node`` is ``{prefix: node}``.
    """
    if not isinstance(node, Mapping):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def parse_json(text: str | bytes) -> Any:
    """``json.loads(text)``, with every way a damaged or hostile text fails raised as a ValueError: invalid JSON
    (`json.JSONDecodeError`), an integer of more than 4300 digits, and nesting deeper than the parser's recursion
    (a RecursionError otherwise, which no reader of a file expects)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested deeper than the parser goes") from None
