"""Issue 17: what a distilled student keeps of its teacher's quality, and what it costs to run, side by side.

For finished runs (a teacher and groups of student runs, e.g. one group per way of training, one run per seed) it
prints each group's main validation metric (mean ± std over its runs, from their metrics.json) beside the inference
cost measured now, in this one process, with nlptune's own measure (`nlptune.train.cost.measure_device`: the
model's forward pass and the kind's predictions on validation rows, tokenizing not timed): latency at batch 1
(median), examples/s at batch 32 (validation rows batched by length), each run at the precision it evaluated with
(its `trainer.mixed_precision` as a CPU runs it, as `nlptune eval` does; --precision fp32 forces fp32 on all),
and the speed-ups over the teacher.
Measuring every model in one process on an idle machine keeps the ratios free of the load the runs' own end-of-run
figures may have seen.

  python benchmarks/distill.py --teacher runs/sst2-teacher \
      --group alone=runs/alone-s1,runs/alone-s2,runs/alone-s3 --group soft=runs/soft-s1,... [--json out.json]

The runs themselves come from `nlptune train` / `nlptune distill` (the README's "Distillation" section, and the
commands in benchmarks/RESULTS.md).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_machine, print_table  # noqa: E402

# longer than the end-of-run measure (nlptune.train.cost): this table is the figure an acceptance reads
LATENCY_EXAMPLES, LATENCY_SECONDS = 300, 15.0
THROUGHPUT_EXAMPLES, THROUGHPUT_SECONDS = 4096, 30.0


def summary(run_dir: Path) -> dict:
    """The run's best main metric, from its metrics.json."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    main = metrics["main_metric"]
    return {"metric": main, "value": metrics["best"][main]}


def measure(run_dir: Path, precision: str | None) -> dict:
    """Params, weight size, latency and throughput of the run's best model on its task's validation rows, in
    ``precision`` (None: the run's)."""
    from nlptune.data.labels import to_examples
    from nlptune.data.loading import load_raw_splits
    from nlptune.inference.run_reading import load_run
    from nlptune.train.cost import Limit, measure_device, parameter_count, weights_mb

    run = load_run(run_dir)
    task = run.task
    examples = to_examples(task, load_raw_splits(task)["validation"], "validation", run.info["label_names"], None)
    dataset = run.encoded(examples.texts, examples.labels)  # the rows exactly as `nlptune eval` has them
    timing = measure_device(run.model.eval(), dataset, run.collator(), run.kind, "cpu", precision or run.precision,
                            latency=Limit(LATENCY_EXAMPLES, LATENCY_SECONDS),
                            throughput=Limit(THROUGHPUT_EXAMPLES, THROUGHPUT_SECONDS), decoding=run.decoding)
    return {"params": parameter_count(run.model), "size_mb": weights_mb(run_dir / "best"), **timing}


def parse_group(text: str) -> tuple[str, list[Path]]:
    """``name=DIR,DIR,...`` -> (name, [Path, ...])."""
    name, sep, dirs = text.partition("=")
    if not sep or not dirs:
        raise argparse.ArgumentTypeError(f"--group {text!r}: expected NAME=RUN_DIR[,RUN_DIR...]")
    return name, [Path(d) for d in dirs.split(",") if d]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, required=True, help="the teacher's run directory")
    parser.add_argument("--group", type=parse_group, action="append", default=[],
                        help="NAME=RUN_DIR[,RUN_DIR...]: student runs trained the same way (one per seed)")
    parser.add_argument("--precision", choices=["run", "fp32"], default="run",
                        help="run: each model at the precision its run evaluated with; fp32: all in fp32")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    import torch

    print_machine()
    print(f"threads: {torch.get_num_threads()}", flush=True)
    rows = []
    for name, dirs in [("teacher", [args.teacher]), *args.group]:
        runs = [summary(d) for d in dirs]
        values = [r["value"] for r in runs]
        # the runs of a group share their architecture: one timing stands for all
        cost = measure(dirs[0], None if args.precision == "run" else "fp32")
        rows.append({"model": name, "runs": len(runs), "metric": runs[0]["metric"],
                     "mean": round(statistics.mean(values), 4),
                     "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
                     "values": " ".join(f"{v:.4f}" for v in values), "params": cost["params"],
                     "size_mb": cost["size_mb"], "precision": cost["precision"], "latency_ms": cost["latency_ms"],
                     "throughput": cost["throughput"]})
    teacher = rows[0]
    for row in rows:
        row["latency_x"] = f'{teacher["latency_ms"] / row["latency_ms"]:.1f}x'
        row["throughput_x"] = f'{row["throughput"] / teacher["throughput"]:.1f}x'
    print_table(rows, ["model", "runs", "metric", "mean", "std", "values", "params", "size_mb", "precision",
                       "latency_ms", "latency_x", "throughput", "throughput_x"])
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
