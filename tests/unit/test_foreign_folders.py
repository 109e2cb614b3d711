"""A fresh run (`nlptune train`) or a new sweep (`nlptune tune`) never writes into a folder holding files nlptune did
not write there: refused before any work, in one message naming the folder, what is in the way and the fix, with the
folder left as it was. New and empty folders, an interrupted run's own folder and an earlier sweep stay accepted."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from nlptune.config.errors import NlptuneError
from nlptune.utils.lock import LOCK_FILE


def tree(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with its content's sha256 (folders as ""): what a refused command must keep."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            for p in sorted(folder.rglob("*"))}


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


# what a run that was stopped before its first checkpoint leaves: nlptune's own files, a record cut short included
RUN_CONFIG = yaml.safe_dump({"task": {"name": "demo"}, "model": {"name": "bag"}, "trainer": {"max_steps": 3}})
INTERRUPTED = {"metrics.jsonl": '{"step": 1, "loss": 0.7}\n{"step": 2, "lo', "config.yaml": RUN_CONFIG,
               "manifest.json": json.dumps({"environment": {"python": "3"}, "seed": 42}), "plots/loss.png": "png",
               "tensorboard/events.out": "x", LOCK_FILE: "", ".config.yaml.123-abcd.tmp": ""}

# the audit's cases: the user's files under the names a run writes, or beside an interrupted run
FOREIGN = {
    "a project's config and manifest": ({"config.yaml": "mine\n", "manifest.json": '{"mine": 1}',
                                         "plots/validation.png": "mine"}, "no metrics.jsonl"),
    "a metrics.jsonl of someone's": ({"config.yaml": "mine\n", "metrics.jsonl": "mine\n"},
                                     "its metrics.jsonl is not a log of metrics records"),
    "a config.yaml that is not a run's": ({**INTERRUPTED, "config.yaml": "a: 1\n"}, "its config.yaml is not a run's"),
    "a manifest.json that is not a run's": ({**INTERRUPTED, "manifest.json": '{"mine": 1}'},
                                            "its manifest.json is not a run's"),
    "only a plots folder": ({"plots/validation.png": "mine"}, "holds plots/ but not as a run"),
    "notes beside an interrupted run": ({**INTERRUPTED, "notes.txt": "mine"},
                                        "already holds files a run does not write (notes.txt)"),
    "other runs' folders": ({"sst2-bag/20260101-100000/metrics.jsonl": ""},
                            "already holds files a run does not write (sst2-bag/)"),
}


# ------------------------------------------------------------------------------------------ nlptune train


@pytest.mark.parametrize("case", FOREIGN)
def test_a_fresh_run_refuses_a_folder_holding_files_nlptune_did_not_write(tmp_path, case):
    from nlptune.train.rundir import refuse_foreign_contents

    files, said = FOREIGN[case]
    folder = write(tmp_path / "u", files)
    before = tree(folder)
    with pytest.raises(NlptuneError, match="output_dir") as caught:
        refuse_foreign_contents(folder)
    message = str(caught.value)
    assert str(folder) in message and said in message, message
    assert "give a new or empty output_dir" in message and "resume=auto" in message
    assert tree(folder) == before


@pytest.mark.parametrize("files", [{}, {LOCK_FILE: ""}, {"trial_spec.json": "{}", "trial.log": ""}, INTERRUPTED,
                                   {"metrics.jsonl": ""}, {".DS_Store": "x", "Thumbs.db": "x", "desktop.ini": "x"},
                                   {**INTERRUPTED, ".DS_Store": "x"}],
                         ids=["empty", "a lock", "a sweep trial's launch files", "an interrupted run",
                              "a run stopped as it opened its log", "only a file browser's files",
                              "an interrupted run opened in Finder"])
def test_a_fresh_run_accepts_a_new_or_empty_folder_or_an_interrupted_run_of_its_own(tmp_path, files):
    from nlptune.train.rundir import refuse_foreign_contents

    folder = tmp_path / "u"
    folder.mkdir()
    refuse_foreign_contents(write(folder, files))
    refuse_foreign_contents(tmp_path / "new" / "run")


@pytest.mark.parametrize("resume", [None, "auto"])
def test_the_resume_plan_refuses_a_foreign_folder_for_a_fresh_start(tmp_path, resume):
    """resume=auto without a checkpoint starts afresh too: the same rule."""
    from nlptune.recipes.run import load_run_config
    from nlptune.train import resume as resuming

    folder = write(tmp_path / "u", FOREIGN["a metrics.jsonl of someone's"][0])
    before = tree(folder)
    config = load_run_config([f"output_dir={folder}"] + ([f"resume={resume}"] if resume else []))
    with pytest.raises(NlptuneError, match="not as a run nlptune started"):
        resuming.plan(config, folder, 1)
    assert tree(folder) == before
    interrupted = write(tmp_path / "run", INTERRUPTED)
    config = load_run_config([f"output_dir={interrupted}"] + ([f"resume={resume}"] if resume else []))
    assert resuming.plan(config, interrupted, 1).checkpoint is None  # an interrupted run starts again


def test_train_refuses_before_loading_data_and_leaves_the_folder(tmp_path, monkeypatch):
    from nlptune.recipes.run import load_run_config
    from nlptune.train import loop

    folder = write(tmp_path / "u", FOREIGN["a project's config and manifest"][0])
    before = tree(folder)

    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(loop, "prepare_data", no_data)
    with pytest.raises(NlptuneError, match="not as a run nlptune started"):
        loop.run(load_run_config([f"output_dir={folder}", "model=bag", "trainer.report_to=[]"]))
    assert tree(folder) == before  # not even the lock is left


# ------------------------------------------------------------------------------------------- nlptune tune


def tune_of(*overrides: str):
    from nlptune.config.compose import compose, to_plain
    from nlptune.config.tune import build_tune_config

    return build_tune_config(to_plain(compose(list(overrides)))["tune"], {})


def test_a_new_sweep_refuses_a_folder_holding_files(tmp_path):
    from nlptune.config.tune import split_tune_args
    from nlptune.tuning.plan import find_sweep_dir

    folder = write(tmp_path / "mine", {"summary.md": "mine", "leaderboard.csv": "mine", "plots/x.png": "mine"})
    before = tree(folder)
    for extra in ([], ["resume=auto"]):  # no sweep.json there: resume=auto starts a new sweep as well
        with pytest.raises(NlptuneError) as caught:
            find_sweep_dir(tune_of(f"tune.dir={folder}"), split_tune_args(extra), "demo", "bag")
        message = str(caught.value)
        assert f"{folder} (tune.dir) already holds files but no sweep (sweep.json): leaderboard.csv, plots/, " \
               "summary.md" in message and "give a new or empty tune.dir" in message, message
    assert tree(folder) == before


def test_a_new_sweep_takes_a_new_or_empty_folder_and_an_earlier_sweep_is_continued(tmp_path):
    from nlptune.config.tune import split_tune_args
    from nlptune.tuning.plan import find_sweep_dir

    fresh, auto = split_tune_args([]), split_tune_args(["resume=auto"])
    assert find_sweep_dir(tune_of(f"tune.dir={tmp_path / 'new'}"), fresh, "demo", "bag") == (tmp_path / "new", False)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / LOCK_FILE).write_text("")  # a lock: whether its holder still runs is the lock's to tell
    (empty / ".DS_Store").write_text("x")  # what Finder leaves in a folder it showed: no one's data
    assert find_sweep_dir(tune_of(f"tune.dir={empty}"), fresh, "demo", "bag") == (empty, False)
    earlier = write(tmp_path / "earlier", {"sweep.json": "{}", "summary.md": "# sweep", "leaderboard.csv": "",
                                           "trials/trial-0000/metrics.jsonl": ""})
    assert find_sweep_dir(tune_of(f"tune.dir={earlier}"), auto, "demo", "bag") == (earlier, True)
    assert find_sweep_dir(tune_of(), split_tune_args([f"resume={earlier}"]), "demo", "bag") == (earlier, True)


# ---------------------------------------------------------------------------------------------- the CLI


@pytest.fixture
def data(tmp_path) -> list[str]:
    """Overrides for a tiny text-classification run on files of its own (no shared data needed)."""
    rows = [{"text": f"{'good great' if i % 2 else 'bad awful'} w{i}", "label": "pos" if i % 2 else "neg"}
            for i in range(24)]
    for name, part in (("train.jsonl", rows[:18]), ("dev.jsonl", rows[18:])):
        (tmp_path / name).write_text("".join(json.dumps(row) + "\n" for row in part))
    return ["task=text_classification", f"task.train_file={tmp_path / 'train.jsonl'}",
            f"task.validation_file={tmp_path / 'dev.jsonl'}", "trainer.threads=1", "trainer.max_steps=2", "model=bag",
            "model.embedding_dim=8", "trainer.report_to=[]", "trainer.measure_cost=false"]


def refused(result, *words: str) -> None:
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr and result.stderr.count("error:") == 1, result.stderr[-3000:]
    for word in words:
        assert word in result.stderr, result.stderr[-3000:]


def test_cli_train_and_tune_refuse_a_users_folder_and_leave_it(run_cli, data, tmp_path):
    mine = write(tmp_path / "u", {"config.yaml": "mine\n", "manifest.json": '{"mine": 1}', "metrics.jsonl": "mine\n",
                                  "plots/validation.png": "mine"})
    before = tree(mine)
    refused(run_cli(["--quiet", "train", *data, f"output_dir={mine}"]), f"output_dir {mine} holds",
            "not as a run nlptune started", "new or empty output_dir")
    assert tree(mine) == before
    sweep = write(tmp_path / "mine", {"summary.md": "mine", "leaderboard.csv": "mine"})
    before = tree(sweep)
    refused(run_cli(["--quiet", "tune", *data, "tune.n_trials=1", "tune.default_space=null",
                     "tune.space.optimizer.lr=loguniform(1e-3,1e-2)", f"tune.dir={sweep}"]),
            f"{sweep} (tune.dir) already holds files", "leaderboard.csv, summary.md", "new or empty tune.dir")
    assert tree(sweep) == before


def test_cli_train_continues_into_an_interrupted_runs_folder(run_cli, data, tmp_path):
    run = write(tmp_path / "run", {k: v for k, v in INTERRUPTED.items() if k != LOCK_FILE})
    result = run_cli(["--quiet", "train", *data, f"output_dir={run}", "resume=auto"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run / "metrics.json").is_file()
    for line in (run / "metrics.jsonl").read_text().splitlines():  # started again: the cut-short record is gone
        assert isinstance(json.loads(line)["step"], int)
