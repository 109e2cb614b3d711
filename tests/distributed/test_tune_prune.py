"""A sweep trial trained by 2 CPU processes (torchrun, gloo) is pruned at its first evaluation: rank 0 asks
the study, the loop broadcasts the decision, and both ranks stop at the same step without hanging.

The study already holds a completed rival scoring 1.0 at every step, so the median pruner (one startup
trial) must prune the new trial the first time it reports, whatever the machine's speed.
"""
from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.trial import TrialState

from conftest import child_env

ARGS = ["task=sst2", "task.max_train_samples=64", "task.max_eval_samples=32", "model=bag", "model.embedding_dim=8",
        "model.hidden_size=8", "trainer.max_epochs=2", "trainer.batch_size=8", "trainer.eval_every=1",
        "trainer.report_to=[]", "trainer.keep_last=0"]


def test_pruned_multi_process_trial_stops_on_both_ranks(run_cli, data_dir, cache_dir, tmp_path, monkeypatch):
    from nlptune.tuning.study import create_study
    from nlptune.tuning.sweep import prepare

    for key, value in child_env(cache_dir, {"NLPTUNE_DATA_DIR": str(data_dir)}).items():
        monkeypatch.setenv(key, value)
    sweep = tmp_path / "sweep"
    tune = ["tune.processes_per_trial=2", "tune.pruner=median", "tune.prune_startup_trials=1", "tune.n_trials=2",
            f"tune.dir={sweep}"]
    plan, _ = prepare([*ARGS, *tune])
    assert plan.processes_per_trial == 2
    study = create_study(plan)
    study.add_trial(optuna.trial.create_trial(value=1.0, intermediate_values={s: 1.0 for s in range(8, 2049, 8)}))

    proc = run_cli(["tune", *ARGS, *tune, "resume=auto"], env={"NLPTUNE_DATA_DIR": str(data_dir)}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    trial = study.get_trials()[1]
    assert trial.state == TrialState.PRUNED
    # 2 processes x 8 rows a step: the first evaluation, after step 1, is at 16 training samples
    assert trial.intermediate_values.keys() == {16} and trial.user_attrs["train_samples"] == 16
    run = Path(trial.user_attrs["run_dir"])
    result = json.loads((run / "trial_result.json").read_text())
    assert result["pruned_at"] == 16 and result["stopped_by_hook"]
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["num_processes"] == 2 and summary["steps"] == 1 and summary["stopped_early"]
    assert "Traceback" not in (run / "trial.log").read_text()
