"""`nlptune compare`: several runs' validation curves in one plot, and tables of their results and inference cost."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub) -> None:
    parser = sub.add_parser("compare", help="plot runs' validation curves together and tabulate their results")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--metric", help="validation metric to plot (default: the first run's main metric)")
    parser.add_argument("--output", metavar="DIR",
                        help="folder for compare.png (default: the first run's folder); a path ending in "
                             ".png/.pdf/.svg names the plot file itself")
    parser.set_defaults(handler=handle)


def _load(run_dir: str) -> dict:
    """A run's summary (metrics.json, absent while it runs), hyperparameters and evaluation records."""
    from nlptune.inference.run_reading import check_run, read_json
    from nlptune.config.errors import NlptuneError
    from nlptune.train.plots import read_records

    path = check_run(run_dir, finished=False)
    if not (path / "metrics.jsonl").is_file():
        raise NlptuneError(f"{run_dir} is not an nlptune run directory (no metrics.jsonl); "
                           "pass directories that `nlptune train` printed")
    summary = read_json(path / "metrics.json") if (path / "metrics.json").is_file() else {}
    return {"path": path, "summary": summary, "hyperparameters": summary.get("hyperparameters", {}),
            "evals": read_records(path)[1]}


def _labels(paths: list[Path]) -> list[str]:
    """Short distinct names: the last two path parts (e.g. sst2-lstm/20260101-120000), else the full path."""
    short = [str(Path(*p.resolve().parts[-2:])) for p in paths]
    return short if len(set(short)) == len(short) else [str(p) for p in paths]


def _differences(runs: list[dict]) -> list[str]:
    """Per run, the hyperparameters whose values differ between the runs (what the comparison is about)."""
    keys = sorted({k for r in runs for k in r["hyperparameters"]})
    varying = [k for k in keys if len({json.dumps(r["hyperparameters"].get(k)) for r in runs}) > 1]
    return [", ".join(f"{k}={r['hyperparameters'].get(k)}" for k in varying) for r in runs]


PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def plot_path(output: str | None, first_run: Path) -> Path:
    """Where the plot goes: ``output`` (a folder, or a file with an image suffix), else the first run's folder;
    never the current directory unless asked. A link there is refused: nlptune never writes through one. The
    folder nlptune writes into (``output``, or the first run's folder) may not be a link either, as a run
    directory or `export --output` may not: a link planted as that folder would redirect the write elsewhere."""
    from nlptune.config.errors import NlptuneError
    from nlptune.utils.files import refuse_link

    if output is None:
        refuse_link(first_run, "(the first run's folder, where the compare plot goes; or give --output DIR)")
        path = first_run / "compare.png"
    elif Path(output).suffix.lower() in PLOT_SUFFIXES:
        path = Path(output)
    else:
        refuse_link(output, "(--output, the compare plot's folder)")
        if Path(output).exists() and not Path(output).is_dir():
            raise NlptuneError(f"--output {output} is a file, not a folder -> give a folder, or a path ending "
                               "in .png for the plot itself")
        path = Path(output) / "compare.png"
    refuse_link(path, "(the compare plot)")
    if path.exists() and path.is_dir():
        raise NlptuneError(f"{path} is a folder -> give another --output")
    return path


def _number(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def compare_table(runs: list[dict], labels: list[str], metric: str):
    """One row per run, readable at 80 columns: the figures never wrap, a long run name folds. What the runs
    differ in goes below the table (`differences_text`): a table column would be too narrow for it."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"Runs (best validation {metric})", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("run", overflow="fold", min_width=8)
    for column in (f"best {metric}", "at step", "runtime s", "samples/s", "trainable"):
        table.add_column(column, justify="right", no_wrap=True)
    for label, run in zip(labels, runs):
        s = run["summary"]
        best = (s.get("best") or {}).get(metric)
        table.add_row(label, "unfinished" if not s else _number(best, ".4f"),
                      f"{s.get('best_step', '-')}/{s.get('steps', '-')}", _number(s.get("train_runtime_s"), ".1f"),
                      _number(s.get("train_samples_per_second"), ".0f"),
                      _number(s["parameters"]["trainable"], ",") if "parameters" in s else "-")
    return table


def cost_table(runs: list[dict], labels: list[str]):
    """The runs' inference cost (metrics.json's ``cost``: CPU figures, as each run measured them on its machine),
    apart from the results table so that both stay readable at 80 columns; None when no run measured it."""
    from rich import box
    from rich.table import Table

    if not any(run["summary"].get("cost") for run in runs):
        return None
    table = Table(title="Inference cost (CPU: latency at batch 1, examples/s at batch 32)", title_justify="left",
                  box=box.SIMPLE_HEAD)
    table.add_column("run", overflow="fold", min_width=8)
    for column in ("latency ms", "examples/s", "params", "size MB", "threads"):
        table.add_column(column, justify="right", no_wrap=True)
    for label, run in zip(labels, runs):
        cost = run["summary"].get("cost") or {}
        table.add_row(label, _number(cost.get("latency_ms"), ".2f"), _number(cost.get("throughput"), ",.0f"),
                      _number(cost.get("params"), ","), _number(cost.get("size_mb"), ".2f"),
                      _number(cost.get("threads"), "d"))
    return table


def differences_text(runs: list[dict], labels: list[str]) -> list[str]:
    """One line per run: the hyperparameters in which the runs differ (none when they are alike)."""
    differs = _differences(runs)
    if not any(differs):
        return ["the runs' hyperparameters are the same"]
    return [f"{label} differs in: {d or '-'}" for label, d in zip(labels, differs)]


def handle(args: argparse.Namespace) -> int:
    from nlptune.train.plots import plot_compare
    from nlptune.utils.console import console, warn

    runs = [_load(d) for d in args.run_dirs]
    labels = _labels([r["path"] for r in runs])
    metric = args.metric or next((r["summary"]["main_metric"] for r in runs if r["summary"]), None)
    if metric is None:
        metric = next((k[5:] for r in runs for rec in r["evals"] for k in rec if k.startswith("eval_")), "loss")
    if not any(f"eval_{metric}" in rec for r in runs for rec in r["evals"]):
        warn(f"no run has evaluations of {metric!r}; try --metric with one of the run's metrics")
    path = plot_path(args.output, runs[0]["path"])
    plot_compare(list(zip(labels, [r["evals"] for r in runs])), metric, path)  # atomic, never through a link
    console().print(compare_table(runs, labels, metric))
    costs = cost_table(runs, labels)
    if costs is not None:
        console().print(costs)
    for line in differences_text(runs, labels):
        console().print(line)
    console().print(f"plot: {path}")
    return 0
