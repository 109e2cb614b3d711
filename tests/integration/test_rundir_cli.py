"""Run-directory safety through the real CLI on the offline demo task: planted links, finished runs, the lock,
predict clobbering, a full disk and Ctrl-C. Each case asserts the exit code, the message and that nothing
was written or lost."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nlptune.utils.lock import LOCK_FILE
from nlptune.utils.processes import process_start

TINY = ["model=bag", "model.embedding_dim=8", "model.hidden_size=8", "trainer.report_to=[]"]


def train(run_cli, out: Path, *extra: str, steps: int = 5):
    return run_cli(["--quiet", "train", *TINY, f"trainer.max_steps={steps}", f"output_dir={out}", *extra])


def hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (the lock file included, when there is one)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def refused(result, *words: str) -> None:
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr[-3000:]


@pytest.fixture(scope="module")
def finished_run(run_cli, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    result = train(run_cli, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (out / LOCK_FILE).exists()  # released at the end
    assert not list(out.rglob("*.tmp")), "no temporary file left behind"
    return out


def test_a_planted_link_is_refused_and_its_target_unchanged(run_cli, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").symlink_to(victim)
    refused(train(run_cli, out), "metrics.jsonl", "symbolic link", "never writes through a link")
    assert victim.read_text() == "someone else's file\n"
    assert sorted(os.listdir(out)) == ["metrics.jsonl"]  # nothing else written, the lock released


def test_a_finished_run_is_never_overwritten(run_cli, finished_run):
    before = hashes(finished_run)
    refused(train(run_cli, finished_run), str(finished_run), "already holds a finished run", "output_dir",
            "resume=auto")
    assert hashes(finished_run) == before


def test_a_new_run_is_never_put_inside_a_saved_model_or_a_runs_own_folders(run_cli, finished_run):
    """best/ is loaded, exported and copied as a whole and checkpoints/ is pruned: a fresh run there (or below) is
    refused before anything is made or locked, and the finished run is unchanged."""
    before = hashes(finished_run)
    for out in (finished_run / "best", finished_run / "best" / "new", finished_run / "checkpoints" / "new",
                finished_run / "plots" / "new"):
        refused(train(run_cli, out), f"output_dir {out}", "give output_dir a folder outside saved models")
        assert not out.exists() or out.name == "best"
    assert hashes(finished_run) == before


def test_a_finished_run_without_checkpoints_is_never_overwritten(run_cli, finished_run, tmp_path):
    import shutil

    out = tmp_path / "no-checkpoints"
    shutil.copytree(finished_run, out)
    shutil.rmtree(out / "checkpoints")
    before = hashes(out)
    refused(train(run_cli, out), "already holds a finished run")
    refused(train(run_cli, out, "resume=auto"), "finished run", "nothing to continue")
    assert hashes(out) == before


def test_resuming_a_finished_run_reports_it(run_cli, finished_run):
    before = hashes(finished_run)
    result = train(run_cli, finished_run, "resume=auto")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "already finished" in result.stderr
    assert hashes(finished_run) == before


def test_a_run_directory_held_by_a_live_process_is_refused(run_cli, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock = {"host": socket.gethostname(), "pid": holder.pid, "start": process_start(holder.pid),
                "since": "2026-01-01 09:00:00", "command": "nlptune train"}
        (out / LOCK_FILE).write_text(json.dumps(lock))
        refused(train(run_cli, out), f"pid {holder.pid}", socket.gethostname(), "since 2026-01-01 09:00:00")
        refused(train(run_cli, out, "resume=auto"), f"pid {holder.pid}")  # a resume waits as well
        assert json.loads((out / LOCK_FILE).read_text()) == lock
        assert sorted(os.listdir(out)) == [LOCK_FILE]
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over(run_cli, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout),
                                             "start": "1", "since": "yesterday"}))
    result = train(run_cli, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stale lock" in result.stderr
    assert (out / "metrics.json").is_file() and not (out / LOCK_FILE).exists()


def test_predict_never_clobbers(run_cli, finished_run, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a good film"}\n{"text": "a dull story"}\n')
    before = source.read_bytes()
    refused(run_cli(["predict", finished_run, "--input", source, "--output", source]), "is the --input file")
    (tmp_path / "alias.jsonl").symlink_to(source)
    refused(run_cli(["predict", finished_run, "--input", source, "--output", tmp_path / "alias.jsonl"]),
            "symbolic link")
    assert source.read_bytes() == before
    out = tmp_path / "new" / "out.jsonl"  # a missing folder is created
    assert run_cli(["predict", finished_run, "--input", source, "--output", out]).returncode == 0
    written = out.read_bytes()
    assert len(written.splitlines()) == 2
    refused(run_cli(["predict", finished_run, "--input", source, "--output", out]), "already exists", "--overwrite")
    assert out.read_bytes() == written
    assert run_cli(["predict", finished_run, "--input", source, "--output", out, "--overwrite"]).returncode == 0


def test_predict_and_export_never_write_into_a_runs_model(run_cli, finished_run, tmp_path):
    """predict --output over best/nlptune_task.json (with --overwrite) is refused; an ONNX export replaces an earlier
    export as a whole (no stale file of another model, e.g. its thresholds.json, is left beside the new one)."""
    pytest.importorskip("onnxruntime")
    before = hashes(finished_run)
    source = tmp_path / "in.txt"
    source.write_text("a good film\n")
    task_file = finished_run / "best" / "nlptune_task.json"
    refused(run_cli(["predict", finished_run, "--input", source, "--output", task_file, "--overwrite"]),
            "is the saved model folder", "write the predictions outside")
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    for name in ("model.onnx", "thresholds.json"):  # an earlier export of a multi-label model
        (onnx / name).write_text("{}")
    result = run_cli(["export", finished_run, "--output", onnx])
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (onnx / "thresholds.json").exists() and (onnx / "model.onnx").stat().st_size > 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "onnx"]  # no temporary folder left
    assert hashes(finished_run) == before


def mounted_tmpfs(mount: Path, options: str):
    """Mount a tmpfs at ``mount`` (root only; skipped where mounting is not permitted); yields, then unmounts."""
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    """A 300 KiB tmpfs."""
    yield from mounted_tmpfs(tmp_path / "disk", "size=300k")


@pytest.fixture
def readonly_disk(tmp_path):
    """A read-only tmpfs."""
    yield from mounted_tmpfs(tmp_path / "readonly", "ro,size=64k")


def test_a_read_only_output_dir_ends_in_one_message(run_cli, readonly_disk):
    refused(train(run_cli, readonly_disk / "run"), f"cannot write {readonly_disk / 'run'}", "read-only")
    assert os.listdir(readonly_disk) == []


def test_a_full_disk_during_a_checkpoint_ends_in_one_message(run_cli, small_disk):
    from nlptune.train import checkpoint

    out = small_disk / "run"
    result = train(run_cli, out, "trainer.save_every=1", "trainer.keep_last=1000", steps=1000)
    refused(result, "cannot write", "no space left on the device", "checkpoints already written are intact",
            f"output_dir={out} resume=auto")
    latest = checkpoint.find_latest(out)
    assert latest is not None and checkpoint.step_of(latest) >= 1
    checkpoint.verify(latest)  # every file matches its sha256
    assert checkpoint.read_train_state(latest)["step"] == checkpoint.step_of(latest)
    assert not list((out / "checkpoints").glob(".tmp-*")) and not list(out.rglob("*.tmp"))
    assert not (out / LOCK_FILE).exists()


def interrupted(args: list[str], env: dict, cwd: Path, started) -> subprocess.CompletedProcess:
    """Run ``nlptune --quiet *args``, send it Ctrl-C (SIGINT) once ``started()`` is true (or after 120 s) and
    return how it ended."""
    # SIGINT back to its default in the child: a test run started in the background (`pytest &`) inherits it
    # ignored, and Python keeps an inherited "ignore"
    proc = subprocess.Popen([sys.executable, "-m", "nlptune", "--quiet", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not started():
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:  # never leave a training running behind a failed test
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def test_ctrl_c_says_how_to_resume_and_releases_the_lock(make_env, tmp_path):
    out = tmp_path / "run"
    result = interrupted(["train", *TINY, "trainer.max_steps=1000000", "trainer.save_every=10", f"output_dir={out}"],
                         make_env(), tmp_path, lambda: list((out / "checkpoints").glob("step-*")))
    assert f"output_dir={out} resume=auto" in result.stderr and "trainer.max_steps=1000000" in result.stderr
    assert not (out / LOCK_FILE).exists()


def test_ctrl_c_during_a_sweep_says_how_to_continue_it(make_env, tmp_path):
    sweep = tmp_path / "sweep"
    begun = []

    def in_the_first_trials() -> bool:  # two seconds after the sweep wrote its plan
        if (sweep / "sweep.json").exists() and not begun:
            begun.append(time.time())
        return bool(begun) and time.time() > begun[0] + 2

    result = interrupted(["tune", *TINY, "trainer.max_steps=20", "tune.n_trials=1000", f"tune.dir={sweep}"],
                         make_env(), tmp_path, in_the_first_trials)
    assert "Continue it with:\n  nlptune tune " in result.stderr and f"tune.dir={sweep} resume=auto" in result.stderr


def test_output_folders_of_export_and_lr_find_never_hold_links(run_cli, finished_run, tmp_path):
    victim = tmp_path / "victim.onnx"
    victim.write_bytes(b"not yours")
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    (onnx / "model.onnx").symlink_to(victim)
    refused(run_cli(["export", finished_run, "--output", onnx]), "model.onnx", "symbolic link")
    (tmp_path / "hf-link").symlink_to(victim)
    refused(run_cli(["export", finished_run, "--format", "hf", "--output", tmp_path / "hf-link"]), "hf-link",
            "symbolic link")
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    (lr_dir / "lr_find.json").symlink_to(victim)
    refused(run_cli(["lr-find", *TINY, f"output_dir={lr_dir}"]), "lr_find.json", "symbolic link")
    assert victim.read_bytes() == b"not yours"


def test_compare_and_lr_find_never_write_into_a_run(run_cli, finished_run):
    """A run's own folders (best/, checkpoints/) and the run directory itself are no place for another command's
    output: refused in one message naming the folder, exit 2, nothing of the run changed."""
    before = hashes(finished_run)
    for output in (finished_run / "best", finished_run / "checkpoints", finished_run / "plots" / "cmp.png"):
        refused(run_cli(["compare", finished_run, "--output", output]), str(output.parent
                if output.suffix else output), "a fresh folder")
    refused(run_cli(["lr-find", *TINY, f"output_dir={finished_run}"]), f"{finished_run} (output_dir, the lr-find "
            "folder) is the run directory", "leave output_dir unset")
    refused(run_cli(["lr-find", *TINY, f"output_dir={finished_run / 'best'}"]), "is the saved model folder")
    refused(run_cli(["lr-find", *TINY, "--steps", "5"]), "--steps 5 is too few for a range test: at least 20 are "
            "needed, 100 or more recommended")
    assert hashes(finished_run) == before


def test_a_sweep_directory_held_by_another_command_is_refused(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    holder = subprocess.Popen(["sleep", "60"])
    try:
        (sweep / LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid,
                                                   "start": process_start(holder.pid), "since": "noon"}))
        refused(run_cli(["--quiet", "tune", *TINY, "trainer.max_steps=2", "tune.n_trials=1", f"tune.dir={sweep}"]),
                f"pid {holder.pid}", "sweep directory")
        assert sorted(os.listdir(sweep)) == [LOCK_FILE]  # nothing written: no plan, no journal
    finally:
        holder.kill()
        holder.wait()
