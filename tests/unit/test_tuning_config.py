"""The `tune` section: command-line splitting, TuneConfig validation, the default spaces, the search space
checked against the real config before any trial, and the run config never seeing `tune`."""
from __future__ import annotations

import pytest

from nlptune.config.compose import compose, load_run_config, to_plain
from nlptune.config.errors import ConfigError, NlptuneError
from nlptune.config.tune import build_tune_config, split_tune_args
from nlptune.tuning.plan import check_space, find_sweep_dir, grid_dimensions, grid_size
from nlptune.tuning.space import parse_space

GROUPS = ("task", "model", "optimizer", "scheduler", "trainer")


def tune_of(*overrides: str, space=None):
    return build_tune_config(to_plain(compose(list(overrides)))["tune"], space or {})


def test_split_takes_space_and_resume_off_the_command_line():
    args = split_tune_args(["task=sst2", "tune.space.model.hidden_size=choice(128,256)", "resume=auto",
                            "tune.n_trials=8", "tune.space.model.dropout=null", "~tune.space.optimizer.lr"])
    assert args.config_overrides == ["task=sst2", "tune.n_trials=8"]
    assert args.space == {"model.hidden_size": "choice(128,256)", "model.dropout": None, "optimizer.lr": None}
    assert args.resume == "auto"
    assert args.trial_overrides == ["task=sst2"]


def test_default_space_by_model_kind_and_overrides_on_top():
    tune = tune_of(space={"model.hidden_size": "choice(128,256)", "model.dropout": None})
    assert tune.effective_space("lstm") == {"optimizer.lr": "loguniform(1e-4,1e-2)",
                                            "scheduler.warmup_ratio": "uniform(0,0.2)",
                                            "model.hidden_size": "choice(128,256)"}
    pretrained = tune.effective_space("pretrained")
    assert {"model.hidden_dropout", "model.attention_dropout", "model.classifier_dropout"} <= set(pretrained)
    assert "model.dropout" not in pretrained
    assert tune_of("tune.default_space=null").effective_space("lstm") == {}


@pytest.mark.parametrize("override, key", [
    ("tune.sampler=bayes", "tune.sampler"), ("tune.pruner=sha", "tune.pruner"), ("tune.cv_folds=1", "tune.cv_folds"),
    ("tune.workers=0", "tune.workers"), ("tune.grace_period=10", "tune.grace_period"),
    ("tune.n_trials=many", "tune.n_trials"),
])
def test_bad_tune_settings_are_config_errors(override, key):
    with pytest.raises(ConfigError) as err:
        tune_of(override)
    assert key in str(err.value)


def test_tune_typo_is_caught_by_composition():
    with pytest.raises(ConfigError) as err:
        compose(["tune.n_trails=4"])
    assert "tune.n_trials" in str(err.value)


def test_run_config_never_sees_the_tune_section():
    run = load_run_config(["tune.n_trials=3"])
    assert "tune" not in run.plain


def test_space_checked_at_its_bounds_before_any_trial():
    base = ["task=sst2", "model=lstm"]
    check_space(parse_space({"model.dropout": "uniform(0,0.5)", "model.hidden_size": "choice(8,16)"}), base, GROUPS)
    with pytest.raises(ConfigError) as err:
        check_space(parse_space({"model.dropout": "uniform(0,1.5)", "model.hiden_size": "choice(8,16)",
                                 "optimizer.lr": "loguniform(1e-4,1e-2)"}), base, GROUPS)
    text = str(err.value)
    assert "tune.space.model.hiden_size" in text and "model.hidden_size" in text  # suggests the real key
    with pytest.raises(ConfigError) as err:
        check_space(parse_space({"model.dropout": "uniform(0,1.5)"}), base, GROUPS)
    assert "tune.space.model.dropout" in str(err.value) and "1.5" in str(err.value)
    with pytest.raises(ConfigError) as err:  # every option of a choice is checked, not only the ends
        check_space(parse_space({"scheduler.name": "choice(linear,cosine,bogus,constant)"}), base, GROUPS)
    assert "bogus" in str(err.value)
    with pytest.raises(ConfigError) as err:  # a config group as a dimension
        check_space(parse_space({"model": "choice(lstm,gru,lstn)"}), base, GROUPS)
    assert "lstn" in str(err.value)


def test_grid_dimensions_and_size():
    dims = parse_space({"lr": "loguniform(1e-4,1e-2)", "a": "choice(1,2,3)", "b": "range(0,4,2)"})
    grid = grid_dimensions(dims)
    assert [d.key for d in grid] == ["a", "b"] and grid_size(grid) == 6
    with pytest.raises(ConfigError):
        grid_dimensions(parse_space({"lr": "loguniform(1e-4,1e-2)"}))


def test_sweep_dir_resume_rules(tmp_path):
    tune = tune_of(f"tune.dir={tmp_path / 'sweep'}")
    path, resumed = find_sweep_dir(tune, split_tune_args([]), "sst2", "lstm")
    assert path == tmp_path / "sweep" and not resumed
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text("{}")
    with pytest.raises(NlptuneError, match="resume=auto"):
        find_sweep_dir(tune, split_tune_args([]), "sst2", "lstm")
    assert find_sweep_dir(tune, split_tune_args(["resume=auto"]), "sst2", "lstm") == (tmp_path / "sweep", True)
    with pytest.raises(NlptuneError, match="no sweep there"):
        find_sweep_dir(tune, split_tune_args([f"resume={tmp_path}"]), "sst2", "lstm")


def test_a_sweep_inside_a_runs_own_folders_or_a_saved_model_is_refused_before_any_trial(tmp_path):
    """tune.dir=RUN/plots/x started a sweep there whose every trial was then refused (a run inside plots/)."""
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    (run / "best" / "nlptune_task.json").write_text("{}")
    (run / "metrics.jsonl").write_text("")
    for inside, said in ((run / "plots" / "x", "lies inside plots/ of the run"),
                         (run / "best" / "y", "lies inside the saved model folder")):
        with pytest.raises(NlptuneError, match=f"tune.dir {inside} {said}.*give tune.dir a folder outside"):
            find_sweep_dir(tune_of(f"tune.dir={inside}"), split_tune_args([]), "sst2", "lstm")
        assert not inside.exists()
    assert find_sweep_dir(tune_of(f"tune.dir={run / 'sweep'}"), split_tune_args([]), "sst2", "lstm")[0] == \
        run / "sweep"  # beside the run's files, as a sweep's trials sit beside its best/


# ------------------------------------------------------------------ cost-aware sweeps: objectives and bounds


def test_objectives_and_constraints_compose_from_the_command_line():
    from nlptune.config.names import COST_FIGURES

    tune = tune_of("tune.objectives=[accuracy,latency_ms]", "tune.constraints.size_mb=2.5", "tune.sampler=nsga2")
    assert tune.objectives == ("accuracy", "latency_ms") and tune.multi_objective
    assert tune.bounds == {"size_mb": 2.5}
    assert tuple(to_plain(compose([]))["tune"]["constraints"]) == COST_FIGURES  # conf/ has a null bound for each
    plain = tune_of()
    assert plain.objectives is None and not plain.multi_objective and plain.bounds == {}
    assert not tune_of("tune.objectives=[f1]").multi_objective  # one objective: another metric, pruning as usual


@pytest.mark.parametrize("overrides, key, words", [
    (["tune.objectives=[acuracy,latency_ms]"], "tune.objectives[0]", "did you mean 'accuracy'"),
    (["tune.objectives=[accuracy,latncy_ms]"], "tune.objectives[1]", "did you mean 'latency_ms'"),
    (["tune.objectives=[latency_ms,accuracy]"], "tune.objectives[0]", "is a cost figure"),
    (["tune.objectives=[accuracy,accuracy]"], "tune.objectives", "repeated"),
    (["tune.objectives=[]"], "tune.objectives", "an empty list"),
    (["tune.objectives=accuracy"], "tune.objectives", "expected list"),
    (["tune.constraints.latency_ms=0"], "tune.constraints.latency_ms", "out of range"),
    (["tune.constraints.params=few"], "tune.constraints.params", "expected a number"),
    (["+tune.constraints.accuracy=0.9"], "tune.constraints.accuracy", "a metric cannot be a constraint"),
    (["tune.objectives=[accuracy,params]", "tune.sampler=gp"], "tune.sampler", "gp optimises one objective"),
    (["tune.objectives=[accuracy,params]", "tune.sampler=cmaes"], "tune.sampler", "use one of tpe, nsga2"),
    (["tune.objectives=[accuracy,params]", "tune.confirm_seeds=3"], "tune.confirm_seeds", "Pareto recipe"),
    (["tune.objectives=[accuracy,params]", "tune.retrain_full=true"], "tune.retrain_full", "Pareto front"),
])
def test_bad_objectives_and_constraints_are_config_errors(overrides, key, words):
    with pytest.raises(ConfigError) as err:
        tune_of(*overrides)
    assert [issue.key for issue in err.value.issues] == [key] and words in str(err.value)


def test_a_misspelt_bound_and_a_metric_as_a_bound_are_named_with_their_fix():
    with pytest.raises(ConfigError) as err:
        tune_of("tune.constraints.latncy_ms=5")
    assert "did you mean 'latency_ms'" in str(err.value)
    with pytest.raises(ConfigError) as err:  # not "unknown key, did you mean params": why a metric is no bound
        tune_of("tune.constraints.accuracy=0.9")
    assert "a metric cannot be a constraint" in str(err.value) and "tune.objectives" in str(err.value)


def test_a_sweep_reports_the_tune_sections_and_the_trials_problems_at_once():
    from nlptune.tuning.sweep import prepare

    with pytest.raises(ConfigError) as err:  # nothing is written before the config is whole
        prepare(["tune.n_trial=3", "tune.workers=0", "tune.constraints.accuracy=0.9", "trainer.batchsize=3",
                 "trainer.max_epochs=0"])
    assert {issue.key for issue in err.value.issues} == {"tune.n_trial", "tune.workers", "tune.constraints.accuracy",
                                                         "trainer.batchsize", "trainer.max_epochs"}


def test_multi_objective_samplers_and_bounds_with_one_objective_are_fine():
    for sampler in ("tpe", "nsga2", "random", "grid"):
        assert tune_of("tune.objectives=[accuracy,params]", f"tune.sampler={sampler}").sampler == sampler
    assert tune_of("tune.constraints.latency_ms=5", "tune.sampler=gp", "tune.confirm_seeds=2").bounds == \
        {"latency_ms": 5}


def test_imbalance_and_head_lr_keys_are_sweepable():
    space = {"trainer.class_weights": "choice(none,balanced)", "trainer.loss": "choice(cross_entropy,focal)",
             "trainer.focal_gamma": "uniform(0.5,3)", "trainer.label_smoothing": "uniform(0,0.2)"}
    check_space(parse_space(space), ["task=cola", "model=gru"], GROUPS)
    check_space(parse_space({"trainer.pos_weight": "choice(none,balanced)"}), ["task=goemotions", "model=lstm"],
                GROUPS)
    check_space(parse_space({"optimizer.head_lr_scale": "loguniform(1,50)", "optimizer.layer_decay":
                             "uniform(0.7,1)"}), ["task=sst2", "model=pretrained"], GROUPS)
    with pytest.raises(ConfigError) as err:  # each option is checked: a misspelt one is named
        check_space(parse_space({"trainer.class_weights": "choice(none,balance)"}), ["task=cola", "model=gru"],
                    GROUPS)
    assert "balance" in str(err.value)


def test_type_and_value_errors_of_the_tune_section_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        tune_of("tune.n_trials=abc", "tune.workers=0", "tune.grace_period=x", "tune.objectives=[accuracy,banana]")
    assert {issue.key for issue in info.value.issues} == {"tune.n_trials", "tune.workers", "tune.grace_period",
                                                          "tune.objectives[1]"}


@pytest.mark.parametrize("bad", ["abc", [1, 2], {"a": 1}, None, True, -5])
def test_any_ill_typed_tune_setting_is_a_config_error_never_a_crash(bad):
    plain = to_plain(compose([]))["tune"]
    for key in plain:
        try:
            build_tune_config({**plain, key: bad}, {})
        except ConfigError:
            pass


@pytest.mark.parametrize("section, value, key, words", [
    ("space", 5, "tune.space", "expected config keys with search dimensions"),
    ("default_space", "x", "tune.default_space", "a space per model kind"),
    ("default_space", {"scratch": 5}, "tune.default_space.scratch", "expected config keys"),
    ("default_space", {"scrach": {}}, "tune.default_space.scrach", "did you mean 'scratch'"),
])
def test_search_spaces_of_the_wrong_shape_are_named(section, value, key, words):
    plain = to_plain(compose([]))["tune"]
    with pytest.raises(ConfigError) as err:
        build_tune_config({**plain, section: value}, {})
    assert [issue.key for issue in err.value.issues] == [key] and words in str(err.value)
