"""Cost-aware sweeps without training: objectives and their directions, bounds (distance, feasibility, what Optuna
is told), the Pareto front and the recommended trial, the Pareto recipes, leaderboard and summary, the study of
several objectives, and conditional spaces (a model choice)."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from nlptune.config.errors import ConfigError
from nlptune.tuning import goals
from nlptune.tuning.plan import SweepPlan

COST = {"params": 1000, "size_mb": 0.01, "latency_ms": 0.5, "throughput": 900.0}


def plan(tmp_path: Path | None = None, **fields) -> SweepPlan:
    folder = tmp_path or Path("/nonexistent")
    tune = {"sampler": "tpe", "pruner": "none", "sampler_startup_trials": 4, "max_retry": 3, "plots": True,
            "confirm_seeds": 0, **fields.pop("tune", {})}
    values = dict(sweep_dir=str(folder), storage=f"journal:{folder / 'study.journal'}", study_name="demo-bag",
                  overrides=["task=demo"], space={"model.hidden_size": "choice(8,16)"}, tune=tune, n_trials=4,
                  metric="accuracy", direction="maximize", budget_samples=64, seed=7, run_seed=42)
    return SweepPlan(**{**values, **fields})


MULTI = {"objectives": ["accuracy", "latency_ms"], "directions": ["maximize", "minimize"]}


def trial(number: int, values=None, state=TrialState.COMPLETE, cost=None, constraint=None, run_dir=None,
          hidden=8):
    attrs = {"cost": cost, "constraint": constraint, "run_dir": str(run_dir or f"/nonexistent/{number}")}
    made = create_trial(state=state, values=values if state == TrialState.COMPLETE else None, user_attrs=attrs,
                        params={"model.hidden_size": hidden},
                        distributions={"model.hidden_size": CategoricalDistribution([8, 16])})
    made.number = number
    return made


def test_directions_of_objectives():
    assert goals.direction_of("accuracy", {"mse"}) == "maximize"
    assert goals.direction_of("mse", {"mse"}) == "minimize"
    assert [goals.direction_of(n, ()) for n in ("params", "size_mb", "latency_ms", "throughput")] == \
        ["minimize", "minimize", "minimize", "maximize"]


def test_goal_fields_and_problems_of_a_sweep():
    from nlptune.config.compose import compose, load_run_config, to_plain
    from nlptune.config.tune import build_tune_config

    base = load_run_config(["task=demo"])

    def tune(*overrides):
        return build_tune_config(to_plain(compose(list(overrides)))["tune"])

    fields, issues = goals.goals(tune("tune.objectives=[accuracy,latency_ms,f1]"), base)
    assert not issues and fields == {"metric": "accuracy", "direction": "maximize", "constraints": {},
                                     "objectives": ["accuracy", "latency_ms", "f1"],
                                     "directions": ["maximize", "minimize", "maximize"]}
    fields, issues = goals.goals(tune("tune.constraints.throughput=100"), base)
    assert not issues and (fields["metric"], fields["objectives"], fields["constraints"]) == \
        ("accuracy", [], {"throughput": 100})
    _, issues = goals.goals(tune("tune.objectives=[mcc,params]"), base)
    assert [i.key for i in issues] == ["tune.objectives[0]"] and "not a metric of task demo" in issues[0].problem
    unmeasured = load_run_config(["task=demo", "trainer.measure_cost=false"])
    _, issues = goals.goals(tune("tune.constraints.params=10"), unmeasured)
    assert [i.key for i in issues] == ["trainer.measure_cost"] and "measure_cost=true" in issues[0].fix


def test_a_multi_objective_sweep_runs_without_pruner_and_says_so_when_one_was_asked(capsys):
    from nlptune.config.tune import TuneConfig

    multi = TuneConfig(objectives=("accuracy", "params"), pruner="asha")
    assert goals.without_pruner(multi, asked=False).pruner == "none"
    assert "asha" not in capsys.readouterr().err
    assert goals.without_pruner(multi, asked=True).pruner == "none"
    assert "cannot prune" in capsys.readouterr().err
    assert goals.without_pruner(TuneConfig(pruner="asha"), asked=True).pruner == "asha"


def test_bounds_distance_feasibility_and_what_optuna_is_told():
    bounds = {"latency_ms": 0.4, "throughput": 1000.0}
    assert goals.violations(COST, bounds) == pytest.approx({"latency_ms": 0.1, "throughput": 100.0})
    assert goals.violations({**COST, "latency_ms": 0.3, "throughput": 1200.0}, bounds) == \
        pytest.approx({"latency_ms": -0.1, "throughput": -200.0})
    assert goals.violations(None, bounds) == {"latency_ms": math.inf, "throughput": math.inf}  # not measured
    bounded = plan(constraints=bounds)
    assert goals.is_feasible(trial(0, [0.5], constraint={"latency_ms": -0.1, "throughput": 0.0}), bounded)
    assert not goals.is_feasible(trial(1, [0.5], constraint={"latency_ms": -0.1, "throughput": 1.0}), bounded)
    assert not goals.is_feasible(trial(2, [0.5]), bounded)  # no distance recorded: never the best
    assert goals.is_feasible(trial(3, [0.5]), plan())  # no bounds
    func = goals.constraints_func(bounded)
    assert func(trial(4, [0.5], constraint={"throughput": 2.0, "latency_ms": -1.0})) == [-1.0, 2.0]
    assert func(trial(5, [0.5])) == [math.inf, math.inf]
    # before Trial.set_constraint (optuna < 5) the samplers that take bounds get a constraints_func
    assert "constraints_func" in goals.sampler_options(bounded, optuna.samplers.TPESampler, new_api=False)
    assert "constraints_func" in goals.sampler_options(bounded, optuna.samplers.NSGAIISampler, new_api=False)
    assert goals.sampler_options(bounded, optuna.samplers.RandomSampler, new_api=False) == {}
    assert goals.sampler_options(plan(), optuna.samplers.TPESampler, new_api=False) == {}
    assert goals.sampler_options(bounded, optuna.samplers.TPESampler, new_api=True) == {}


def test_recorded_bounds_reach_the_study():
    study = optuna.create_study(direction="maximize")
    live = study.ask()
    goals.record_constraints(live, plan(constraints={"latency_ms": 0.4}), COST)
    study.tell(live, 0.7)
    done = study.trials[0]
    assert done.user_attrs["constraint"] == pytest.approx({"latency_ms": 0.1})
    if goals.HAS_SET_CONSTRAINT:
        assert done.constraints == pytest.approx({"latency_ms": 0.1})


def test_pareto_front_and_the_recommended_trial():
    directions = ["maximize", "minimize"]
    trials = [trial(0, [0.80, 2.0]), trial(1, [0.70, 0.5]), trial(2, [0.75, 3.0]), trial(3, [0.80, 2.0]),
              trial(4, [0.60, 0.5]), trial(5, [0.85, 9.0])]
    front = goals.pareto_front(trials, directions)
    assert [t.number for t in front] == [0, 1, 3, 5]  # 2 is dominated by 0, 4 by 1; 0 and 3 tie
    assert goals.best_of_front(front, directions).number == 5
    assert goals.best_of_front(goals.pareto_front(trials[:5], directions), directions).number == 0  # tie: lower
    assert goals.pareto_front([], directions) == [] and goals.best_of_front([], directions) is None


def test_the_best_is_the_best_feasible_trial_and_none_when_none_is():
    from nlptune.tuning.results import pick_best

    bounded = plan(constraints={"params": 1500})

    class Study:
        def __init__(self, trials):
            self.trials = trials

        def get_trials(self, deepcopy=False):
            return self.trials

    within, past = {"params": -450.0}, {"params": 766.0}
    trials = [trial(0, [0.9], constraint=past), trial(1, [0.7], constraint=within),
              trial(2, [0.8], constraint=within), trial(3, state=TrialState.PRUNED, constraint=within)]
    assert pick_best(Study(trials), bounded, []).trial == 2
    assert pick_best(Study(trials[:1]), bounded, []) is None
    multi = plan(**MULTI)
    best = pick_best(Study([trial(0, [0.8, 2.0]), trial(1, [0.9, 3.0]), trial(2, [0.9, 4.0])]), multi, [])
    assert (best.trial, best.value) == (1, 0.9)


def fake_run(folder: Path, hidden: int, accuracy: float) -> Path:
    """A finished run directory as the recipe writer reads it (config.yaml, manifest.json, metrics.json, best/)."""
    from nlptune.config.compose import load_run_config
    from nlptune.utils.plain import plain_data

    config = plain_data(load_run_config(["task=demo", f"model.hidden_size={hidden}"]).plain)
    (folder / "best").mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "manifest.json").write_text("{}")
    (folder / "metrics.json").write_text(json.dumps({"main_metric": "accuracy", "best": {"accuracy": accuracy}}))
    return folder


def test_each_pareto_trial_gets_a_recipe_and_stale_ones_go(tmp_path):
    from nlptune.tuning.pareto import write_pareto

    multi = plan(tmp_path, **MULTI)
    runs = {n: fake_run(tmp_path / "trials" / f"trial-{n:04d}", h, a) for n, h, a in ((0, 8, 0.7), (1, 16, 0.8))}
    trials = [trial(0, [0.7, 0.2], run_dir=runs[0], cost=COST), trial(1, [0.8, 0.9], run_dir=runs[1], hidden=16,
                                                                        cost=COST),
              trial(2, [0.6, 0.3]), trial(3, state=TrialState.FAIL)]
    (tmp_path / "pareto").mkdir()
    (tmp_path / "pareto" / "trial-0002.yaml").write_text("an earlier front's\n")
    assert write_pareto(multi, trials) == {0: "pareto/trial-0000.yaml", 1: "pareto/trial-0001.yaml"}
    assert sorted(p.name for p in (tmp_path / "pareto").iterdir()) == ["trial-0000.yaml", "trial-0001.yaml"]
    recipe = yaml.safe_load((tmp_path / "pareto" / "trial-0001.yaml").read_text())
    assert recipe["config"]["model"]["hidden_size"] == 16
    assert recipe["expected"]["metric"] == "accuracy" and recipe["expected"]["value"] == 0.8
    assert "latency_ms 0.9" in recipe["recipe"]["description"]


def test_leaderboard_and_summary_of_a_multi_objective_sweep(tmp_path):
    from nlptune.tuning.results import write_leaderboard
    from nlptune.tuning.summary import write_summary

    multi = plan(tmp_path, objectives=["accuracy", "latency_ms", "f1"], directions=["maximize", "minimize",
                                                                                      "maximize"])
    trials = [trial(0, [0.7, 0.2, 0.6], cost=COST), trial(1, [0.8, 0.9, 0.5], cost=COST, hidden=16),
              trial(2, [0.6, 0.3, 0.5], cost=COST), trial(3, state=TrialState.FAIL)]
    write_leaderboard(tmp_path / "leaderboard.csv", trials, multi, [])
    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").open()))
    assert [(r["trial"], r["accuracy"], r["f1"], r["pareto"]) for r in rows] == \
        [("1", "0.8", "0.5", "True"), ("0", "0.7", "0.6", "True"), ("2", "0.6", "0.5", "False"), ("3", "", "", "False")]
    write_summary(tmp_path / "summary.md", multi, trials, None, [], None, {}, {0: "pareto/trial-0000.yaml", 1: None})
    text = (tmp_path / "summary.md").read_text()
    assert "objectives: accuracy (maximize), latency_ms (minimize), f1 (maximize)" in text
    assert "2 of the 3 completed trials are Pareto-optimal" in text
    assert "| trial | accuracy | latency_ms | f1 | params | recipe | model.hidden_size |" in text
    assert "| 1 | 0.8000 | 0.9000 | 0.5000 | 1000 | - | 16 |" in text  # best first objective first
    assert "| 0 | 0.7000 | 0.2000 | 0.6000 | 1000 | `pareto/trial-0000.yaml` | 8 |" in text
    assert "plots/pareto_front.png" in text


def test_summary_of_a_bounded_sweep_counts_who_met_the_bounds(tmp_path):
    from nlptune.tuning.summary import write_summary

    bounded = plan(tmp_path, constraints={"latency_ms": 0.4})
    trials = [trial(0, [0.9], cost=COST, constraint={"latency_ms": 0.1}),
              trial(1, state=TrialState.PRUNED, cost=COST, constraint={"latency_ms": -0.1}),
              trial(2, state=TrialState.PRUNED, cost=COST, constraint={"latency_ms": 0.2})]
    write_summary(tmp_path / "summary.md", bounded, trials, None, [], None, {})
    text = (tmp_path / "summary.md").read_text()
    assert "latency_ms <= 0.4 — met by 0 of the 1 complete and 1 of the 2 pruned trials" in text
    assert "No completed trial met the bounds" in text and "Top trials" not in text


def test_a_study_of_several_objectives_is_created_once_and_checked(tmp_path):
    from nlptune.config.errors import NlptuneError
    from nlptune.tuning.study import build_pruner, build_sampler, create_study

    multi = plan(tmp_path, **MULTI, tune={"pruner": "asha", "sampler": "nsga2"})
    study = create_study(multi)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.user_attrs["objectives"] == ["accuracy", "latency_ms"]
    assert isinstance(build_pruner(multi), optuna.pruners.NopPruner)  # Optuna cannot prune it
    sampler = build_sampler(multi, 3)
    assert isinstance(sampler, optuna.samplers.NSGAIISampler) and sampler._population_size == 4
    with pytest.raises(NlptuneError, match="tune.study_name"):  # the same name, one objective: refused
        create_study(plan(tmp_path))


def test_a_multi_objective_trial_fails_when_an_objective_is_missing():
    from nlptune.tuning.objective import Evaluation, TrialFailed, _values, mean_metrics

    multi = plan(objectives=["accuracy", "params", "f1"], directions=["maximize", "minimize", "maximize"])
    assert mean_metrics([{"accuracy": 0.5, "f1": 0.4}, {"accuracy": 0.7}]) == {"accuracy": 0.6}
    assert _values(multi, Evaluation(0.6, cost=COST, metrics={"f1": 0.5})) == (0.6, 1000.0, 0.5)
    with pytest.raises(TrialFailed, match="params is None \\(the run measured no inference cost\\)"):
        _values(multi, Evaluation(0.6, metrics={"f1": 0.5}))
    with pytest.raises(TrialFailed, match="f1 is nan"):
        _values(multi, Evaluation(0.6, cost=COST, metrics={"f1": float("nan")}))
    assert _values(plan(), Evaluation(0.6)) == 0.6


# ------------------------------------------------------------------ conditional spaces: a model choice


def space_of(*space: tuple[str, str | None], base: str = "bag", overrides=("task=demo",)):
    from nlptune.config.compose import GROUPS, compose, to_plain
    from nlptune.config.tune import build_tune_config
    from nlptune.tuning.conditional import conditional_space

    tune = build_tune_config(to_plain(compose([]))["tune"], dict(space))
    dims, conditions, issues, broken = conditional_space(tune, base, list(overrides), GROUPS)
    return dims, conditions, issues + broken


def test_a_model_choice_searches_each_kind_and_each_models_keys():
    from nlptune.tuning.space import param_overrides, suggest_all

    dims, conditions, issues = space_of(("model", "choice(bag,pretrained)"), ("model.hidden_size", "choice(8,16)"),
                                        ("model.name_or_path", "choice(prajjwal1/bert-tiny)"))
    assert not issues
    assert conditions == {"optimizer.lr@scratch": {"model": ["bag"]}, "optimizer.lr@pretrained": {"model": [
        "pretrained"]}, "model.dropout": {"model": ["bag"]}, "model.hidden_dropout": {"model": ["pretrained"]},
        "model.attention_dropout": {"model": ["pretrained"]}, "model.classifier_dropout": {"model": ["pretrained"]},
        "model.hidden_size": {"model": ["bag"]}, "model.name_or_path": {"model": ["pretrained"]}}
    assert "scheduler.warmup_ratio" in {d.key for d in dims}  # the same range for both kinds: one dimension
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {}
    for _ in range(12):
        params = suggest_all(study.ask(), dims)
        seen[params["model"]] = params
    assert set(seen["bag"]) == {"model", "optimizer.lr@scratch", "scheduler.warmup_ratio", "model.dropout",
                                "model.hidden_size"}
    assert set(seen["pretrained"]) == {"model", "optimizer.lr@pretrained", "scheduler.warmup_ratio",
                                       "model.hidden_dropout", "model.attention_dropout",
                                       "model.classifier_dropout", "model.name_or_path"}
    assert seen["pretrained"]["optimizer.lr@pretrained"] <= 2e-4
    overrides = param_overrides(seen["pretrained"], ("model",))
    assert "model=pretrained" in overrides and any(o.startswith("optimizer.lr=") for o in overrides)


def test_one_kind_or_a_user_dimension_needs_no_kind_suffix():
    dims, conditions, issues = space_of(("model", "choice(bag,lstm)"), ("optimizer.lr", "loguniform(1e-3,1e-2)"))
    assert not issues and not conditions and "optimizer.lr" in {d.key for d in dims}
    dims, conditions, _ = space_of(("model", "choice(bag,pretrained)"), ("optimizer.lr", "loguniform(1e-5,1e-2)"))
    assert "optimizer.lr" in {d.key for d in dims} and "optimizer.lr" not in conditions  # one range for all
    dims, conditions, _ = space_of(("model", "choice(bag,pretrained)"),
                                   ("optimizer.lr@pretrained", "loguniform(1e-5,3e-5)"))
    assert {d.key: d.spec for d in dims}["optimizer.lr@pretrained"] == "loguniform(1e-5,3e-5)"


def test_problems_of_conditional_spaces():
    _, _, issues = space_of(("model", "choice(bag,pretrained)"), overrides=("task=demo", "model.embedding_dim=8"))
    assert [i.key for i in issues] == ["model.embedding_dim"]
    assert "model=pretrained" in issues[0].problem and "tune.space.model.embedding_dim='choice(8)'" in issues[0].fix
    _, _, issues = space_of(("optimizer.lr@pretrained", "loguniform(1e-5,3e-5)"))
    assert [i.key for i in issues] == ["tune.space.optimizer.lr@pretrained"] and "no trial's model" in \
        issues[0].problem
    _, _, issues = space_of(("optimizer.lr@big", "loguniform(1e-5,3e-5)"))
    assert [i.key for i in issues] == ["tune.space.optimizer.lr@big"] and "unknown model kind 'big'" in \
        issues[0].problem


def test_conditional_dimensions_are_checked_with_the_models_that_have_them():
    from nlptune.config.compose import GROUPS
    from nlptune.tuning.plan import check_space

    dims, _, _ = space_of(("model", "choice(bag,pretrained)"), ("model.hidden_size", "choice(8,16)"),
                          ("model.name_or_path", "choice(prajjwal1/bert-tiny)"), ("tune.default_space", None))
    check_space([d for d in dims if d.key.startswith("model")], ["task=demo"], GROUPS)  # no unknown key
    dims, _, _ = space_of(("model", "choice(bag,pretrained)"), ("model.dropout", "uniform(0,1.5)"))
    with pytest.raises(ConfigError) as err:
        check_space([d for d in dims if d.key.startswith("model")], ["task=demo"], GROUPS)
    assert [i.key for i in err.value.issues] == ["tune.space.model.dropout"] and "model=bag" in str(err.value)


@pytest.mark.parametrize("new_api", [True, False])
def test_a_bounded_tpe_study_learns_the_bounds_either_way(new_api, monkeypatch):
    """Optuna >= 5 takes Trial.set_constraint; older versions a constraints_func on the sampler (both work on 5)."""
    import warnings

    from nlptune.tuning.study import build_sampler

    monkeypatch.setattr(goals, "HAS_SET_CONSTRAINT", new_api and goals.HAS_SET_CONSTRAINT)
    bounded = plan(constraints={"latency_ms": 0.5}, tune={"sampler_startup_trials": 2})
    with warnings.catch_warnings():  # optuna 5 deprecates constraints_func
        warnings.simplefilter("ignore", FutureWarning)
        study = optuna.create_study(direction="maximize", sampler=build_sampler(bounded, 0))

    def objective(live):
        size = live.suggest_categorical("model.hidden_size", [8, 16])
        goals.record_constraints(live, bounded, {**COST, "latency_ms": size / 16})
        return size

    study.optimize(objective, n_trials=5)
    for done in study.trials:
        expected = done.params["model.hidden_size"] / 16 - 0.5
        assert done.user_attrs["constraint"] == {"latency_ms": expected}
        stored = done.constraints if goals.HAS_SET_CONSTRAINT else done.system_attrs["constraints"]
        assert list(stored.values() if isinstance(stored, dict) else stored) == [expected]
