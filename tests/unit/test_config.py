"""Unit tests for nlptune.config: composition of conf/, overrides, validation, the typed frozen RunConfig."""
from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from nlptune.config import ConfigError, RunConfig, build_run_config
from nlptune.config.compose import compose, group_options, load_run_config, to_plain


def issues_of(overrides) -> dict[str, str]:
    """``{key: full issue text}`` of the ConfigError raised for ``overrides``."""
    with pytest.raises(ConfigError) as info:
        load_run_config(overrides)
    return {issue.key: str(issue) for issue in info.value.issues}


# ---------------------------------------------------------------------------------------------
# composition
# ---------------------------------------------------------------------------------------------
def test_defaults_are_demo_task_and_bag_model():
    run = load_run_config([])
    assert isinstance(run, RunConfig)
    assert run.task.name == "demo" and run.task.generator == "demo"
    assert run.model.name == "bag"
    assert run.optimizer.name == "adamw" and run.scheduler.name == "linear"
    assert run.seed == 42 and run.output_dir is None
    assert run.model.tokenizer is not None and run.model.tokenizer.kind == "wordlevel"
    # tokenizer keys are split off the model's builder arguments
    assert "vocab_size" not in run.model.args and "embedding_dim" in run.model.args


@pytest.mark.parametrize("task", ["sst2", "cola", "subj", "mrpc", "stsb", "demo", "text_classification",
                                  "text_regression"])
def test_every_task_file_composes(task):
    run = load_run_config([f"task={task}"])
    assert run.task.name == task
    assert run.task.main_metric in run.task.metrics
    assert run.task.is_pair == (task in ("mrpc", "stsb"))
    assert run.task.kind == ("regression" if task in ("stsb", "text_regression") else "single_label")
    assert run.task.problem_type is None  # the legacy key: null in conf/task


def test_group_selection():
    run = load_run_config(["task=mrpc", "model=lstm", "optimizer=sgd", "scheduler=cosine"])
    assert (run.task.name, run.model.name, run.optimizer.name, run.scheduler.name) == ("mrpc", "lstm", "sgd",
                                                                                         "cosine")
    assert run.task.text_fields == ("sentence1", "sentence2")
    assert run.optimizer.momentum == 0.9  # from optimizer/sgd.yaml
    assert group_options("model") == ["bag", "cnn", "gru", "lstm", "pretrained", "transformer"]


@pytest.mark.parametrize("model, lr", [("bag", 5e-3), ("cnn", 3e-3), ("lstm", 2e-3), ("gru", 2e-3),
                                       ("transformer", 5e-4), ("pretrained", 5e-5)])
def test_model_file_sets_learning_rate(model, lr):
    assert load_run_config([f"model={model}"]).optimizer.lr == pytest.approx(lr)


def test_pretrained_model_file_sets_its_training_defaults():
    run = load_run_config(["model=pretrained"])
    assert run.model.tokenizer is None  # the checkpoint brings its own
    assert run.optimizer.weight_decay == pytest.approx(0.01)
    assert run.scheduler.warmup_ratio == pytest.approx(0.1)


@pytest.mark.parametrize("model, grouped", [("bag", False), ("transformer", False), ("lstm", True), ("gru", True),
                                            ("cnn", True), ("pretrained", True)])
def test_model_file_sets_length_grouping(model, grouped):
    assert load_run_config([f"model={model}"]).trainer.group_by_length is grouped
    assert load_run_config([f"model={model}", f"trainer.group_by_length={not grouped}"]).trainer.group_by_length \
        is (not grouped)


def test_command_line_overrides_win_over_model_file():
    run = load_run_config(["model=transformer", "optimizer.lr=0.01", "scheduler.warmup_ratio=0.2",
                           "model.num_heads=2", "trainer.batch_size=8", "seed=7"])
    assert run.optimizer.lr == pytest.approx(0.01)
    assert run.scheduler.warmup_ratio == pytest.approx(0.2)
    assert run.model.args["num_heads"] == 2
    assert run.trainer.batch_size == 8 and run.seed == 7
    # the order of overrides on the command line does not matter
    again = load_run_config(["optimizer.lr=0.01", "model=transformer", "scheduler.warmup_ratio=0.2",
                             "model.num_heads=2", "trainer.batch_size=8", "seed=7"])
    assert again == run


def test_model_tokenizer_keys_override():
    run = load_run_config(["model=cnn", "model.tokenizer=wordpiece", "model.vocab_size=500", "model.lowercase=false",
                           "model.normalization=none", "model.min_frequency=1"])
    tok = run.model.tokenizer
    assert (tok.kind, tok.vocab_size, tok.lowercase, tok.normalization, tok.min_frequency) == (
        "wordpiece", 500, False, "none", 1)


def test_data_dir_comes_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NLPTUNE_DATA_DIR", str(tmp_path))
    assert load_run_config(["task=sst2"]).task.data_dir == str(tmp_path)
    monkeypatch.delenv("NLPTUNE_DATA_DIR")
    assert load_run_config(["task=sst2"]).task.data_dir is None


def test_build_run_config_from_plain_data_matches_compose():
    plain = to_plain(compose(["task=stsb", "model=gru"]))
    assert isinstance(plain, dict)
    assert build_run_config(plain) == load_run_config(["task=stsb", "model=gru"])


@pytest.mark.parametrize("task", ["wikiann_en", "wnut17", "conll2003", "token_classification"])
def test_tokens_tasks_decode_under_their_tag_scheme(task):
    assert load_run_config([f"task={task}", "model=lstm"]).task.constrained_decoding is True
    plain = to_plain(compose([f"task={task}", "model=lstm"]))
    del plain["task"]["constrained_decoding"]  # a config stored before the key decodes as it ran: word by word
    assert build_run_config(plain).task.constrained_decoding is False
    assert "task.constrained_decoding" in issues_of([f"task={task}", "model=lstm", "task.constrained_decoding=maybe"])


def test_cfg_job_prints_composed_config(run_cli, tmp_path):
    result = run_cli(["train", "--cfg", "job", "task=mrpc", "model=cnn", "optimizer.lr=0.01"], cwd=tmp_path,
                     timeout=60)
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["task"]["name"] == "mrpc" and printed["model"]["name"] == "cnn"
    assert printed["model"]["kernel_sizes"] == [3, 4, 5]
    assert printed["optimizer"]["lr"] == pytest.approx(0.01)
    assert set(printed) >= {"task", "model", "optimizer", "scheduler", "trainer", "seed", "output_dir"}
    assert not any(tmp_path.iterdir()), "--cfg job must not train or write a run directory"


def test_cfg_job_reports_errors(run_cli, tmp_path):
    result = run_cli(["train", "--cfg", "job", "model.embeding_dim=3"], cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "model.embedding_dim" in result.stderr and "Traceback" not in result.stderr
    # a value train refuses: the config is printed, and what is wrong with it said (it printed it and exited 0)
    result = run_cli(["train", "--cfg", "job", "trainer.batch_size=-3", "seed=abc"], cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "batch_size: -3" in result.stdout
    assert "trainer.batch_size" in result.stderr and "seed: expected an integer" in result.stderr
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# errors: all at once, each with a suggestion
# ---------------------------------------------------------------------------------------------
def test_all_typos_reported_at_once_with_suggestions():
    found = issues_of(["optimzer.lr=1e-3", "trainer.max_epoch=2", "model.embeding_dim=3", "task=sst3", "sed=1"])
    expected = {"optimzer.lr": "optimizer.lr", "trainer.max_epoch": "trainer.max_epochs",
                "model.embeding_dim": "model.embedding_dim", "task": "task=sst2", "sed": "seed"}
    assert set(found) == set(expected)
    for key, suggestion in expected.items():
        assert f"did you mean '{suggestion}'" in found[key], found[key]


def test_config_error_message_lists_every_issue():
    with pytest.raises(ConfigError) as info:
        load_run_config(["optimzer.lr=1e-3", "trainer.max_epoch=2"])
    message = str(info.value)
    assert message.startswith("2 config error(s)")
    assert "optimzer.lr" in message and "trainer.max_epoch" in message


@pytest.mark.parametrize("override, suggestion", [("task=sst3", "task=sst2"), ("model=lstn", "model=lstm"),
                                                  ("optimizer=adamww", "optimizer=adamw"),
                                                  ("scheduler=cosin", "scheduler=cosine")])
def test_unknown_group_option(override, suggestion):
    group = override.split("=")[0]
    (issue,) = issues_of([override]).values()
    assert f"did you mean '{suggestion}'" in issue
    assert all(option in issue for option in group_options(group))


def test_unknown_name_without_close_match_lists_the_choices():
    (issue,) = issues_of(["model=zzzzzz"]).values()
    assert "did you mean" not in issue
    assert "bag, cnn, gru, lstm, pretrained, transformer" in issue


def test_not_a_key_value_override():
    assert "key=value" in issues_of(["trainer.max_epochs"])["trainer.max_epochs"]


@pytest.mark.parametrize("override, key", [
    ("optimizer.lr=0", "optimizer.lr"),
    ("optimizer.lr=-1e-3", "optimizer.lr"),
    ("model.dropout=1.0", "model.dropout"),
    ("model.dropout=-0.1", "model.dropout"),
    ("model.embedding_dropout=1.5", "model.embedding_dropout"),
    ("scheduler.warmup_ratio=1.0", "scheduler.warmup_ratio"),
    ("scheduler.warmup_ratio=-0.1", "scheduler.warmup_ratio"),
    ("scheduler.warmup_steps=-1", "scheduler.warmup_steps"),
    ("trainer.batch_size=0", "trainer.batch_size"),
    ("trainer.batch_size=-8", "trainer.batch_size"),
    ("trainer.gradient_accumulation_steps=0", "trainer.gradient_accumulation_steps"),
    ("model.hidden_size=0", "model.hidden_size"),
    ("task.max_train_samples=0", "task.max_train_samples"),
])
def test_out_of_range_values(override, key):
    found = issues_of([override])
    assert list(found) == [key]
    assert "out of range" in found[key]


def test_only_the_bag_may_have_zero_layers():
    assert load_run_config(["model=bag", "model.num_layers=0"]).model.args["num_layers"] == 0
    for model in ("cnn", "lstm", "gru", "transformer"):
        found = issues_of([f"model={model}", "model.num_layers=0"])
        assert list(found) == ["model.num_layers"] and "[1, inf)" in found["model.num_layers"]


@pytest.mark.parametrize("override", ["model.dropout=0.0", "model.dropout=0.99", "scheduler.warmup_ratio=0.0",
                                      "scheduler.warmup_ratio=0.5", "optimizer.lr=1e-9", "trainer.batch_size=1"])
def test_in_range_values_accepted(override):
    load_run_config([override])


def test_value_errors_reported_at_once():
    found = issues_of(["optimizer.lr=0", "model.dropout=1.5", "trainer.batch_size=0", "scheduler.warmup_ratio=2"])
    assert set(found) == {"optimizer.lr", "model.dropout", "trainer.batch_size", "scheduler.warmup_ratio"}


def test_unknown_optimizer_name():
    issue = issues_of(["optimizer.name=adamx"])["optimizer.name"]
    assert "did you mean" in issue and "adamw" in issue


def test_unknown_scheduler_and_device_values():
    found = issues_of(["scheduler.name=cosin", "trainer.device=tpu", "trainer.mixed_precision=fp8"])
    assert "did you mean 'cosine'" in found["scheduler.name"]
    assert set(found) == {"scheduler.name", "trainer.device", "trainer.mixed_precision"}


def test_unknown_model_argument():
    issue = issues_of(["+model.num_filters=8"])["model.num_filters"]  # a cnn argument, not a bag one
    assert "model 'bag' has no argument 'num_filters'" in issue


def test_misspelt_model_argument_suggests_the_right_one():
    assert "did you mean 'model.pooling'" in issues_of(["+model.poling=max"])["model.poling"]


@pytest.mark.parametrize("override, expected", [("optimizer.lr=abc", "expected float"),
                                                ("trainer.max_epochs=1.5", "expected int"),
                                                ("trainer.batch_size=true", "expected int")])
def test_wrong_types(override, expected):
    (issue,) = issues_of([override]).values()
    assert expected in issue


def test_type_and_value_errors_of_different_keys_are_reported_at_once():
    found = issues_of(["trainer.max_epochs=abc", "optimizer.betas=5", "optimizer.lr=-1", "trainer.batch_size=0",
                       "model.dropout=2", "task.max_length=0"])
    assert set(found) == {"trainer.max_epochs", "optimizer.betas", "optimizer.lr", "trainer.batch_size",
                          "model.dropout", "task.max_length"}
    assert "expected int, got 'abc' -> set it to an int" in found["trainer.max_epochs"]


@pytest.mark.parametrize("bad", ["abc", [1, 2], {"a": 1}, None, True, -5])
def test_any_ill_typed_value_is_a_config_error_never_a_crash(bad):
    """Every key of a few configs set to a value of the wrong type: a ConfigError, whatever the checks read."""
    for overrides in (["model=lstm"], ["task=stsb", "model=cnn"], ["task=wikiann_en", "model=lstm"],
                      ["task=goemotions", "model=transformer"]):
        plain = to_plain(compose(overrides))
        for section, values in plain.items():
            for key in values if isinstance(values, dict) else ():
                trial = {name: dict(part) if isinstance(part, dict) else part for name, part in plain.items()}
                trial[section][key] = bad
                try:
                    build_run_config(trial)
                except ConfigError:
                    pass


@pytest.mark.parametrize("name", [5, [1, 2], {"a": 1}])
def test_a_model_name_that_is_not_a_string_is_a_config_error(name):
    plain = to_plain(compose([]))
    plain["model"]["name"] = name
    with pytest.raises(ConfigError) as info:
        build_run_config(plain)
    assert f"unknown model {name!r}" in str(info.value)


def test_a_max_length_beyond_a_scratch_transformers_positions_is_refused():
    issue = issues_of(["model=transformer", "task.max_length=600", "model.max_positions=512"])["task.max_length"]
    assert "more than model.max_positions=512" in issue and "set task.max_length=512 or less" in issue
    load_run_config(["model=transformer", "task.max_length=512", "model.max_positions=512"])


@pytest.mark.parametrize("seed, ok", [(0, True), (-1, True), (2**64 - 1, True), (2**64, False), (-2**63 - 1, False)])
def test_seeds_torch_cannot_take_are_config_errors(seed, ok):
    if ok:
        assert load_run_config([f"seed={seed}"]).seed == seed
    else:
        assert "the seeds torch takes" in issues_of([f"seed={seed}"])["seed"]


def test_metric_must_fit_the_problem_type():
    found = issues_of(["task=stsb", "task.metrics=[accuracy]", "task.main_metric=accuracy"])
    assert "task.metrics" in found


def test_polynomial_schedule_needs_lr_above_lr_end():
    # transformers raises a bare ValueError at the first training step otherwise
    found = issues_of(["scheduler=polynomial", "optimizer.lr=1e-8", "scheduler.lr_end=1e-7"])
    assert "scheduler.lr_end" in found
    load_run_config(["scheduler=polynomial", "optimizer.lr=1e-3", "scheduler.lr_end=1e-7"])


# ---------------------------------------------------------------------------------------------
# components by registered name; configs cannot name code
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["os.system", "nlptune.models.bag.build_bag", "torch.nn.Linear"])
def test_model_name_is_a_registered_name_not_an_import_path(name):
    issue = issues_of([f"model.name={name}"])["model.name"]
    assert f"unknown model '{name}'" in issue


@pytest.mark.parametrize("override, key", [("+model._target_=os.system", "model._target_"),
                                           ("+task._target_=os.system", "task._target_"),
                                           ("+optimizer._target_=os.system", "optimizer._target_"),
                                           ("+scheduler._target_=os.system", "scheduler._target_"),
                                           ("+trainer._target_=os.system", "trainer._target_"),
                                           ("+_target_=os.system", "_target_")])
def test_target_keys_are_refused(override, key):
    found = issues_of([override])
    assert key in found, found


@pytest.mark.parametrize("override", ["+model.trust_remote_code=true", "+model.use_safetensors=false"])
def test_pretrained_safety_switches_are_not_config_keys(override):
    # ARCHITECTURE.md: trust_remote_code is never taken from a config; weights are read as safetensors
    key = override[1:].split("=")[0]
    assert key in issues_of(["model=pretrained", override])


# ---------------------------------------------------------------------------------------------
# typed, frozen
# ---------------------------------------------------------------------------------------------
def test_run_config_is_typed_and_frozen():
    run = load_run_config(["task=mrpc"])
    assert isinstance(run.task.text_fields, tuple) and isinstance(run.optimizer.betas, tuple)
    assert isinstance(run.optimizer.lr, float) and isinstance(run.trainer.max_epochs, int)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.seed = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.optimizer.lr = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.task.max_length = 3
    with pytest.raises(TypeError):
        run.model.args["hidden_size"] = 3  # a read-only mapping
    with pytest.raises(TypeError):
        run.plain["seed"] = 3
    assert run == load_run_config(["task=mrpc"])
    hash(run.optimizer)


# ---------------------------------------------------------------------------------------------
# defaults live in conf/ once: the sections have none, every key has a value there, a missing one is named
# ---------------------------------------------------------------------------------------------
SECTIONS = {"optimizer": "OptimizerConfig", "scheduler": "SchedulerConfig", "trainer": "TrainerConfig",
            "augment": "AugmentConfig"}


@pytest.mark.parametrize("group", sorted(SECTIONS))
def test_sections_have_no_defaults_and_every_conf_option_fills_them(group):
    from nlptune.config import schema
    from nlptune.config.compose import section_config

    cls = getattr(schema, SECTIONS[group])
    assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               for f in dataclasses.fields(cls)), f"{cls.__name__} repeats conf/'s defaults"
    for option in group_options(group):
        assert isinstance(section_config(group, option), cls)


def test_tokenizer_config_has_no_defaults():
    from nlptune.config.schema import TokenizerConfig

    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(TokenizerConfig))


@pytest.mark.parametrize("section, key", [("optimizer", "weight_decay"), ("trainer", "deterministic"),
                                          ("augment", "unk_prob"), ("scheduler", "lr_end"), ("model", "tokenizer"),
                                          ("model", "min_frequency"), ("model", "name")])
def test_a_missing_key_is_a_config_error_naming_it(section, key):
    plain = to_plain(compose(["model=lstm"]))
    del plain[section][key]
    with pytest.raises(ConfigError) as info:
        build_run_config(plain)
    (issue,) = info.value.issues
    assert issue.key == f"{section}.{key}" and "missing key" in str(issue)


def test_measure_cost_is_a_bool_and_configs_from_before_it_measure():
    assert "expected bool" in issues_of(["trainer.measure_cost=3"])["trainer.measure_cost"]
    assert load_run_config(["trainer.measure_cost=false"]).trainer.measure_cost is False
    plain = to_plain(compose([]))
    del plain["trainer"]["measure_cost"]  # a run directory, checkpoint or recipe written before the key existed
    assert build_run_config(plain).trainer.measure_cost is True


def test_a_missing_top_level_key_is_a_config_error():
    plain = to_plain(compose([]))
    del plain["seed"], plain["augment"]
    with pytest.raises(ConfigError) as info:
        build_run_config(plain)
    assert {issue.key for issue in info.value.issues} == {"seed", "augment"}


@pytest.mark.parametrize("override, expected", [("optimizer.lr=null", "expected float, got None"),
                                                ("trainer.report_to=tensorboard", "expected list"),
                                                ("trainer.report_to=tensorboard",  # the override that was meant
                                                 "set it to a list, e.g. trainer.report_to=['tensorboard']"),
                                                ("optimizer.lr=true", "expected float")])
def test_types_come_from_the_annotations(override, expected):
    (issue,) = issues_of([override]).values()
    assert expected in issue


def test_section_config_reads_conf_and_applies_changes():
    from nlptune.config.compose import section_config

    adamw = section_config("optimizer", "adamw", lr=0.5)
    assert adamw.lr == 0.5 and adamw.weight_decay == load_run_config([]).optimizer.weight_decay == 0.01
    with pytest.raises(ConfigError, match="did you mean 'optimizer.lr'"):
        section_config("optimizer", "adamw", lrr=0.5)
    with pytest.raises(ConfigError, match="unknown optimizer 'adamx'"):
        section_config("optimizer", "adamx")


def test_model_argument_values_and_types_are_checked_before_training_all_at_once():
    """A builder's annotations give each argument's type and its declared `choices` the allowed values: a bad
    value is a config error with the others (before any data is read), never a crash inside the model."""
    issues = issues_of(["model=lstm", "model.pooling=bogus", "model.activation=sigmoid",
                        "model.bidirectional=maybe", "model.hidden_size=abc"])
    assert set(issues) == {"model.bidirectional", "model.hidden_size", "model.pooling", "model.activation"}
    assert "expected bool" in issues["model.bidirectional"] and "expected int" in issues["model.hidden_size"]
    # an argument of a few values (a word where a number goes too) names them, with the other problems
    issues = issues_of(["task=token_classification", "model=gru", "model.char_embedding=16", "model.dropout=x"])
    assert "unknown value 16 -> choose one of: cnn, lstm" in issues["model.char_embedding"]
    assert "expected float, got 'x'" in issues["model.dropout"]  # "str or null", not "str  or  None"
    assert "model.char_embedding" not in issues_of(["task=token_classification", "model=cnn",
                                                    "model.char_embedding=null", "model.dropout=x"])
    issues = issues_of(["model=lstm", "model.pooling=bogus", "model.activation=sigmoid", "model.dropout=2"])
    assert "choose one of: last, mean, max, attention" in issues["model.pooling"]
    assert "relu, gelu, tanh" in issues["model.activation"] and "out of range" in issues["model.dropout"]
    assert "positional" in issues_of(["model=transformer", "model.positional=rotary"])["model.positional"]


def test_a_model_argument_refused_at_build_time_is_a_user_error():
    """What only the builder can check (d_model divisible by num_heads) is still one message and exit 2."""
    from nlptune.config.errors import NlptuneError
    from nlptune.models import build_model

    with pytest.raises(NlptuneError, match="d_model=64 is not divisible by num_heads=7"):
        build_model("transformer", vocab_size=20, pad_token_id=0, num_labels=2, pair=False, embedding_dim=64,
                    num_heads=7)


def test_head_lr_and_layer_decay_are_checked_and_apply_to_pretrained_only():
    issues = issues_of(["model=lstm", "optimizer.head_lr_scale=10", "optimizer.layer_decay=0.9"])
    assert set(issues) == {"optimizer.head_lr_scale", "optimizer.layer_decay"}
    assert all("model=pretrained only" in text for text in issues.values())
    issues = issues_of(["model=pretrained", "optimizer.head_lr_scale=0", "optimizer.layer_decay=1.5"])
    assert set(issues) == {"optimizer.head_lr_scale", "optimizer.layer_decay"}
    run = load_run_config(["model=pretrained", "optimizer.head_lr_scale=20", "optimizer.layer_decay=1.0"])
    assert (run.optimizer.head_lr_scale, run.optimizer.layer_decay) == (20.0, 1.0)
    plain = to_plain(compose(["model=lstm"]))  # a config stored before the keys existed: both off
    del plain["optimizer"]["head_lr_scale"], plain["optimizer"]["layer_decay"]
    assert (build_run_config(plain).optimizer.head_lr_scale, build_run_config(plain).optimizer.layer_decay) == (1, 1)


@pytest.mark.parametrize("overrides, key, problem", [
    (["task.text_fields=[text,text]"], "task.text_fields", "names the column 'text' twice"),
    (["task.label_field=text"], "task.label_field", "'text' is also a text column"),
    (["task.text_fields=[question,label]"], "task.label_field", "'label' is also a text column"),
    (["task=multi_label", "task.label_fields=[joy,text]"], "task.label_fields", "'text' is also a text column")])
def test_a_label_column_read_as_text_or_a_text_column_read_twice_is_refused(overrides, key, problem):
    """A model reading its own label trains to a perfect, meaningless score; a pair of one column twice is a
    slip: both are config errors before any data is read."""
    assert problem in issues_of(["task=text_classification", *overrides]).get(key, "")


def test_a_label_name_listed_twice_is_a_config_error():
    """It was found only once the data was read; the other config errors were reported apart from it."""
    found = issues_of(["task.label_names=[a,b,a,1,'1']", "trainer.max_epochs=0"])
    assert "lists '1', 'a' more than once" in found["task.label_names"] and "trainer.max_epochs" in found


def test_an_override_hydra_cannot_merge_is_named_by_its_key():
    """`task.text_fields={a:1}` was "overrides: Error merging override ..." and hid the other problems."""
    found = issues_of(["task.text_fields={a:1}", "trainer.max_epochs=-1"])
    assert "Cannot merge a mapping with a list" in found["task.text_fields"] and "trainer.max_epochs" in found


def test_a_tagger_with_a_whole_text_pooling_is_a_config_error():
    """model.pooling=mean on a tokens task failed only when the model was built, after the data was read."""
    found = issues_of(["task=token_classification", "model=pretrained", "model.name_or_path=some/model",
                       "model.pooling=mean", "trainer.max_epochs=-1"])
    assert "a word tagger reads every token" in found["model.pooling"] and "trainer.max_epochs" in found
    assert "cannot tag words" in issues_of(["task=token_classification", "model=bag"])["model.name"]


@pytest.mark.parametrize("overrides, key, said", [
    (["model=transformer", "model.embedding_dim=100", "model.num_heads=3"], "model.d_model", "not divisible by"),
    (["model=transformer", "model.d_model=60", "model.num_heads=8"], "model.d_model", "d_model=60 is not divisible"),
    (["model=cnn", "model.num_layers=2"], "model.num_layers", "not valid for cnn")])
def test_a_builders_own_argument_checks_are_config_errors(overrides, key, said):
    """They ran when the model was built, after the data was read, and apart from the other problems."""
    found = issues_of([*overrides, "trainer.max_epochs=-1"])
    assert said in found[key] and "trainer.max_epochs" in found


@pytest.mark.parametrize("layer_key", ["num_hidden_layers", "n_layers"])
def test_freezing_or_resetting_more_layers_than_a_local_checkpoint_has_is_a_config_error(tmp_path, layer_key):
    """It was found when the model loaded, after the data was read; the checkpoint's config.json says the count
    (BERT's key, DistilBERT's)."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", layer_key: 2}))
    base = ["model=pretrained", f"model.name_or_path={tmp_path}", "trainer.max_epochs=-1"]
    found = issues_of([*base, "model.freeze_layers=3"])
    assert "freeze_layers=3 is more than the 2 layers" in found["model.freeze_layers"] and "trainer.max_epochs" in found
    assert "model.reinit_layers=2 or less" in issues_of([*base, "model.reinit_layers=5"])["model.reinit_layers"]
    assert load_run_config(base[:2] + ["model.freeze_layers=2", "model.reinit_layers=2"]).model.name == "pretrained"
    # a hub id not on this machine, or a folder without a readable config, is left to the model's loading
    assert load_run_config(["model=pretrained", "model.name_or_path=someone/not-cached-here",
                            "model.freeze_layers=40"]).model.name == "pretrained"
    (tmp_path / "config.json").write_text("{not json")
    assert load_run_config(base[:2] + ["model.freeze_layers=40"]).model.name == "pretrained"


def test_valid_builder_arguments_pass_their_checks():
    assert load_run_config(["model=transformer", "model.d_model=64", "model.num_heads=8"]).model.name == "transformer"
    assert load_run_config(["model=cnn", "model.kernel_sizes=[2,3]"]).model.name == "cnn"
