"""The component registry: configs name components, code registers them.

A config picks a model, optimizer or scheduler by its registered name (``model.name: lstm``),
never by an import path, so configs and recipes stay plain data that cannot run code.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Callable, Dict

# Which module registers the components of each kind; imported lazily on first lookup so that
# `nlptune --help` never pays for torch.
_PROVIDERS = {
    "model": "nlptune.models",
    "optimizer": "nlptune.train.optim",
    "kind": "nlptune.kinds",
}

_REGISTRY: Dict[str, Dict[str, Callable]] = {kind: {} for kind in _PROVIDERS}


class UnknownComponentError(KeyError):
    """Raised when a config names a component that is not registered."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        super().__init__(f"unknown {kind} '{name}'.{hint} Registered {kind}s: {', '.join(known)}.")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


def register(kind: str, name: str) -> Callable[[Callable], Callable]:
    """Decorator: register ``fn`` as the ``kind`` component called ``name``."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown component kind '{kind}'")

    def decorator(fn: Callable) -> Callable:
        if name in _REGISTRY[kind] and _REGISTRY[kind][name] is not fn:
            raise ValueError(f"{kind} '{name}' is registered twice")
        _REGISTRY[kind][name] = fn
        return fn

    return decorator


def _load(kind: str) -> Dict[str, Callable]:
    if kind not in _REGISTRY:
        raise ValueError(f"unknown component kind '{kind}'")
    importlib.import_module(_PROVIDERS[kind])
    return _REGISTRY[kind]


def lookup(kind: str, name: str) -> Callable:
    """Return the component ``name`` of ``kind``, or raise a clear error listing the known ones."""
    table = _load(kind)
    if name not in table:
        raise UnknownComponentError(kind, name, sorted(table))
    return table[name]


def names(kind: str) -> list[str]:
    """The registered names of ``kind``, sorted."""
    return sorted(_load(kind))
