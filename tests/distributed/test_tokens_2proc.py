"""A per-word task on two CPU processes: each rank scores its shard of windows, and the gathered windows are put
back into whole sentences, so the validation scores equal one process's evaluation of the same best model."""
from __future__ import annotations

import json
import subprocess
import sys

ARGS = ["task=wnut17", "model=lstm", "task.max_train_samples=64", "task.max_eval_samples=50", "task.max_length=16",
        "trainer.max_epochs=1", "model.embedding_dim=16", "model.hidden_size=16", "model.crf=true",
        "model.char_embedding=cnn", "model.char_dim=8"]


def test_two_processes_score_every_word_once(data_dir, make_env, free_port, run_cli, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "nlptune", "--quiet", "train", *ARGS, f"output_dir={run}"]
    env = make_env({"NLPTUNE_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"})
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-5000:]
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["num_processes"] == 2
    # the 50 validation sentences the run scored (max_length 16 cuts the long ones into windows)
    sentences = (data_dir / "wnut17" / "validation.conll").read_text(encoding="utf-8").split("\n\n")[:50]
    (tmp_path / "validation.conll").write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
    evaluated = run_cli(["eval", run, "--file", tmp_path / "validation.conll"], env={"NLPTUNE_DATA_DIR": str(data_dir)})
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    scores = json.loads(evaluated.stdout)
    for metric in ("f1", "precision", "recall", "accuracy"):
        assert scores[metric] == summary["best"][metric], metric
