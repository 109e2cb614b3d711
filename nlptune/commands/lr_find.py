"""`nlptune lr-find`: learning-rate range test for a task/model/optimizer config; plots loss against lr."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    parser = sub.add_parser("lr-find", help="learning-rate range test: loss vs lr plot and a suggested lr",
                            description="Trains for --steps batches while the learning rate grows exponentially "
                            "from --start-lr to --end-lr (stopping early when the loss diverges), then suggests the "
                            "lr of the steepest descent of the smoothed loss. Writes lr_find.png and lr_find.json "
                            "into output_dir (default runs/<task>-<model>/lr-find-<time>/): a new or empty folder, "
                            "or an earlier lr-find's, never a run directory or a folder inside one.")
    parser.add_argument("overrides", nargs="*", help="the same key=value overrides as `nlptune train`")
    parser.add_argument("--start-lr", type=float, default=1e-7)
    parser.add_argument("--end-lr", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps (batches) at most (default 300; "
                        "at least 20, 100 or more recommended)")
    parser.add_argument("--smoothing", type=float, default=0.98, help="EMA factor of the loss (default 0.98)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from nlptune.config.errors import ConfigError
    from nlptune.recipes.run import load_run_config
    from nlptune.train.lr_find import settings_issues

    # the range test's own settings and the config's problems, reported together
    issues = settings_issues(args.start_lr, args.end_lr, args.steps, args.smoothing)
    try:
        config = load_run_config(args.overrides)
    except ConfigError as err:
        raise ConfigError(issues + err.issues) from None
    if issues:
        raise ConfigError(issues)
    from rich.table import Table

    from nlptune.train.lr_find import lr_range_test
    from nlptune.utils.console import console

    result = lr_range_test(config, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps,
                           beta=args.smoothing, output_dir=config.output_dir)
    table = Table(title="Learning-rate range test", show_header=False, title_justify="left")
    table.add_row("steps run", f"{len(result.lrs)}" + (" (stopped: the loss diverged)" if result.diverged else ""))
    table.add_row("lr range", f"{result.lrs[0]:.1e} .. {result.lrs[-1]:.1e}")
    table.add_row("lowest smoothed loss at lr", f"{result.min_loss_lr:.2e}")
    table.add_row("[bold]suggested lr (steepest descent)",
                  f"[bold]{result.suggestion:.2e}" if result.suggestion else "none: widen the range or add --steps")
    console().print(table)
    console().print(f"plot: {result.output_dir}/lr_find.png  ·  curve: {result.output_dir}/lr_find.json")
    # plain line for scripts and logs (printed even with --quiet)
    print(f"suggested_lr={result.suggestion:.3g}" if result.suggestion else "suggested_lr=none")
    return 0
