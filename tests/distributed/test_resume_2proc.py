"""Exact resume after SIGKILL with 2 CPU processes (torchrun, gloo): killed in the middle of an epoch and
during a checkpoint write (falling back to the epoch-boundary checkpoint), resumed with resume=auto each time,
the run ends with the parameters and metrics of an uninterrupted 2-process run, bit for bit; the weights of its
evaluations are averaged (trainer.average_from), and the averaged model is scored by both processes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
import killpoint  # noqa: E402
from test_resume import assert_same_run, newest  # noqa: E402

from conftest import child_env, free_port  # noqa: E402

KILLPOINT = Path(__file__).parents[1] / "integration" / "killpoint.py"
# 64 rows, batches of 4 -> 16 batches, 8 per process; accumulation 2 -> 4 steps an epoch, 2 epochs -> 8 steps;
# checkpoints at steps 2 (mid-epoch), 4 (epoch boundary), 6 and 8
ARGS = ["task=sst2", "task.max_train_samples=64", "task.max_eval_samples=64", "model=bag",
        "model.embedding_dim=16", "model.hidden_size=16", "model.dropout=0.3", "trainer.batch_size=4",
        "trainer.gradient_accumulation_steps=2", "trainer.max_epochs=2", "trainer.log_every=1",
        "trainer.save_every=2", "trainer.keep_last=100", "trainer.report_to=[]", "trainer.dist_timeout_s=60",
        "trainer.average_from=0.25"]


def torchrun(script: list[str], args: list[str], env: dict, log: Path, kill_spec: str | None = None) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
               "127.0.0.1", "--master_port", str(free_port()), *script, *([kill_spec] if kill_spec else []),
               "--quiet", "train", *args]
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            if kill_spec is None:
                assert proc.wait(timeout=600) == 0, log.read_text()[-4000:]
                return
            killpoint.wait_stopped(proc, rank=0)
        except BaseException:
            killpoint.kill_all(proc)
            raise
        killpoint.kill_all(proc)


@pytest.fixture(scope="module")
def env(cache_dir, data_dir) -> dict:
    return child_env(cache_dir, {"NLPTUNE_DATA_DIR": str(data_dir)})


def test_two_process_resume_after_sigkill_equals_uninterrupted(env, tmp_path):
    reference, run = tmp_path / "reference", tmp_path / "run"
    torchrun(["-m", "nlptune"], [*ARGS, f"output_dir={reference}"], env, tmp_path / "reference.log")
    args = [*ARGS, f"output_dir={run}"]
    # 1. killed (both processes) right after the checkpoint of step 2, half way through epoch 0
    torchrun([str(KILLPOINT)], args, env, tmp_path / "kill1.log", kill_spec="after_save:2")
    state = json.loads((newest(run) / "train_state.json").read_text())
    assert (state["step"], state["epoch"], state["batches_done"], state["num_processes"]) == (2, 0, 4, 2)
    # 2. resumed, then killed while step 6 is being written: the newest complete one is step 4, epoch 0's end
    torchrun([str(KILLPOINT)], [*args, "resume=auto"], env, tmp_path / "kill2.log", kill_spec="before_manifest:6")
    assert newest(run).name == "step-00000004"
    assert (run / "checkpoints" / ".tmp-step-00000006" / "rank-1.safetensors").is_file()
    assert_same_run(run, reference, step=4)
    # 3. resumed from the epoch boundary to the end
    torchrun(["-m", "nlptune"], [*args, "resume=auto"], env, tmp_path / "resume.log")
    assert "skipping incomplete checkpoint" in (tmp_path / "resume.log").read_text()
    assert_same_run(run, reference)
    assert json.loads((run / "metrics.json").read_text())["weight_average"]["evaluations"] == 2  # steps 4 and 8
