"""Acceptance 1 of `nlptune tune`: a 16-trial TPE + ASHA sweep on sst2 (../shared/data, model=lstm) against the
same 16 trials unpruned, printed side by side: training samples spent (and their ratio) and best accuracy.

"The same trials": the pruned sweep runs first; the unpruned sweep then trains exactly the 16 configurations it
proposed (enqueued in that order, pruner none), so the only difference is the pruning.

  python benchmarks/tune_pruning.py                      # 16 trials, lstm 32/32, 2 epochs, 3 evaluations an epoch
  python benchmarks/tune_pruning.py --embedding-dim 64 --hidden-size 64 --epochs 3 --evals-per-epoch 4
  python benchmarks/tune_pruning.py --trials 4 --epochs 1 --limit 500     # a quick look

The lstm is smaller than conf/model/lstm.yaml's (embedding 32, hidden 32 instead of 300/256) and trains 2 epochs
with one thread, so that the 32 trials fit in about 20 minutes on a shared 2-core machine; both sweeps use the
same settings, on the whole sst2 train split (6920 rows) and validation split (1821 rows).
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from _common import DATA_DIR, print_machine, print_table


def overrides(args, sweep_dir: Path, *extra: str) -> list[str]:
    rows = args.limit or 6920
    steps_per_epoch = -(-rows // args.batch_size)
    evaluate_every = max(1, steps_per_epoch // args.evals_per_epoch)
    base = ["task=sst2", f"task.data_dir={DATA_DIR}", "model=lstm", f"model.embedding_dim={args.embedding_dim}",
            f"model.hidden_size={args.hidden_size}", f"trainer.max_epochs={args.epochs}",
            f"trainer.batch_size={args.batch_size}", f"trainer.eval_every={evaluate_every}", "trainer.report_to=[]",
            "trainer.keep_last=0", f"trainer.threads={args.threads}", f"seed={args.seed}", f"tune.dir={sweep_dir}",
            f"tune.n_trials={args.trials}"]
    if args.limit:
        base.append(f"task.max_train_samples={args.limit}")
    return base + list(extra)


def measure(study, plan, started: float, name: str) -> dict:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(done, key=lambda t: t.value)
    return {"sweep": name, "complete": len(done), "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "failed": sum(t.state == TrialState.FAIL for t in trials),
            "train_samples": sum(int(t.user_attrs.get("train_samples") or 0) for t in trials),
            "best_accuracy": best.value, "best_trial": best.number, "wall_s": round(time.perf_counter() - started, 1),
            "params": [dict(t.params) for t in trials]}


def run(args, name: str, extra: list[str], enqueue: list[dict] | None = None) -> dict:
    """One sweep through nlptune's own stages (plan, study, workers, reports); ``enqueue`` fixes its trials."""
    from nlptune.tuning.live import SweepTable
    from nlptune.tuning.study import create_study, load_study
    from nlptune.tuning.sweep import finish, prepare, search

    sweep_dir = Path(args.out) / name
    shutil.rmtree(sweep_dir, ignore_errors=True)
    started = time.perf_counter()
    plan, _ = prepare(overrides(args, sweep_dir, *extra))
    study = create_study(plan)
    for params in enqueue or []:
        study.enqueue_trial(params)
    table = SweepTable(plan, quiet=args.quiet)
    try:
        search(plan, table)
    finally:
        table.close()
    finish(plan)
    return measure(load_study(plan, plan.seed), plan, started, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--evals-per-epoch", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="use the first N training rows (0: all 6920)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (trainer.threads)")
    parser.add_argument("--pruner", default="asha", help="asha | hyperband | median")
    parser.add_argument("--out", default="/tmp/nlptune-bench-pruning")
    parser.add_argument("--quiet", action="store_true", help="no live table")
    args = parser.parse_args()
    print_machine()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from nlptune.tuning.worker import quiet_optuna

    quiet_optuna()
    pruned = run(args, "pruned", ["tune.sampler=tpe", f"tune.pruner={args.pruner}"])
    unpruned = run(args, "unpruned", ["tune.sampler=random", "tune.pruner=none"], enqueue=pruned["params"])
    assert unpruned["params"] == pruned["params"], "the unpruned sweep must train the same configurations"
    ratio = pruned["train_samples"] / unpruned["train_samples"]
    gap = (unpruned["best_accuracy"] - pruned["best_accuracy"]) * 100
    print(f"\nsst2, model=lstm ({args.embedding_dim}/{args.hidden_size}), {args.trials} trials x {args.epochs} epochs, "
          f"batch {args.batch_size}, {args.evals_per_epoch} evaluations an epoch, TPE seed {args.seed}")
    print_table([pruned, unpruned], ["sweep", "complete", "pruned", "failed", "train_samples", "best_accuracy",
                                     "best_trial", "wall_s"])
    print(f"training samples, pruned / unpruned: {ratio:.1%} (target <= 45%)")
    print(f"best accuracy, unpruned - pruned: {gap:+.2f} pt (target <= 0.5 pt)")


if __name__ == "__main__":
    main()
