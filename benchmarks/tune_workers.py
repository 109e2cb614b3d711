"""Acceptance 4 of `nlptune tune`: trials per minute with `tune.workers=2` against `tune.workers=1` on the same
machine (2 CPU cores here), the same trials (a grid over the learning rate, so both run identical configs).

With one worker the trial uses every core's thread (torch's default); with two, each worker gets cores // 2
threads. The rate is over the search, from the first trial's start to the last trial's end (the workers'
start-up, a few seconds of imports, is excluded there but included in trials_per_min_wall); reports excluded.
Runs alternate (1, 2, then 2, 1, ...) with --repeats; other programs' load is printed next to each run.

  python benchmarks/tune_workers.py --repeats 2          # 16 trials of lstm 64/64, 1 epoch on 2000 sst2 rows
  python benchmarks/tune_workers.py --trials 4 --limit 1000
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

from _common import DATA_DIR, print_machine, print_table


def run(args, workers: int, repeat: int) -> dict:
    from optuna.trial import TrialState

    from nlptune.tuning.live import SweepTable
    from nlptune.tuning.study import load_study
    from nlptune.tuning.sweep import prepare, search

    sweep_dir = Path(args.out) / f"workers-{workers}-{repeat}"
    shutil.rmtree(sweep_dir, ignore_errors=True)
    lrs = ",".join(f"{1e-3 * (1 + i):.4g}" for i in range(args.trials))
    plan, _ = prepare(["task=sst2", f"task.data_dir={DATA_DIR}", f"task.max_train_samples={args.limit}",
                       "model=lstm", f"model.embedding_dim={args.embedding_dim}",
                       f"model.hidden_size={args.hidden_size}",
                       f"trainer.max_epochs={args.epochs}", "trainer.report_to=[]", "trainer.keep_last=0",
                       "tune.sampler=grid", "tune.pruner=none", "tune.default_space=null",
                       f"tune.space.optimizer.lr=choice({lrs})",
                       f"tune.workers={workers}", "tune.plots=false", f"tune.dir={sweep_dir}"])
    table = SweepTable(plan, quiet=True)
    load = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    search(plan, table)
    wall = time.perf_counter() - started
    trials = [t for t in load_study(plan, plan.seed).get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    # the rate while trials run: first trial started to last trial finished (worker start-up excluded)
    span = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return {"workers": workers, "repeat": repeat, "trials": len(trials), "wall_s": round(wall, 1),
            "span_s": round(span, 1), "trials_per_min": round(len(trials) / span * 60, 2),
            "trials_per_min_wall": round(len(trials) / wall * 60, 2), "load_avg_1min": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=2000, help="training rows of sst2")
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, in alternating order")
    parser.add_argument("--out", default="/tmp/nlptune-bench-workers")
    args = parser.parse_args()
    print_machine()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from nlptune.tuning.worker import quiet_optuna

    quiet_optuna()
    cores = len(os.sched_getaffinity(0))
    rows = []
    for repeat in range(args.repeats):  # alternate the order: 1, 2, then 2, 1, ... (the data cache is warm)
        for workers in ((1, 2) if repeat % 2 == 0 else (2, 1)):
            rows.append(run(args, workers, repeat))
    print(f"\nsst2 ({args.limit} rows), model=lstm {args.embedding_dim}/{args.hidden_size}, {args.epochs} epoch(s), "
          f"{args.trials} trials, {cores} cores (load average before each run: another program's share)")
    print_table(rows, ["workers", "repeat", "trials", "wall_s", "span_s", "trials_per_min", "trials_per_min_wall",
                       "load_avg_1min"])
    for key in ("trials_per_min", "trials_per_min_wall"):
        rate = {w: statistics.median(r[key] for r in rows if r["workers"] == w) for w in (1, 2)}
        print(f"speed-up ({key}, median of runs), 2 workers / 1: {rate[2] / rate[1]:.2f}x (target >= 1.6x)")


if __name__ == "__main__":
    main()
