"""`nlptune eval`: metrics of a finished run's best model on a split or a labelled file."""
from __future__ import annotations

import argparse

from nlptune.commands.predict import DECODINGS, PRECISIONS, add_inference_options
from nlptune.inference import PREDICT_BATCH_SIZE


def add_parser(sub) -> None:
    parser = sub.add_parser("eval", help="evaluate a run's best model")
    parser.add_argument("run_dir", help="a run directory (or its best/); or a saved model folder (an `export "
                        "--format hf` copy, a copy of best/) with --file")
    # not argparse choices: another split (test) is answered with how to score it, not only the choices
    parser.add_argument("--split", default=None, metavar="{train,validation}",
                        help="the run's task split to score (default validation); not with --file")
    parser.add_argument("--file", help="a labelled jsonl/csv/tsv/parquet file with the task's columns")
    add_inference_options(parser, "texts per forward pass, of similar length (default: the run's "
                          "trainer.eval_batch_size, as its evaluation during training; a saved model folder: "
                          f"{PREDICT_BATCH_SIZE})")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from nlptune.config.errors import NlptuneError
    from nlptune.inference.run_reading import load_run, refuse_split_of_saved_model

    if args.split not in (None, "train", "validation"):
        raise NlptuneError(f"--split {args.split}: eval scores the split the run trained on (--split train) or "
                           "validated on (--split validation, whatever its task.validation_split name); to score "
                           "another split (a test set), give its labelled file: --file PATH")
    if args.split and args.file:  # the file would be scored and --split silently ignored
        raise NlptuneError(f"give --split or --file, not both (got --split {args.split} and --file {args.file})")
    if not args.file:  # before the model loads
        refuse_split_of_saved_model(Path(args.run_dir), args.split or "validation")
    run = load_run(args.run_dir)
    run.decode_tags(DECODINGS[args.decoding])
    scores = run.evaluate(split=args.split or "validation", file=args.file, batch_size=args.batch_size,
                          precision=PRECISIONS[args.precision])
    print(json.dumps(scores, indent=2))
    return 0
