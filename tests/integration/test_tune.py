"""`nlptune tune` end to end on 48-row slices of ../shared/data: failing trials, grid + 2 workers on one
journal file, SIGKILL + resume=auto, cross-validation / seed confirmation / retraining numbers, the
search space rejected before any trial, and (with a PostgreSQL server) the cluster path."""
from __future__ import annotations

import csv
import gc
import json
import os
import statistics
import sys
import uuid
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))
import tune_killpoint  # noqa: E402

from conftest import child_env  # noqa: E402
from nlptune.config.names import COST_FIGURES  # noqa: E402

# pruning is off unless a test is about it: on these slices trials tie, and whether a tie is pruned is not the point
TINY = ["task=sst2", "task.max_train_samples=48", "task.max_eval_samples=32", "model=bag", "model.embedding_dim=8",
        "model.hidden_size=8", "trainer.max_epochs=1", "trainer.batch_size=16", "trainer.report_to=[]",
        "trainer.keep_last=0", "tune.pruner=none"]
PG_URL = os.environ.get("NLPTUNE_TEST_PG_URL")


def journal_study(sweep: Path) -> optuna.Study:
    """The sweep's study, opened with Optuna alone (the storage stays readable by Optuna's own tools)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(sweep / "study.journal")))
    return optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)


def best_accuracy(run_dir: Path) -> float:
    return json.loads((run_dir / "metrics.json").read_text())["best"]["accuracy"]


@pytest.fixture
def in_process(monkeypatch, data_dir, cache_dir, tmp_path):
    """Run sweeps in this process (offline, the session's cache, scratch working directory)."""
    for key, value in child_env(cache_dir, {"NLPTUNE_DATA_DIR": str(data_dir)}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    from nlptune.tuning import run_sweep

    return lambda *args: run_sweep(list(args), quiet=True)


# ------------------------------------------------------------------ a test-only model that fails on demand


class _Faulty(torch.nn.Module):
    def __init__(self, inner, fault: str):
        super().__init__()
        self.inner, self.fault, self.builder_args = inner, fault, inner.builder_args

    def forward(self, **batch):
        out = self.inner(**batch)
        if self.fault == "raise":
            raise RuntimeError("simulated bug in the model")
        if self.fault == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (simulated)")
        out["logits"] = out["logits"] * float("nan")  # the kind's loss of NaN logits is NaN
        return out


def build_faulty(*, vocab_size, pad_token_id, num_labels, pair, vocab=None, embedding_dim=300, hidden_size=256,
                 num_layers=1, dropout=0.3, embedding_dropout=0.0, activation="relu", pretrained_vectors=None,
                 freeze_embeddings=False, pooling="mean"):
    """The bag model, except that ``pooling`` raise / nan / oom makes its forward pass fail that way."""
    args = dict(locals())
    fault = args.pop("pooling")
    from nlptune.models.bag import build_bag

    inner = build_bag(**args, pooling="mean" if fault in ("raise", "nan", "oom") else fault)
    return inner if fault not in ("raise", "nan", "oom") else _Faulty(inner, fault)


build_faulty.min_layers = 0  # it builds the bag, so it takes the bag's num_layers=0 default


def test_failing_trials_are_recorded_and_the_sweep_finishes(in_process, monkeypatch, tmp_path):
    from nlptune.config import registry
    from nlptune.models.classifier import SequenceClassifier  # (importing nlptune.models registers the real ones)

    monkeypatch.setitem(registry._REGISTRY["model"], "tune_faulty", build_faulty)
    sweep = tmp_path / "sweep"
    outcome = in_process(*TINY, "model.name=tune_faulty", "tune.sampler=grid",
                         "tune.space.model.pooling=choice(mean,raise,nan,oom)", f"tune.dir={sweep}")
    trials = {t.params["model.pooling"]: t for t in journal_study(sweep).get_trials()}
    assert {k: t.state for k, t in trials.items()} == {"mean": TrialState.COMPLETE, "raise": TrialState.FAIL,
                                                         "nan": TrialState.FAIL, "oom": TrialState.FAIL}
    reasons = {k: t.user_attrs["fail_reason"] for k, t in trials.items() if t.state == TrialState.FAIL}
    assert reasons["raise"] == "RuntimeError: simulated bug in the model"
    assert reasons["oom"] == "out of memory (an allocation of 20.00 GiB failed)"
    assert "nan" in reasons["nan"].lower()
    assert outcome.best.trial == trials["mean"].number and (sweep / "best" / "model.safetensors").is_file()
    summary = (sweep / "summary.md").read_text()
    assert "1 complete, 0 pruned, 3 failed" in summary and "simulated bug in the model" in summary
    # the completed trial's model was timed: its cost figures are in the study (for cost-aware sweeps) and in
    # leaderboard.csv; a failed trial has none
    cost = json.loads((Path(trials["mean"].user_attrs["run_dir"]) / "metrics.json").read_text())["cost"]
    assert trials["mean"].user_attrs["cost"] == {name: cost[name] for name in COST_FIGURES}
    rows = {row["trial"]: row for row in csv.DictReader((sweep / "leaderboard.csv").open())}
    for pooling, trial in trials.items():
        row = rows[str(trial.number)]
        figures = [row[name] for name in COST_FIGURES]
        assert figures == ([str(cost[name]) for name in COST_FIGURES] if pooling == "mean" else ["", "", "", ""])
    assert "Inference cost of its model" in summary
    gc.collect()
    assert not [o for o in gc.get_objects() if type(o) in (SequenceClassifier, _Faulty)], "a model outlived its trial"


def test_grid_with_two_workers_on_one_journal(run_cli, data_dir, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(["tune", *TINY, "tune.sampler=grid", "tune.space.model.embedding_dim=choice(4,8)",
                    "tune.space.optimizer.lr=choice(0.01,0.001)", "tune.workers=2", f"tune.dir={sweep}"],
                   env={"NLPTUNE_DATA_DIR": str(data_dir)}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    trials = journal_study(sweep).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3] and {t.state for t in trials} == {TrialState.COMPLETE}
    grid = {(t.params["model.embedding_dim"], t.params["optimizer.lr"]) for t in trials}
    assert grid == {(4, 0.01), (4, 0.001), (8, 0.01), (8, 0.001)}  # exactly the grid, each point once
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 2
    for t in trials:  # each trial trained with its own values
        config = yaml.safe_load((Path(t.user_attrs["run_dir"]) / "config.yaml").read_text())
        assert (config["model"]["embedding_dim"], config["optimizer"]["lr"]) == (t.params["model.embedding_dim"],
                                                                                  t.params["optimizer.lr"])
    rows = list(csv.DictReader((sweep / "leaderboard.csv").open()))
    assert len(rows) == 4 and rows[0]["state"] == "COMPLETE"
    assert (sweep / "plots" / "optimization_history.png").stat().st_size > 0
    recipe = yaml.safe_load((sweep / "best_recipe.yaml").read_text())
    best = journal_study(sweep).best_trial
    assert set(recipe) == {"recipe", "config", "pins", "expected"}
    assert recipe["config"]["model"]["embedding_dim"] == best.params["model.embedding_dim"]
    assert recipe["expected"]["value"] == pytest.approx(best.value) and recipe["pins"]["data"]["train"]
    assert (sweep / "best" / "model.safetensors").is_file()


def test_sigkill_mid_trial_then_resume_keeps_finished_trials(data_dir, cache_dir, run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["tune", *TINY, "tune.n_trials=2", f"tune.dir={sweep}"]
    env = child_env(cache_dir, {"NLPTUNE_DATA_DIR": str(data_dir)})
    tune_killpoint.kill_in_trial(1, args, env, tmp_path)
    before = {t.number: (t.state, t.value) for t in journal_study(sweep).get_trials()}
    assert before[0][0] == TrialState.COMPLETE and before[1][0] == TrialState.RUNNING
    finished = (sweep / "trials" / "trial-0000" / "metrics.json").stat().st_mtime_ns
    proc = run_cli([*args, "resume=auto"], env={"NLPTUNE_DATA_DIR": str(data_dir)}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    trials = journal_study(sweep).get_trials()
    assert (trials[0].state, trials[0].value) == before[0]  # kept, never re-run
    assert (sweep / "trials" / "trial-0000" / "metrics.json").stat().st_mtime_ns == finished
    assert trials[1].state == TrialState.FAIL and "interrupted" in trials[1].user_attrs["fail_reason"]
    assert trials[2].system_attrs["failed_trial"] == 1 and trials[2].params == trials[1].params
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 2 == len(trials) - 1


def test_cross_validation_confirmation_and_retraining_numbers(in_process, tmp_path):
    sweep = tmp_path / "sweep"
    outcome = in_process(*TINY, "trainer.max_epochs=2", "tune.space.optimizer.lr=loguniform(0.05,0.2)",
                         "tune.n_trials=1", "tune.cv_folds=2", "tune.confirm_seeds=2",
                         "tune.confirm_top=1", "tune.retrain_full=true", f"tune.dir={sweep}")
    plan = outcome.plan
    rows = [[json.loads(line) for line in open(f, encoding="utf-8")] for f in plan.folds[0]]
    validated = rows[1] + [json.loads(line) for line in open(plan.folds[1][1], encoding="utf-8")]
    assert len(rows[0]) + len(rows[1]) == 48 and len(validated) == 48  # each train row validated once
    labels = [r["label"] for r in rows[1]]
    assert abs(labels.count(1) - sum(r["label"] for r in validated) / 2) <= 1  # stratified
    study = journal_study(sweep)
    for trial in study.get_trials():
        folds = [best_accuracy(Path(trial.user_attrs["run_dir"]) / f"fold-{k}") for k in range(2)]
        assert trial.user_attrs["fold_values"] == folds and trial.value == pytest.approx(sum(folds) / 2)
        costs = [json.loads((Path(trial.user_attrs["run_dir"]) / f"fold-{k}" / "metrics.json").read_text())["cost"]
                 for k in range(2)]
        mean = {name: statistics.fmean(c[name] for c in costs) for name in COST_FIGURES}  # a config's cost
        assert abs(trial.user_attrs["cost"].pop("params") - mean.pop("params")) <= 0.5  # a whole count
        assert trial.user_attrs["cost"] == pytest.approx(mean, abs=0.5e-4, rel=0)
    top = outcome.confirmed[0]
    assert top["trial"] == study.best_trial.number and top["seeds"] == [43, 44]
    per_seed = []
    for seed in (43, 44):
        runs = sweep / "confirm" / f"trial-{top['trial']:04d}" / f"seed-{seed}"
        assert yaml.safe_load((runs / "fold-0" / "config.yaml").read_text())["seed"] == seed
        per_seed.append(statistics.fmean(best_accuracy(runs / f"fold-{k}") for k in range(2)))
    assert top["values"] == pytest.approx(per_seed)
    assert (top["mean"], top["std"]) == pytest.approx((statistics.fmean(per_seed), statistics.stdev(per_seed)))
    assert f"{top['mean']:.4f} ± {top['std']:.4f}" in (sweep / "summary.md").read_text()
    full = outcome.full
    assert full["held_out"] and full["value"] == pytest.approx(best_accuracy(Path(full["run_dir"])))
    assert sum(1 for _ in open(full["train_file"], encoding="utf-8")) == 48
    recipe = yaml.safe_load((sweep / "best_recipe.yaml").read_text())
    assert recipe["config"]["task"]["train_file"] is None  # the task's own data, not the sweep's fold files
    assert recipe["expected"]["value"] == pytest.approx(full["value"])


def test_invalid_space_is_rejected_before_any_trial(run_cli, data_dir, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(["tune", *TINY, "tune.space.model.hiden_size=int(4,8)", "tune.space.model.dropout=uniform(0,2)",
                    "tune.space.scheduler.name=choice(linear,cosine,bogus)", f"tune.dir={sweep}"],
                   env={"NLPTUNE_DATA_DIR": str(data_dir)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # every problem at once: a misspelt key (with the real one), an out-of-range bound, a bad option
    assert "tune.space.model.hiden_size" in proc.stderr and "did you mean 'model.hidden_size'" in proc.stderr
    assert "tune.space.model.dropout" in proc.stderr and "2.0" in proc.stderr
    assert "tune.space.scheduler.name" in proc.stderr and "bogus" in proc.stderr
    assert not (sweep / "trials").exists()


# ------------------------------------------------------------------ the cluster path: a real PostgreSQL server


pg = pytest.mark.skipif(not PG_URL, reason="NLPTUNE_TEST_PG_URL is not set (.ci/run starts a PostgreSQL server "
                                           "and sets it; see README, Hyperparameter sweeps)")


def pg_study(name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=PG_URL)


@pg
def test_postgres_two_workers_share_one_study(run_cli, data_dir, tmp_path):
    name = f"test-{uuid.uuid4().hex[:8]}"
    proc = run_cli(["tune", *TINY, "tune.n_trials=3", "tune.workers=2", f"tune.storage={PG_URL}",
                    f"tune.study_name={name}", f"tune.dir={tmp_path / 'sweep'}"],
                   env={"NLPTUNE_DATA_DIR": str(data_dir)}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    trials = pg_study(name).get_trials()
    assert [t.number for t in trials] == [0, 1, 2] and {t.state for t in trials} == {TrialState.COMPLETE}
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 2


@pg
def test_postgres_killed_worker_trial_fails_by_heartbeat_and_is_retried(run_cli, data_dir, cache_dir, tmp_path):
    name = f"test-{uuid.uuid4().hex[:8]}"
    args = ["tune", *TINY, "tune.n_trials=2", f"tune.storage={PG_URL}", f"tune.study_name={name}",
            "tune.heartbeat_interval=1", "tune.grace_period=3"]
    env = child_env(cache_dir, {"NLPTUNE_DATA_DIR": str(data_dir)})
    tune_killpoint.kill_in_trial(1, [*args, f"tune.dir={tmp_path / 'a'}"], env, tmp_path)
    assert [t.state for t in pg_study(name).get_trials()] == [TrialState.COMPLETE, TrialState.RUNNING]
    # the next worker (another machine, say) joins the same study: the dead trial goes stale, fails, is retried
    proc = run_cli([*args, f"tune.dir={tmp_path / 'b'}"], env={"NLPTUNE_DATA_DIR": str(data_dir)}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    trials = pg_study(name).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[2].system_attrs["failed_trial"] == 1 and trials[2].params == trials[1].params
    assert trials[2].user_attrs["worker"]["pid"] != trials[1].user_attrs["worker"]["pid"]
