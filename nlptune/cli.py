"""The `nlptune` command. Heavy libraries are imported inside the handlers so `--help` stays instant."""
from __future__ import annotations

import argparse
import sys

EPILOG = """examples:
  nlptune train                                     built-in demo task, offline
  NLPTUNE_DATA_DIR=../shared/data nlptune train task=sst2 model=lstm trainer.max_epochs=5
  nlptune train task=stsb model=pretrained model.name_or_path=PATH optimizer.lr=5e-5
  nlptune train --cfg job task=mrpc model=cnn       print the composed config, train nothing
  nlptune eval RUN_DIR [--split validation | --file F]
  nlptune predict RUN_DIR "some text"   |   nlptune predict RUN_DIR --input in.jsonl --output out.jsonl
"""


def _train(args: argparse.Namespace) -> int:
    from nlptune.config.compose import compose, load_run_config

    if args.cfg == "job":
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(compose(args.overrides)), end="")
        return 0
    config = load_run_config(args.overrides)
    from nlptune.train.loop import run, shutdown

    result = run(config)
    del result
    shutdown()
    return 0


def _eval(args: argparse.Namespace) -> int:
    import json

    from nlptune.train.predict import LoadedRun

    scores = LoadedRun(args.run_dir).evaluate(split=args.split, file=args.file)
    print(json.dumps(scores, indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    import json

    from nlptune.config.errors import NlptuneError
    from nlptune.train.predict import LoadedRun, read_inputs, write_predictions

    loaded = LoadedRun(args.run_dir)
    fields = loaded.info["text_fields"]
    if args.input:
        texts = read_inputs(args.input, fields)
    elif args.texts:
        if len(args.texts) != len(fields):
            raise NlptuneError(f"this model takes {len(fields)} text(s) ({', '.join(fields)}), got {len(args.texts)}")
        texts = [[t] for t in args.texts]
    else:
        raise NlptuneError("nothing to predict: give a text, or --input FILE")
    predictions = loaded.predict(texts)
    if args.output:
        write_predictions(args.output, texts, fields, predictions)
    else:
        for prediction in predictions:
            print(json.dumps(prediction))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nlptune", description="Config-driven fine-tuning of language-"
                                     "understanding models.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quiet", action="store_true", help="no progress bar or tables (logs meant for files)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = sub.add_parser("train", help="train a model (Hydra overrides: key=value ...)")
    train.add_argument("overrides", nargs="*", help="e.g. task=sst2 model=lstm optimizer.lr=1e-3")
    train.add_argument("--cfg", choices=["job"], help="print the composed config and exit")
    train.set_defaults(handler=_train)
    ev = sub.add_parser("eval", help="evaluate a run's best model")
    ev.add_argument("run_dir")
    ev.add_argument("--split", default="validation", choices=["train", "validation"])
    ev.add_argument("--file", help="a labelled jsonl/csv/tsv/parquet file with the task's columns")
    ev.set_defaults(handler=_eval)
    pr = sub.add_parser("predict", help="predict with a run's best model")
    pr.add_argument("run_dir")
    pr.add_argument("texts", nargs="*", help="one text (two for a sentence-pair task)")
    pr.add_argument("--input", help="jsonl/csv/tsv/parquet with the task's text columns")
    pr.add_argument("--output", help="write predictions as jsonl here (default: stdout)")
    pr.set_defaults(handler=_predict)
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
