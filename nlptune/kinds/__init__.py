"""Problem kinds: what a label is, and everything that follows from it (ARCHITECTURE.md, "Problem kinds").

`get_kind(task.kind)` returns the registered kind (`nlptune.kinds.base.Kind`); the names are
``nlptune.config.names.NAMES["kind"]``.
"""
from __future__ import annotations

import functools

from nlptune.config.registry import lookup
# imported for their @register side effects
from nlptune.kinds import multi_label, regression, single_label, tokens  # noqa: F401
from nlptune.kinds.base import Kind, LabelProblem

__all__ = ["Kind", "LabelProblem", "get_kind"]


@functools.cache
def get_kind(name: str) -> Kind:
    """The problem kind registered as ``name`` (single_label, multi_label, regression, tokens)."""
    return lookup("kind", name)()
