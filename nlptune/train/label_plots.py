"""The validation plots of a multi-label task (task.kind=multi_label): the F1 of every label at tuned and at the
fixed 0.5 thresholds, and how often the gold labels occur together."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from nlptune.kinds import thresholds
from nlptune.train.plots import _figure, _save, most_frequent, shown_note


def plot_label_f1(outputs: dict, label_names: Sequence[str], path: Path) -> Path:
    """Two bars per label: its validation F1 at tuned thresholds (cross-fitted, as the run scores them) and at
    0.5, with the label's gold count; the title gives both macro F1s (over every label: the bars show the
    `MOST_SHOWN` most frequent)."""
    probabilities, gold = np.asarray(outputs["predictions"], float), np.asarray(outputs["references"])
    tuned = thresholds.label_report(thresholds.cross_fitted(probabilities, gold), gold)
    fixed = thresholds.label_report(thresholds.apply(probabilities, thresholds.FIXED), gold)
    macro = (tuned["f1"].mean(), fixed["f1"].mean())
    kept = most_frequent(tuned["support"])
    note = shown_note(kept, len(label_names), "labels")
    if kept is not None:
        tuned = {key: np.asarray(values)[kept] for key, values in tuned.items()}
        fixed = {key: np.asarray(values)[kept] for key, values in fixed.items()}
        label_names = [label_names[i] for i in kept]
    n = len(label_names)
    fig, axes = _figure(size=(max(6.0, 1.0 + 0.45 * n), 4.5))
    ax = axes[0, 0]
    x = np.arange(n)
    ax.bar(x - 0.2, tuned["f1"], width=0.4, color="tab:blue", label="tuned thresholds")
    ax.bar(x + 0.2, fixed["f1"], width=0.4, color="tab:gray", label="threshold 0.5")
    for i, support in enumerate(tuned["support"]):
        ax.text(i, max(tuned["f1"][i], fixed["f1"][i]) + 0.01, f"{int(support)}", ha="center", va="bottom",
                fontsize="x-small")
    ax.set_xticks(x, labels=list(label_names), rotation=60 if n > 6 else 0, ha="right" if n > 6 else "center")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("F1 (number: gold rows)")
    ax.set_title(f"Best model on validation: F1 per label (macro {macro[0]:.3f} tuned, {macro[1]:.3f} at 0.5"
                 f"{note})")
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def cooccurrence(gold: np.ndarray) -> np.ndarray:
    """Rows holding both label i and label j (the diagonal: rows holding label i)."""
    flags = np.asarray(gold).astype(int)
    return flags.T @ flags


def plot_label_cooccurrence(outputs: dict, label_names: Sequence[str], path: Path) -> Path:
    """The gold labels' co-occurrence on validation: colour = share of label i's rows that also hold label j."""
    counts = cooccurrence(outputs["references"])
    kept, total = most_frequent(np.diag(counts)), len(label_names)
    if kept is not None:
        counts, label_names = counts[np.ix_(kept, kept)], [label_names[i] for i in kept]
    diagonal = np.maximum(np.diag(counts), 1)[:, None]
    share = np.where(np.eye(len(counts), dtype=bool), 0.0, counts / diagonal)
    n = len(label_names)
    side = min(3.0 + 0.35 * n, 14.0)
    fig, axes = _figure(size=(side + 1.5, side))
    ax = axes[0, 0]
    image = ax.imshow(share, cmap="Purples", vmin=0.0, vmax=max(float(share.max()), 1e-9))
    fig.colorbar(image, ax=ax, label="share of the row label's texts that also hold the column label")
    if n <= 12:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize="small")
    ax.set_xticks(range(n), labels=list(label_names), rotation=60 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), labels=list(label_names))
    several = int((np.asarray(outputs["references"]).sum(1) > 1).sum())
    ax.set_title(f"Gold labels together on validation ({several} of {len(outputs['references'])} texts have "
                 f"several{shown_note(kept, total, 'labels')})")
    return _save(fig, path)
