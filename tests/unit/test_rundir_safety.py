"""Run-directory safety, without training: no write through a link, the folder lock, finished runs never
overwritten, OS errors named with their file, and predict's --output checks."""
from __future__ import annotations

import errno
import hashlib
import json
import os
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


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_bytes(path, b"old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


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


def test_resume_command_keeps_the_overrides():
    from nlptune.commands.train import resume_command

    command = resume_command(["model=bag", "trainer.report_to=[]", "output_dir=old", "resume=auto"], Path("r un"))
    assert command == "nlptune train model=bag 'trainer.report_to=[]' 'output_dir=r un' resume=auto"


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
print(" ".join(map(str, won)))
"""


def test_two_processes_taking_a_lock_together_never_both_hold_it(tmp_path):
    """A lock file is never seen empty: one read between an exclusive create and the write of its holder looked
    abandoned and was taken over, so two runs started together wrote into one run directory."""
    folders = 150
    for i in range(folders):
        (tmp_path / str(i)).mkdir()
    start = time.time() + 1.5  # after both interpreters have imported nlptune
    racers = [subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path), str(start), str(folders)],
                               stdout=subprocess.PIPE, text=True) for _ in range(2)]
    won = [set(map(int, racer.communicate(timeout=60)[0].split())) for racer in racers]
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
