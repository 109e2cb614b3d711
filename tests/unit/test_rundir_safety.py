"""Run-directory safety, without training: no write through a link, the folder lock, finished runs never
overwritten, OS errors named with their file, and predict's --output checks."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nlptune.config.errors import NlptuneError
from nlptune.utils.files import (DiskError, LinkError, atomic_write_bytes, atomic_write_text, open_append,
                                 os_errors_as_disk_errors, refuse_links_in, write_new_bytes)
from nlptune.utils.lock import LOCK_FILE, FolderLock, LockedError, claim_folder
from nlptune.utils.processes import alive, identity, process_start


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file outside the run directory that a planted link points to: it must never change."""
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir()
    path.write_text("precious\n")
    return path


@pytest.fixture
def sleeper():
    """A live process on this host that is not nlptune (its pid goes into a lock file)."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def write_lock(folder: Path, holder: dict) -> Path:
    path = folder / LOCK_FILE
    path.write_text(json.dumps(holder))
    return path


# ------------------------------------------------------------------------------------------- writes, links


def test_atomic_write_refuses_a_link_and_leaves_its_target(tmp_path, victim):
    link = tmp_path / "metrics.json"
    link.symlink_to(victim)
    with pytest.raises(LinkError, match="metrics.json.*symbolic link.*victim.txt"):
        atomic_write_text(link, "{}")
    assert victim.read_text() == "precious\n"
    assert link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "outside"]  # no temporary file left


def test_atomic_write_never_replaces_a_pipe_a_socket_or_a_folder(tmp_path):
    """A write renames a new file over its destination: over /dev/null (as root), a named pipe or a socket, that
    would put a plain file in their place (seen with freeze/recipes copy --force and predict --overwrite)."""
    pipe, folder = tmp_path / "pipe", tmp_path / "folder"
    os.mkfifo(pipe)
    folder.mkdir()
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "sock"))
    try:
        for target in (pipe, tmp_path / "sock", folder):
            with pytest.raises(NlptuneError, match="not a file; nlptune writes only regular files"):
                atomic_write_text(target, "x")
        assert pipe.is_fifo() and (tmp_path / "sock").is_socket() and folder.is_dir()
    finally:
        listening.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "pipe", "sock"]  # no temporary file left


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_bytes(path, b"old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_failed_atomic_write_names_the_file_asked_for_not_its_temporary(tmp_path, monkeypatch):
    """A full disk while the temporary beside the file is written: the user reads the path they gave."""
    import nlptune.utils.files as files

    def full(path, private=False):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "create_new_file", full)
    with pytest.raises(DiskError) as err:
        atomic_write_bytes(tmp_path / "predictions.jsonl", b"x")
    assert err.value.path == tmp_path / "predictions.jsonl" and ".tmp" not in str(err.value), str(err.value)
    assert "no space left" in str(err.value).lower()


def test_append_and_new_file_never_follow_a_link(tmp_path, victim):
    link = tmp_path / "metrics.jsonl"
    link.symlink_to(victim)
    with pytest.raises(LinkError):
        open_append(link)
    with pytest.raises(DiskError, match="exists|metrics.jsonl"):
        write_new_bytes(link, b"x")  # O_EXCL | O_NOFOLLOW: an existing name (a link too) is never written
    assert victim.read_text() == "precious\n"


def test_links_inside_an_output_folder_are_refused(tmp_path, victim):
    folder = tmp_path / "onnx"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "model.onnx").symlink_to(victim)
    with pytest.raises(LinkError, match="model.onnx"):
        refuse_links_in(folder, "the export folder")
    linked = tmp_path / "linked"
    linked.symlink_to(folder)
    with pytest.raises(LinkError, match="linked"):
        refuse_links_in(linked)


def test_run_dir_with_a_planted_link_is_refused_before_the_lock(tmp_path, victim):
    from nlptune.train.rundir import claim

    run = tmp_path / "run"
    (run / "checkpoints" / "step-00000002").mkdir(parents=True)
    (run / "checkpoints" / "step-00000002" / "model.safetensors").symlink_to(victim)
    with pytest.raises(LinkError, match="model.safetensors.*in the run directory"):
        with claim(run):
            pass
    assert not (run / LOCK_FILE).exists()
    linked_run = tmp_path / "linked-run"
    linked_run.symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(LinkError, match="the run directory"):
        with claim(linked_run):
            pass
    assert sorted(os.listdir(tmp_path / "outside")) == ["victim.txt"]


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"),
                                         (errno.EACCES, "permission denied")])
def test_os_errors_become_one_message_naming_the_file(tmp_path, code, words):
    with pytest.raises(DiskError, match=f"cannot write .*x.bin: .*{words}") as caught:
        with os_errors_as_disk_errors(tmp_path / "x.bin"):
            raise OSError(code, os.strerror(code))
    assert isinstance(caught.value, NlptuneError) and caught.value.errno == code


def test_a_library_error_carrying_an_errno_is_translated(tmp_path):
    class SafetensorError(Exception):  # how safetensors reports a full disk
        pass

    with pytest.raises(DiskError, match="no space left"):
        with os_errors_as_disk_errors(tmp_path / "model.safetensors"):
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    with pytest.raises(ValueError):  # anything else is not a disk problem and passes unchanged
        with os_errors_as_disk_errors(tmp_path / "x"):
            raise ValueError("not a disk problem")


# ---------------------------------------------------------------------------------------------------- lock


def test_lock_held_by_a_live_process_is_refused_naming_it(tmp_path, sleeper):
    holder = {"host": socket.gethostname(), "pid": sleeper.pid, "start": process_start(sleeper.pid),
              "since": "2026-01-01 10:00:00", "command": "nlptune train output_dir=x"}
    lock_file = write_lock(tmp_path, holder)
    before = lock_file.read_bytes()
    with pytest.raises(LockedError, match=f"pid {sleeper.pid} on host {socket.gethostname()} since "
                                          "2026-01-01 10:00:00"):
        FolderLock(tmp_path).acquire()
    assert lock_file.read_bytes() == before  # someone else's lock is never removed


def test_stale_lock_is_taken_over_and_released(tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_lock(tmp_path, {"host": socket.gethostname(), "pid": int(dead.stdout), "start": "1", "since": "then"})
    with FolderLock(tmp_path) as lock:
        held = json.loads((tmp_path / LOCK_FILE).read_text())
        assert held["pid"] == os.getpid() and lock.me == held
    assert "stale lock" in capsys.readouterr().err
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_reused_pid_is_not_alive(sleeper):
    me = identity()
    assert alive(me)
    assert not alive({**me, "start": "0"})  # the same pid, started at another time: another process
    assert alive({"host": "some-other-machine", "pid": 1, "start": "0"})  # cannot be checked: counts as alive


def test_a_lock_file_that_is_a_link_is_refused(tmp_path, victim):
    (tmp_path / LOCK_FILE).symlink_to(victim)
    with pytest.raises(LinkError, match="lock file"):
        FolderLock(tmp_path).acquire()
    assert victim.read_text() == "precious\n"


def test_claim_releases_on_errors_and_names_the_run(tmp_path):
    from nlptune.train.rundir import claim

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt) as caught:
        with claim(run):
            assert (run / LOCK_FILE).is_file()
            raise KeyboardInterrupt
    assert caught.value.run_dir == run
    assert not run.exists()  # created by the claim and left empty: removed, no litter
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(ValueError):
        with claim(run):
            raise ValueError("a data error")
    assert sorted(os.listdir(run)) == ["checkpoints"]  # a folder that was there stays, without the lock


def test_claim_folder_refuses_a_second_holder(tmp_path, sleeper):
    with claim_folder(tmp_path / "sweep", "sweep"):
        assert (tmp_path / "sweep" / LOCK_FILE).is_file()
    assert not (tmp_path / "sweep").exists()  # created, then left empty: removed
    (tmp_path / "sweep").mkdir()
    holder = {"host": socket.gethostname(), "pid": sleeper.pid, "start": process_start(sleeper.pid), "since": "x"}
    write_lock(tmp_path / "sweep", holder)
    with pytest.raises(LockedError, match="sweep"):
        with claim_folder(tmp_path / "sweep", "sweep"):
            pass


# ------------------------------------------------------------------------------------------ finished runs


@pytest.mark.parametrize("finished", ["metrics.json", "best"])
def test_a_fresh_run_into_a_finished_run_is_refused(tmp_path, finished):
    from nlptune.train.resume import ResumeError, refuse_earlier_run

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}") if finished == "metrics.json" else (run / "best").mkdir()
    with pytest.raises(ResumeError, match=rf"{run} already holds a finished run.*another output_dir"):
        refuse_earlier_run(run)
    refuse_earlier_run(tmp_path / "empty")  # nothing there: a fresh run is fine


# ------------------------------------------------------------- output of other commands: never inside a run


def finished_layout(run: Path) -> Path:
    """The files of a finished run, without training: config.yaml, manifest.json, metrics, best/, checkpoints/."""
    (run / "best").mkdir(parents=True)
    (run / "checkpoints" / "step-00000002").mkdir(parents=True)
    (run / "plots").mkdir()
    for name, text in (("config.yaml", "task: {name: demo}\n"), ("manifest.json", "{}"), ("metrics.json", "{}"),
                       ("metrics.jsonl", ""), ("best/nlptune_task.json", "{}"), ("plots/loss.png", "png")):
        (run / name).write_text(text)
    return run


def tree(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with its content's sha256 (folders as ""): what a refused command must keep."""
    return {str(p.relative_to(folder)): digest(p) if p.is_file() else "" for p in sorted(folder.rglob("*"))}


def test_run_directories_and_saved_models_are_recognised_wherever_the_output_lies(tmp_path):
    from nlptune.train.rundir import run_holding

    run = finished_layout(tmp_path / "runs" / "demo-bag" / "20260101-120000")
    export = tmp_path / "exported"  # `export --format hf` / ONNX: a saved model outside any run
    export.mkdir()
    (export / "nlptune_task.json").write_text("{}")
    project = tmp_path / "project"  # a config.yaml alone is any project's, not a run
    (project / "reports").mkdir(parents=True)
    (project / "config.yaml").write_text("a: 1\n")
    started = tmp_path / "started"  # a run still training: its metrics log is opened first
    started.mkdir()
    (started / "metrics.jsonl").write_text("")
    (tmp_path / "link-to-best").symlink_to(run / "best", target_is_directory=True)
    in_run, in_model = (run, "run directory"), (run / "best", "saved model folder")
    expected = {run: in_run, run / "best": in_model, run / "best" / "new": in_model,
                run / "checkpoints" / "step-00000002": in_run, run / "plots" / "new": in_run,
                run / "not-yet" / "deeper": in_run, export / "sub": (export, "saved model folder"),
                started / "x": (started, "run directory"), tmp_path / "link-to-best" / "x": in_model,
                project / "reports": None, project / "new": None, run.parent: None, tmp_path / "fresh": None}
    for folder, found in expected.items():
        assert run_holding(folder) == (None if found is None else (Path(os.path.realpath(found[0])), found[1])), folder


def test_refuse_run_contents_names_the_folder_and_the_fix_and_allows_the_given_runs(tmp_path):
    from nlptune.train.rundir import refuse_run_contents

    run = finished_layout(tmp_path / "run")
    with pytest.raises(NlptuneError, match=rf"^{run / 'best'} \(the out\) is the saved model folder .*best; .* -> "
                                           "use a fresh folder$"):
        refuse_run_contents(run / "best", "(the out)", fix="use a fresh folder")
    with pytest.raises(NlptuneError, match=r"is inside the run directory .*run; .* -> fix"):
        refuse_run_contents(run / "reports", "(the out)", fix="fix", allow=[run])  # only the run's top folder
    with pytest.raises(NlptuneError, match=r"is the run directory .*run; .* -> fix"):
        refuse_run_contents(run, "(the out)", fix="fix")
    refuse_run_contents(run, "(the out)", fix="fix", allow=[tmp_path / "." / "run"])  # another spelling of it
    refuse_run_contents(tmp_path / "reports", "(the out)", fix="fix")


@pytest.mark.parametrize("where, words", [
    ("run", "is the run directory"),  # a finished run, given as output_dir: its files must stay its own
    ("run/best", "is the saved model folder"),
    ("run/checkpoints", "is inside the run directory"),
    ("run/plots/lr", "is inside the run directory"),  # not made yet: still inside the run
    ("notes", "already holds files lr-find did not write (a.txt, b.txt, c.txt and 1 more)"),
    ("notes/a.txt", "is a file, not a folder"),
])
def test_lr_find_refuses_an_output_dir_it_did_not_make_before_training(tmp_path, monkeypatch, where, words):
    from nlptune.recipes.run import load_run_config
    from nlptune.train import lr_find

    finished_layout(tmp_path / "run")
    (tmp_path / "notes").mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (tmp_path / "notes" / name).write_text("mine")
    before = tree(tmp_path)

    def no_training(config):
        raise AssertionError("the range test started")

    monkeypatch.setattr(lr_find, "_setup", no_training)
    with pytest.raises(NlptuneError) as caught:
        lr_find.lr_range_test(load_run_config([]), steps=100, output_dir=tmp_path / where)
    message = str(caught.value)
    assert words in message and str(tmp_path / where) in message and "output_dir" in message
    assert "leave output_dir unset" in message and "new or empty folder" in message
    assert tree(tmp_path) == before  # nothing written, no folder made


@pytest.mark.parametrize("contents", [[], ["lr_find.json", "lr_find.png", LOCK_FILE, ".lr_find.png.123-abcd.tmp"]])
def test_lr_find_takes_a_new_or_empty_folder_or_an_earlier_lr_finds(tmp_path, monkeypatch, contents):
    from nlptune.recipes.run import load_run_config
    from nlptune.train import lr_find

    folder = tmp_path / "lr"
    folder.mkdir()
    for name in contents:
        (folder / name).write_text("{}" if name != LOCK_FILE else "")
    lr_find.check_output_dir(folder)
    lr_find.check_output_dir(tmp_path / "new" / "lr")

    def no_training(config):
        raise AssertionError("the range test started")

    monkeypatch.setattr(lr_find, "_setup", no_training)
    with pytest.raises(AssertionError, match="range test started"):  # the checks passed: the test would run
        lr_find.lr_range_test(load_run_config([]), steps=100, output_dir=tmp_path / "new" / "lr")
    assert not (tmp_path / "new" / "lr").exists()  # stopped before writing: the folder it made is gone


# --------------------------------------------------------------------------------------- predict --output


def test_predict_output_checks(tmp_path, monkeypatch):
    from nlptune.commands.predict import check_output

    monkeypatch.chdir(tmp_path)
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a"}\n')
    with pytest.raises(NlptuneError, match="is the --input file"):
        check_output("./in.jsonl", str(source), overwrite=True)  # another spelling of the same path
    (tmp_path / "hard.jsonl").hardlink_to(source)
    with pytest.raises(NlptuneError, match="is the --input file"):
        check_output("hard.jsonl", "in.jsonl", overwrite=True)
    (tmp_path / "soft.jsonl").symlink_to(source)
    with pytest.raises(LinkError):
        check_output("soft.jsonl", "in.jsonl", overwrite=True)
    (tmp_path / "old.jsonl").write_text("keep\n")
    with pytest.raises(NlptuneError, match="already exists.*--overwrite"):
        check_output("old.jsonl", "in.jsonl", overwrite=False)
    check_output("old.jsonl", "in.jsonl", overwrite=True)
    check_output("new/folder/out.jsonl", "in.jsonl", overwrite=False)
    assert (tmp_path / "new" / "folder").is_dir()
    assert source.read_text() == '{"text": "a"}\n' and (tmp_path / "old.jsonl").read_text() == "keep\n"


def test_predict_output_never_goes_among_a_runs_files(tmp_path, monkeypatch):
    """--output inside best/ (even its nlptune_task.json with --overwrite), checkpoints/, an export, another run's
    folder or over the run's config.yaml is refused before anything is written; beside the predicted run's files
    it is fine."""
    from nlptune.commands.predict import check_output
    from nlptune.data.sources import TASK_FILE

    monkeypatch.chdir(tmp_path)
    run, other = finished_layout(tmp_path / "run"), finished_layout(tmp_path / "other")
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / TASK_FILE).write_text("{}")
    before = tree(tmp_path)
    for output, said in ((run / "best" / TASK_FILE, "is the saved model folder"),
                         (run / "best" / "new" / "p.jsonl", "is inside the saved model folder"),
                         (run / "checkpoints" / "p.jsonl", "is inside the run directory"),
                         (tmp_path / "export" / "p.jsonl", "is the saved model folder"),
                         (other / "p.jsonl", "is the run directory"),
                         (run / "config.yaml", "is the file config.yaml of the run directory"),
                         ("run/metrics.json", "is the file metrics.json of the run directory")):
        with pytest.raises(NlptuneError, match=said) as caught:
            check_output(str(output), None, overwrite=True, run_dir="run")
        assert "write the predictions outside runs' best/" in str(caught.value)
    assert tree(tmp_path) == before  # nothing written, no folder made
    check_output(str(run / "predictions.jsonl"), None, overwrite=False, run_dir=str(tmp_path / "." / "run"))


def test_export_folders_never_go_into_a_saved_model_or_mix_with_other_files(tmp_path):
    """An ONNX export folder must be new, empty or an earlier export (replaced as a whole), never inside a saved
    model or a run's own folders; an hf copy must be a new folder outside them too."""
    from nlptune.inference.export import check_onnx_folder, export_hf

    run = finished_layout(tmp_path / "run")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    (run / "onnx").mkdir()
    for name in ("model.onnx", "nlptune_task.json", "tokenizer.json", "thresholds.json"):
        (run / "onnx" / name).write_text("{}")
    other = finished_layout(tmp_path / "other")
    before = tree(tmp_path)
    check_onnx_folder(run / "onnx")  # an earlier export: replaced
    check_onnx_folder(run / "onnx", run)  # the run's own
    with pytest.raises(NlptuneError, match=re.escape(f"holds the export of the run {run}, which would be lost")):
        check_onnx_folder(run / "onnx", other)  # another run's export
    check_onnx_folder(tmp_path / "fresh")
    for folder, said in ((tmp_path / "notes", "already holds files an ONNX export does not write (keep.txt)"),
                         (run / "best", "best is the saved model folder"),
                         (run / "best" / "onnx", "onnx lies inside the saved model folder"),
                         (run / "checkpoints" / "onnx", "lies inside checkpoints/ of the run"),
                         (run / "onnx" / "sub", "lies inside the saved model folder"),
                         (tmp_path / "notes" / "keep.txt", "is a file, not a folder")):
        with pytest.raises(NlptuneError, match=re.escape(said)):
            check_onnx_folder(folder)
    for output, said in ((run / "best" / "copy", "lies inside the saved model folder"),
                         (run / "plots" / "copy", "lies inside plots/ of the run"),
                         (tmp_path / "notes", "already exists")):
        with pytest.raises(NlptuneError, match=said):
            export_hf(run, output)
    assert tree(tmp_path) == before
    private = tmp_path / "private.txt"
    private.write_text("not the model's")
    (run / "best" / "extra.json").symlink_to(private)  # a link planted in best/: its target never leaves in a copy
    with pytest.raises(NlptuneError, match="is a symbolic link inside the saved model folder"):
        export_hf(run, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_resume_command_keeps_the_overrides():
    from nlptune.commands.train import resume_command

    command = resume_command(["model=bag", "trainer.report_to=[]", "output_dir=old", "resume=auto"], Path("r un"))
    assert command == "nlptune train model=bag 'trainer.report_to=[]' 'output_dir=r un' resume=auto"


def test_a_write_error_names_the_command_that_continues_the_run_only_when_there_is_a_run(tmp_path, monkeypatch):
    """`output_dir=/dev/null` ended with "once that is fixed, start the run with: ... output_dir=/dev/null
    resume=auto", the same path again."""
    import errno

    import nlptune.train.loop as loop
    from nlptune.commands.train import train_config
    from nlptune.config.errors import NlptuneError
    from nlptune.utils.files import DiskError

    def failing(run_dir):
        def run(config):
            err = DiskError(run_dir, errno.ENOSPC)
            err.run_dir = run_dir
            raise err
        return run

    (tmp_path / "a file").write_text("")
    (tmp_path / "run" / "checkpoints" / "step-00000010").mkdir(parents=True)
    for run_dir, said in ((tmp_path / "a file", None), (tmp_path / "run", "continue the run from the last one")):
        monkeypatch.setattr(loop, "run", failing(run_dir))
        with pytest.raises(NlptuneError) as info:
            train_config(None, ["model=bag"])
        assert ("resume=auto" in str(info.value)) == bool(said) and (said or "cannot write") in str(info.value)


RACE = """
import sys, time
from pathlib import Path
from nlptune.utils.lock import FolderLock, LockedError
root, start = Path(sys.argv[1]), float(sys.argv[2])
won = []
for i in range(int(sys.argv[3])):
    while time.time() < start + 0.02 * i:  # both processes reach each folder at the same moment
        pass
    try:
        FolderLock(root / str(i)).acquire()  # held (never released) until the process ends
        won.append(i)
    except LockedError:
        pass
print(" ".join(map(str, won)), flush=True)
sys.stdin.read()  # alive until the test says so: a lock of an ended process is stale, and rightly taken over
"""


def test_two_processes_taking_a_lock_together_never_both_hold_it(tmp_path):
    """A lock file is never seen empty: one read between an exclusive create and the write of its holder looked
    abandoned and was taken over, so two runs started together wrote into one run directory."""
    folders = 150
    for i in range(folders):
        (tmp_path / str(i)).mkdir()
    start = time.time() + 1.5  # after both interpreters have imported nlptune
    racers = [subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path), str(start), str(folders)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    # both report before either ends: on a loaded machine one may lag behind the other by many folders
    won = [set(map(int, racer.stdout.readline().split())) for racer in racers]
    for racer in racers:
        racer.communicate(timeout=60)
    assert not won[0] & won[1]  # no folder held by both
    assert len(won[0] | won[1]) == folders  # and none refused to both


def test_default_run_directories_of_runs_launched_together_differ(tmp_path, monkeypatch):
    """Runs started in the same second (``for s in 1 2 3; do nlptune train seed=$s & done``) each get their own
    default directory instead of all but one being refused."""
    from types import SimpleNamespace

    from nlptune.train import rundir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rundir.time, "strftime", lambda _format: "20260101-100000")
    run = SimpleNamespace(task=SimpleNamespace(name="sst2"), model=SimpleNamespace(name="bag"))
    assert rundir.default_output_dir(run) == Path("runs/sst2-bag/20260101-100000")  # a name only
    assert not (tmp_path / "runs").exists()
    made = [rundir.default_output_dir(run, make=True) for _ in range(3)]
    assert [p.name for p in made] == ["20260101-100000", "20260101-100000-2", "20260101-100000-3"]
    assert all(p.is_dir() and not os.listdir(p) for p in made)
    with pytest.raises(ValueError):
        with rundir.claim(made[1], made=True):
            raise ValueError("a data error")
    assert not made[1].exists()  # made for the run, left empty: removed


def test_a_new_run_may_sit_beside_a_sweeps_best_model_but_not_inside_a_model_or_a_runs_own_folders(tmp_path):
    from nlptune.data.sources import TASK_FILE
    from nlptune.train.rundir import refuse_nested_run
    from nlptune.utils.errors import NlptuneError

    sweep = tmp_path / "sweep"
    (sweep / "best").mkdir(parents=True)
    (sweep / "best" / TASK_FILE).write_text("{}")
    (sweep / "metrics.jsonl").write_text("")
    refuse_nested_run(sweep / "trial-0003")  # a sweep's trials live inside it, beside the best model it copies
    refuse_nested_run(tmp_path / "elsewhere")
    for inside, said in ((sweep / "best", "is the saved model folder"), (sweep / "best" / "x" / "y", "lies inside"),
                         (sweep / "checkpoints" / "z", "checkpoints/ of the run"), (sweep / "plots", "plots/ of")):
        with pytest.raises(NlptuneError, match=said):
            refuse_nested_run(inside)
    (tmp_path / "link").symlink_to(sweep / "best")  # a linked parent does not hide the model folder
    with pytest.raises(NlptuneError, match="saved model folder"):
        refuse_nested_run(tmp_path / "link" / "run")


@pytest.mark.parametrize("atol", [-1.0, float("nan"), float("inf"), float("-inf")])
def test_an_export_tolerance_no_check_can_pass_or_that_checks_nothing_is_refused_before_loading(atol, tmp_path):
    from nlptune.inference.export import check_tolerance, export_onnx
    from nlptune.utils.errors import NlptuneError

    with pytest.raises(NlptuneError, match="is not a tolerance"):
        check_tolerance(atol)
    with pytest.raises(NlptuneError, match="is not a tolerance"):  # before the (missing) run is read
        export_onnx(tmp_path / "no-run", atol=atol)
    check_tolerance(0.0)
    check_tolerance(1e-4)
