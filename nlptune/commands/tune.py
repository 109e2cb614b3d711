"""`nlptune tune`: a hyperparameter sweep over any config keys (Optuna), resumable, pruned, parallel."""
from __future__ import annotations

import argparse

EPILOG = """search dimensions (any config key; quote them for the shell):
  tune.space.optimizer.lr='loguniform(1e-4,3e-3)'   tune.space.model.dropout='uniform(0,0.5)'
  tune.space.model.num_layers='int(1,3)'            tune.space.model.hidden_size='choice(128,256)'
  tune.space.trainer.batch_size='range(16,65,16)'   tune.space.model.dropout=null  (drop a default dimension)
examples:
  nlptune tune task=sst2 model=lstm                               lr, warmup ratio, dropout; 20 trials
  nlptune tune task=sst2 model=lstm tune.n_trials=32 tune.sampler=tpe tune.pruner=asha tune.workers=2
  nlptune tune ... tune.sampler=grid                              the grid of the choice()/range() dimensions
  nlptune tune ... resume=auto                                    continue the latest sweep (or tune.dir=...)
  nlptune tune ... tune.storage=postgresql://host/db              every machine runs the same command
  nlptune tune ... tune.cv_folds=5 tune.confirm_seeds=3 tune.retrain_full=true
  nlptune tune ... tune.objectives=[accuracy,latency_ms]          a Pareto front of accuracy and cost
  nlptune tune ... tune.constraints.latency_ms=5                  the best trial within a cost bound
"""


def add_parser(sub) -> None:
    parser = sub.add_parser("tune", help="hyperparameter sweep (Optuna): key=value overrides and tune.* settings",
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="e.g. task=sst2 model=lstm tune.n_trials=32")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from nlptune.tuning import run_sweep
    from nlptune.utils.console import console

    quiet = getattr(args, "quiet", False)
    try:
        outcome = run_sweep(args.overrides, quiet=quiet)
    except KeyboardInterrupt:
        import shlex
        import sys

        from nlptune.utils.processes import forget_unhandled_interrupt

        # resume=auto continues tune.dir when the command gives one, else the newest sweep of its task and model
        again = [item for item in args.overrides if not item.startswith("resume=")] + ["resume=auto"]
        print(f"interrupted: the sweep stopped; its finished trials are kept. Continue it with:\n  nlptune tune "
              f"{shlex.join(again)}", file=sys.stderr, flush=True)
        forget_unhandled_interrupt()  # exit with 130, not by SIGINT
        return 130
    out = console()
    n = outcome.counts
    out.print(f"sweep: {n.get('complete', 0)} complete, {n.get('pruned', 0)} pruned, {n.get('fail', 0)} failed "
              f"-> {outcome.sweep_dir}")
    if outcome.best is None:
        within = " within tune.constraints" if outcome.plan.constraints and n.get("complete") else ""
        out.print(f"no trial completed{within}: see summary.md for the reasons")
        return 1
    # 4 significant digits on screen; best_recipe.yaml and summary.md hold the exact values
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in outcome.best.params.items())
    out.print(f"best {outcome.plan.metric}: {outcome.best.value:.4f} (trial {outcome.best.trial}) {params}")
    pareto = " pareto/" if outcome.plan.multi_objective else ""
    out.print(f"files: summary.md leaderboard.csv plots/ best/ best_recipe.yaml{pareto} in {outcome.sweep_dir}")
    return 0
