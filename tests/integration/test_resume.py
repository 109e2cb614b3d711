"""Exact resume after SIGKILL (one process): killed at a mid-epoch step, at an epoch boundary and during a
checkpoint write, each time resumed with resume=auto, the run ends with the parameters and metrics of an
uninterrupted run, bit for bit (torch.equal). Dropout is on, gradients are accumulated over 2 batches, and the
weights of the evaluations from a quarter of the steps on are averaged (trainer.average_from: a running sum that the
checkpoints carry).

The killed process freezes itself at the exact checkpoint event (tests/integration/killpoint.py wraps
nlptune's checkpoint functions from outside), then the test SIGKILLs it: the kill point is exact on any machine.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
import killpoint  # noqa: E402
from nlptune.train import checkpoint  # noqa: E402

from conftest import child_env  # noqa: E402

KILLPOINT = Path(__file__).parent / "killpoint.py"
# 64 rows, batches of 6 -> 11 batches an epoch; accumulation 2 -> 6 optimizer steps an epoch (the last one
# of a single batch), 2 epochs -> 12 steps; a checkpoint every 2 steps (step 6 ends epoch 0)
ARGS = ["task=sst2", "task.max_train_samples=64", "task.max_eval_samples=64", "model=lstm",
        "model.embedding_dim=16", "model.hidden_size=16", "model.dropout=0.3", "model.embedding_dropout=0.1",
        "trainer.batch_size=6", "trainer.gradient_accumulation_steps=2", "trainer.max_epochs=2",
        "trainer.log_every=1", "trainer.save_every=2", "trainer.keep_last=100", "trainer.report_to=[]",
        "trainer.average_from=0.25"]
SUMMARY_KEYS = ("best", "best_step", "steps", "train_samples", "epochs", "stopped_early", "weight_average")


def _env(cache_dir, data_dir) -> dict:
    return child_env(cache_dir, {"NLPTUNE_DATA_DIR": str(data_dir)})


def kill_at(spec: str, args: list[str], env: dict, log: Path) -> None:
    """Run ``nlptune train *args`` until the kill point ``spec``, then SIGKILL it."""
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(KILLPOINT), spec, "--quiet", "train", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            killpoint.wait_stopped(proc)
        except AssertionError as err:
            killpoint.kill_all(proc)
            raise AssertionError(f"{err}\n{log.read_text()[-3000:]}") from None
        killpoint.kill_all(proc)


def newest(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("step-*"))[-1]


def assert_same_tensors(a: Path, b: Path) -> None:
    left, right = load_file(str(a)), load_file(str(b))
    assert left.keys() == right.keys()
    for key in left:
        assert torch.equal(left[key], right[key]), f"{a.name}: {key} differs"


def assert_same_run(run: Path, reference: Path, step: int | None = None) -> None:
    """The checkpoint of ``step`` (default: the final one) and, for a finished run, all results agree."""
    name = f"step-{step:08d}" if step else newest(reference).name
    for file in ("model.safetensors", checkpoint.AVERAGE_SUM):
        if (reference / "checkpoints" / name / file).exists():
            assert_same_tensors(run / "checkpoints" / name / file, reference / "checkpoints" / name / file)
    ours, theirs = (checkpoint.load_state(r / "checkpoints" / name / "optimizer.safetensors") for r in (run, reference))
    for index, state in theirs["state"].items():
        for key, value in state.items():
            assert torch.equal(ours["state"][index][key], value), f"optimizer state {index}.{key} differs"
    ranks = sorted(p.name for p in (reference / "checkpoints" / name).glob("rank-*.safetensors"))
    for rank in ranks:  # each process's RNG: the dropout masks still to come
        rng = [checkpoint.load_state(r / "checkpoints" / name / rank)["rng"]["torch"] for r in (run, reference)]
        assert torch.equal(*rng), f"the torch RNG state of {rank} differs"
    if step is None:
        assert_same_tensors(run / "best" / "model.safetensors", reference / "best" / "model.safetensors")
        assert (run / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
        ours, theirs = (json.loads((r / "metrics.json").read_text()) for r in (run, reference))
        assert {k: ours.get(k) for k in SUMMARY_KEYS} == {k: theirs.get(k) for k in SUMMARY_KEYS}  # absent: None


@pytest.fixture(scope="module")
def reference(run_cli, data_dir, tmp_path_factory) -> Path:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("resume") / "reference"
    result = run_cli(["--quiet", "train", *ARGS, f"output_dir={out}"], env={"NLPTUNE_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_killed_three_times_then_resumed_equals_uninterrupted(reference, run_cli, data_dir, cache_dir, tmp_path):
    run, env = tmp_path / "run", _env(cache_dir, data_dir)
    args = [*ARGS, f"output_dir={run}"]
    # 1. killed right after the checkpoint of step 4, in the middle of epoch 0 (8 of 11 batches)
    kill_at("after_save:4", args, env, tmp_path / "kill1.log")
    state = json.loads((newest(run) / "train_state.json").read_text())
    assert (state["step"], state["epoch"], state["batches_done"]) == (4, 0, 8)
    # 2. resumed, then killed after the checkpoint of step 6, the end of epoch 0
    kill_at("after_save:6", [*args, "resume=auto"], env, tmp_path / "kill2.log")
    state = json.loads((newest(run) / "train_state.json").read_text())
    assert (state["step"], state["epoch"], state["batches_done"]) == (6, 0, state["batches_per_epoch"])
    assert_same_run(run, reference, step=6)  # the mid-epoch resume already agrees
    # 3. resumed, then killed while step 10 is being written: its files are there, its manifest is not
    kill_at("before_manifest:10", [*args, "resume=auto"], env, tmp_path / "kill3.log")
    assert newest(run).name == "step-00000008"
    partial = run / "checkpoints" / ".tmp-step-00000010"
    assert (partial / "model.safetensors").is_file() and not (partial / "manifest.json").exists()
    assert_same_run(run, reference, step=8)  # the epoch-boundary resume agrees
    assert json.loads((newest(run) / "train_state.json").read_text())["average"]["count"] == 1  # step 6's weights
    # 4. resumed to the end from step 8, skipping the incomplete checkpoint with a log line
    result = run_cli(["--quiet", "train", *args, "resume=auto"], env={"NLPTUNE_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"skipping incomplete checkpoint {partial}" in result.stderr
    assert_same_run(run, reference)
    assert json.loads((run / "metrics.json").read_text())["weight_average"]["evaluations"] == 2  # steps 6 and 12
    assert not partial.exists()  # removed once a newer checkpoint was complete

    # resuming a finished run does nothing and says so
    before = (run / "metrics.json").stat().st_mtime_ns
    result = run_cli(["--quiet", "train", *args, "resume=auto"], env={"NLPTUNE_DATA_DIR": str(data_dir)})
    assert result.returncode == 0 and "already finished at step 12; nothing to do" in result.stderr
    assert (run / "metrics.json").stat().st_mtime_ns == before


def cli_in_process(args: list[str], data_dir: Path, capsys, monkeypatch) -> tuple[int, str]:
    """``nlptune *args`` in this process (for runs refused before training: no interpreter start-up)."""
    from nlptune.cli import main

    monkeypatch.setenv("NLPTUNE_DATA_DIR", str(data_dir))
    with pytest.raises(SystemExit) as done:
        main(["--quiet", *args])
    return done.value.code, capsys.readouterr().err


def test_resume_with_changed_config_is_refused_with_a_diff(reference, data_dir, capsys, monkeypatch):
    before = sorted(p.name for p in (reference / "checkpoints").iterdir())
    metrics = (reference / "metrics.jsonl").read_bytes()
    code, err = cli_in_process(["train", *ARGS, f"output_dir={reference}", "resume=auto", "optimizer.lr=0.01",
                                "trainer.batch_size=8", "seed=7"], data_dir, capsys, monkeypatch)
    assert code == 2
    for line in ("optimizer.lr: 0.002 (checkpoint) -> 0.01 (now)", "trainer.batch_size: 6 (checkpoint) -> 8 (now)",
                 "seed: 42 (checkpoint) -> 7 (now)", "resume_allow_changes=true"):
        assert line in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (reference / "checkpoints").iterdir()) == before
    assert (reference / "metrics.jsonl").read_bytes() == metrics
    # a fresh run into a directory holding checkpoints would mix two runs: refused too
    code, err = cli_in_process(["train", *ARGS, f"output_dir={reference}"], data_dir, capsys, monkeypatch)
    assert code == 2 and "add resume=auto to continue it" in err


def test_allowed_change_continues_and_is_recorded(reference, run_cli, data_dir, tmp_path):
    import shutil

    run = tmp_path / "longer"
    shutil.copytree(reference, run)
    result = run_cli(["--quiet", "train", *ARGS, f"output_dir={run}", "resume=auto", "trainer.max_epochs=3",
                      "resume_allow_changes=true"], env={"NLPTUNE_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = json.loads((run / "resume_changes.json").read_text())
    assert recorded[-1]["changes"] == [{"key": "trainer.max_epochs", "checkpoint": 2, "now": 3}]
    assert json.loads((run / "metrics.json").read_text())["steps"] == 18


def test_non_finite_loss_stops_with_step_and_lr_and_keeps_the_last_checkpoint(run_cli, data_dir, tmp_path):
    run = tmp_path / "diverged"
    # a learning rate of 1e38 without clipping: step 1 is finite, its update overflows the weights
    result = run_cli(["--quiet", "train", "task=sst2", "task.max_train_samples=64", "task.max_eval_samples=64",
                      "model=bag", "model.embedding_dim=16", "model.hidden_size=16", "trainer.batch_size=8",
                      "trainer.max_epochs=1", "trainer.log_every=4", "trainer.save_every=1", "trainer.report_to=[]",
                      "optimizer=sgd", "optimizer.lr=1e38", "trainer.max_grad_norm=0", f"output_dir={run}"],
                     env={"NLPTUNE_DATA_DIR": str(data_dir)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the training loss became NaN or infinite at step 2 (epoch 0, learning rate 8.75e+37)" in result.stderr
    assert "hint: lower optimizer.lr" in result.stderr
    assert [p.name for p in checkpoint.by_step(run / "checkpoints")] == ["step-00000001"]
    checkpoint.verify(run / "checkpoints" / "step-00000001")  # intact
    assert not (run / "metrics.json").exists()


def test_tampered_checkpoint_is_refused_by_the_cli_and_its_payload_never_runs(reference, data_dir, tmp_path, capsys,
                                                                             monkeypatch):
    """A pickle payload (a torch.save file) as optimizer.safetensors, with the manifest rewritten to match: the
    safetensors reader refuses it; nothing is ever unpickled."""
    import hashlib
    import io
    import shutil

    run = tmp_path / "tampered"
    shutil.copytree(reference, run, ignore=shutil.ignore_patterns("metrics.json"))  # unfinished: resume loads it
    last = newest(run)
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    buffer = io.BytesIO()
    torch.save(Payload(), buffer)
    (last / "optimizer.safetensors").write_bytes(buffer.getvalue())
    manifest = json.loads((last / "manifest.json").read_text())
    manifest["files"]["optimizer.safetensors"]["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    (last / "manifest.json").write_text(json.dumps(manifest))
    code, err = cli_in_process(["train", *ARGS, f"output_dir={run}", "resume=auto"], data_dir, capsys, monkeypatch)
    assert code == 2, err[-3000:]
    assert f"{last / 'optimizer.safetensors'} is not a valid nlptune checkpoint state" in err
    assert "Traceback" not in err and not marker.exists()
