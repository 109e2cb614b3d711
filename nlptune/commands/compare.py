"""`nlptune compare`: several runs' validation curves in one plot, and a table of their results."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub) -> None:
    parser = sub.add_parser("compare", help="plot runs' validation curves together and tabulate their results")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--metric", help="validation metric to plot (default: the first run's main metric)")
    parser.add_argument("--output", default="compare.png", help="where to write the plot (default compare.png)")
    parser.set_defaults(handler=handle)


def _load(run_dir: str) -> dict:
    """A run's summary (metrics.json, absent while it runs), hyperparameters and evaluation records."""
    from nlptune.config.errors import NlptuneError
    from nlptune.train.plots import read_records

    path = Path(run_dir)
    if not (path / "metrics.jsonl").is_file():
        raise NlptuneError(f"{run_dir} is not an nlptune run directory (no metrics.jsonl); "
                           "pass directories that `nlptune train` printed")
    summary = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").is_file() else {}
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


def handle(args: argparse.Namespace) -> int:
    from rich.table import Table

    from nlptune.train.plots import plot_compare
    from nlptune.utils.console import console, warn

    from nlptune.utils.files import refuse_link

    refuse_link(args.output, "(--output)")  # the plot is written atomically, never through a link
    runs = [_load(d) for d in args.run_dirs]
    labels = _labels([r["path"] for r in runs])
    metric = args.metric or next((r["summary"]["main_metric"] for r in runs if r["summary"]), None)
    if metric is None:
        metric = next((k[5:] for r in runs for rec in r["evals"] for k in rec if k.startswith("eval_")), "loss")
    if not any(f"eval_{metric}" in rec for r in runs for rec in r["evals"]):
        warn(f"no run has evaluations of {metric!r}; try --metric with one of the run's metrics")
    table = Table(title=f"Runs (best validation {metric})", title_justify="left")
    for column in ("run", f"best {metric}", "best step", "steps", "runtime s", "samples/s", "trainable",
                   "differs in"):
        table.add_column(column, justify="left" if column in ("run", "differs in") else "right")
    for label, run, differs in zip(labels, runs, _differences(runs)):
        s = run["summary"]
        best = (s.get("best") or {}).get(metric)
        table.add_row(label, "unfinished" if not s else ("-" if best is None else f"{best:.4f}"),
                      str(s.get("best_step", "-")), str(s.get("steps", "-")), str(s.get("train_runtime_s", "-")),
                      str(s.get("train_samples_per_second", "-")),
                      f"{s['parameters']['trainable']:,}" if "parameters" in s else "-", differs or "-")
    plot_compare(list(zip(labels, [r["evals"] for r in runs])), metric, Path(args.output))
    console().print(table)
    console().print(f"plot: {args.output}")
    return 0
