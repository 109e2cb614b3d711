"""What a run shows: hyperparameters and learned parameters at the start, progress, a final table."""
from __future__ import annotations

import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from nlptune.config.schema import RunConfig
from nlptune.utils.console import console


def hyperparameters(run: RunConfig) -> dict:
    """The settings a user chooses and sweeps, flattened to dotted keys (as opposed to learned parameters)."""
    return hyperparameters_of({**run.plain, "seed": run.seed})


def hyperparameters_of(plain: dict) -> dict:
    """`hyperparameters` of a config as plain data (a run's config.yaml, read while the run has no metrics.json)."""
    flat = {}

    def walk(prefix: str, node) -> None:
        if hasattr(node, "items"):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        else:
            flat[prefix] = list(node) if isinstance(node, tuple) else node

    for section in ("model", "optimizer", "scheduler", "trainer", "augment", "distill"):
        section_values = plain.get(section)
        walk(section, section_values if hasattr(section_values, "items") else {})
    flat["seed"] = plain.get("seed")
    return flat


HYPERPARAMETER_GROUPS = ("task", "model", "optimizer", "scheduler", "augment", "distill")  # files a run picks in conf/


def default_hyperparameters(run: RunConfig) -> dict | None:
    """The hyperparameters of the run's components as conf/ defines them (its task, model, optimizer, scheduler
    and augmentation, nothing overridden): what the start table compares against. None when they cannot be
    composed (e.g. a component named in a recipe that conf/ lacks): the table then shows every key."""
    from nlptune.config.compose import group_options, load_run_config
    from nlptune.config.errors import NlptuneError

    choices = []
    for group in HYPERPARAMETER_GROUPS:
        name = (run.plain.get(group) or {}).get("name")
        if name in group_options(group):
            choices.append(f"{group}={name}")
    try:
        return hyperparameters(load_run_config(choices))
    except (NlptuneError, OSError):
        return None


# shown on every run even at their defaults: what a reader of the log looks for first
ESSENTIAL = ("model.name", "optimizer.name", "optimizer.lr", "scheduler.name", "trainer.batch_size",
             "trainer.max_epochs", "trainer.max_steps", "seed")


def hyperparameter_table(run: RunConfig, defaults: dict | None) -> tuple[Table, str]:
    """What the user set: the keys that differ from ``defaults`` first (with the default beside), then the
    essential ones at their defaults, and a line counting the rest (every key is in config.yaml and
    metrics.json). ``defaults`` None: every key. Readable at 80 columns."""
    current = hyperparameters(run)
    if defaults is None:
        changed, kept = list(current), []
    else:
        changed = [k for k in current if k not in defaults or defaults[k] != current[k]]
        kept = [k for k in ESSENTIAL if k in current and k not in changed]
    title = "Hyperparameters" if defaults is None else (
        "Hyperparameters (changed from the defaults first)" if changed else
        "Hyperparameters (all at the defaults of the chosen task, model and optimizer)")
    table = Table(title=title, title_justify="left", min_width=min(len(title), 80))
    table.add_column("key", no_wrap=True)
    table.add_column("value", overflow="fold")
    if defaults is not None:
        table.add_column("default", overflow="fold", style="dim")
    for key in changed:
        table.add_row(key, str(current[key]), *([str(defaults.get(key, "-"))] if defaults is not None else []))
    if changed and kept:
        table.add_section()
    for key in kept:
        table.add_row(key, str(current[key]), "(default)")
    rest = len(current) - len(changed) - len(kept)
    note = f"{rest} more keys unchanged: see config.yaml (all of them: metrics.json)" if rest else ""
    return table, note


def _count(n: int) -> str:
    return f"{n:,}" if n < 10_000 else f"{n / 1e6:.2f}M"


def parameter_table(parameters: dict) -> Table:
    """The learned-parameter report: per module, total and trainable."""
    title = "Parameters (what the model learns)"
    params = Table(title=title, title_justify="left", min_width=len(title))
    params.add_column("module", overflow="fold")
    for column in ("total", "trainable"):
        params.add_column(column, justify="right", no_wrap=True)
    for name, counts in parameters["modules"].items():
        params.add_row(name, _count(counts["total"]), _count(counts["trainable"]))
    params.add_row("[bold]all", f"[bold]{_count(parameters['total'])}", f"[bold]{_count(parameters['trainable'])}")
    return params


def print_start(run: RunConfig, parameters: dict, output_dir: Path, num_processes: int, total_steps: int) -> None:
    """Print the hyperparameters and the learned-parameter report of a run about to start."""
    out = console()
    if out.quiet:  # composing the defaults costs a moment: not for sweeps' trials
        return
    table, note = hyperparameter_table(run, default_hyperparameters(run))
    out.print(table)
    if note:
        out.print(note, style="dim")
    out.print(parameter_table(parameters))
    out.print(f"frozen: {_count(parameters['frozen'])}  ·  processes: {num_processes}  ·  "
              f"optimizer steps: {total_steps}  ·  run dir: {output_dir}")


def _stats(loss: float | None, lr: float | None, rate: float | None) -> str:
    """The bar's figures, each shown once it is known (no "loss nan" before the first log line)."""
    parts = []
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    if lr is not None:
        parts.append(f"lr {lr:.2e}")
    if rate is not None:
        parts.append(f"{rate:.0f} samples/s")
    return " ".join(parts)


class Progress:
    """A rich progress bar with epoch, step, loss, learning rate and samples/s (rank 0 only)."""

    def __init__(self, total_steps: int, enabled: bool):
        self.enabled = enabled and not console().quiet
        self.started = time.perf_counter()
        self.loss: float | None = None  # unknown until the first log line
        self.lr: float | None = None
        if self.enabled:
            # at 80 columns the bar gives way: the counts and figures are never cut
            whole = dict(table_column=Column(no_wrap=True))
            self.bar = RichProgress(TextColumn("epoch {task.fields[epoch]}", **whole), BarColumn(bar_width=None),
                                    MofNCompleteColumn(**whole), TextColumn("{task.fields[stats]}", **whole),
                                    TimeElapsedColumn(), console=console(), transient=False,
                                    refresh_per_second=2)  # a redraw costs CPU the training could use
            self.task = self.bar.add_task("train", total=total_steps, epoch=1, stats="")
            self.bar.start()

    def advance(self, epoch: int, step: int, samples: int) -> None:
        if self.enabled:
            rate = samples / max(time.perf_counter() - self.started, 1e-9) if samples else None
            self.bar.update(self.task, completed=step, epoch=epoch + 1, stats=_stats(self.loss, self.lr, rate))

    def note_loss(self, loss: float, lr: float) -> None:
        self.loss, self.lr = loss, lr

    def note_eval(self, record: dict, main: str) -> None:
        if self.enabled:
            shown = ", ".join(f"{k[5:]} {v:.4f}" for k, v in record.items() if k.startswith("eval_"))
            self.bar.console.print(f"step {record['step']}: {shown}")

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()


def result_table(summary: dict, history: list[dict]) -> Table:
    """The final table: best metrics, where they were reached, speed and size."""
    table = Table(title="Result", show_header=False, title_justify="left")
    table.add_column("what", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in (summary["best"] or {}).items():
        marker = " (main)" if name == summary["main_metric"] else ""
        table.add_row(f"best {name}{marker}", f"{value:.4f}")
    table.add_row("best step", str(summary["best_step"]))
    average = summary.get("weight_average")
    if average:  # trainer.average_from
        main = summary["main_metric"]
        table.add_row("averaged weights", f"{main} {average['scores'][main]:.4f} ({average['evaluations']} evals "
                      f"from step {average['from_step']}): " + ("kept" if average["kept"] else "not kept"))
    table.add_row("evaluations", str(len(history)))
    table.add_row("train runtime", f"{summary['train_runtime_s']:.1f} s")
    table.add_row("train samples/s", f"{summary['train_samples_per_second']:.1f}")
    table.add_row("learned parameters", f"{summary['parameters']['trainable']:,} trainable / "
                                        f"{summary['parameters']['total']:,} total")
    for label, line in cost_lines(summary.get("cost")):
        table.add_row(label, line)
    return table


def cost_lines(cost: dict | None) -> list[tuple[str, str]]:
    """The inference cost (metrics.json's ``cost``, `nlptune.train.cost`) as (label, figures) rows: the size, the
    CPU's latency at batch 1 and throughput at batch 32, then the GPU's when the run trained on one; none when it
    was not measured. What each was measured with goes in the label, which never wraps."""
    if not cost:
        return []
    threads = f"{cost['threads']} thread{'s' if cost['threads'] != 1 else ''}"
    lines = [("inference size", f"{_count(cost['params'])} params · {cost['size_mb']:.2f} MB"),
             (f"inference {cost['device']}, {threads}, {cost['precision']}",
              f"{cost['latency_ms']:.2f} ms @1 · {cost['throughput']:,.0f}/s @32")]
    gpu = cost.get("cuda")
    if gpu:
        lines.append((f"inference {gpu['device']}, {gpu['precision']}",
                      f"{gpu['latency_ms']:.2f} ms @1 · {gpu['throughput']:,.0f}/s @32"))
    return lines


def print_end(summary: dict, history: list[dict], output_dir: Path) -> None:
    """Print the final table and where the run is."""
    console().print(result_table(summary, history))
    console().print(f"run directory: {output_dir}")
