"""`nlptune compare`: several runs' validation curves in one plot, and tables of their results and inference cost."""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Sequence


def add_parser(sub) -> None:
    parser = sub.add_parser("compare", help="plot runs' validation curves together and tabulate their results")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run directories that `nlptune train` wrote (a sweep's trials too), finished or running")
    parser.add_argument("--metric", help="validation metric to plot (default: the first run's main metric)")
    parser.add_argument("--output", metavar="DIR",
                        help="folder for compare.png (default: the first run's folder); a path ending in "
                             ".png/.pdf/.svg names the plot file itself; never a folder inside a run directory "
                             "or a saved model")
    parser.add_argument("--allow-different-tasks", action="store_true",
                        help="show runs of different tasks (or problem kinds, main metrics, validation data) side "
                             "by side, each with its own main metric, never ranked by one; refused without it")
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
    return {"path": path, "summary": summary, "hyperparameters": _hyperparameters(path, summary),
            "evals": read_records(path)[1], "measured": _measured_on(path, summary)}


def _hyperparameters(path: Path, summary: dict) -> dict:
    """A run's hyperparameters: its summary's, or, while it runs (no metrics.json yet), its config.yaml's."""
    from nlptune.train.report import hyperparameters_of
    from nlptune.train.run_reading import read_run_config

    if summary.get("hyperparameters") or not (path / "config.yaml").is_file():
        return summary.get("hyperparameters", {})
    return hyperparameters_of(read_run_config(path))


MEASURED = ("task", "kind", "main metric", "validation data")  # what makes two runs' validation figures comparable


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _measured_on(path: Path, summary: dict) -> dict:
    """What a run's validation figures measure (`MEASURED`), as strings: task name, problem kind, main metric
    and validation data (the split's recorded identity and row limit). What a run did not record (an old run,
    one copied without its manifest) is left out."""
    from nlptune.config.schema import kind_of
    from nlptune.train.run_reading import read_json, read_run_config

    task = _mapping(read_run_config(path).get("task")) if (path / "config.yaml").is_file() else {}
    manifest = read_json(path / "manifest.json") if (path / "manifest.json").is_file() else {}
    validation = _mapping(_mapping(manifest.get("data")).get("sha256")).get("validation")
    if isinstance(validation, str) and validation.startswith("hub:"):
        # hub:<id>:<config>:<revision>[:<fingerprint>]: the fingerprint depends on the `datasets` version
        validation = ":".join(validation.split(":")[:4])
    if validation is not None and task.get("max_eval_samples"):
        validation = f"{validation}, first {task['max_eval_samples']} rows"
    found = {"task": task.get("name"), "kind": kind_of(task),
             "main metric": task.get("main_metric") or summary.get("main_metric"), "validation data": validation}
    return {key: str(value) for key, value in found.items() if value is not None}


def _short(value: str) -> str:
    """A sha256 cut to 12 digits: enough to tell two files apart in a message."""
    return re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1...", value)


def incomparable(runs: list[dict], labels: list[str]) -> tuple[list[str], list[str]]:
    """``(keys, lines)``: the `MEASURED` keys whose values differ between the runs, and one line per run with its
    values of them; both empty when the runs measure the same thing. A key a run did not record is not held
    against it (the others are compared without it)."""
    keys = [key for key in MEASURED if len({r["measured"][key] for r in runs if key in r["measured"]}) > 1]
    lines = [f"{label}: " + ", ".join(f"{key} {_short(run['measured'].get(key, 'not recorded'))}" for key in keys)
             for label, run in zip(labels, runs)] if keys else []
    return keys, lines


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


def plot_path(output: str | None, first_run: Path, runs: Sequence[Path] = ()) -> Path:
    """Where the plot goes: ``output`` (a folder, or a file with an image suffix), else the first run's folder;
    never the current directory unless asked. A link there is refused: nlptune never writes through one. The
    folder nlptune writes into (``output``, or the first run's folder) may not be a link either, as a run
    directory or `export --output` may not: a link planted as that folder would redirect the write elsewhere.
    Nor may it lie inside a run directory (best/, checkpoints/, ...) or a saved model, or be a run directory
    other than the compared ``runs`` (default: the first run), whose top folder takes the plot by default."""
    from nlptune.config.errors import NlptuneError
    from nlptune.train.rundir import refuse_run_contents
    from nlptune.utils.files import refuse_link

    if output is None:
        refuse_link(first_run, "(the first run's folder, where the compare plot goes; or give --output DIR)")
        path, what = first_run / "compare.png", "(the first run's folder, where the compare plot goes)"
    elif Path(output).suffix.lower() in PLOT_SUFFIXES:
        path, what = Path(output), f"(the folder of --output {output})"
    else:
        refuse_link(output, "(--output, the compare plot's folder)")
        if Path(output).exists() and not Path(output).is_dir():
            raise NlptuneError(f"--output {output} is a file, not a folder -> give a folder, or a path ending "
                               "in .png for the plot itself")
        path, what = Path(output) / "compare.png", "(--output, the compare plot's folder)"
    refuse_run_contents(path.parent, what, allow=runs or [first_run],
                        fix="give --output a fresh folder outside every run directory (e.g. --output "
                            "reports/compare), or leave --output out to put compare.png beside the first run's files")
    refuse_link(path, "(the compare plot)")
    if path.exists() and path.is_dir():
        raise NlptuneError(f"{path} is a folder -> give another --output")
    return path


def _number(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _best_cell(run: dict, metric: str, own: bool) -> str:
    """The run's best validation ``metric``; ``own``: its own main metric, named (runs of different tasks). A run
    without metrics.json (running, or stopped) shows its best evaluation so far."""
    summary, name = run["summary"], run["measured"].get("main metric", "-") if own else metric
    if summary:
        value = _number((summary.get("best") or {}).get(name), ".4f")
    else:
        best = _best_so_far(run["evals"], name)
        value = "unfinished" if best is None else f"{best[name]:.4f} so far"
    return f"{name} {value}" if own else value


def _best_so_far(evals: list[dict], metric: str) -> dict | None:
    """The best of a run's evaluation records by ``metric`` (as metrics.json would hold it: metric names without
    eval_, and its step); None when none holds the metric."""
    from nlptune.metrics import is_improvement

    best = None
    for record in evals:
        value = record.get(f"eval_{metric}")
        if isinstance(value, (int, float)) and (best is None or is_improvement(metric, value, best[metric])):
            best = {metric: value, "step": record.get("step")}
    return best


def _running(run: dict, metric: str) -> dict:
    """The step figures of a run without metrics.json, from its evaluation records: its best step so far (by the
    main ``metric``) and its last evaluated step."""
    best = _best_so_far(run["evals"], run["measured"].get("main metric", metric))
    return {"best_step": best["step"], "steps": run["evals"][-1].get("step", "-")} if best else {}


def compare_table(runs: list[dict], labels: list[str], metric: str, differ: Sequence[str] = ()):
    """One row per run, readable at 80 columns: the figures never wrap, a long run name folds. What the runs
    differ in goes below the table (`differences_text`): a table column would be too narrow for it.
    ``differ``: what the runs' validation figures differ in (`incomparable`): each run then shows its own main
    metric, named, under a title that says they are not comparable, not one column of one metric read as a
    ranking."""
    from rich import box
    from rich.table import Table

    own_metric = bool(differ)
    title = (f"Runs (best validation {metric})" if not own_metric else
             f"Runs, NOT comparable: they differ in {', '.join(differ)} (each run's own best main metric)")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("run", overflow="fold", min_width=8)
    for column in ("best main metric" if own_metric else f"best {metric}", "at step", "runtime s", "samples/s",
                   "trainable"):
        table.add_column(column, justify="right", no_wrap=True)
    for label, run in zip(labels, runs):
        s = run["summary"] or _running(run, metric)
        table.add_row(label, _best_cell(run, metric, own_metric),
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


def check_comparable(runs: list[dict], labels: list[str], allow: bool) -> list[str]:
    """Refuse runs whose validation figures measure different things (task, kind, main metric, validation
    data): side by side they read as a ranking that means nothing. ``allow`` (--allow-different-tasks): a
    warning instead. Returns what they differ in (the table and the plot then say so), [] when nothing."""
    from nlptune.config.errors import NlptuneError
    from nlptune.utils.console import warn

    keys, lines = incomparable(runs, labels)
    if not keys:
        return keys
    what = f"these runs differ in {', '.join(keys)}, so their results are not comparable"
    if not allow:
        raise NlptuneError(f"{what}:\n  " + "\n  ".join(lines) + "\n  -> compare runs of one task evaluated on "
                           "the same validation data, or add --allow-different-tasks to show them side by side, "
                           "each with its own main metric, unranked")
    warn(f"{what} (shown side by side, not ranked): " + "; ".join(lines))
    return keys


def _evaluated(runs: list[dict]) -> list[str]:
    """The metrics the runs' evaluations hold (eval_<metric> keys), sorted."""
    return sorted({key[5:] for run in runs for record in run["evals"] for key in record if key.startswith("eval_")})


def handle(args: argparse.Namespace) -> int:
    """Check the runs and the output folder, then write the plot and print the tables (nothing is written before
    every check has passed)."""
    from nlptune.config.errors import NlptuneError
    from nlptune.train.plots import plot_compare
    from nlptune.utils.console import console, warn

    runs = [_load(d) for d in args.run_dirs]
    seen: dict[Path, str] = {}
    for given, run in zip(args.run_dirs, runs):
        first = seen.setdefault(run["path"].resolve(), given)
        if first != given or args.run_dirs.count(given) > 1:
            what = "is given twice" if first == given else f"is the same run as {first}"
            raise NlptuneError(f"{given} {what}: each run is compared once -> give each RUN_DIR once")
    labels = _labels([r["path"] for r in runs])
    differ = check_comparable(runs, labels, args.allow_different_tasks)
    metric = args.metric or next((r["measured"]["main metric"] for r in runs if "main metric" in r["measured"]),
                                 None)
    if metric is None:
        metric = next((k[5:] for r in runs for rec in r["evals"] for k in rec if k.startswith("eval_")), "loss")
    if not any(f"eval_{metric}" in rec for r in runs for rec in r["evals"]):
        if args.metric:  # asked for by name: a typo must not draw an empty plot and exit 0
            raise NlptuneError(f"--metric {metric}: no run has evaluations of it -> use one the runs have: "
                               f"{', '.join(_evaluated(runs)) or '(none: the runs have no evaluation yet)'}")
        warn(f"no run has evaluations of {metric!r}; try --metric with one of the run's metrics")
    path = plot_path(args.output, runs[0]["path"], [r["path"] for r in runs])
    plot_compare(list(zip(labels, [r["evals"] for r in runs])), metric, path,  # atomic, never through a link
                 note=f"NOT comparable: the runs differ in {', '.join(differ)}" if differ else None)
    console().print(compare_table(runs, labels, metric, differ))
    costs = cost_table(runs, labels)
    if costs is not None:
        console().print(costs)
    for line in differences_text(runs, labels):
        console().print(line)
    print(f"plot: {path}")  # the command's file: said even with --quiet, which drops the tables
    return 0
