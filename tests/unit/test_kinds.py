"""Problem kinds (nlptune/kinds/): the one place that knows what a label is. Each kind's label checks and
encoding, outputs, loss, predictions, metrics and stratification; the task.kind / legacy problem_type config keys;
and the rule that nothing outside kinds/ branches on the kind."""
from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nlptune.config.compose import load_run_config
from nlptune.config.names import GENERIC_TASKS
from nlptune.config.errors import ConfigError
from nlptune.config.names import NAMES
import nlptune.kinds  # noqa: F401  (registers the kinds)
from nlptune.config.registry import registered
from nlptune.config.schema import LEGACY_PROBLEM_TYPES, METRICS, TaskConfig, kind_of
from nlptune.kinds.base import Kind
from nlptune.kinds import LabelProblem, get_kind
from nlptune.metrics import METRICS as METRIC_FUNCTIONS, compute_metrics

PACKAGE = Path(__file__).resolve().parents[2] / "nlptune"
SINGLE, REGRESSION = get_kind("single_label"), get_kind("regression")


# ---------------------------------------------------------------------------------------------
# the design rules
# ---------------------------------------------------------------------------------------------
def test_no_kind_branch_outside_kinds():
    pattern = re.compile(r"is_regression|problem_type ==")
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
                 for path in sorted(PACKAGE.rglob("*.py")) if "kinds" not in path.relative_to(PACKAGE).parts[:1]
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if pattern.search(line)]
    assert not offenders, "ask the problem kind (nlptune/kinds/) instead of branching on it:\n" + "\n".join(offenders)


def test_kind_names_registrations_and_config_tables_agree():
    assert sorted(NAMES["kind"]) == registered("kind")
    assert set(METRICS) == set(NAMES["kind"])  # the metrics config validation accepts, per kind
    assert set(LEGACY_PROBLEM_TYPES.values()) <= set(NAMES["kind"])
    for name in NAMES["kind"]:
        kind = get_kind(name)
        assert kind.name == name and get_kind(name) is kind
        if type(kind).scores is Kind.scores:  # scored by the shared metric functions
            assert set(kind.metric_names) <= set(METRIC_FUNCTIONS)
        else:  # the kind scores its own outputs (tokens: whole sentences): it computes every metric it names
            import numpy as np

            outputs = {"predictions": np.array([1, 0]), "references": np.array([1, 0]), "lengths": np.array([2])}
            if name == "multi_label":  # a probability and a 0/1 reference per label
                outputs = {"predictions": np.array([[0.9, 0.1]]), "references": np.array([[1.0, 0.0]])}
            assert set(kind.metric_names) <= set(kind.scores(kind.metric_names, outputs, ["O", "B-X"]))


def test_every_kind_asks_for_an_allowed_pretrained_head():
    from nlptune.models.pretrained import AUTO_MODELS, build_pretrained

    assert all(get_kind(name).hf_auto_model in AUTO_MODELS for name in NAMES["kind"])
    with pytest.raises(ValueError, match="auto_model='AutoModel' is not one of"):  # never any transformers name
        build_pretrained(name_or_path="unused", num_labels=2, auto_model="AutoModel")


def test_importing_the_kinds_loads_no_torch():
    code = "import sys, nlptune.kinds; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# single_label: labels keep their type and spelling
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, key", [(1, 1), (1.0, 1), ("1", 1), (" 2 ", 2), ("1.0", 1), ("-3", -3),
                                        (np.int64(4), 4), (True, "true"), (False, "false"), ("true", "true"),
                                        ("0.5", "0.5"), ("pos", "pos"), (" pos ", "pos"), ("1e3", "1e3")])
def test_single_label_keys(value, key):
    assert SINGLE.label_key(value) == key and type(SINGLE.label_key(value)) is type(key)


@pytest.mark.parametrize("value, problem", [(0.5, "0.5 is a fractional number"), (math.inf, "fractional"),
                                            (None, "empty"), (math.nan, "empty"), ("  ", "empty"),
                                            ([1, 2], "unsupported type list"), ({"a": 1}, "unsupported type dict")])
def test_single_label_refuses(value, problem):
    with pytest.raises(LabelProblem, match=problem) as info:
        SINGLE.label_key(value)
    assert info.value.fix


def test_single_label_names_inferred_integers_first_then_names():
    keys = [SINGLE.label_key(v) for v in (10, "b", 2, "1", True, "a", 1.0)]
    assert SINGLE.label_names(keys, None) == ["1", "2", "10", "a", "b", "true"]  # 1, "1" and 1.0: one class


def test_single_label_declared_names_are_spelt_like_labels():
    assert SINGLE.label_names([], (0, 1)) == ["0", "1"]
    assert SINGLE.label_names([], (True, False)) == ["true", "false"]
    with pytest.raises(LabelProblem, match="'1' more than once"):
        SINGLE.label_names([], ("1", 1))
    with pytest.raises(LabelProblem, match="task.label_names entry 0.5"):
        SINGLE.label_names([], ("a", 0.5))


def test_single_label_encoding():
    positional = SINGLE.encoder(["negative", "positive"], declared=True)
    assert [positional(SINGLE.label_key(v)) for v in (0, 1, "1", "positive", "negative")] == [0, 1, 1, 1, 0]
    for bad in (True, 2, "neutral"):  # true is a class name, never the index 1
        with pytest.raises(LabelProblem, match="not one of the task's labels"):
            positional(SINGLE.label_key(bad))
    by_name = SINGLE.encoder(["1", "0"], declared=True)  # integer names: matched by name, never by position
    assert [by_name(k) for k in (1, 0)] == [0, 1]
    inferred = SINGLE.encoder(["a", "b"], declared=False)
    with pytest.raises(LabelProblem, match=r"label 0 is not .* \(it does not occur in train\)"):
        inferred(0)


def test_single_label_training_checks():
    with pytest.raises(LabelProblem, match=r"only one class \('b'\)"):
        SINGLE.check_training([1, 1, 1], ["a", "b"])
    (warning,) = SINGLE.check_training([0, 1, 0], ["a", "b", "c"])
    assert "'c'" in warning and "no example" in warning
    assert SINGLE.check_training([0, 1], ["a", "b"]) == []
    names = [f"id{i}" for i in range(30)]  # an id column read as the label: a class a row
    (warning,) = SINGLE.check_training(list(range(30)), names)
    assert "30 classes in 30 training rows (1.0 a class)" in warning and "task.label_field" in warning
    assert SINGLE.check_training(list(range(30)) * 2, names) == []  # two rows a class: a small task, not a slip


def test_single_label_outputs_loss_predictions():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.1, 3.0]])
    labels = torch.tensor([0, 1])
    assert SINGLE.num_outputs(["a", "b", "c"]) == 3 and SINGLE.label_dtype == torch.long
    torch.testing.assert_close(SINGLE.loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels))
    assert SINGLE.predictions(logits).tolist() == [0, 2]
    first, second = SINGLE.describe(logits, ["a", "b", "c"])
    assert first["label"] == "a" and second["label"] == "c"
    assert sum(first["probabilities"].values()) == pytest.approx(1.0)
    assert first["score"] == pytest.approx(first["probabilities"]["a"])
    assert SINGLE.hf_problem_type == "single_label_classification" and SINGLE.plots == ("confusion_matrix",)


def test_single_label_metrics_from_predictions():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    scores = compute_metrics(SINGLE.metric_names, SINGLE.predictions(logits).numpy(), np.array([0, 1, 1, 1]))
    assert scores["accuracy"] == pytest.approx(0.75) and set(scores) == {"accuracy", "f1", "macro_f1", "mcc"}
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_single_label_stratification_groups_by_class():
    keys = SINGLE.stratify_keys([1, "1", 1.0, "pos", None])
    assert keys[:3] == ["1", "1", "1"] and keys[3] == "pos" and keys[4].startswith("invalid")


# ---------------------------------------------------------------------------------------------
# regression
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [(1, 1.0), (2.5, 2.5), ("3.25", 3.25), (" 4 ", 4.0),
                                             (np.float32(0.5), 0.5)])
def test_regression_scores(value, expected):
    assert REGRESSION.label_key(value) == expected


@pytest.mark.parametrize("value, problem", [("high", "not a number"), (True, "boolean"), (None, "not a finite"),
                                            (math.nan, "not a finite"), ("inf", "not a finite"),
                                            ([1], "is a list, not one score"), ({"s": 1}, "is a dict, not one"),
                                            ("1e400", "'1e400' is too large to train on")])
def test_regression_refuses(value, problem):
    with pytest.raises(LabelProblem, match=problem):
        REGRESSION.label_key(value)


def test_regression_outputs_loss_predictions_and_start():
    assert REGRESSION.label_names([1.0, 2.0], None) is None and REGRESSION.num_outputs(None) == 1
    assert REGRESSION.label_dtype == torch.float32 and REGRESSION.stratify_keys([1.0, 2.0]) is None
    logits, labels = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([1.5, 2.0, 3.0])
    torch.testing.assert_close(REGRESSION.loss(logits, labels), torch.tensor((0.25 + 0 + 1) / 3))
    assert REGRESSION.predictions(logits).tolist() == [1.0, 2.0, 4.0]
    assert REGRESSION.predictions(logits.squeeze(-1)).tolist() == [1.0, 2.0, 4.0]  # [batch] logits too
    assert REGRESSION.describe(logits, None) == [{"score": 1.0}, {"score": 2.0}, {"score": 4.0}]
    scores = compute_metrics(REGRESSION.metric_names, REGRESSION.predictions(logits).numpy(), labels.numpy())
    assert scores["mse"] == pytest.approx(1.25 / 3) and scores["pearson"] > 0.9
    assert REGRESSION.hf_problem_type == "regression" and REGRESSION.plots == ("predictions_scatter",)

    class OneOutput:
        def init_output_bias(self, value):
            self.bias = value

    model = OneOutput()
    REGRESSION.start_model(model, [1.0, 2.0, 6.0], None, "iob2")
    assert model.bias == pytest.approx(3.0)


# ---------------------------------------------------------------------------------------------
# task.kind and the legacy task.problem_type
# ---------------------------------------------------------------------------------------------
def _task(**fields) -> TaskConfig:
    return TaskConfig(name="t", text_fields=("text",), label_field="label", label_names=None, metrics=("accuracy",),
                      main_metric="accuracy", **fields)


def test_kind_is_derived_from_the_legacy_problem_type():
    assert _task(problem_type="classification").kind == "single_label"
    assert _task(problem_type="regression").kind == "regression"
    assert _task(kind="regression", problem_type="classification").kind == "regression"  # no silent override
    assert kind_of({"problem_type": "classification"}) == "single_label"  # run directories before task.kind
    assert kind_of({"kind": "regression"}) == "regression" and kind_of({}) is None


def test_config_kind_and_problem_type():
    assert load_run_config(["task=stsb"]).task.kind == "regression"
    run = load_run_config(["task=text_classification", "task.kind=null", "task.problem_type=classification"])
    assert run.task.kind == "single_label"
    load_run_config(["task=stsb", "task.problem_type=regression"])  # both given, agreeing


@pytest.mark.parametrize("overrides, key, message", [
    (["task=text_classification", "task.problem_type=regression"], "task.problem_type", "disagrees with task.kind"),
    (["task=text_classification", "task.kind=regresion"], "task.kind", "did you mean 'regression'"),
    (["task=text_classification", "task.kind=null"], "task.kind", "missing"),
    (["task=text_classification", "task.kind=null", "task.problem_type=tokens"], "task.problem_type", "unknown"),
    (["task=stsb", "task.label_names=[low,high]"], "task.label_names", "a regression task has no label names"),
    (["task=stsb", "task.metrics=[accuracy]", "task.main_metric=accuracy"], "task.metrics",
     "accuracy is not a regression metric (regression: pearson, spearman, mse)"),
    (["task=stsb", "task.metrics=[acuracy]", "task.main_metric=acuracy"], "task.metrics",
     "unknown value 'acuracy' -> choose one of: pearson, spearman, mse"),  # a misspelling: the names to pick from
    # the kind changed on a task of another kind: its metrics come along, and the fix names the generic task
    (["task.kind=regression", "task.label_names=null"], "task.metrics",
     "accuracy, f1 are not a regression metric (regression: pearson, spearman, mse) -> set "
     "task.metrics=[pearson,spearman,mse] task.main_metric=pearson, or start from the regression task, "
     "task=text_regression: its metrics and label names fit"),
])
def test_config_kind_errors(overrides, key, message):
    with pytest.raises(ConfigError) as info:
        load_run_config(overrides)
    assert key in str(info.value) and message in str(info.value)


@pytest.mark.parametrize("kind, task", sorted(GENERIC_TASKS.items()))
def test_each_kinds_generic_task_is_of_that_kind_and_fits_it(kind, task):
    run = load_run_config([f"task={task}", "model=lstm"])  # builds: its metrics and label names fit the kind
    assert run.task.kind == kind and run.task.name == task
    assert not (run.task.hub_id or run.task.generator or run.task.train_file)  # no data of its own


def test_a_recipe_style_config_with_problem_type_only_still_builds():
    from nlptune.config.schema import build_run_config

    plain = dict(load_run_config(["task=stsb"]).plain)
    task = {k: v for k, v in plain["task"].items() if k != "kind"}
    run = build_run_config({**plain, "task": {**task, "problem_type": "regression"}})
    assert run.task.kind == "regression"
