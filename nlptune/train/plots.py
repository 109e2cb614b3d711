"""PNG plots of a run (written into ``<run dir>/plots/`` at the end of every run) and of several runs together.

- ``training.png``: training loss and learning rate against the optimizer step
- ``validation.png``: every validation metric (and the validation loss) against the step, best step marked
- the problem kind's plots (`Kind.plots`, drawn by `_kind_plots`): the best model's validation predictions
  against the gold labels: ``confusion_matrix.png`` (single_label), ``predictions_scatter.png`` (regression),
  ``entity_f1.png`` and ``entity_confusion.png`` (tokens; nlptune/train/entity_plots.py), ``label_f1.png`` and
  ``label_cooccurrence.png`` (multi_label; nlptune/train/label_plots.py)

Everything is drawn on `matplotlib.figure.Figure` objects with the Agg canvas: no pyplot state, no display.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np

from nlptune.metrics import METRICS
from nlptune.utils.files import atomic_write_bytes, os_errors_as_disk_errors
from nlptune.utils.plain import parse_json

PLOTS_DIR = "plots"


def read_records(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """(training records, evaluation records) of a run's metrics.jsonl; a step logged twice (a resumed run)
    keeps its last record."""
    train, evals = {}, {}
    path = Path(run_dir) / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.is_file() else []:
        if not line.strip():
            continue
        record = parse_json(line)
        if any(k.startswith("eval_") for k in record):
            evals[record["step"]] = record
        elif "loss" in record:
            train[record["step"]] = record
    return [train[s] for s in sorted(train)], [evals[s] for s in sorted(evals)]


def _figure(rows: int = 1, cols: int = 1, size=(7.0, 4.0)):
    # imported here, not at module level: the training loop imports this module, and matplotlib's ~30 MB
    # should only be paid once a run ends and draws
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _integer_steps(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(fig, path: Path) -> Path:
    """Render to memory, then write atomically: never through a link, never half a PNG."""
    with os_errors_as_disk_errors(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format=path.suffix.lstrip(".") or "png")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_training(records: list[dict], path: Path) -> Path:
    """Training loss (top) and learning rate (bottom) against the optimizer step."""
    fig, axes = _figure(2, 1, size=(7.0, 5.5))
    loss_ax, lr_ax = axes[0, 0], axes[1, 0]
    if not records:
        _empty(loss_ax, "no training-loss records: the run had fewer steps than trainer.log_every")
    else:
        steps = [r["step"] for r in records]
        loss_ax.plot(steps, [r["loss"] for r in records], marker="." if len(records) < 30 else None)
        loss_ax.set_ylabel("training loss")
        lr_ax.plot(steps, [r.get("lr", np.nan) for r in records], color="tab:orange")
        lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("optimizer step")
    _integer_steps(lr_ax)
    _integer_steps(loss_ax)
    loss_ax.set_title("Training")
    for ax in (loss_ax, lr_ax):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_validation(records: list[dict], path: Path, best_step: int | None = None) -> Path:
    """One panel per validation metric against the step (the loss gets its own panel: another scale)."""
    names = sorted({k[5:] for r in records for k in r if k.startswith("eval_")}, key=lambda n: (n == "loss", n))
    fig, axes = _figure(len(names) or 1, 1, size=(7.0, 2.4 * max(len(names), 1) + 0.6))
    if not names:
        _empty(axes[0, 0], "no evaluation records")
    for ax, name in zip(axes[:, 0], names):
        points = [(r["step"], r[f"eval_{name}"]) for r in records if f"eval_{name}" in r]
        ax.plot(*zip(*points), marker="o", color="tab:red" if name == "loss" else "tab:blue")
        if best_step is not None:
            ax.axvline(best_step, color="gray", linestyle="--", linewidth=1, label=f"best step {best_step}")
            ax.legend(loc="best", fontsize="small")
        ax.set_ylabel(f"validation {name}")
        ax.grid(alpha=0.3)
        _integer_steps(ax)
    axes[-1, 0].set_xlabel("optimizer step")
    axes[0, 0].set_title("Validation")
    return _save(fig, path)


# the most classes (labels, entity types) a plot names: beyond, it shows the most frequent ones on validation (a
# cell or a bar each for 2,600 classes took 22 GB and most of an hour to draw, and no one can read it)
MOST_SHOWN = 30


def most_frequent(frequency: Sequence[float], limit: int = MOST_SHOWN) -> np.ndarray | None:
    """The indices (in their order) of the ``limit`` largest of ``frequency``; None when there are no more."""
    if len(frequency) <= limit:
        return None
    return np.sort(np.argsort(-np.asarray(frequency, dtype=float), kind="stable")[:limit])


def shown_note(kept: np.ndarray | None, total: int, what: str) -> str:
    """What a plot cut to the most frequent classes says in its title ("" when it shows them all)."""
    return "" if kept is None else f"; the {len(kept)} most frequent of {total} {what}"


def plot_confusion(outputs: dict, label_names: Sequence[str], path: Path) -> Path:
    """Confusion matrix of the class ids of ``outputs`` (``predictions``, ``references``)."""
    n = len(label_names)
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (np.asarray(outputs["references"], dtype=int), np.asarray(outputs["predictions"], dtype=int)), 1)
    return plot_counts(counts, list(label_names), list(label_names), path, "accuracy")


def plot_counts(counts: np.ndarray, gold_names: list[str], predicted_names: list[str], path: Path,
                diagonal: str) -> Path:
    """A confusion matrix (square: the same names on both axes): counts written in the cells, colour = share of the
    gold row; the title gives the share on the diagonal (``diagonal`` names it). Beyond `MOST_SHOWN` classes, the
    most frequent ones (gold or predicted) are shown."""
    accuracy, total, classes = np.trace(counts) / max(counts.sum(), 1), counts.sum(), len(counts)
    rows = counts.sum(axis=1, keepdims=True)  # a shown cell's share is of its whole gold row
    kept = most_frequent(counts.sum(axis=0) + counts.sum(axis=1))
    if kept is not None:
        counts, rows = counts[np.ix_(kept, kept)], rows[kept]
        gold_names, predicted_names = [gold_names[i] for i in kept], [predicted_names[i] for i in kept]
    n = max(len(gold_names), len(predicted_names))
    share = counts / np.maximum(rows, 1)
    side = min(3.0 + 0.6 * n, 12.0)
    fig, axes = _figure(size=(side + 1.0, side))
    ax = axes[0, 0]
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of the gold class")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(predicted_names)), labels=predicted_names, rotation=45 if n > 4 else 0,
                  ha="right" if n > 4 else "center")
    ax.set_yticks(range(len(gold_names)), labels=gold_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"Best model on validation ({diagonal} {accuracy:.3f}, n={total}"
                 f"{shown_note(kept, classes, 'classes')})")
    return _save(fig, path)


def plot_scatter(outputs: dict, label_names: None, path: Path) -> Path:
    """Predicted against gold scores, with the identity line and the Pearson correlation (scores have no
    label names: ``label_names`` is there for the signature all `KIND_PLOTS` share)."""
    predictions, references = np.asarray(outputs["predictions"], float), np.asarray(outputs["references"], float)
    fig, axes = _figure(size=(5.5, 5.0))
    ax = axes[0, 0]
    ax.scatter(references, predictions, s=8, alpha=0.5)
    low = float(min(references.min(), predictions.min()))
    high = float(max(references.max(), predictions.max()))
    ax.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1, label="predicted = gold")
    pearson = METRICS["pearson"](predictions, references)  # as the run reports it: 0.0, not NaN, if constant
    ax.set_title(f"Best model on validation (Pearson {pearson:.3f}, n={len(references)})")
    ax.set_xlabel("gold")
    ax.set_ylabel("predicted")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _kind_plots() -> dict:
    """The best model's validation plots, by the names problem kinds give them (`Kind.plots`):
    name -> draw(outputs, label_names, path); written to plots/<name>.png."""
    from nlptune.train.entity_plots import plot_entity_confusion, plot_entity_f1
    from nlptune.train.label_plots import plot_label_cooccurrence, plot_label_f1

    return {"confusion_matrix": plot_confusion, "predictions_scatter": plot_scatter, "entity_f1": plot_entity_f1,
            "entity_confusion": plot_entity_confusion, "label_f1": plot_label_f1,
            "label_cooccurrence": plot_label_cooccurrence}


def write_run_plots(run_dir: str | Path, *, best_step: int | None = None, outputs: dict | None = None,
                    label_names: Sequence[str] | None = None, kind_plots: Sequence[str] = ()) -> list[Path]:
    """Every plot of one run into ``<run_dir>/plots/``; ``outputs`` holds the best model's validation
    ``predictions`` and ``references`` for the kind's plots ``kind_plots`` (names in `_kind_plots`; omit
    ``outputs`` to skip them).

    A plot that cannot be drawn is reported as a warning: it must never cost the run that produced it.
    """
    from nlptune.utils.console import warn

    folder = Path(run_dir) / PLOTS_DIR
    train, evals = read_records(run_dir)
    jobs = [(plot_training, (train, folder / "training.png")),
            (plot_validation, (evals, folder / "validation.png", best_step))]
    if outputs and len(outputs.get("references", ())):
        drawers = _kind_plots()
        jobs += [(drawers[name], (outputs, label_names, folder / f"{name}.png")) for name in kind_plots]
    written = []
    for draw, args in jobs:
        try:
            written.append(draw(*args))
        except Exception as err:  # noqa: BLE001 - reported, and the run's results are already saved
            warn(f"could not draw {draw.__name__} into {folder}: {type(err).__name__}: {err}")
    return written


def plot_compare(runs: Sequence[tuple[str, list[dict]]], metric: str, path: Path, note: str | None = None) -> Path:
    """Validation ``metric`` (top) and validation loss (bottom) of several runs against the step. ``note``: a
    second title line (e.g. that the runs are of different tasks, so the curves are not comparable)."""
    fig, axes = _figure(2, 1, size=(8.0, 6.5))
    for label, records in runs:
        for ax, name in ((axes[0, 0], metric), (axes[1, 0], "loss")):
            points = [(r["step"], r[f"eval_{name}"]) for r in records if f"eval_{name}" in r]
            if points:
                ax.plot(*zip(*points), marker="o", label=label)
    for ax, name in ((axes[0, 0], metric), (axes[1, 0], "loss")):
        ax.set_ylabel(f"validation {name}")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize="small")
    axes[1, 0].set_xlabel("optimizer step")
    axes[0, 0].set_title(f"Validation {metric}" + (f"\n{note}" if note else ""))
    return _save(fig, path)


def plot_lr_find(lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float],
                 suggestion: float | None, path: Path, skip_start: int = 10) -> Path:
    """Loss against learning rate (log scale): raw and smoothed, the suggested learning rate marked."""
    fig, axes = _figure(size=(7.0, 4.5))
    ax = axes[0, 0]
    ax.plot(lrs, losses, color="tab:blue", alpha=0.3, linewidth=1, label="loss")
    ax.plot(lrs, smoothed, color="tab:blue", label="smoothed loss")
    if suggestion is not None:
        ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"suggested lr {suggestion:.2e}")
    ax.set_xscale("log")
    values = np.asarray(smoothed, dtype=float)
    if np.isfinite(values).any():
        # zoom on the descent: from after the first, noisy values to the minimum (a diverging tail would
        # squash it), with room above for the start of the divergence
        lowest = int(np.nanargmin(np.where(np.isfinite(values), values, np.nan)))
        part = values[min(skip_start, lowest): lowest + 1]
        low, high = float(np.nanmin(part)), float(np.nanmax(part))
        span = max(high - low, 1e-3 * max(abs(high), 1.0))
        ax.set_ylim(low - 0.2 * span, high + 0.8 * span)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate range test")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)
