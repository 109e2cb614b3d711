"""Issue 18: does tuning earn its keep? A swept MiniLM recipe vs the hand-set recipe it replaced and vs the
Trainer with run_glue.py's default hyperparameters, the same seeds for each, one table per task.

  python benchmarks/tuned_vs_defaults.py --tasks cola stsb mrpc        # 3 seeds each: long, run it on an idle machine
  python benchmarks/tuned_vs_defaults.py --tasks cola --seeds 43 --smoke   # a few steps: checks the plumbing only

Contenders (all-MiniLM-L6-v2, ../shared/data, this machine):
- tuned: `nlptune train recipe=recipes/<task>-minilm.yaml seed=S`, the recipe as shipped (bf16 autocast on a CPU
  with AMX, fp32 elsewhere). `metric` is its best evaluation on validation, as the recipe reports it (the checkpoint
  it keeps); `final` is its last evaluation.
- hand_set: the same recipe with every key the sweeps search put back to the hand-set values the recipes had
  before (HAND_SET below: lr 5e-5, warmup 0.1, 3 epochs, batch 32, weight decay 0.01, no layer decay, no
  re-initialisation, the checkpoint's own first-token head: model.pooling=cls).
- trainer: transformers.Trainer with run_glue.py's default hyperparameters: lr 2e-5, 3 epochs, batch 32, no
  warmup, weight decay 0, fp32, scored once at the end (it keeps no best checkpoint: metric = final). It runs
  vs_trainer.py's child with dynamic padding and length-grouped batches instead of run_glue's padding to 128:
  the same arithmetic on the real tokens at a third of the time; batches are grouped differently.
The seeds default to 43 44 45: the seeds `tune.confirm_seeds=3` gives a sweep of seed 42, so the tuned rows
repeat the sweep's confirmation runs (a check that they reproduce).

  python benchmarks/tuned_vs_defaults.py --tasks sst2 mrpc --tuned-from runs/sweep-sst2-minilm runs/sweep-mrpc-minilm

`--tuned-from SWEEP_DIR ...` reads the tuned rows from those sweeps' confirmation runs (confirm/trial-N/seed-S/)
instead of training them again: only a run whose config.yaml is the shipped recipe's config (seed, output_dir,
task.data_dir and a `packaged:` model resolved to its folder apart) counts, and a seed without one is trained as
usual. Training on a CPU is deterministic here (a recipe's `nlptune reproduce` gives its trial's metric to the
last digit), so the figures are the same; the table's `tuned_from` column says where each row's figures came from.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA_DIR, REPO, print_machine, print_table, run_child  # noqa: E402
from vs_trainer import METRIC  # noqa: E402

# the values the hand-set MiniLM recipes had, for every key the sweeps search
HAND_SET = ["optimizer.lr=5e-5", "scheduler.warmup_ratio=0.1", "trainer.max_epochs=3", "optimizer.weight_decay=0.01",
            "optimizer.layer_decay=1.0", "model.reinit_layers=0", "model.pooling=cls", "trainer.batch_size=32"]
RUN_GLUE = ["--lr", "2e-5", "--epochs", "3", "--batch-size", "32", "--warmup-ratio", "0", "--weight-decay", "0"]
# --smoke checks the plumbing only: 2 steps of 4 rows on 32-row slices (a MiniLM step on 32 rows costs seconds)
SMOKE_ROWS, SMOKE_BATCH = 32, 4


def train_recipe(task: str, seed: int, extra: list[str], out: Path, smoke: bool) -> dict:
    """One `nlptune train` of the task's MiniLM recipe: the best and the last evaluation of the main metric."""
    metric = METRIC[task]
    args = [sys.executable, "-m", "nlptune", "--quiet", "train", f"recipe={REPO / 'recipes' / f'{task}-minilm.yaml'}",
            f"seed={seed}", f"task.data_dir={DATA_DIR}", f"output_dir={out}", "trainer.keep_last=0",
            "trainer.report_to=[]", "trainer.measure_cost=false", *extra]
    if smoke:
        args += [f"task.max_train_samples={SMOKE_ROWS}", f"task.max_eval_samples={SMOKE_ROWS}", "trainer.max_steps=2",
                 "trainer.eval_every=1", f"trainer.batch_size={SMOKE_BATCH}"]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return run_figures(out, metric)


def run_figures(run_dir: Path, metric: str) -> dict:
    """A finished run's best and last evaluation of ``metric``, its training time and epochs."""
    summary = json.loads((run_dir / "metrics.json").read_text())
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    return {"metric": summary["best"][metric], "final": last[f"eval_{metric}"],
            "train_wall_s": summary["train_runtime_s"], "epochs": summary["epochs"]}


def confirmed_run(task: str, seed: int, sweeps: list[Path]) -> dict | None:
    """The figures of the confirmation run of ``seed`` in one of ``sweeps`` whose config is the task's shipped
    MiniLM recipe's (`same_config`), as `train_recipe` returns them; None when no sweep has one."""
    from nlptune.config.safety import safe_load_file

    recipe = safe_load_file(REPO / "recipes" / f"{task}-minilm.yaml", recipe=False)["config"]
    for run in sorted(run for sweep in sweeps for run in sweep.glob(f"confirm/trial-*/seed-{seed}")):
        if not (run / "metrics.json").is_file() or not same_config(recipe, yaml.safe_load((run / "config.yaml")
                                                                                          .read_text())):
            continue
        return {**run_figures(run, METRIC[task]), "from": str(run.parents[2])}  # the sweep's folder
    return None


# where a confirmation run may differ from the recipe it confirmed without training anything else
RUN_PLACE_KEYS = ("seed", "output_dir")


def same_config(recipe: dict, run: dict) -> bool:
    """Whether the config.yaml of a run (``run``) trains what the recipe's ``config`` does: equal but for
    `RUN_PLACE_KEYS`, the data folder (the same files: the recipe pins them), and a `packaged:` model named by
    the folder it resolves to."""
    from nlptune.config.sources import resolve_model_source

    def comparable(config: dict) -> dict:
        config = {key: value for key, value in config.items() if key not in RUN_PLACE_KEYS}
        task, model = dict(config.get("task") or {}), dict(config.get("model") or {})
        task.pop("data_dir", None)
        model["name_or_path"] = str(resolve_model_source(model.get("name_or_path")))
        return {**config, "task": task, "model": model}

    return comparable(recipe) == comparable(run)


def train_trainer(task: str, seed: int, out: Path, threads: int, smoke: bool) -> dict:
    """One Trainer run with run_glue.py's default hyperparameters (vs_trainer.py's child)."""
    args = ["--task", task, *RUN_GLUE, "--seed", str(seed), "--threads", str(threads), "--output-dir", str(out),
            "--child", "trainer_grouped"]
    if smoke:
        args += ["--limit", str(SMOKE_ROWS), "--steps", "2", "--batch-size", str(SMOKE_BATCH)]
    row = run_child(str(REPO / "benchmarks" / "vs_trainer.py"), args, threads)
    return {"metric": row["metric"], "final": row["metric"], "train_wall_s": row["train_wall_s"], "epochs": 3}


def compare_task(task: str, seeds: list[int], work: Path, threads: int, smoke: bool,
                 tuned_from: list[Path] = ()) -> list[dict]:
    """Every contender over every seed (contenders alternate within a seed); one row per contender. The tuned
    runs come from ``tuned_from``'s confirmation runs where they hold one (`confirmed_run`; never in a smoke run)."""
    runs: dict[str, list[dict]] = {"tuned": [], "hand_set": [], "trainer": []}
    for seed in seeds:
        confirmed = None if smoke else confirmed_run(task, seed, list(tuned_from))
        runs["tuned"].append(confirmed or train_recipe(task, seed, [], work / f"{task}-tuned-{seed}", smoke))
        runs["hand_set"].append(train_recipe(task, seed, HAND_SET, work / f"{task}-hand-{seed}", smoke))
        runs["trainer"].append(train_trainer(task, seed, work / f"{task}-trainer-{seed}", threads, smoke))
        print(f"  {task} seed {seed}: " + ", ".join(f"{name} {rows[-1]['metric']:.4f}" for name, rows in runs.items()),
              file=sys.stderr, flush=True)
    table = []
    for name, rows in runs.items():
        values = [r["metric"] for r in rows]
        table.append({"task": task, "contender": name, "seeds": len(rows), "metric": METRIC[task],
                      "mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                      "final_mean": statistics.fmean(r["final"] for r in rows),
                      "train_wall_s": statistics.fmean(r["train_wall_s"] for r in rows), "values": values,
                      "tuned_from": ", ".join(sorted({r.get("from", "trained here") for r in rows}))})
    tuned = table[0]["mean"]
    for row in table:
        row["tuned_margin_pt"] = 100 * (tuned - row["mean"])
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["cola", "stsb", "mrpc"],
                        choices=["sst2", "subj", "mrpc", "stsb", "cola"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[43, 44, 45])
    parser.add_argument("--threads", type=int, default=2, help="the Trainer's threads (nlptune: the recipe's)")
    parser.add_argument("--smoke", action="store_true", help="2 steps on 64 rows: checks the plumbing only")
    parser.add_argument("--tuned-from", type=Path, nargs="+", default=[], metavar="SWEEP_DIR",
                        help="read the tuned rows from these sweeps' confirmation runs where they match the recipe")
    parser.add_argument("--json", type=Path, help="write the table here too")
    args = parser.parse_args(argv)
    print_machine()
    table = []
    with tempfile.TemporaryDirectory(prefix="nlptune-tuned-") as tmp:
        for task in args.tasks:
            table += compare_task(task, args.seeds, Path(tmp), args.threads, args.smoke, args.tuned_from)
    print_table(table, ["task", "contender", "seeds", "metric", "mean", "std", "final_mean", "train_wall_s",
                        "tuned_margin_pt", "tuned_from"])
    print(json.dumps({"benchmark": "tuned_vs_defaults", "smoke": args.smoke, "rows": table}))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": table, "smoke": args.smoke}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
