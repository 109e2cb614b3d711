"""Study bookkeeping (slots, retries, orphans), samplers and pruners, the pruning hook, folds, and the
checks that turn a diverged run into a failed trial — no training here."""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from nlptune.tuning.folds import fold_indices
from nlptune.tuning.objective import MetricHook, cost_figures, describe_error, mean_cost, nonfinite_loss
from nlptune.tuning.plan import SweepPlan
from nlptune.tuning.study import build_pruner, build_sampler, fail_orphans, retried_numbers, taken_slots, work_left
from nlptune.utils.processes import identity as worker_identity


def plan(**tune) -> SweepPlan:
    fields = {"sampler": "tpe", "pruner": "asha", "sampler_startup_trials": 5, "prune_min_samples": 0,
              "prune_reduction_factor": 3, "prune_startup_trials": 3, "prune_warmup_samples": 0, "max_retry": 3,
              **tune}
    return SweepPlan(sweep_dir="/tmp/x", storage="journal:/tmp/x/study.journal", study_name="s", overrides=[],
                     space={"a": "choice(1,2)", "lr": "loguniform(1e-4,1e-2)"}, tune=fields, n_trials=4,
                     metric="accuracy", direction="maximize", budget_samples=8100, seed=7, run_seed=42)


def frozen(number: int, state: TrialState, **system_attrs):
    trial = create_trial(state=state, value=0.5 if state == TrialState.COMPLETE else None,
                         system_attrs=system_attrs)
    trial.number = number
    return trial


def test_a_retried_failure_frees_its_slot_and_a_plain_failure_keeps_it():
    trials = [frozen(0, TrialState.COMPLETE), frozen(1, TrialState.FAIL), frozen(2, TrialState.FAIL),
              frozen(3, TrialState.WAITING, failed_trial=2, retry_history=[2])]
    assert retried_numbers(trials) == {2}
    assert taken_slots(trials) == 3  # 0, 1 (failed on its own) and 3 (the retry of 2)
    assert work_left(trials, 4)
    assert work_left(trials, 3)  # a waiting retry is always run
    done = trials[:3] + [frozen(3, TrialState.COMPLETE, failed_trial=2, retry_history=[2])]
    assert not work_left(done, 3) and work_left(done, 4)


def test_samplers_are_seeded_and_grid_shares_one_seed():
    assert isinstance(build_sampler(plan(), 3), optuna.samplers.TPESampler)
    assert isinstance(build_sampler(plan(sampler="random"), 3), optuna.samplers.RandomSampler)
    assert isinstance(build_sampler(plan(sampler="gp"), 3), optuna.samplers.GPSampler)
    first, second = (build_sampler(plan(sampler="grid"), seed) for seed in (1, 2))
    assert first._all_grids == second._all_grids  # the same order in every worker, whatever its seed
    a, b = (optuna.create_study(sampler=build_sampler(plan(sampler="random"), 5)) for _ in range(2))
    assert a.ask().suggest_float("x", 0, 1) == b.ask().suggest_float("x", 0, 1)


def test_pruners_count_training_samples():
    asha = build_pruner(plan())
    assert isinstance(asha, optuna.pruners.SuccessiveHalvingPruner) and asha._min_resource == 8100 // 9
    assert build_pruner(plan(prune_min_samples=100))._min_resource == 100
    hyperband = build_pruner(plan(pruner="hyperband"))
    assert hyperband._min_resource == 8100 // 81 and hyperband._max_resource == 8100
    median = build_pruner(plan(pruner="median", prune_startup_trials=2, prune_warmup_samples=64))
    assert median._n_startup_trials == 2 and median._n_warmup_steps == 64
    assert isinstance(build_pruner(plan(pruner="none")), optuna.pruners.NopPruner)


def test_metric_hook_reports_at_cumulative_samples_and_prunes():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.6))
    trial = study.ask()
    hook = MetricHook("accuracy", trial, offset=1000)
    assert hook(5, 160, {"accuracy": 0.7}) is False
    assert hook(10, 320, {"accuracy": 0.5}) is True and hook.pruned_at == 1320
    assert study.trials[0].intermediate_values == {1160: 0.7, 1320: 0.5}
    stopped = MetricHook("accuracy")
    assert stopped(3, 96, {"accuracy": float("nan")}) is True and "nan" in stopped.nonfinite


def test_diverged_training_loss_is_found(tmp_path):
    lines = [{"step": 1, "loss": 0.7}, {"step": 2, "eval_accuracy": 0.5}, {"step": 3, "loss": math.inf}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    assert nonfinite_loss(tmp_path) == "training loss became inf at step 3"
    (tmp_path / "metrics.jsonl").write_text(json.dumps(lines[0]) + "\n")
    assert nonfinite_loss(tmp_path) is None


def test_a_trial_keeps_the_cost_figures_of_its_runs_mean_over_folds(tmp_path):
    from nlptune.tuning.results import write_leaderboard

    summary = {"cost": {"params": 1000, "size_mb": 0.01, "latency_ms": 0.5, "throughput": 900.0, "device": "cpu",
                        "threads": 2, "precision": "fp32", "latency_examples": 64, "throughput_examples": 64}}
    one = cost_figures(summary)
    assert one == {"params": 1000, "size_mb": 0.01, "latency_ms": 0.5, "throughput": 900.0}
    assert cost_figures({}) is None  # trainer.measure_cost=false
    other = {"params": 1003, "size_mb": 0.02, "latency_ms": 1.5, "throughput": 1100.0}
    assert mean_cost([one, other]) == {"params": 1002, "size_mb": 0.015, "latency_ms": 1.0, "throughput": 1000.0}
    assert mean_cost([one, None]) is None
    measured = create_trial(state=TrialState.COMPLETE, value=0.8, params={"a": 1},
                            distributions={"a": optuna.distributions.CategoricalDistribution([1, 2])},
                            user_attrs={"cost": one})
    failed = create_trial(state=TrialState.FAIL, user_attrs={"cost": None, "fail_reason": "boom"})
    failed.number = 1
    write_leaderboard(tmp_path / "leaderboard.csv", [measured, failed], plan(), [])
    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").open()))
    assert [(r["params"], r["size_mb"], r["latency_ms"], r["throughput"]) for r in rows] == \
        [("1000", "0.01", "0.5", "900.0"), ("", "", "", "")]


def test_the_compute_report_weighs_each_trial_by_its_own_plan():
    from nlptune.tuning.objective import planned_samples
    from nlptune.tuning.results import compute_spent

    # pruned after 30 of 90 steps; a finished run; one stopped by patience (its samples are what it would spend)
    assert planned_samples({"train_samples": 960, "steps": 30, "planned_steps": 90}) == 2880
    assert planned_samples({"train_samples": 2000, "steps": 63, "planned_steps": 63}) == 2000
    assert planned_samples({"train_samples": 100}) == 100
    # a trial with a transfer-set copy plans twice the base config's samples: it is not "more than unpruned"
    trials = [create_trial(state=TrialState.COMPLETE, value=0.9, user_attrs={"train_samples": 4000,
                                                                              "unpruned_samples": 4000}),
              create_trial(state=TrialState.PRUNED, user_attrs={"train_samples": 1000, "unpruned_samples": 2000}),
              create_trial(state=TrialState.COMPLETE, value=0.8, user_attrs={"train_samples": 8100})]  # no plan kept
    spent = compute_spent(trials, plan())
    assert (spent["train_samples"], spent["unpruned_samples"]) == (13100, 14100)


def test_error_reasons():
    import torch

    assert describe_error(torch.OutOfMemoryError("CUDA out of memory. Tried 2 GiB")).startswith("out of memory")
    assert describe_error(ValueError("bad\nmore")) == "ValueError: bad"


def test_stratified_folds_cover_every_row_once_with_class_balance():
    labels = [0] * 30 + [1] * 10
    folds = fold_indices(len(labels), 5, seed=0, keys=[str(label) for label in labels])
    validated = sorted(i for _, va in folds for i in va)
    assert validated == list(range(40))
    for train, validation in folds:
        assert not set(train) & set(validation)
        assert Counter(labels[i] for i in validation) == {0: 6, 1: 2}


def test_too_many_folds_for_a_class_is_a_clear_error():
    from nlptune.config.errors import NlptuneError

    with pytest.raises(NlptuneError, match="a class has only 2"):
        fold_indices(12, 3, seed=0, keys=["0"] * 10 + ["1"] * 2)


def test_orphaned_trials_fail_and_are_queued_again():
    study = optuna.create_study()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = study.ask()
    orphan.suggest_float("x", 0, 1)
    orphan.set_user_attr("worker", {**worker_identity(), "pid": int(dead.stdout), "start": "0"})
    alive = study.ask()
    alive.set_user_attr("worker", worker_identity())
    assert fail_orphans(study, max_retry=2) == [orphan.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {0: TrialState.FAIL, 1: TrialState.RUNNING, 2: TrialState.WAITING}
    retry = study.get_trials()[2]
    assert retry.system_attrs["failed_trial"] == 0 and retry.params == orphan.params
    assert "interrupted" in study.get_trials()[0].user_attrs["fail_reason"]
    assert os.getpid() == alive.user_attrs["worker"]["pid"]


def test_worker_threads_are_recorded_in_the_trial_config(monkeypatch):
    from nlptune.tuning.objective import _with_worker_threads

    monkeypatch.delenv("NLPTUNE_WORKER_THREADS", raising=False)
    assert _with_worker_threads(["task=sst2"]) == ["task=sst2"]
    monkeypatch.setenv("NLPTUNE_WORKER_THREADS", "1")
    assert _with_worker_threads(["task=sst2"]) == ["task=sst2", "trainer.threads=1"]
    assert _with_worker_threads(["trainer.threads=2"]) == ["trainer.threads=2"]  # the user's choice wins
