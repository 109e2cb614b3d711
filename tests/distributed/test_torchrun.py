"""Two CPU processes through torchrun (gloo): one run directory, every rank agrees, a clean exit."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

SLICE = ["task.max_train_samples=64", "task.max_eval_samples=64", "trainer.max_epochs=1", "model.embedding_dim=32",
         "model.hidden_size=32"]
CRASH_MARKERS = ("Aborted", "terminate called", "Traceback", "core dumped", "Segmentation fault")


@pytest.fixture(scope="module")
def two_process_run(data_dir, make_env, free_port, tmp_path_factory):
    """`torchrun --nproc_per_node 2 -m nlptune train ...` without output_dir, in a scratch working directory."""
    cwd = tmp_path_factory.mktemp("torchrun")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "nlptune", "--quiet", "train", "task=sst2", "model=bag",
               *SLICE]
    env = make_env({"NLPTUNE_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"})
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return cwd, result


def test_exits_cleanly(two_process_run):
    _, result = two_process_run
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    for marker in CRASH_MARKERS:
        assert marker not in output, output[-6000:]


def test_one_run_directory_with_two_processes(two_process_run):
    cwd, _ = two_process_run
    assert [p.name for p in (cwd / "runs").iterdir()] == ["sst2-bag"]
    run_dirs = list((cwd / "runs" / "sst2-bag").iterdir())
    assert len(run_dirs) == 1, f"one run directory, not one per rank: {run_dirs}"
    assert len(list((cwd / "runs").rglob("metrics.json"))) == 1
    run = run_dirs[0]
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["num_processes"] == 2
    assert json.loads((run / "manifest.json").read_text())["num_processes"] == 2
    # 64 rows, batch 32 per process: one optimizer step per epoch, every row seen once
    assert summary["steps"] == 1 and summary["train_samples"] == 64
    assert summary["best"]["accuracy"] >= 0.0 and (run / "best" / "model.safetensors").is_file()
    evaluations = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                   if "eval_accuracy" in line]
    assert len(evaluations) == 1, "only rank 0 logs"
    # rank 0 alone times the best model, as one process, while rank 1 waits at the exit's barrier
    assert summary["cost"]["latency_examples"] == summary["cost"]["throughput_examples"] == 64


def test_the_validation_loss_counts_each_row_once(two_process_run, data_dir, run_cli):
    """The processes' last batches are made even with repeated rows: the loss, like the metrics, leaves them out
    (it read 4 times the loss here), so it is one process's evaluation of the same model."""
    cwd, _ = two_process_run
    run = next((cwd / "runs" / "sst2-bag").iterdir())
    summary = json.loads((run / "metrics.json").read_text())
    rows = (data_dir / "sst2" / "validation.jsonl").read_text(encoding="utf-8").splitlines()[:64]  # those it scored
    (cwd / "validation.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    evaluated = run_cli(["eval", run, "--file", cwd / "validation.jsonl"])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    scores = json.loads(evaluated.stdout)
    assert scores["loss"] == pytest.approx(summary["best"]["loss"], rel=1e-4)
    assert scores["accuracy"] == summary["best"]["accuracy"]


def test_launcher_and_accelerate_must_agree(monkeypatch):
    """The loop refuses to run when the launcher's WORLD_SIZE and Accelerate's process count differ
    (e.g. `python -m nlptune` under a launcher Accelerate did not recognise)."""
    import nlptune.train.launch as launch
    from nlptune.config.errors import NlptuneError
    from nlptune.config.compose import section_config

    class OneProcess:  # stands in for Accelerator: its shared state must not be touched in this process
        num_processes = 1

        def __init__(self, **kwargs):
            self.kwargs = kwargs

    monkeypatch.setattr(launch, "Accelerator", OneProcess)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(NlptuneError, match="the launcher started 2 processes but Accelerate runs 1"):
        launch.make_accelerator(section_config("trainer", "default", device="cpu"))
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert launch.make_accelerator(section_config("trainer", "default", device="cpu")).kwargs["cpu"] is True
