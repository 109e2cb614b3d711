"""`nlptune train`: compose the config and run the training loop."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    parser = sub.add_parser("train", help="train a model (Hydra overrides: key=value ...; recipe=NAME_OR_PATH)")
    parser.add_argument("overrides", nargs="*", help="e.g. task=sst2 model=lstm optimizer.lr=1e-3, or "
                        "recipe=sst2-lstm [key=value ...] [strict_pins=true]")
    parser.add_argument("--cfg", choices=["job"], help="print the composed config and exit")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="let a pretrained model run the code in its hub repository (never from a config file)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from nlptune.config.compose import compose, to_yaml
    from nlptune.recipes.run import has_recipe, load_run_config

    if args.cfg == "job" and not has_recipe(args.overrides):
        print(to_yaml(compose(args.overrides)), end="", flush=True)
        load_run_config(args.overrides)  # what `train` would refuse in the config printed is said too (exit 2)
        return 0
    config = load_run_config(args.overrides)
    if args.cfg == "job":  # a recipe's config with the overrides applied
        from nlptune.recipes.format import dump_config

        print(dump_config(config.plain), end="")
        return 0
    return train_config(config, args.overrides, trust_remote_code=args.trust_remote_code)


def train_config(config, overrides: list[str], *, trust_remote_code: bool = False,
                 command: tuple[str, ...] = ("train",)) -> int:
    """Train ``config`` (what ``nlptune COMMAND OVERRIDES`` composed); an interrupted or disk-full run ends with
    the command that continues it."""
    if trust_remote_code:
        from nlptune.config.safety import with_remote_code

        config = with_remote_code(config)
    from nlptune.config.errors import NlptuneError
    from nlptune.train.loop import run, shutdown
    from nlptune.utils.files import DiskError
    from nlptune.utils.processes import forget_unhandled_interrupt

    try:
        run(config)
    except KeyboardInterrupt as err:
        run_dir = getattr(err, "run_dir", None)
        if run_dir is None:
            raise
        print(f"interrupted: the run in {run_dir} stopped (its lock is released). Continue it from its last "
              f"checkpoint with:\n  {resume_command(overrides, run_dir, command)}", file=sys.stderr, flush=True)
        forget_unhandled_interrupt()  # exit with 130, not by SIGINT
        return 130
    except DiskError as err:
        run_dir = getattr(err, "run_dir", None)
        if run_dir is None or not Path(run_dir).is_dir():  # no run there (output_dir is a file): nothing to resume
            raise
        what = ("the checkpoints already written are intact; once that is fixed, continue the run from the last one"
                if any(Path(run_dir, "checkpoints").glob("step-*")) else "once that is fixed, start the run with")
        raise NlptuneError(f"{err}\n  {what}:\n  {resume_command(overrides, run_dir, command)}") from None
    shutdown()
    return 0


def resume_command(overrides: list[str], run_dir, command: tuple[str, ...] = ("train",)) -> str:
    """The command that continues a run: the same ``command`` (``train``, or ``distill TEACHER``) and overrides,
    with ``output_dir=RUN_DIR resume=auto``."""
    import shlex

    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("output_dir", "resume")]
    return " ".join(["nlptune", *map(shlex.quote, command), *map(shlex.quote, kept),
                     shlex.quote(f"output_dir={run_dir}"), "resume=auto"])

