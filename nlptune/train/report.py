"""What a run shows: hyperparameters and learned parameters at the start, progress, a final table."""
from __future__ import annotations

import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nlptune.config.schema import RunConfig
from nlptune.utils.console import console


def hyperparameters(run: RunConfig) -> dict:
    """The settings a user chooses and sweeps, flattened to dotted keys (as opposed to learned parameters)."""
    flat = {}

    def walk(prefix: str, node) -> None:
        if hasattr(node, "items"):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        else:
            flat[prefix] = list(node) if isinstance(node, tuple) else node

    for section in ("model", "optimizer", "scheduler", "trainer", "augment"):
        walk(section, run.plain.get(section, {}))
    flat["seed"] = run.seed
    return flat


def _count(n: int) -> str:
    return f"{n:,}" if n < 10_000 else f"{n / 1e6:.2f}M"


def print_start(run: RunConfig, parameters: dict, output_dir: Path, num_processes: int, total_steps: int) -> None:
    """Print the hyperparameters and the learned-parameter report of a run about to start."""
    out = console()
    hp = Table(title="Hyperparameters (what you set)", show_header=False, title_justify="left")
    for key, value in hyperparameters(run).items():
        if key.startswith(("optimizer.", "scheduler.", "trainer.", "augment.", "model.")) or key == "seed":
            hp.add_row(key, str(value))
    params = Table(title="Parameters (what the model learns)", title_justify="left")
    for column in ("module", "total", "trainable"):
        params.add_column(column, justify="right" if column != "module" else "left")
    for name, counts in parameters["modules"].items():
        params.add_row(name, _count(counts["total"]), _count(counts["trainable"]))
    params.add_row("[bold]all", f"[bold]{_count(parameters['total'])}", f"[bold]{_count(parameters['trainable'])}")
    out.print(hp)
    out.print(params)
    out.print(f"frozen: {_count(parameters['frozen'])}  ·  processes: {num_processes}  ·  "
              f"optimizer steps: {total_steps}  ·  run dir: {output_dir}")


class Progress:
    """A rich progress bar with epoch, step, loss, learning rate and samples/s (rank 0 only)."""

    def __init__(self, total_steps: int, enabled: bool):
        self.enabled = enabled and not console().quiet
        self.started = time.perf_counter()
        self.loss, self.lr, self.samples = float("nan"), float("nan"), 0
        if self.enabled:
            self.bar = RichProgress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("loss {task.fields[loss]:.4f} lr {task.fields[lr]:.2e} "
                                               "{task.fields[rate]:.0f} samples/s"),
                                    TimeElapsedColumn(), console=console(), transient=False,
                                    refresh_per_second=2)  # a redraw costs CPU the training could use
            self.task = self.bar.add_task("train", total=total_steps, epoch=0, loss=self.loss, lr=self.lr, rate=0.0)
            self.bar.start()

    def advance(self, epoch: int, step: int, samples: int) -> None:
        if self.enabled:
            rate = samples / max(time.perf_counter() - self.started, 1e-9)
            self.bar.update(self.task, completed=step, epoch=epoch + 1, loss=self.loss, lr=self.lr, rate=rate)

    def note_loss(self, loss: float, lr: float) -> None:
        self.loss, self.lr = loss, lr

    def note_eval(self, record: dict, main: str) -> None:
        if self.enabled:
            shown = ", ".join(f"{k[5:]} {v:.4f}" for k, v in record.items() if k.startswith("eval_"))
            self.bar.console.print(f"step {record['step']}: {shown}")

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()


def print_end(summary: dict, history: list[dict], output_dir: Path) -> None:
    """The final table: best metrics, where they were reached, speed and size."""
    table = Table(title="Result", show_header=False, title_justify="left")
    for name, value in (summary["best"] or {}).items():
        marker = " (main)" if name == summary["main_metric"] else ""
        table.add_row(f"best {name}{marker}", f"{value:.4f}")
    table.add_row("best step", str(summary["best_step"]))
    table.add_row("evaluations", str(len(history)))
    table.add_row("train runtime", f"{summary['train_runtime_s']:.1f} s")
    table.add_row("train samples/s", f"{summary['train_samples_per_second']:.1f}")
    table.add_row("learned parameters", f"{summary['parameters']['trainable']:,} trainable / "
                                        f"{summary['parameters']['total']:,} total")
    console().print(table)
    console().print(f"run directory: {output_dir}")
