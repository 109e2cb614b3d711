"""A 2-process run whose rank 1 dies (SIGKILL) or hangs (SIGSTOP) ends within 2 x trainer.dist_timeout_s,
with an error that names rank 1 and the phase, leaves no process behind, and keeps its last complete
checkpoint intact (its hashes verify)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
import killpoint  # noqa: E402

from conftest import child_env, free_port  # noqa: E402

KILLPOINT = Path(__file__).parents[1] / "integration" / "killpoint.py"
TIMEOUT_S = 15
ARGS = ["task=sst2", "task.max_train_samples=64", "task.max_eval_samples=64", "model=bag",
        "model.embedding_dim=16", "model.hidden_size=16", "trainer.batch_size=4", "trainer.max_epochs=2",
        "trainer.save_every=2", "trainer.report_to=[]", f"trainer.dist_timeout_s={TIMEOUT_S}"]


def alive(pid: int) -> bool:
    state = killpoint._stat(pid)
    return state is not None and state[0] not in ("Z", "X")


@pytest.mark.parametrize("fault", ["killed", "hung"])
def test_rank1_failure_is_reported_within_the_timeout(fault, cache_dir, data_dir, tmp_path):
    from nlptune.train import checkpoint

    env = child_env(cache_dir, {"NLPTUNE_DATA_DIR": str(data_dir)})
    run, log = tmp_path / "run", tmp_path / "run.log"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
               "127.0.0.1", "--master_port", str(free_port()), str(KILLPOINT), "after_save:2@1", "--quiet", "train",
               *ARGS, f"output_dir={run}"]
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            killpoint.wait_stopped(proc, rank=1)  # rank 1 froze itself right after the checkpoint of step 2
            rank0, rank1 = killpoint.rank_pid(proc.pid, 0), killpoint.rank_pid(proc.pid, 1)
            workers = killpoint.descendants(proc.pid)
            if fault == "killed":
                os.kill(rank1, signal.SIGKILL)
            started = time.monotonic()
            while alive(rank0) and time.monotonic() - started < 2 * TIMEOUT_S:
                time.sleep(0.1)
            assert not alive(rank0), f"rank 0 still runs {2 * TIMEOUT_S} s after rank 1 was {fault}"
            if fault == "killed":  # the launcher ends by itself and takes every process with it
                assert proc.wait(timeout=2 * TIMEOUT_S) != 0
                assert not [pid for pid in workers if alive(pid)]
        finally:
            killpoint.kill_all(proc)  # the hung rank 1 (the launcher would SIGKILL it only after 30 s)
    output = log.read_text()
    expected = "rank 1 died (killed or crashed) during" if fault == "killed" else "rank 1 is suspended"
    assert "rank 0 stopped during" in output and expected in output, output[-4000:]
    assert "resume=auto continues from it" in output
    checkpoint.verify(checkpoint.find_latest(run))  # the last complete checkpoint is intact
