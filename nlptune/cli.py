"""The `nlptune` command. Each subcommand lives in `nlptune/commands/` and imports heavy libraries only
inside its handler, so `nlptune --help` stays instant and imports no torch."""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys

# subcommand modules, in the order `--help` lists them
COMMANDS = ["train", "distill", "eval", "predict", "tune", "lr-find", "compare", "export", "recipes", "freeze",
            "reproduce"]

EPILOG = """examples:
  nlptune train                                     built-in demo task, offline
  NLPTUNE_DATA_DIR=../shared/data nlptune train task=sst2 model=lstm trainer.max_epochs=5
  nlptune train task=stsb model=pretrained model.name_or_path=PATH optimizer.lr=5e-5
  nlptune train task=my_task.yaml model=lstm        a task of one's own: its files, columns and kind in YAML
  nlptune train --cfg job task=mrpc model=cnn       print the composed config, train nothing
  nlptune tune task=sst2 model=lstm tune.n_trials=20   sweep lr, warmup and dropout (tune.space.KEY=...)
  nlptune distill RUN_DIR model=lstm                a BiLSTM trained on a finished run's outputs too
  nlptune eval RUN_DIR [--split validation | --file F]
  nlptune predict RUN_DIR "some text"   |   nlptune predict RUN_DIR --input in.csv --output out.jsonl
  nlptune lr-find task=sst2 model=lstm              learning-rate range test: plot + suggested lr
  nlptune compare RUN_DIR RUN_DIR ...               validation curves together + a table
  nlptune export RUN_DIR --format onnx|hf           ONNX checked against PyTorch, or the HF folder
  nlptune freeze RUN_DIR my.yaml; nlptune reproduce my.yaml    a run as a recipe, and its check
  nlptune recipes list                              the shipped recipes (nlptune train recipe=NAME)
  nlptune --debug COMMAND ...                       an error's Python traceback too (for bug reports)
"""


class Parser(argparse.ArgumentParser):
    """argparse's parser (commands' and subcommands' too: they are made with the parent's class), whose "invalid
    choice" error names the closest choice (`nlptune trian`, `nlptune lr_find`, `--format onxx`)."""

    def error(self, message: str):
        found = re.search(r"invalid choice: '(.*?)' \(choose from (.*)\)$", message)
        if found:
            choices = [choice.strip().strip("'") for choice in found.group(2).split(",")]
            close = difflib.get_close_matches(found.group(1).replace("_", "-"), choices, n=1, cutoff=0.5)
            if close:
                message += f"; did you mean '{close[0]}'?"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="nlptune", description="Config-driven fine-tuning of language-understanding models.",
                    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_global_options(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"nlptune.commands.{name.replace('-', '_')}").add_parser(sub)
    _add_to_commands(sub)  # `nlptune train --quiet ...` as well as `nlptune --quiet train ...`
    return parser


def _add_to_commands(sub) -> None:
    """The global options on every command and subcommand (`nlptune recipes list --quiet`), unset there unless
    given: the value given before the command holds."""
    for command in sub.choices.values():
        _add_global_options(command, default=argparse.SUPPRESS)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_to_commands(action)


def _add_global_options(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--quiet", action="store_true", default=default,
                        help="no progress bar or tables (logs meant for files)")
    parser.add_argument("--debug", action="store_true", default=default, help="show the Python traceback of an error")


def _report(err: BaseException, debug: bool) -> int:
    """Print one message for an exception that ended a command; return the exit code.

    A problem the user can fix (nlptune's own errors, an operating-system error on a path, running out of
    memory) is exit 2; anything else is a bug in nlptune, exit 1. The traceback is shown only with --debug.
    """
    import traceback

    from nlptune.config.errors import NlptuneError, describe_os_error
    from nlptune.utils.errors import out_of_memory

    if debug:
        traceback.print_exception(err, file=sys.stderr)
    if isinstance(err, NlptuneError):
        message, code = str(err), 2
    elif isinstance(err, OSError):  # a path the command was given or writes to: the errno says what is wrong
        message, code = describe_os_error(err), 2
    elif (memory := out_of_memory(err)) is not None:  # Python's, torch's CPU allocator's (a RuntimeError), CUDA's
        message = (f"{memory}{_memory_of_this_machine()} -> lower trainer.batch_size or "
                   "task.max_length, or use a smaller model (model.embedding_dim, model.hidden_size, "
                   "model.num_layers, model.vocab_size)")
        code = 2
    elif _in_checkpoint_code(err) is not None:
        message, code = _checkpoint_failure(err, debug), 2
    else:
        message = (f"internal error: {type(err).__name__}: {err} — this is a bug, please report it"
                   + ("" if debug else " (run with --debug for the traceback)"))
        code = 1
    print(f"error: {message}", file=sys.stderr)
    return code


def _memory_of_this_machine() -> str:
    """", this machine has N GB of memory" (empty where it cannot be read)."""
    try:
        import psutil

        return f"; this machine has {psutil.virtual_memory().total / 1e9:.1f} GB of memory"
    except (ImportError, OSError):
        return ""


def _in_checkpoint_code(err: BaseException):
    """The traceback entry of ``err`` in a pretrained architecture's own code (transformers' models/<architecture>/
    or a hub repository's code) when the error arose there (only transformers' or torch's code below it), else
    None."""
    entries, tb = [], err.__traceback__
    while tb is not None:
        entries.append((tb, tb.tb_frame.f_code.co_filename.replace("\\", "/")))
        tb = tb.tb_next
    found = None
    for entry, name in entries:
        if "/transformers/models/" in name or "/transformers_modules/" in name:
            found = entry
        elif found is not None and "/transformers/" not in name and "/torch/" not in name:
            found = None  # nlptune's (or another library's) code ran below it: the error is not the model's
    return found


def _checkpoint_failure(err: BaseException, debug: bool) -> str:
    """The message for an error raised inside a pretrained checkpoint's own code: which file and architecture, and
    that it may not fit a classification or tagging head as nlptune drives one."""
    from pathlib import Path

    frame = _in_checkpoint_code(err)
    path = Path(frame.tb_frame.f_code.co_filename)
    where = f"{path.parent.name}/{path.name}, line {frame.tb_lineno}, in {frame.tb_frame.f_code.co_name}"
    first = str(err).splitlines()[0] if str(err) else ""
    return (f"the pretrained model's own code failed ({where}): {type(err).__name__}: {first} -> its architecture "
            f"({path.parent.name}) may not support a classification or tagging head as nlptune trains one (each text "
            "tokenized, padded, with its attention mask); encoder checkpoints (BERT, RoBERTa, DeBERTa, MiniLM, ...) "
            "and decoders with a sequence-classification head (GPT-2, Llama, ...) do. If this one should, report it"
            + ("" if debug else " (run with --debug for the traceback)"))


SIGPIPE_EXIT = 141  # what a shell reports for a process ended by SIGPIPE: the usual end of a writer whose reader left


def _detach_stdout() -> None:
    """Point standard output at the null device, so that flushing it at exit does not fail again on the closed
    pipe (Python's advice for SIGPIPE; the stream may be a test's, with no file descriptor)."""
    import os

    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


# the commands' list-valued positionals (nargs "*" or "+"): the words that fill them may continue after an option
LIST_POSITIONALS = ("overrides", "texts", "run_dirs", "recipes")


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args``, except that a list-valued positional may continue after an option (``nlptune train
    a=1 --cfg job b=2``, ``nlptune predict RUN --precision fp32 "a text"``): argparse fills such a list once, and
    would call ``b=2`` or the text an unrecognized argument."""
    args, extra = parser.parse_known_args(argv)
    listed = next((name for name in LIST_POSITIONALS if isinstance(getattr(args, name, None), list)), None)
    if extra and listed and not any(e.startswith("-") for e in extra):
        setattr(args, listed, getattr(args, listed) + extra)  # in command-line order: the first chunk came before
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


# the commands whose training the processes of a launcher (torchrun, accelerate launch) share
LAUNCHED_COMMANDS = ("train", "distill", "reproduce")


def refuse_a_launcher(command: str) -> None:
    """Refuse a one-process command started by a launcher of several processes: each would run it on its own (two
    sweeps, two lr-finds on one folder), and the second said the folder was "in use by another nlptune process".
    Rank 0 says why; the other ranks exit with the same code, silently."""
    from nlptune.config.errors import NlptuneError

    processes = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if processes < 2 or command in LAUNCHED_COMMANDS:
        return
    if int(os.environ.get("RANK", "0") or 0) != 0:
        sys.exit(2)
    own = ("; for trials of several processes each, set tune.processes_per_trial=N: nlptune starts them" if
           command == "tune" else "")
    raise NlptuneError(f"`nlptune {command}` cannot share its work between the {processes} processes a launcher "
                       "(torchrun, accelerate launch) started: each would run it on its own -> run it without the "
                       f"launcher{own}; only {', '.join(LAUNCHED_COMMANDS)} share their training between a "
                       "launcher's processes")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `nlptune` console script."""
    parser = build_parser()
    args = parse_command_line(parser, argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        sys.exit(0)
    if args.quiet:
        from nlptune.utils.console import set_quiet

        set_quiet(True)
    try:
        refuse_a_launcher(args.command)
        code = args.handler(args)
    except KeyboardInterrupt:
        from nlptune.utils.processes import forget_unhandled_interrupt

        print("interrupted", file=sys.stderr)
        forget_unhandled_interrupt()  # exit with 130, not by SIGINT (see there)
        code = 130
    except BrokenPipeError as err:
        if err.filename is not None:  # a path the command wrote to (a FIFO given as a file): a user's problem
            code = _report(err, args.debug)
        else:  # the reader of the output went away (`nlptune predict ... | head`): not an error, nothing to say
            _detach_stdout()
            code = SIGPIPE_EXIT
    except Exception as err:  # noqa: BLE001 - the last line of defence: one message, never a raw traceback
        code = _report(err, args.debug)
    sys.exit(code)
