"""`nlptune predict`: predictions of a finished run's best model for texts or a file."""
from __future__ import annotations

import argparse

from nlptune.inference import PREDICT_BATCH_SIZE


def add_parser(sub) -> None:
    parser = sub.add_parser("predict", help="predict with a run's best model")
    parser.add_argument("run_dir", help="a run directory (or its best/), or a saved model folder: an `export "
                        "--format hf` copy or a copy of best/")
    parser.add_argument("texts", nargs="*", help="texts to predict, one prediction each (a sentence-pair task: "
                        "two texts a pair)")
    parser.add_argument("--input", help="jsonl/csv/tsv/parquet with the task's text columns, or .txt with "
                        "one text per line (each may be compressed: .gz, .bz2, .xz; -: standard input, one text "
                        "per line)")
    parser.add_argument("--output", help="write predictions here (default: stdout, jsonl): one row per input "
                        "with the text(s), label, score and class probabilities (regression: score); .csv/.tsv: "
                        "nested values as columns (probabilities.<label>), lists as JSON; .parquet: nested; any other "
                        "name: jsonl. Its folder is created; an existing file is kept unless --overwrite; a name "
                        "ending .gz, .bz2 or .xz is written compressed")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file (never "
                        "the --input file, never through a link)")
    add_inference_options(parser, f"texts per forward pass, of similar length (default {PREDICT_BATCH_SIZE})")
    parser.set_defaults(handler=handle)


PRECISIONS = {"run": None, "fp32": "fp32", "bf16": "bf16"}  # --precision -> LoadedRun's precision (None: the run's)
DECODINGS = {"run": None, "constrained": True, "each-word": False}  # --decoding -> LoadedRun.decode_tags


def add_inference_options(parser, batch_help: str) -> None:
    """--batch-size (its help: ``batch_help``), --precision and --decoding, which `nlptune predict` and `nlptune eval`
    share."""
    parser.add_argument("--batch-size", type=_positive_int, default=None, metavar="N", help=batch_help)
    parser.add_argument("--precision", default="run", choices=list(PRECISIONS),
                        help="run (default): as the run evaluated, i.e. bf16 autocast when its "
                        "trainer.mixed_precision is bf16 or auto on a CPU with AMX bf16 units, fp32 otherwise "
                        "(a saved model folder without its run: fp32); fp32 or bf16: forced")
    parser.add_argument("--decoding", default="run", choices=list(DECODINGS),
                        help="a tagger without a CRF (task.kind=tokens): run (default): as the run evaluated "
                        "(task.constrained_decoding); constrained: the best tag sequence the tag scheme allows; "
                        "each-word: every word's most probable tag. Other kinds ignore it")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return number


def handle(args: argparse.Namespace) -> int:
    import json

    from nlptune.config.errors import NlptuneError
    from nlptune.inference.run_reading import load_run
    from nlptune.inference.predict import read_inputs
    from nlptune.inference.writing import write_predictions

    if args.input and args.texts:  # one of them would be silently left out of the predictions
        raise NlptuneError(f"give texts or --input FILE, not both (got {len(args.texts)} text(s) and --input "
                           f"{args.input}) -> put the texts into the file, or drop --input")
    if args.output:
        check_output(args.output, args.input, args.overwrite, run_dir=args.run_dir)
    loaded = load_run(args.run_dir)
    fields = loaded.info["text_fields"]
    if args.input:
        texts = read_inputs(args.input, fields, words=loaded.kind.words_in_text_column,
                            task=loaded.task)
    elif args.texts:
        texts = _rows_of(args.texts, fields)
    else:
        raise NlptuneError("nothing to predict: give a text, or --input FILE")
    loaded.decode_tags(DECODINGS[args.decoding])
    predictions = loaded.predict(texts, batch_size=args.batch_size, precision=PRECISIONS[args.precision])
    if args.output:
        write_predictions(args.output, texts, fields, predictions)
    else:
        for prediction in predictions:
            print(json.dumps(prediction))
    return 0


def _rows_of(given: list[str], fields: list[str]) -> list[list[str]]:
    """The command line's texts as rows of the model's ``fields`` (one column per field), taken in order: each
    text a row for a one-text model, each two texts a pair for a pair model."""
    from nlptune.config.errors import NlptuneError

    if len(given) % len(fields):
        raise NlptuneError(f"this model reads {len(fields)} texts a row ({', '.join(fields)}), got {len(given)} "
                           f"text(s) -> give them {len(fields)} at a time, or use --input FILE")
    return [list(given[start::len(fields)]) for start in range(len(fields))]


def check_output(output: str, input_file: str | None, overwrite: bool, run_dir: str | None = None) -> None:
    """Refuse an --output that is the --input (also through a link or another spelling of its path), a link,
    a folder, an existing file without --overwrite, or a place among a run's own files (`_refuse_run_files`);
    create its folder. Done before any prediction."""
    import os
    from pathlib import Path

    from nlptune.config.errors import NlptuneError
    from nlptune.utils.files import os_errors_as_disk_errors, refuse_link

    path = Path(output)
    refuse_link(path, "(--output)")
    _refuse_run_files(path, run_dir)
    if input_file and (os.path.realpath(path) == os.path.realpath(input_file)
                       or (path.exists() and Path(input_file).exists() and os.path.samefile(path, input_file))):
        raise NlptuneError(f"--output {output} is the --input file {input_file}: writing the predictions there "
                           "would destroy the input -> give another --output file")
    if path.is_dir():
        raise NlptuneError(f"--output {output} is a folder -> give a file name, e.g. {path / 'predictions.jsonl'}")
    if path.exists() and not overwrite:
        raise NlptuneError(f"--output {output} already exists -> give another file name, or add --overwrite to "
                           "replace it")
    with os_errors_as_disk_errors(path.parent):  # a folder the user named: it may itself be a link to a disk
        path.parent.mkdir(parents=True, exist_ok=True)


def _refuse_run_files(path, run_dir: str | None) -> None:
    """Refuse an --output inside a saved model folder (a run's best/, an export), inside a run's checkpoints/ or
    plots/ (or any run directory but the predicted run's top folder), or that is one of the files nlptune writes
    in a run (config.yaml, metrics.json, ...): with --overwrite it would replace the run's model or records."""
    import os

    from nlptune.config.errors import NlptuneError
    from nlptune.train.rundir import WRITTEN, is_run_dir, refuse_run_contents

    fix = "write the predictions outside runs' best/, checkpoints/ and plots/ and saved models, e.g. predictions.jsonl"
    refuse_run_contents(path.parent, f"(the folder of --output {path})", fix, allow=[run_dir] if run_dir else [])
    if path.name in WRITTEN and is_run_dir(path.parent):
        where = os.path.realpath(path.parent)
        raise NlptuneError(f"--output {path} is the file {path.name} of the run directory {where}: the predictions "
                           f"would replace the run's own record -> {fix}")
