"""`nlptune train`: compose the config and run the training loop."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    parser = sub.add_parser("train", help="train a model (Hydra overrides: key=value ...)")
    parser.add_argument("overrides", nargs="*", help="e.g. task=sst2 model=lstm optimizer.lr=1e-3")
    parser.add_argument("--cfg", choices=["job"], help="print the composed config and exit")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from nlptune.config.compose import compose, load_run_config, to_yaml

    if args.cfg == "job":
        print(to_yaml(compose(args.overrides)), end="")
        return 0
    config = load_run_config(args.overrides)
    from nlptune.train.loop import run, shutdown

    run(config)
    shutdown()
    return 0
