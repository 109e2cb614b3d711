"""Checkpoints: atomic layout, exact state round trip, and refusal of anything altered or unsafe.

A pickle payload that would create a marker file when unpickled is written into every state file of a
checkpoint; whether the manifest is left alone (hash mismatch) or rewritten to match (the safe loaders must
refuse), loading is refused and the marker never appears.
"""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nlptune.config.compose import load_run_config
from nlptune.train import checkpoint, resume
from nlptune.train.checkpoint import CheckpointError


class Payload:
    """Unpickling this calls open(marker, "w"): the file appearing means code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def payload_bytes(name: str, marker: Path) -> bytes:
    """The payload as an attacker would ship it: a torch.save file (a pickle in a zip) or a bare pickle."""
    if name.endswith(".pt") or "optimizer" in name or "rank" in name:
        buffer = io.BytesIO()
        torch.save(Payload(marker), buffer)
        return buffer.getvalue()
    return pickle.dumps(Payload(marker))


def fake_accelerator():
    """What checkpoint.save/load use of an Accelerator, for one process."""
    return SimpleNamespace(is_main_process=True, process_index=0, num_processes=1, scaler=None,
                           wait_for_everyone=lambda: None, unwrap_model=lambda model, **_: model)


def tiny(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.5), torch.nn.Linear(3, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    return model, optimizer, scheduler


def train_a_bit(model, optimizer, scheduler, steps: int = 3) -> None:
    for _ in range(steps):
        model(torch.randn(5, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()


def config_for(run_dir: Path, *extra: str):
    return load_run_config([f"output_dir={run_dir}", "resume=auto", *extra])


def write_checkpoint(run_dir: Path, step: int = 3, keep_last: int = 5, config=None) -> Path:
    model, optimizer, scheduler = tiny()
    train_a_bit(model, optimizer, scheduler)
    config = config or config_for(run_dir)
    state = {**resume.TrainState(step=step).to_json(), "finished": False, "num_processes": 1,
             "data_sha256": {"train": "a", "validation": "b"}, "config": resume.plain_config(config)}
    return checkpoint.save(run_dir / "checkpoints", step, fake_accelerator(), model=model, optimizer=optimizer,
                           scheduler=scheduler, best_state={k: v.clone() for k, v in model.state_dict().items()},
                           best_outputs=None, train_state=state, keep_last=keep_last,
                           rank_state={"rng": checkpoint.rng_state(), "loss_sum": torch.tensor(1.5),
                                       "loss_count": 2})


def rewrite_manifest(path: Path) -> None:
    """What an attacker who also edits the manifest would do: make every hash match again."""
    manifest = json.loads((path / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        entry["sha256"] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))


def load_everything(path: Path) -> None:
    """Every read the resume path makes of a checkpoint."""
    manifest = checkpoint.verify(path)
    checkpoint.read_train_state(path)
    model, optimizer, scheduler = tiny(1)
    checkpoint.load_weights(path, model)
    checkpoint.load_tensors(path, manifest, checkpoint.BEST_MODEL)
    checkpoint.load_states(path, manifest, fake_accelerator(), optimizer=optimizer, scheduler=scheduler)


def test_layout_is_complete_and_holds_no_pickle(tmp_path):
    path = write_checkpoint(tmp_path)
    assert path.name == "step-00000003"
    names = set(json.loads((path / "manifest.json").read_text())["files"])
    assert names == {"model.safetensors", "best_model.safetensors", "optimizer.safetensors",
                     "scheduler.safetensors", "rank-0.safetensors", "train_state.json"}
    for name in names - {"train_state.json"}:  # safetensors files: no pickle inside
        assert (path / name).read_bytes()[8:9] == b"{", name
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_weight_files_get_the_mode_every_file_of_the_run_gets(tmp_path, umask):
    """safetensors writes its files readable by their owner only: a run shared with a group shared all but its
    weights and optimizer state."""
    import os

    from nlptune.utils.weights import save_module

    before = os.umask(umask)
    try:
        path = write_checkpoint(tmp_path)
        save_module(torch.nn.Linear(2, 2), tmp_path / "best.safetensors")
    finally:
        os.umask(before)
    for file in [*path.glob("*.safetensors"), tmp_path / "best.safetensors"]:
        assert file.stat().st_mode & 0o777 == 0o666 & ~umask, file.name


def test_round_trip_restores_weights_optimizer_scheduler_and_every_rng(tmp_path):
    model, optimizer, scheduler = tiny()
    train_a_bit(model, optimizer, scheduler)
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    rng = checkpoint.rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(3))
    state = {**resume.TrainState(step=3).to_json(), "config": {}}
    path = checkpoint.save(tmp_path, 3, fake_accelerator(), model=model, optimizer=optimizer, scheduler=scheduler,
                           best_state=None, best_outputs=None, train_state=state, rank_state={"rng": rng},
                           keep_last=1)
    manifest = checkpoint.verify(path)
    other, other_opt, other_sched = tiny(seed=1)
    checkpoint.load_weights(path, other)
    rank_state = checkpoint.load_states(path, manifest, fake_accelerator(), optimizer=other_opt,
                                        scheduler=other_sched)
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    for index, values in optimizer.state_dict()["state"].items():
        for key, value in values.items():
            assert torch.equal(other_opt.state_dict()["state"][index][key], value)
    assert other_sched.state_dict()["last_epoch"] == 3 and other_sched.get_last_lr() == scheduler.get_last_lr()
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    checkpoint.set_rng_state(rank_state["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert again[:2] == expected[:2] and torch.equal(again[2], expected[2])


def test_payload_is_live(tmp_path):
    """The payload used below really runs code when unpickled the unsafe way (so the next tests can fail)."""
    marker = tmp_path / "ran"
    file = tmp_path / "evil.pt"
    file.write_bytes(payload_bytes(file.name, marker))
    subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(file)!r}, weights_only=False)"],
                   check=True)
    assert marker.exists()


STATE_FILES = ["model.safetensors", "best_model.safetensors", "optimizer.safetensors", "scheduler.safetensors",
               "rank-0.safetensors", "train_state.json"]


@pytest.mark.parametrize("name", STATE_FILES)
@pytest.mark.parametrize("manifest_rewritten", [False, True], ids=["hash-mismatch", "hash-rewritten"])
def test_pickle_payload_in_a_state_file_is_refused_and_never_runs(tmp_path, name, manifest_rewritten):
    path = write_checkpoint(tmp_path / "run")
    marker = tmp_path / "marker"
    (path / name).write_bytes(payload_bytes(name, marker))
    if manifest_rewritten:
        rewrite_manifest(path)
    with pytest.raises(CheckpointError) as err:
        load_everything(path)
    assert str(path / name) in str(err.value)
    if not manifest_rewritten:
        assert "does not match the sha256" in str(err.value)
    # the resume entry point refuses it as well (it verifies before reading anything)
    if not manifest_rewritten:
        with pytest.raises(CheckpointError):
            resume.plan(config_for(tmp_path / "run"), tmp_path / "run", 1)
    assert not marker.exists()


def test_flipped_byte_in_model_weights_is_refused_naming_the_file(tmp_path):
    path = write_checkpoint(tmp_path)
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01  # inside the last tensor: the file still parses, only the hash can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors does not match the sha256"):
        checkpoint.verify(path)


def test_incomplete_checkpoints_are_skipped_with_a_log_line(tmp_path, capsys):
    run = tmp_path / "run"
    complete = write_checkpoint(run, step=2)
    # a step folder whose manifest is missing (copied by hand, or a foreign tool) and an interrupted write
    broken = run / "checkpoints" / "step-00000009"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"partial")
    interrupted = run / "checkpoints" / ".tmp-step-00000011"
    interrupted.mkdir()
    assert checkpoint.find_latest(run) == complete
    err = capsys.readouterr().err
    assert f"skipping incomplete checkpoint {broken}" in err and f"skipping incomplete checkpoint {interrupted}" in err
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        checkpoint.verify(broken)


def test_keep_last_removes_old_checkpoints_only_after_the_new_one_is_complete(tmp_path):
    run = tmp_path / "run"
    for step in (2, 4, 6, 8):
        write_checkpoint(run, step=step, keep_last=2)
    assert [p.name for p in checkpoint.by_step(run / "checkpoints")] == ["step-00000008", "step-00000006"]


def test_config_diff_ignores_neutral_keys_and_lists_the_others(tmp_path):
    saved = resume.plain_config(config_for(tmp_path))
    now = resume.plain_config(config_for(tmp_path / "elsewhere", "trainer.log_every=7", "trainer.keep_last=9",
                                         "optimizer.lr=0.5", "model.dropout=0.1", "trainer.measure_cost=false"))
    keys = [change["key"] for change in resume.config_diff(saved, now)]
    assert keys == ["model.dropout", "optimizer.lr"]
    del saved["trainer"]["measure_cost"]  # a checkpoint from before the key: it resumes
    assert resume.config_diff(saved, resume.plain_config(config_for(tmp_path))) == []


def test_resume_refuses_config_changes_and_records_allowed_ones(tmp_path):
    run = tmp_path / "run"
    write_checkpoint(run)
    with pytest.raises(resume.ResumeError, match=r"optimizer.lr: 0.005 \(checkpoint\) -> 0.1 \(now\)"):
        resume.plan(config_for(run, "optimizer.lr=0.1"), run, 1)
    with pytest.raises(resume.ResumeError, match=r"num_processes: 1 \(checkpoint\) -> 2 \(now\)"):
        resume.plan(config_for(run), run, 2)
    plan = resume.plan(config_for(run, "optimizer.lr=0.1", "resume_allow_changes=true"), run, 1)
    resume.prepare_run_dir(plan)
    recorded = json.loads((run / resume.CHANGES_FILE).read_text())
    assert recorded[0]["changes"] == [{"key": "optimizer.lr", "checkpoint": 0.005, "now": 0.1}]


def test_resume_from_an_older_checkpoint_drops_the_later_timeline(tmp_path):
    run = tmp_path / "run"
    for step in (2, 4, 6):
        write_checkpoint(run, step=step)
    (run / "metrics.jsonl").write_text('{"step": 1}\n' * 3)
    older = run / "checkpoints" / "step-00000004"
    config = load_run_config([f"resume={older}"])
    plan = resume.plan(config, resume.target_dir(config), 1)
    assert (plan.checkpoint, plan.run_dir) == (older, run)
    resume.prepare_run_dir(plan)
    assert [p.name for p in checkpoint.by_step(run / "checkpoints")] == ["step-00000004", "step-00000002"]
    assert (run / "metrics.jsonl").read_text() == ""  # the checkpoints above recorded no metrics yet


def test_resume_from_a_run_directory_continues_its_newest_checkpoint(tmp_path):
    """resume=<run dir>: the run's own manifest.json (versions, command line) does not make it a checkpoint
    folder; its newest complete checkpoint is continued, in that run directory."""
    run = tmp_path / "run"
    for step in (2, 4):
        write_checkpoint(run, step=step)
    (run / "manifest.json").write_text('{"command": ["nlptune", "train"]}')
    (run / "config.yaml").write_text("seed: 42\n")
    config = load_run_config([f"resume={run}"])
    assert resume.target_dir(config) == run
    plan = resume.plan(config, resume.target_dir(config), 1)
    assert (plan.checkpoint, plan.run_dir) == (run / "checkpoints" / "step-00000004", run)
    plan = resume.plan(load_run_config([f"resume={run}", f"output_dir={run}"]), run, 1)
    assert plan.checkpoint == run / "checkpoints" / "step-00000004"


def test_a_checkpoint_written_before_task_kind_resumes_without_a_change():
    """Checkpoints of earlier versions hold task.problem_type; the current config task.kind: the same kind is
    no change, another kind is."""
    old = {"task": {"name": "sst2", "problem_type": "classification"}, "seed": 1}
    now = {"task": {"name": "sst2", "kind": "single_label", "problem_type": None}, "seed": 1}
    assert resume.config_diff(old, now) == []
    other = {"task": {"name": "sst2", "kind": "regression", "problem_type": None}, "seed": 1}
    assert [c["key"] for c in resume.config_diff(old, other)] == ["task.kind"]


def test_a_checkpoint_written_before_later_keys_resumes_without_a_change(tmp_path):
    """A checkpoint's config from before the imbalance, cost and lr-multiplier keys: as it behaved then, no change."""
    now = resume.plain_config(config_for(tmp_path))
    old = {section: dict(values) if isinstance(values, dict) else values for section, values in now.items()}
    for key in ("class_weights", "pos_weight", "loss", "focal_gamma", "label_smoothing", "measure_cost"):
        del old["trainer"][key]
    del old["optimizer"]["head_lr_scale"], old["optimizer"]["layer_decay"], old["distill"]
    assert resume.config_diff(old, now) == []
    weighted = {**now, "trainer": {**now["trainer"], "class_weights": "balanced"}}
    assert [c["key"] for c in resume.config_diff(old, weighted)] == ["trainer.class_weights"]
    # torch's dropout then, fast dropout by default now: other masks, so a change the resume names (and refuses
    # unless allowed); with trainer.fast_dropout=false it continues as it started
    del old["trainer"]["fast_dropout"]
    assert [c["key"] for c in resume.config_diff(old, now)] == ["trainer.fast_dropout"]
    assert resume.config_diff(old, {**now, "trainer": {**now["trainer"], "fast_dropout": False}}) == []
    # the same for clipping inside the optimizer step (other rounding)
    del old["trainer"]["clip_in_optimizer"]
    as_before = {**now, "trainer": {**now["trainer"], "fast_dropout": False}}
    assert [c["key"] for c in resume.config_diff(old, as_before)] == ["trainer.clip_in_optimizer"]
    assert resume.config_diff(old, {**now, "trainer": {**as_before["trainer"], "clip_in_optimizer": False}}) == []
    # and for the longest batch first (another batch order)
    del old["trainer"]["longest_first"]
    as_before = {**now, "trainer": {**as_before["trainer"], "clip_in_optimizer": False}}
    assert [c["key"] for c in resume.config_diff(old, as_before)] == ["trainer.longest_first"]
    assert resume.config_diff(old, {**now, "trainer": {**as_before["trainer"], "longest_first": False}}) == []


def test_a_change_of_the_optimizer_groups_is_refused_even_when_changes_are_allowed(tmp_path):
    run = tmp_path / "run"
    write_checkpoint(run, config=config_for(run, "model=pretrained"))
    with pytest.raises(resume.ResumeError, match=r"optimizer.head_lr_scale: 1.0 \(checkpoint\) -> 10 \(now\).*"
                                                 r"groups the parameters"):
        resume.plan(config_for(run, "model=pretrained", "optimizer.head_lr_scale=10", "resume_allow_changes=true"),
                    run, 1)
