"""cli.main's last line of defence, the run-directory checks and the refusal of models with custom code.

- an OSError from any command is one line with the errno text, the path and the fix, exit 2;
- anything unexpected is "internal error ... this is a bug, please report it", exit 1, traceback only with --debug;
- a pretrained model (or tokenizer) whose files declare ``auto_map`` is refused unless --trust-remote-code,
  and custom code that transformers would ignore is warned about.
"""
from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from nlptune.cli import main
from nlptune.config.errors import NlptuneError, describe_os_error


def run_main(monkeypatch, capsys, raised: BaseException, *flags: str) -> tuple[int, str]:
    """Run `nlptune [flags] eval RUN` with the eval handler raising ``raised``."""
    def handler(args):
        raise raised

    monkeypatch.setattr("nlptune.commands.eval.handle", handler)
    with pytest.raises(SystemExit) as done:
        main([*flags, "eval", "some-run"])
    captured = capsys.readouterr()
    return done.value.code, captured.out + captured.err


@pytest.mark.parametrize("code, text, fix", [
    (errno.ENOSPC, "No space left on device", "disk is full"),
    (errno.EACCES, "Permission denied", "permissions"),
    (errno.EROFS, "Read-only file system", "read-only"),
    (errno.EISDIR, "Is a directory", "folder where a file is expected"),
    (errno.ENOENT, "No such file or directory", "does not exist"),
])
def test_os_error_is_one_message_with_path_and_exit_2(monkeypatch, capsys, code, text, fix):
    exit_code, output = run_main(monkeypatch, capsys, OSError(code, text, "/runs/x/checkpoints/step-3"))
    assert exit_code == 2
    assert output.startswith("error: ") and output.count("\n") == 1, output
    assert text in output and "/runs/x/checkpoints/step-3" in output and errno.errorcode[code] in output
    assert fix in output
    assert "Traceback" not in output


def test_output_whose_reader_left_ends_quietly_as_a_closed_pipe_does(monkeypatch, capsys):
    from nlptune.cli import SIGPIPE_EXIT

    exit_code, output = run_main(monkeypatch, capsys, BrokenPipeError(errno.EPIPE, "Broken pipe"))
    assert (exit_code, output) == (SIGPIPE_EXIT, "")  # `nlptune predict RUN ... | head`: nothing went wrong
    # a pipe the command was given as a file is the user's to fix: named, exit 2
    exit_code, output = run_main(monkeypatch, capsys, BrokenPipeError(errno.EPIPE, "Broken pipe", "/tmp/fifo"))
    assert exit_code == 2 and "/tmp/fifo" in output and "EPIPE" in output


def test_a_closed_pipe_on_standard_output_is_silent():
    import subprocess
    import sys

    # a command printing far more than a pipe holds
    script = ("import sys; from nlptune import cli; from nlptune.commands import eval; "
              "eval.handle = lambda args: [print('x' * 999) for _ in range(2000)] and 0; "
              "sys.argv = ['nlptune', 'eval', 'RUN']; cli.main()")
    command = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    command.stdout.read(1)
    command.stdout.close()  # the reader leaves: nlptune's next writes meet a closed pipe
    code = command.wait(timeout=120)
    error = command.stderr.read().decode()
    assert (code, error) == (141, ""), error


def test_a_file_where_a_folder_is_expected_is_named(tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("")
    message = describe_os_error(NotADirectoryError(errno.ENOTDIR, "Not a directory", str(blocker / "a" / "b")))
    assert f"{blocker} is a file where a folder is expected" in message


def test_unexpected_exception_is_reported_as_a_bug_exit_1(monkeypatch, capsys):
    exit_code, output = run_main(monkeypatch, capsys, RuntimeError("boom"))
    assert exit_code == 1
    assert "error: internal error: RuntimeError: boom" in output
    assert "this is a bug, please report it" in output and "--debug" in output
    assert "Traceback" not in output


def test_debug_prints_the_traceback(monkeypatch, capsys):
    exit_code, output = run_main(monkeypatch, capsys, RuntimeError("boom"), "--debug")
    assert exit_code == 1
    assert "Traceback" in output and "internal error: RuntimeError: boom" in output
    exit_code, output = run_main(monkeypatch, capsys, NlptuneError("bad input"), "--debug")
    assert exit_code == 2 and "Traceback" in output and "error: bad input" in output


@pytest.mark.parametrize("raised, code, text", [
    (NlptuneError("task.name: unknown"), 2, "error: task.name: unknown"),
    (KeyboardInterrupt(), 130, "interrupted"),
    (MemoryError(), 2, "out of memory"),
    # torch's CPU allocator raises a plain RuntimeError: it was "internal error ... this is a bug"
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
                  "tried to allocate 28812000000 bytes. Error code 12 (Cannot allocate memory)"), 2,
     "error: out of memory (an allocation of 28.8 GB failed); this machine has"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), 2, "out of memory (an allocation of 2.00 GiB"),
    (RuntimeError("shape mismatch"), 1, "internal error"),
])
def test_other_endings(monkeypatch, capsys, raised, code, text):
    exit_code, output = run_main(monkeypatch, capsys, raised)
    assert exit_code == code and text in output and "Traceback" not in output


# ------------------------------------------------------------------------------------------ run directories
def test_run_dir_checks_name_the_damaged_file(tmp_path):
    from nlptune.inference.run_reading import check_run

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("task: {name: demo}\n")
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo')
    with pytest.raises(NlptuneError, match=r"metrics.jsonl, line 2, is not valid JSON"):
        check_run(run, finished=False)
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    assert check_run(run, finished=False) == run
    with pytest.raises(NlptuneError, match="not a finished nlptune run"):
        check_run(run, finished=True)
    (run / "best").mkdir()
    (run / "best" / "nlptune_task.json").write_text("{}")
    with pytest.raises(NlptuneError, match=r"holds no model weights"):
        check_run(run, finished=True)
    (run / "best" / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(NlptuneError, match=r"model.safetensors is not a readable safetensors file"):
        check_run(run, finished=True)


def test_a_saved_model_folder_given_as_run_dir_names_the_run_to_pass(tmp_path):
    from nlptune.inference.run_reading import check_run

    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    (run / "metrics.jsonl").write_text("")
    (run / "best" / "nlptune_task.json").write_text("{}")
    with pytest.raises(NlptuneError, match=rf"saved model folder \(best/\) of the run {run}: pass {run} instead"):
        check_run(run / "best", finished=True)
    shutil.copytree(run / "best", tmp_path / "export")
    with pytest.raises(NlptuneError, match="a saved model folder .* pass the run directory it came from"):
        check_run(tmp_path / "export", finished=True)


def test_a_sweep_given_where_a_run_goes_names_its_best_trial(tmp_path):
    """A sweep directory was "not an nlptune run directory" with the advice to train, and its best/ was "the
    saved model folder of the run <sweep>: pass <sweep> instead", which failed the same way."""
    from nlptune.inference.run_reading import check_run
    from nlptune.train.resume import ResumeError, _finished_without_checkpoint, refuse_earlier_run

    sweep = tmp_path / "sweep"
    (sweep / "best").mkdir(parents=True)
    (sweep / "best" / "nlptune_task.json").write_text("{}")
    (sweep / "sweep.json").write_text("{}")
    trial = sweep / "trials" / "trial-0002"
    (sweep / "leaderboard.csv").write_text(f"rank,trial,accuracy,run_dir\n1,2,0.9,{trial}\n2,0,0.8,x\n")
    with pytest.raises(NlptuneError, match=rf"is a sweep directory .*its best trial: {trial};"):
        check_run(sweep, finished=True)
    with pytest.raises(NlptuneError, match=rf"best model of the sweep {sweep}.*pass that trial's run directory "
                                           rf"\({trial}\)"):
        check_run(sweep / "best", finished=True)
    # where the folder itself is taken (eval --file, export --file --output), a split asked of it names the trial
    from nlptune.inference.export import check_saved_folder_export
    from nlptune.inference.run_reading import refuse_split_of_saved_model
    with pytest.raises(NlptuneError, match=rf"or pass the run it came from, the sweep's best trial {trial}\)"):
        refuse_split_of_saved_model(sweep / "best", "validation")
    with pytest.raises(NlptuneError, match=r"--output DIR, or pass the run it came from, the sweep's best trial"):
        check_saved_folder_export(sweep / "best", None, None)
    from nlptune.commands.distill import _on_teachers_task
    with pytest.raises(NlptuneError, match=rf"task=NAME .*or pass the run it came from, the sweep's best trial "
                                           rf"{trial} "):
        _on_teachers_task(sweep / "best", [])
    (sweep / "leaderboard.csv").write_bytes(b"\xff\xfe")  # unreadable: the hint points at the file instead
    with pytest.raises(NlptuneError, match=r"sweep directory .*leaderboard.csv ranks them"):
        check_run(sweep, finished=True)
    with pytest.raises(ResumeError, match=r"already holds a sweep \(sweep.json, best/\)"):
        refuse_earlier_run(sweep)
    with pytest.raises(ResumeError, match=rf"is a sweep directory .*nlptune tune resume={sweep}"):
        _finished_without_checkpoint(sweep)


@pytest.mark.parametrize("argv, said", [
    (["predict", "RUN", "a text", "--input", "in.txt"], "give texts or --input FILE, not both"),
    (["eval", "RUN", "--split", "train", "--file", "f.jsonl"], "give --split or --file, not both"),
    (["eval", "RUN", "--split", "test"], "to score another split (a test set), give its labelled file: --file"),
])
def test_inputs_that_would_be_silently_ignored_are_refused(capsys, argv, said):
    with pytest.raises(SystemExit) as done:
        main(argv)  # refused before the run directory is read
    assert done.value.code == 2 and said in capsys.readouterr().err


@pytest.mark.parametrize("command", ["tune", "lr-find", "predict", "eval", "export", "compare", "freeze"])
def test_a_one_process_command_under_a_launcher_is_refused_by_rank_0(monkeypatch, capsys, command):
    """Under torchrun every rank ran the command on its own: two sweeps on one folder, the second "in use by
    another nlptune process"."""
    from nlptune import cli

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(f"nlptune.commands.{command.replace('-', '_')}.handle",
                        lambda args: pytest.fail("the command ran"))
    argv = [command, *(["RUN"] if command in ("predict", "eval", "export", "freeze") else []),
            *(["RUN2"] if command == "compare" else []), *(["recipe.yaml"] if command == "freeze" else [])]
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        with pytest.raises(SystemExit) as done:
            cli.main(argv)
        err = capsys.readouterr().err
        assert done.value.code == 2
        assert (f"`nlptune {command}` cannot share its work between the 2 processes" in err) if rank == "0" else \
            err == ""
    assert "tune.processes_per_trial=N" in cli_error(cli.refuse_a_launcher, "tune", monkeypatch)
    for command in cli.LAUNCHED_COMMANDS:
        cli.refuse_a_launcher(command)  # shared: no refusal


def cli_error(function, argument, monkeypatch) -> str:
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(NlptuneError) as info:
        function(argument)
    return str(info.value)


@pytest.mark.parametrize("argv, close", [(["trian"], "train"), (["lr_find"], "lr-find"),
                                         (["export", "RUN", "--format", "onxx"], "onnx"),
                                         (["recipes", "lst"], "list"), (["zzz"], None)])
def test_a_mistyped_command_or_choice_names_the_closest(capsys, argv, close):
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and "invalid choice" in err
    assert (f"did you mean '{close}'?" in err) if close else "did you mean" not in err


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"step": ' + "9" * 5000 + "}"])
def test_json_the_parser_cannot_take_is_one_message(tmp_path, text):
    """Nesting deeper than the parser goes, an integer longer than Python converts: a damaged file, not a crash."""
    from nlptune.inference.run_reading import check_run
    from nlptune.models.remote_code import check_remote_code

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("task: {name: demo}\n")
    (run / "metrics.jsonl").write_text(text + "\n")
    with pytest.raises(NlptuneError, match=r"metrics.jsonl, line 1, is not a metrics record nlptune wrote"):
        check_run(run, finished=False)
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    (run / "best").mkdir()
    (run / "best" / "nlptune_task.json").write_text(text)
    with pytest.raises(NlptuneError, match=r"nlptune_task.json is not a JSON file nlptune wrote"):
        check_run(run, finished=True)
    (run / "best" / "config.json").write_text(text)
    with pytest.raises(NlptuneError, match=r"config.json is not a model's JSON file"):
        check_remote_code(str(run / "best"))


# ------------------------------------------------------------------------------------------ remote code
def with_auto_map(source: Path, folder: Path, model_type: str, file: str = "config.json") -> Path:
    """A copy of a tiny BERT folder whose ``file`` declares custom classes (auto_map)."""
    shutil.copytree(source, folder)
    path = folder / file
    data = json.loads(path.read_text()) if path.is_file() else {}
    if file == "config.json":
        data.update(model_type=model_type, auto_map={"AutoConfig": "modeling_x.XConfig",
                                                     "AutoModelForSequenceClassification": "modeling_x.XModel"})
    else:
        data.update(tokenizer_class=model_type, auto_map={"AutoTokenizer": ["tokenization_x.XTokenizer", None]})
    path.write_text(json.dumps(data))
    return folder


def test_custom_model_is_refused_without_trust_remote_code(tiny_pretrained, tmp_path):
    from nlptune.models import build_model
    from nlptune.models.remote_code import check_remote_code

    folder = with_auto_map(tiny_pretrained, tmp_path / "custom", "x-model")
    for call in (lambda: check_remote_code(str(folder)),
                 lambda: build_model("pretrained", name_or_path=str(folder), num_labels=2)):
        with pytest.raises(NlptuneError) as caught:
            call()
        message = str(caught.value)
        assert "--trust-remote-code" in message and "runs Python code from the model's repository" in message
        assert str(folder) in message and "auto_map" in message and "x-model" in message
    check_remote_code(str(folder), trust_remote_code=True)  # the flag lets it through to transformers


def test_custom_tokenizer_is_refused(tiny_pretrained, tmp_path):
    from nlptune.data.tokenization import load_tokenizer
    from nlptune.models.remote_code import check_remote_code

    folder = with_auto_map(tiny_pretrained, tmp_path / "custom-tok", "XTokenizer", "tokenizer_config.json")
    (folder / "config.json").unlink()  # a tokenizer-only folder: nothing for transformers to fall back on
    with pytest.raises(NlptuneError, match=r"tokenizer_config.json has auto_map \(AutoTokenizer\).*--trust-remote"):
        check_remote_code(str(folder), config_required=False)
    # the data pipeline's own loader: transformers is told not to trust it, so it refuses instead of prompting
    with pytest.raises(NlptuneError, match=r"needs custom code.*--trust-remote-code"):
        load_tokenizer(str(folder))


def test_ignored_custom_code_is_warned_about_once(tiny_pretrained, tmp_path, monkeypatch):
    from nlptune.models.remote_code import check_remote_code

    warnings: list[str] = []
    monkeypatch.setattr("nlptune.utils.console.warn", warnings.append)
    folder = with_auto_map(tiny_pretrained, tmp_path / "bert-with-map", "bert")
    check_remote_code(str(folder))
    check_remote_code(str(folder))
    assert len(warnings) == 1, warnings
    assert "AutoConfig, AutoModelForSequenceClassification" in warnings[0] and "ignored" in warnings[0]
    assert "'bert'" in warnings[0] and "--trust-remote-code" in warnings[0]


@pytest.mark.parametrize("make, expected", [
    (lambda p: None, "the folder does not exist"),
    (lambda p: p.write_text("x"), "is a file, not a model folder"),
    (lambda p: p.mkdir(), "has no config.json"),
    (lambda p: (p.mkdir(), (p / "config.json").write_text('{"model_type": "bert",')), "config.json is not valid JSON (line 1, column 23"),
])
def test_bad_model_paths_are_one_message(tmp_path, make, expected):
    from nlptune.models.remote_code import check_remote_code

    path = tmp_path / "model"
    make(path)
    with pytest.raises(NlptuneError, match="pretrained model") as caught:
        check_remote_code(str(path))
    assert expected in str(caught.value) and str(path) in str(caught.value)


def test_uncached_hub_id_offline_fails_at_once(monkeypatch, tmp_path):
    from huggingface_hub import constants

    from nlptune.data.tokenization import load_tokenizer
    from nlptune.models.remote_code import check_remote_code

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(NlptuneError, match=r"not in the Hugging Face cache.*HF_HUB_OFFLINE"):
        check_remote_code("nlptune-tests/not-a-model")
    with pytest.raises(NlptuneError, match="nor a valid Hugging Face hub id"):
        check_remote_code("bad id with spaces")
    with pytest.raises(NlptuneError, match="cannot load the tokenizer of 'nlptune-tests/not-a-model'"):
        load_tokenizer("nlptune-tests/not-a-model")


def test_a_tokenizer_without_its_vocabulary_is_refused(tiny_pretrained, tmp_path):
    """transformers silently builds a specials-only tokenizer when tokenizer.json/vocab.txt is missing."""
    from nlptune.data.tokenization import load_tokenizer

    folder = tmp_path / "no-vocab"
    shutil.copytree(tiny_pretrained, folder)
    for name in ("tokenizer.json", "vocab.txt"):
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(NlptuneError, match=r"has no vocabulary .*tokenizer.json or vocab file is missing"):
        load_tokenizer(str(folder))
    assert len(load_tokenizer(str(tiny_pretrained))) > 10  # the complete folder loads


def test_a_run_directory_given_as_the_pretrained_model_points_at_its_model(tiny_pretrained, tmp_path):
    """`model.name_or_path=<a run>`: a fine-tuned transformer is in its best/; a scratch model is none to fine-tune."""
    from nlptune.data.sources import TASK_FILE
    from nlptune.data.tokenization import load_tokenizer

    run = tmp_path / "run"
    shutil.copytree(tiny_pretrained, run / "best")
    (run / "best" / TASK_FILE).write_text("{}")
    with pytest.raises(NlptuneError, match=f"fine-tuned model is {run / 'best'} "):
        load_tokenizer(str(run))
    (run / "best" / "config.json").unlink()
    with pytest.raises(NlptuneError, match="trained from scratch, not a transformer"):
        load_tokenizer(str(run))


@pytest.mark.parametrize("argv, overrides", [
    (["train", "model=bag", "--cfg", "job", "seed=3"], ["model=bag", "seed=3"]),
    (["distill", "RUN", "--cfg", "job", "seed=3", "model=bag"], ["seed=3", "model=bag"]),
    (["train", "--cfg", "job", "a=1", "--trust-remote-code", "b=2"], ["a=1", "b=2"])])
def test_overrides_may_follow_an_option(argv, overrides):
    """argparse fills a nargs="*" list once: `nlptune train model=bag --cfg job seed=3` once said
    "unrecognized arguments: seed=3" for a valid override."""
    from nlptune.cli import build_parser, parse_command_line

    assert parse_command_line(build_parser(), argv).overrides == overrides


@pytest.mark.parametrize("argv, name, values", [
    (["predict", "RUN", "--precision", "fp32", "a text"], "texts", ["a text"]),
    (["predict", "RUN", "first", "--batch-size", "2", "second"], "texts", ["first", "second"]),
    (["compare", "A", "--allow-different-tasks", "B"], "run_dirs", ["A", "B"])])
def test_any_list_of_positionals_may_follow_an_option(argv, name, values):
    """`nlptune predict RUN --precision fp32 "a text"` once said "unrecognized arguments: a text"."""
    from nlptune.cli import build_parser, parse_command_line

    assert getattr(parse_command_line(build_parser(), argv), name) == values


@pytest.mark.parametrize("argv, quiet, debug", [
    (["train", "--quiet", "seed=3"], True, False), (["--quiet", "train", "seed=3"], True, False),
    (["--debug", "predict", "RUN", "--quiet", "a text"], True, True), (["eval", "RUN"], False, False),
    (["recipes", "list", "--quiet"], True, False), (["recipes", "--debug", "show", "x"], False, True)])
def test_the_global_options_may_follow_the_command(argv, quiet, debug):
    """`nlptune train --quiet ...` once said "unrecognized arguments: --quiet"."""
    from nlptune.cli import build_parser, parse_command_line

    args = parse_command_line(build_parser(), argv)
    assert (args.quiet, args.debug) == (quiet, debug)


def test_an_unknown_option_after_the_overrides_is_still_refused(capsys):
    from nlptune.cli import build_parser, parse_command_line

    with pytest.raises(SystemExit) as done:
        parse_command_line(build_parser(), ["reproduce", "sst2-lstm", "seed=1", "--cfg", "job"])
    assert done.value.code == 2 and "unrecognized arguments: --cfg job" in capsys.readouterr().err


def test_an_error_inside_a_checkpoints_own_code_names_the_architecture(capsys):
    """Raised in transformers' models/<architecture>/ code (here: code compiled under such a file name), with only
    library code below it: the architecture's failure, exit 2; the same error from nlptune's code is a bug, exit 1."""
    from nlptune.cli import _report

    def raised(filename: str, call_back=None) -> BaseException:
        scope = {"call_back": call_back}
        exec(compile("def forward(config):\n    return call_back(config) if call_back else config.start_id\n",
                     filename, "exec"), scope)
        try:
            scope["forward"](object())
        except Exception as err:  # noqa: BLE001 - what the command's handler would receive
            return err
        raise AssertionError("nothing raised")

    model_file = "/site-packages/transformers/models/t5/modeling_t5.py"
    assert _report(raised(model_file), debug=False) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the pretrained model's own code failed (t5/modeling_t5.py, line 2, in forward)" in err
    assert "AttributeError" in err and "its architecture (t5)" in err and "internal error" not in err
    assert _report(raised("/work/nlptune/kinds/x.py"), debug=False) == 1
    assert "internal error" in capsys.readouterr().err

    def nlptune_code(config):  # the model called back into nlptune's code, which failed: nlptune's bug
        return config.start_id

    assert _report(raised(model_file, nlptune_code), debug=False) == 1


def test_quiet_drops_the_tables_not_the_commands_result(capsys):
    """`nlptune --quiet recipes list` printed nothing at all."""
    from nlptune.cli import main
    from nlptune.recipes.format import shipped_recipes
    from nlptune.utils.console import set_quiet

    try:
        with pytest.raises(SystemExit) as done:
            main(["--quiet", "recipes", "list"])
    finally:
        set_quiet(False)
    assert done.value.code == 0 and capsys.readouterr().out.split() == [path.stem for path in shipped_recipes()]
