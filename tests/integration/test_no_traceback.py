"""Every subcommand, given a representative bad input, ends in one message and exit 2, never a traceback.

Each case runs the real CLI in a subprocess (`python -m nlptune`, offline) and asserts the exit code, that the
message names the offending file, key or path, and that neither stdout nor stderr holds "Traceback". The inputs
fail before any model or data is loaded where the command allows it; the run directories are copies of one
3-step run of the built-in demo task, made once for the module and damaged one file each.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

BOMB = "".join(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
               for prev, name in zip([None, *"abcdefgh"], "abcdefghi"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, run_cli) -> Path:
    """A finished 3-step run of the demo task (no data files needed)."""
    out = tmp_path_factory.mktemp("run") / "demo"
    done = run_cli(["--quiet", "train", f"output_dir={out}", "trainer.max_steps=3"], timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "best" / "nlptune_task.json").is_file()
    return out


@pytest.fixture
def files(tmp_path, finished_run) -> dict[str, Path]:
    """Bad inputs by name: damaged copies of the run, bad recipes, a file where a folder is expected."""
    def damaged(name: str, relative: str, content: bytes | None) -> Path:
        copy = tmp_path / name
        shutil.copytree(finished_run, copy)
        target = copy / relative
        if content is None:
            target.write_bytes(target.read_bytes()[:200])  # truncated, as by a full disk or a cut copy
        else:
            target.write_bytes(content)
        return copy

    a_file = tmp_path / "a_file.txt"
    a_file.write_text("not a folder\n")
    shipped = Path(__file__).resolve().parents[2] / "recipes" / "sst2-lstm.yaml"
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text(shipped.read_text().replace("config:", "config: [", 1))
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    oversize = tmp_path / "oversize.yaml"
    oversize.write_text("recipe:\n  description: '" + "x" * 1_100_000 + "'\n")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(32)) * 4)  # valid UTF-8, but control characters: not YAML text
    return {
        "run": finished_run, "a_file": a_file, "missing": tmp_path / "no-such-run", "malformed": malformed,
        "bomb": bomb, "oversize": oversize, "binary": binary, "a_folder": tmp_path,
        "bad_task_json": damaged("bad-task-json", "best/nlptune_task.json", b"{not json"),
        "cut_weights": damaged("cut-weights", "best/model.safetensors", None),
        "bad_config": damaged("bad-config", "config.yaml", b"task:\n  name: [demo\n"),
        "bad_metrics": damaged("bad-metrics", "metrics.json", b'{"best": '),
        "bad_manifest": damaged("bad-manifest", "manifest.json", b"[1, 2"),
    }


# (subcommand and arguments with {placeholders} from `files`, texts the message must contain)
CASES = {
    "train-misspelt-key": (["train", "trainer.max_stepz=3"], ["trainer.max_stepz", "trainer.max_steps"]),
    "train-malformed-recipe": (["train", "recipe={malformed}"], ["malformed.yaml", "line", "column"]),
    "train-billion-laughs": (["train", "recipe={bomb}"], ["bomb.yaml", "alias"]),
    "train-binary-recipe": (["train", "recipe={binary}"], ["binary.yaml", "control character", "line 1"]),
    "train-recipe-is-a-folder": (["train", "recipe={a_folder}"], ["is a folder", "recipe file"]),
    "eval-missing-run-dir": (["eval", "{missing}"], ["no-such-run", "does not exist"]),
    "eval-corrupt-task-json": (["eval", "{bad_task_json}"], ["nlptune_task.json", "not valid JSON", "line 1"]),
    "predict-file-not-folder": (["predict", "{a_file}", "good film"], ["a_file.txt", "not a run directory"]),
    "predict-malformed-config": (["predict", "{bad_config}", "good film"], ["config.yaml", "line 3"]),
    "tune-bad-space": (["tune", "tune.space.optimizer.lr=loguniform(1,0)", "tune.dir={a_folder}/sweep"],
                       ["tune.space.optimizer.lr", "lower bound"]),
    "lr-find-bad-value": (["lr-find", "optimizer.lr=fast"], ["optimizer.lr", "fast"]),
    "compare-corrupt-metrics": (["compare", "{run}", "{bad_metrics}"], ["metrics.json", "not valid JSON"]),
    "compare-output-under-a-file": (["compare", "{run}", "--output", "{a_file}/plot.png"],
                                    ["a_file.txt", "is a file"]),
    "export-truncated-weights": (["export", "{cut_weights}"], ["model.safetensors", "safetensors"]),
    "recipes-show-unknown": (["recipes", "show", "sst2-lstn"], ["sst2-lstn", "sst2-lstm"]),
    "recipes-validate-oversize": (["recipes", "validate", "{oversize}"], ["oversize.yaml", "limit"]),
    "recipes-copy-into-a-file": (["recipes", "copy", "sst2-lstm", "{a_file}/copy.yaml"], ["a_file.txt"]),
    "freeze-corrupt-manifest": (["freeze", "{bad_manifest}", "{a_folder}/frozen.yaml"], ["manifest.json"]),
    "freeze-dest-is-folder": (["freeze", "{run}", "{a_folder}"], ["is a folder"]),
    # the example path given must be one freeze accepts: not inside the run
    "freeze-dest-is-the-run": (["freeze", "{run}", "{run}"], ["is a folder", "e.g. my.yaml"]),
    "reproduce-billion-laughs": (["reproduce", "{bomb}"], ["bomb.yaml", "alias"]),
    "distill-missing-teacher": (["distill", "{missing}", "model=lstm"], ["no-such-run", "does not exist"]),
    "distill-teacher-is-a-file": (["distill", "{a_file}"], ["a_file.txt", "not a run directory"]),
}


def no_traceback(done) -> str:
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    return output


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_message_and_exit_2(case, files, run_cli, tmp_path):
    args, expected = CASES[case]
    done = run_cli([a.format(**files) for a in args], cwd=tmp_path)
    output = no_traceback(done)
    assert done.returncode == 2, output
    assert output.count("error:") + output.count("INVALID") == 1, output  # one message (validate's form: INVALID)
    for text in expected:
        assert text in output, f"{text!r} not in {output}"
    assert not (tmp_path / "frozen.yaml").exists() and not (tmp_path / "sweep").exists()


def test_every_subcommand_has_a_case():
    from nlptune.cli import COMMANDS

    assert {args[0] for args, _ in CASES.values()} == set(COMMANDS)


def test_recipes_list_marks_a_bomb_invalid_and_goes_on(files, run_cli, tmp_path):
    folder = tmp_path / "recipes"
    folder.mkdir()
    shutil.copy(files["bomb"], folder / "bomb.yaml")
    shutil.copy(Path(__file__).resolve().parents[2] / "recipes" / "sst2-lstm.yaml", folder)
    done = run_cli(["recipes", "list"], env={"NLPTUNE_RECIPES_DIR": str(folder)}, cwd=tmp_path)
    output = no_traceback(done)
    assert done.returncode == 0, output
    assert "INVALID" in output and "sst2-lstm" in output


def test_debug_shows_the_traceback(files, run_cli, tmp_path):
    """The assertion above can fail: with --debug the same bad input does print the traceback."""
    done = run_cli(["--debug", "eval", str(files["bad_task_json"])], cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" in done.stderr and "nlptune_task.json" in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: permission bits do not stop root from reading")
def test_unreadable_recipe(files, run_cli, tmp_path):
    recipe = tmp_path / "locked.yaml"
    shutil.copy(Path(__file__).resolve().parents[2] / "recipes" / "sst2-lstm.yaml", recipe)
    recipe.chmod(0)
    done = run_cli(["recipes", "validate", str(recipe)], cwd=tmp_path)
    output = no_traceback(done)
    assert done.returncode == 2 and "locked.yaml" in output and "Permission denied" in output
