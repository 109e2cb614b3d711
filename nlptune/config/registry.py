"""The component registry: configs name components, code registers them.

A config picks a model, optimizer, scheduler, problem kind or metric by its registered name
(``model.name: lstm``), never by an import path, so configs and recipes stay plain data that cannot run code.
The names are listed once in `nlptune.config.names`; each implementation registers against that list when
its own package is imported (``nlptune.models`` registers the model builders, ``nlptune.train.optim`` the
optimizers and schedules, ``nlptune.kinds`` the problem kinds). This module imports none of them: config/
sits below them all, so a lookup finds what the importing code has loaded.
"""
from __future__ import annotations

import difflib
from typing import Callable, Dict

from nlptune.config.names import NAMES

_REGISTRY: Dict[str, Dict[str, Callable]] = {component: {} for component in NAMES}


class UnknownComponentError(KeyError):
    """Raised when a config names a component that is not registered."""

    def __init__(self, kind: str, name, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        # a config may hold anything where a name belongs (a number, a list): named as written, never compared
        close = difflib.get_close_matches(name, known, n=1) if isinstance(name, str) else []
        hint = f" Did you mean '{close[0]}'?" if close else ""
        shown = f"'{name}'" if isinstance(name, str) else repr(name)
        super().__init__(f"unknown {kind} {shown}.{hint} Registered {kind}s: {', '.join(known)}.")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


def _table(kind: str) -> Dict[str, Callable]:
    if kind not in _REGISTRY:
        raise ValueError(f"unknown component kind '{kind}' (known: {', '.join(_REGISTRY)})")
    return _REGISTRY[kind]


def register(kind: str, name: str) -> Callable[[Callable], Callable]:
    """Decorator: register ``fn`` as the ``kind`` component called ``name``.

    ``name`` must be in the ``kind`` list of `nlptune.config.names` (add it there first), so the names a
    config may use and the implementations never drift apart.
    """
    table = _table(kind)
    if name not in NAMES[kind]:
        raise ValueError(f"{kind} '{name}' is not in nlptune/config/names.py NAMES[{kind!r}] "
                         f"({', '.join(NAMES[kind])}): add it there to register it")

    def decorator(fn: Callable) -> Callable:
        if name in table and table[name] is not fn:
            raise ValueError(f"{kind} '{name}' is registered twice")
        table[name] = fn
        return fn

    return decorator


def lookup(kind: str, name: str) -> Callable:
    """Return the component ``name`` of ``kind``, or raise a clear error listing the known ones.

    Call it from (or after importing) the package that registers ``kind``: this module imports no
    implementation itself.
    """
    table = _table(kind)
    if not isinstance(name, str):  # a list would not even hash
        raise UnknownComponentError(kind, name, sorted(set(NAMES[kind]) | set(table)))
    if name in table:
        return table[name]
    if name in NAMES[kind]:  # a programming error, not a user's: the registering package was not imported
        raise LookupError(f"{kind} '{name}' is a known name but no implementation is registered: import the "
                          f"package that registers the {kind}s before looking one up")
    raise UnknownComponentError(kind, name, sorted(set(NAMES[kind]) | set(table)))


def registered(kind: str) -> list[str]:
    """The names of ``kind`` whose implementations are registered so far, sorted."""
    return sorted(_table(kind))
