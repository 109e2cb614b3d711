"""multi_label (issue 15): labels of every input shape, bad input named by file/line/column, decision thresholds
tuned on validation outputs and never fitted on the rows they score, imbalance weights equal to scikit-learn's,
stratified CV folds and the config checks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nlptune.config.schema import TaskConfig
from nlptune.data.errors import DataError, DataProblems
from nlptune.data.labels import split_examples
from nlptune.data.loading import read_file
from nlptune.kinds import get_kind, losses, thresholds
from nlptune.tuning.folds import fold_indices

NAMES = ["anger", "joy", "love"]


def task(**fields) -> TaskConfig:
    base = dict(name="t", kind="multi_label", text_fields=("text",), label_field="labels", label_names=None,
                metrics=("macro_f1", "micro_f1", "subset_accuracy"), main_metric="macro_f1")
    return TaskConfig(**{**base, **fields})


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, labels: list) -> Path:
    return write(path, "".join(json.dumps({"text": f"text {i}", "labels": v}) + "\n" for i, v in enumerate(labels)))


def examples(t: TaskConfig, train: Path, validation: Path | None = None):
    raw = {"train": read_file(train, "train"), "validation": read_file(validation or train, "validation")}
    return split_examples(t, raw)


ROWS = [["joy", "love"], [], ["anger"], ["joy"]]
TARGETS = [(0.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)]


# ---- label parsing: every input shape gives the same targets ------------------------------------------------
def test_json_lists_with_an_empty_list(tmp_path):
    train, _, names = examples(task(), jsonl(tmp_path / "t.jsonl", ROWS))
    assert names == NAMES and train.labels == TARGETS  # the row without a label is kept: all zeros


def test_delimited_csv_and_tsv(tmp_path):
    csv = write(tmp_path / "t.csv", 'text,labels\na,"joy, love"\nb,\nc,anger\nd,joy\n')
    tsv = write(tmp_path / "t.tsv", "text\tlabels\na\tjoy|love\nb\t\nc\tanger\nd\tjoy\n")
    assert examples(task(label_separator=","), csv)[0].labels == TARGETS
    assert examples(task(label_separator="|"), tsv)[0].labels == TARGETS


def test_one_zero_one_column_per_label(tmp_path):
    csv = write(tmp_path / "t.csv", "text,anger,joy,love\na,0,1,1\nb,0,0,0\nc,1,0,0\nd,0,1,0\n")
    train, _, names = examples(task(label_fields=("anger", "joy", "love")), csv)
    assert names == NAMES and train.labels == TARGETS
    booleans = write(tmp_path / "b.jsonl", "".join(json.dumps({"text": "x", "anger": a, "joy": j, "love": lv}) + "\n"
                                                   for a, j, lv in TARGETS))
    assert examples(task(label_fields=("anger", "joy", "love")), booleans)[0].labels == TARGETS


def test_parquet_list_column(tmp_path):
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(4)], "labels": ROWS}), path)
    assert examples(task(), path)[0].labels == TARGETS


def test_declared_names_and_integer_ids(tmp_path):
    train, _, names = examples(task(label_names=("love", "joy", "anger")), jsonl(tmp_path / "t.jsonl", [[0, 2], []]))
    assert names == ["love", "joy", "anger"] and train.labels == [(1.0, 0.0, 1.0), (0.0, 0.0, 0.0)]


# ---- bad input: one message naming file, line and column ----------------------------------------------------
def test_unknown_label_in_validation(tmp_path):
    validation = jsonl(tmp_path / "v.jsonl", [["joy"], ["joy", "rage"]])
    with pytest.raises(DataError) as info:
        examples(task(), jsonl(tmp_path / "t.jsonl", ROWS), validation)
    err = info.value
    assert (err.file, err.split, err.line, err.column) == (str(validation), "validation", 2, "labels")
    assert "'rage'" in str(err) and "does not occur in train" in str(err)


def test_validation_labels_when_no_training_row_has_one(tmp_path):
    with pytest.raises(DataProblems) as info:
        examples(task(), jsonl(tmp_path / "t.jsonl", [[], []]), jsonl(tmp_path / "v.jsonl", [["joy"]]))
    text = str(info.value)
    assert "no training row has any label" in text
    assert "'joy' is not one of the task's labels (none: no training row has a label)" in text


def test_labels_that_are_not_a_list(tmp_path):
    train = jsonl(tmp_path / "t.jsonl", [["joy"], "joy", ["love"]])
    with pytest.raises(DataError) as info:
        examples(task(), train)
    err = info.value
    assert (err.file, err.line, err.column) == (str(train), 2, "labels")
    assert "not a list of labels" in str(err) and "label_separator" in str(err)


def test_labels_as_text_name_the_separator_the_text_uses(tmp_path):
    train = jsonl(tmp_path / "t.jsonl", [["joy"], "joy|love", "anger; fear"])
    with pytest.raises(DataError) as info:
        examples(task(), train)
    lines = {p.line: str(p) for p in info.value.problems}
    assert "here 'task.label_separator=\"|\"'" in lines[2] and "here 'task.label_separator=\";\"'" in lines[3]


@pytest.mark.parametrize("value", [{"joy": 1, "anger": 0}, {"labels": ["joy"]}, {}])
def test_an_object_as_a_rows_labels_is_refused_not_read_as_columns(tmp_path, value):
    """Only task.label_fields reads one 0/1 value per label (a column each); an object in the label column is no
    documented form, and which of its values would mean "has the label" is a guess."""
    train = jsonl(tmp_path / "t.jsonl", [["joy"], value, ["love"]])
    with pytest.raises(DataError) as info:
        examples(task(), train)
    err = info.value
    assert (err.file, err.line, err.column) == (str(train), 2, "labels")
    assert "the labels are an object" in str(err) and "not a list of labels" in str(err)
    assert "list of names or integer ids" in str(err) and "task.label_fields" in str(err)


def test_a_parquet_struct_as_a_rows_labels_is_refused(tmp_path):
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "labels": [{"joy": 1, "love": 0}, {"joy": 0, "love": 1}]}), path)
    with pytest.raises(DataError, match="the labels are an object") as info:
        examples(task(), path)
    assert [p.row for p in getattr(info.value, "problems", [info.value])][:2] == [1, 2]


def test_hidden_characters_in_label_names_are_refused(tmp_path):
    train = jsonl(tmp_path / "t.jsonl", [["joy", "love"], ["joy", "love\x00"], ["anger\u200b"]])
    with pytest.raises(DataError) as info:
        examples(task(), train)
    problems = [p for p in info.value.problems if p.split == "train"]
    assert [(p.line, p.column) for p in problems] == [(2, "labels"), (3, "labels")]
    assert r"label 2 of the row: label 'love\x00' holds 1 invisible" in str(problems[0])
    assert "U+200B ZERO WIDTH SPACE" in str(problems[1]) and "delete those characters" in str(problems[1])
    csv = write(tmp_path / "t.csv", 'text,labels\na,"joy, love"\nb,"joy,\u200blove"\n')
    with pytest.raises(DataError) as info:
        examples(task(label_separator=","), csv)
    assert info.value.problems[0].line == 3 and r"'\u200blove'" in str(info.value)


def test_a_zero_one_column_with_another_value(tmp_path):
    csv = write(tmp_path / "t.csv", "text,anger,joy\na,0,1\nb,1,2\n")
    with pytest.raises(DataError) as info:
        examples(task(label_fields=("anger", "joy")), csv)
    err = info.value
    assert (err.file, err.line, err.column) == (str(csv), 3, "joy") and "not 0 or 1" in str(err)


def test_an_empty_zero_one_cell_is_refused_as_null_is(tmp_path):
    csv = write(tmp_path / "t.csv", "text,anger,joy\na,0,1\nb,1,\n")
    with pytest.raises(DataError) as info:
        examples(task(label_fields=("anger", "joy")), csv)
    err = info.value
    assert (err.file, err.line, err.column) == (str(csv), 3, "joy") and "holds '', not 0 or 1" in str(err)


def test_a_missing_zero_one_column(tmp_path):
    csv = write(tmp_path / "t.csv", "text,anger\na,0\n")
    with pytest.raises(DataError) as info:
        examples(task(label_fields=("anger", "joy")), csv)
    assert info.value.column == "joy"


def test_no_training_row_with_a_label_is_refused(tmp_path):
    with pytest.raises(DataError, match="no training row has any label"):
        examples(task(label_names=("joy",)), jsonl(tmp_path / "t.jsonl", [[], []]))


# ---- thresholds -----------------------------------------------------------------------------------------------
def noisy_outputs(rows: int = 400, labels: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    gold = (rng.random((rows, labels)) < [0.5, 0.2, 0.05, 0.3][:labels]).astype(np.float32)
    # label j's probabilities are shifted down: the best threshold is below 0.5 and differs per label
    shift = np.array([0.0, 0.15, 0.3, 0.1][:labels])
    probs = np.clip(gold * 0.55 + rng.random((rows, labels)) * 0.45 - shift, 0, 1).astype(np.float32)
    return probs, gold


def test_fit_finds_better_thresholds_than_one_half():
    probs, gold = noisy_outputs()
    fitted = thresholds.fit(probs, gold, per_label=True)
    assert fitted.shape == (4,) and len(set(fitted.tolist())) > 1
    tuned = thresholds.summary_scores(thresholds.apply(probs, fitted), gold)["macro_f1"]
    fixed = thresholds.summary_scores(thresholds.apply(probs, 0.5), gold)["macro_f1"]
    assert tuned > fixed + 0.05
    assert len(set(thresholds.fit(probs, gold, per_label=False).tolist())) == 1


def test_a_label_with_few_positives_takes_the_global_threshold():
    probs, gold = noisy_outputs()
    gold[:, 2] = 0
    gold[:2, 2] = 1  # 2 < MIN_POSITIVES
    fitted = thresholds.fit(probs, gold, per_label=True)
    assert fitted[2] == thresholds.fit(probs, gold, per_label=False)[0]


def test_cross_fitted_thresholds_never_see_the_rows_they_score():
    probs, gold = noisy_outputs()
    half = thresholds.halves(len(gold))
    base = thresholds.cross_fitted(probs, gold)
    # change the labels of half 0 only: the predictions of half 0 (scored with thresholds fitted on half 1) stay
    changed = gold.copy()
    changed[half == 0] = 1 - changed[half == 0]
    again = thresholds.cross_fitted(probs, changed)
    np.testing.assert_array_equal(again[half == 0], base[half == 0])
    assert not np.array_equal(again[half == 1], base[half == 1])  # half 1 is scored with the changed half 0
    expected = probs[half == 0] >= thresholds.fit(probs[half == 1], gold[half == 1])
    np.testing.assert_array_equal(base[half == 0], expected)


def test_scores_report_tuned_and_fixed_side_by_side_and_fixed_thresholds_are_used_as_given():
    probs, gold = noisy_outputs()
    kind, outputs = get_kind("multi_label"), {"predictions": probs, "references": gold}
    names = ["a", "b", "c", "d"]
    scores = kind.scores(["macro_f1", "micro_f1"], outputs, names)
    assert {"macro_f1", "macro_f1_at_0.5", "micro_f1", "micro_f1_at_0.5", "f1_a", "f1_d"} <= set(scores)
    assert scores["macro_f1"] > scores["macro_f1_at_0.5"]
    fixed = kind.scores(["macro_f1"], outputs, names, decision=thresholds.Decision(fixed=0.5))
    assert fixed["macro_f1"] == fixed["macro_f1_at_0.5"] == scores["macro_f1_at_0.5"]
    saved = kind.best_files(outputs, names)["thresholds.json"]
    assert list(saved["thresholds"]) == names and saved["tuned"]
    assert saved["scores"]["macro_f1"] == pytest.approx(scores["macro_f1"])
    np.testing.assert_allclose(list(saved["thresholds"].values()), thresholds.fit(probs, gold))


def test_describe_applies_the_thresholds_in_force():
    kind = get_kind("multi_label")
    logits = torch.tensor([[0.0, -1.0, 2.0]])  # sigmoid 0.5, 0.27, 0.88
    assert kind.describe(logits, NAMES)[0]["labels"] == ["anger", "love"]
    assert kind.describe(logits, NAMES, thresholds_in_force=(0.6, 0.2, 0.9))[0]["labels"] == ["joy"]


# ---- imbalance ------------------------------------------------------------------------------------------------
def test_balanced_class_weights_equal_sklearn():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0] * 70 + [1] * 25 + [2] * 5)
    counts = get_kind("single_label").class_counts(y.tolist(), ["a", "b", "c"])
    expected = compute_class_weight("balanced", classes=np.unique(y), y=y)
    np.testing.assert_allclose(losses.balanced_weights(counts), expected)


def test_balanced_pos_weight_is_negatives_over_positives():
    counts = get_kind("multi_label").class_counts(TARGETS, NAMES)
    assert counts == [1, 2, 1] and losses.balanced_pos_weight(counts, 4) == (3.0, 1.0, 3.0)


def test_weighted_and_smoothed_cross_entropy_match_torch_and_focal_gamma_zero_is_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 3), torch.randint(0, 3, (16,))
    weights = (0.5, 1.0, 3.0)
    settings = losses.LossSettings(class_weights=weights, label_smoothing=0.1)
    expected = torch.nn.functional.cross_entropy(logits, target, weight=torch.tensor(weights), label_smoothing=0.1)
    assert torch.allclose(losses.cross_entropy(logits, target, settings), expected)
    focal = losses.LossSettings(class_weights=weights, focal_gamma=0.0)
    plain = torch.nn.functional.cross_entropy(logits, target, weight=torch.tensor(weights))
    assert torch.allclose(losses.cross_entropy(logits, target, focal), plain, atol=1e-6)
    # focal loss down-weights confident rows: below cross-entropy
    assert losses.cross_entropy(logits, target, losses.LossSettings(focal_gamma=2.0)) < \
        losses.cross_entropy(logits, target, None)


def test_multi_label_loss_uses_pos_weight():
    logits, target = torch.randn(8, 3), (torch.rand(8, 3) > 0.5).float()
    settings = losses.LossSettings(pos_weight=(2.0, 1.0, 4.0))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(
        settings.pos_weight))
    assert torch.allclose(get_kind("multi_label").loss(logits, target, loss_settings=settings), expected)


# ---- CV folds ------------------------------------------------------------------------------------------------
def test_folds_are_stratified_by_the_rarest_present_label():
    rows = [["neutral"]] * 60 + [["joy"]] * 24 + [["joy", "grief"]] * 6 + [["grief"]] * 3 + [["pride"]] * 1 + [[]] * 6
    keys = get_kind("multi_label").stratify_keys(rows, folds=3)
    assert keys[60:84] == ["joy"] * 24 and keys[84:93] == ["grief"] * 9
    assert keys[93] == "(other)" and keys[94:] == ["(other)"] * 6  # too rare to stratify, and rows without labels
    for _, validation in fold_indices(len(rows), 3, 0, keys):
        assert sum(1 for i in validation if "grief" in rows[i]) == 3


# ---- config --------------------------------------------------------------------------------------------------
def test_config_refuses_misplaced_or_bad_keys():
    from nlptune.config.compose import load_run_config
    from nlptune.config.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_run_config(["task=sst2", "model=bag", "trainer.pos_weight=balanced", "trainer.loss=hinge"])
    text = str(info.value)
    assert "trainer.pos_weight" in text and "trainer.loss" in text
    with pytest.raises(ConfigError, match="task.threshold"):
        load_run_config(["task=goemotions", "model=bag", "task.threshold=1.5"])
    with pytest.raises(ConfigError, match="trainer.class_weights"):
        load_run_config(["task=stsb", "model=bag", "trainer.class_weights=balanced"])
    run = load_run_config(["task=goemotions", "model=lstm", "trainer.pos_weight=balanced", "trainer.loss=focal",
                           "trainer.class_weights=[1,2]"])
    assert run.task.kind == "multi_label" and run.task.main_metric == "macro_f1" and len(run.task.label_names) == 28
