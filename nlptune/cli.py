"""The `nlptune` command. Each subcommand lives in `nlptune/commands/` and imports heavy libraries only
inside its handler, so `nlptune --help` stays instant and imports no torch."""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand modules, in the order `--help` lists them
COMMANDS = ["train", "eval", "predict", "tune", "lr-find", "compare", "export", "recipes", "freeze", "reproduce"]

EPILOG = """examples:
  nlptune train                                     built-in demo task, offline
  NLPTUNE_DATA_DIR=../shared/data nlptune train task=sst2 model=lstm trainer.max_epochs=5
  nlptune train task=stsb model=pretrained model.name_or_path=PATH optimizer.lr=5e-5
  nlptune train --cfg job task=mrpc model=cnn       print the composed config, train nothing
  nlptune eval RUN_DIR [--split validation | --file F]
  nlptune predict RUN_DIR "some text"   |   nlptune predict RUN_DIR --input in.csv --output out.jsonl
  nlptune lr-find task=sst2 model=lstm              learning-rate range test: plot + suggested lr
  nlptune compare RUN_DIR RUN_DIR ...               validation curves together + a table
  nlptune export RUN_DIR --format onnx|hf           ONNX checked against PyTorch, or the HF folder
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nlptune", description="Config-driven fine-tuning of language-"
                                     "understanding models.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quiet", action="store_true", help="no progress bar or tables (logs meant for files)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"nlptune.commands.{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `nlptune` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        sys.exit(0)
    from nlptune.config.errors import NlptuneError

    if args.quiet:
        from nlptune.utils.console import set_quiet

        set_quiet(True)
    try:
        code = args.handler(args)
    except NlptuneError as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
