"""Cost-aware `nlptune tune` end to end on slices of ../shared/data: a multi-objective sweep over a model choice
(a scratch model and a tiny pretrained one: each searches its own keys) with its Pareto recipes retrained exactly,
a sweep bounded on the parameter count (the best is feasible, pruning still prunes, the summary counts who met
the bound), and both kinds resumed after a SIGKILL mid-trial like any sweep. The bounds and the cost objective are
parameter counts: deterministic, unlike timings."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))
import tune_killpoint  # noqa: E402
from test_tune import in_process, journal_study  # noqa: E402,F401 (in_process is a fixture)

from conftest import child_env  # noqa: E402

SMALL = ["task.max_train_samples=48", "task.max_eval_samples=32", "trainer.max_epochs=1", "trainer.batch_size=16",
         "trainer.report_to=[]", "trainer.keep_last=0", "tune.default_space=null",
         "tune.space.model.embedding_dim=choice(8)", "tune.space.model.hidden_size=choice(8)"]
PARETO = ["task=sst2", *SMALL, "tune.objectives=[accuracy,params]"]
# demo data: a learning rate far too small and one far too large give different accuracies at the first
# evaluation, so the median pruner stops some trials whatever the bound
BOUNDED = ["task=demo", *SMALL, "trainer.max_epochs=2", "trainer.eval_every=2", "tune.sampler=grid",
           "tune.space.model=choice(bag,lstm)", "tune.space.optimizer.lr=choice(0.05,0.00001)",
           "tune.constraints.params=1500", "tune.pruner=median", "tune.prune_startup_trials=1"]


def dominated(values: list[float], others: list[list[float]]) -> bool:
    """accuracy up, params down: another trial at least as good on both and better on one."""
    return any(o[0] >= values[0] and o[1] <= values[1] and (o[0] > values[0] or o[1] < values[1]) for o in others)


def best_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())["best"]


def test_multi_objective_sweep_over_models_writes_a_front_whose_recipes_reproduce(in_process, tiny_pretrained,
                                                                                  tmp_path):
    sweep = tmp_path / "sweep"
    outcome = in_process(*PARETO, "tune.sampler=grid", "tune.space.model=choice(bag,pretrained)",
                         f"tune.space.model.name_or_path=choice({tiny_pretrained})", f"tune.dir={sweep}")
    study = journal_study(sweep)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    trials = study.get_trials()
    assert {t.state for t in trials} == {TrialState.COMPLETE} and len(trials) == 2
    for t in trials:  # each model searched its own keys only; nothing was reported to a pruner
        own = {"model.name_or_path"} if t.params["model"] == "pretrained" else {"model.embedding_dim",
                                                                                  "model.hidden_size"}
        assert set(t.params) == {"model", *own} and not t.intermediate_values
        cost = json.loads((Path(t.user_attrs["run_dir"]) / "metrics.json").read_text())["cost"]
        assert t.values == [best_metrics(Path(t.user_attrs["run_dir"]))["accuracy"], cost["params"]]
    front = [t for t in trials if not dominated(t.values, [o.values for o in trials if o is not t])]
    assert sorted(p.name for p in (sweep / "pareto").iterdir()) == [f"trial-{t.number:04d}.yaml" for t in front]
    assert outcome.best.trial == max(front, key=lambda t: (t.values[0], -t.values[1])).number
    summary = (sweep / "summary.md").read_text()
    assert f"{len(front)} of the 2 completed trials are Pareto-optimal" in summary
    assert all(f"`pareto/trial-{t.number:04d}.yaml`" in summary for t in front)
    assert (sweep / "plots" / "pareto_front.png").stat().st_size > 0
    rows = {r["trial"]: r["pareto"] for r in csv.DictReader((sweep / "leaderboard.csv").open())}
    assert rows == {str(t.number): str(t in front) for t in trials}
    from nlptune.recipes.run import load_run_config
    from nlptune.train.loop import run

    for t in front:  # `nlptune train recipe=pareto/trial-NNNN.yaml` trains the same model again
        recipe = sweep / "pareto" / f"trial-{t.number:04d}.yaml"
        assert yaml.safe_load(recipe.read_text())["expected"]["value"] == t.values[0]
        again = run(load_run_config([f"recipe={recipe}", f"output_dir={tmp_path / f'again-{t.number}'}"]))
        assert again.best == best_metrics(Path(t.user_attrs["run_dir"]))  # accuracy and loss, exactly


def test_bounded_sweep_recommends_a_feasible_trial_and_still_prunes(in_process, tmp_path):
    sweep = tmp_path / "sweep"
    outcome = in_process(*BOUNDED, f"tune.dir={sweep}")
    trials = journal_study(sweep).get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4 and any(t.state == TrialState.PRUNED for t in trials)
    for t in finished:  # a pruned trial's model was measured too, and bounded
        assert t.user_attrs["constraint"] == {"params": t.user_attrs["cost"]["params"] - 1500}
    feasible = [t for t in finished if t.user_attrs["cost"]["params"] <= 1500]
    assert {t.params["model"] for t in feasible} == {"bag"}
    done = [t for t in feasible if t.state == TrialState.COMPLETE]
    assert outcome.best.trial == max(done, key=lambda t: t.value).number
    summary = (sweep / "summary.md").read_text()
    counts = [(sum(t in feasible for t in trials if t.state == s), sum(t.state == s for t in trials))
              for s in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert (f"params <= 1500 — met by {counts[0][0]} of the {counts[0][1]} complete and {counts[1][0]} of the "
            f"{counts[1][1]} pruned trials") in summary
    rows = {r["trial"]: r["feasible"] for r in csv.DictReader((sweep / "leaderboard.csv").open())}
    assert rows == {str(t.number): str(t in feasible) for t in trials}


@pytest.mark.parametrize("mode", ["pareto", "bounded"])
def test_cost_aware_sweeps_resume_after_a_kill(mode, data_dir, cache_dir, run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    space = "tune.space.model=choice(bag,lstm)"
    args = ["tune", *(PARETO + [space, "tune.sampler=grid"] if mode == "pareto" else BOUNDED),
            "tune.n_trials=2", f"tune.dir={sweep}"]
    env = child_env(cache_dir, {"NLPTUNE_DATA_DIR": str(data_dir)})
    tune_killpoint.kill_in_trial(1, args, env, tmp_path)
    before = journal_study(sweep).get_trials()
    assert [t.state for t in before] == [TrialState.COMPLETE, TrialState.RUNNING]
    proc = run_cli([*args, "resume=auto"], env={"NLPTUNE_DATA_DIR": str(data_dir)}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    trials = journal_study(sweep).get_trials()
    assert trials[0].values == before[0].values  # kept, never re-run
    assert trials[1].state == TrialState.FAIL and "interrupted" in trials[1].user_attrs["fail_reason"]
    assert trials[2].system_attrs["failed_trial"] == 1 and trials[2].params == trials[1].params
    assert trials[2].state in (TrialState.COMPLETE, TrialState.PRUNED) and trials[2].user_attrs["cost"]
    if mode == "pareto":
        assert len(trials[2].values) == 2 and list((sweep / "pareto").glob("trial-*.yaml"))
    else:
        assert trials[2].user_attrs["constraint"] == {"params": trials[2].user_attrs["cost"]["params"] - 1500}
        assert "params <= 1500 — met by" in (sweep / "summary.md").read_text()
