"""The validation plots of a per-word task (task.kind=tokens): the F1 of every entity type, and which entity
types the best model confuses. Tags without entities (part of speech) are plotted per tag instead."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from nlptune.kinds.entities import has_entities, sentences, spans, tag_scores
from nlptune.train.plots import _figure, _save, most_frequent, plot_confusion, plot_counts, shown_note

NONE = "(none)"  # no entity there: a missed gold entity's prediction, a spurious prediction's gold


def plot_entity_f1(outputs: dict, label_names: Sequence[str], path: Path) -> Path:
    """A bar per entity type (per tag without entities): its F1 on validation, with its gold count."""
    scores = tag_scores(["f1"], outputs, label_names)
    types = sorted(name[3:] for name in scores if name.startswith("f1_"))
    support = _gold_counts(outputs, label_names)
    kept, total = most_frequent([support.get(t, 0) for t in types]), len(types)
    types = types if kept is None else [types[i] for i in kept]
    fig, axes = _figure(size=(max(5.0, 1.0 + 0.8 * len(types)), 4.0))
    ax = axes[0, 0]
    values = [scores[f"f1_{t}"] for t in types]
    bars = ax.bar(range(len(types)), values, color="tab:blue")
    for bar, name in zip(bars, types):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.01, f"n={support.get(name, 0)}",
                ha="center", va="bottom", fontsize="small")
    ax.set_xticks(range(len(types)), labels=types, rotation=45 if len(types) > 6 else 0,
                  ha="right" if len(types) > 6 else "center")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("F1")
    what = "entity" if has_entities(label_names) else "tag"
    ax.set_title(f"Best model on validation: {what} F1 per type (micro F1 {scores['f1']:.3f}"
                 f"{shown_note(kept, total, 'types')})")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _gold_counts(outputs: dict, names: Sequence[str]) -> dict[str, int]:
    if not has_entities(names):
        values, counts = np.unique(outputs["references"], return_counts=True)
        return {names[int(v)]: int(c) for v, c in zip(values, counts)}
    found: dict[str, int] = {}
    for tags in sentences(outputs["references"], outputs["lengths"], names):
        for kind, _, _ in spans(tags):
            found[kind] = found.get(kind, 0) + 1
    return found


def plot_entity_confusion(outputs: dict, label_names: Sequence[str], path: Path) -> Path:
    """Gold entity type against the type predicted on exactly its words; a gold entity without an exact match
    counts under (none) predicted, a predicted entity without one under (none) gold."""
    if not has_entities(label_names):
        return plot_confusion(outputs, label_names, path)
    gold = sentences(outputs["references"], outputs["lengths"], label_names)
    pred = sentences(outputs["predictions"], outputs["lengths"], label_names)
    pairs = []
    for gold_tags, pred_tags in zip(gold, pred):
        gold_spans = {(start, end): kind for kind, start, end in spans(gold_tags)}
        pred_spans = {(start, end): kind for kind, start, end in spans(pred_tags)}
        pairs += [(kind, pred_spans.get(span, NONE)) for span, kind in gold_spans.items()]
        pairs += [(NONE, kind) for span, kind in pred_spans.items() if span not in gold_spans]
    types = sorted({kind for pair in pairs for kind in pair} - {NONE}) + [NONE]
    index = {kind: i for i, kind in enumerate(types)}
    counts = np.zeros((len(types), len(types)), dtype=int)
    for gold_kind, pred_kind in pairs:
        counts[index[gold_kind], index[pred_kind]] += 1
    return plot_counts(counts, types, types, path, "exact-span share")
