"""`nlptune predict`: predictions of a finished run's best model for texts or a file."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    parser = sub.add_parser("predict", help="predict with a run's best model")
    parser.add_argument("run_dir")
    parser.add_argument("texts", nargs="*", help="one text (two for a sentence-pair task)")
    parser.add_argument("--input", help="jsonl/csv/tsv/parquet with the task's text columns")
    parser.add_argument("--output", help="write predictions as jsonl here (default: stdout): one object per row "
                        "with the text(s), label, score and class probabilities (regression: score)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import json

    from nlptune.config.errors import NlptuneError
    from nlptune.commands.run_reading import load_run
    from nlptune.inference.predict import read_inputs, write_predictions

    loaded = load_run(args.run_dir)
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
