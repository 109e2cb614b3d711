"""Unit tests for nlptune.metrics against scikit-learn and SciPy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from nlptune.metrics import LOWER_IS_BETTER, METRICS, compute_metrics, is_improvement

RNG = np.random.default_rng(0)


def random_classes(n: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.6, gold, rng.integers(0, k, n))  # better than chance, not perfect
    return pred, gold


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy(seed):
    pred, gold = random_classes(200, 3, seed)
    assert compute_metrics(["accuracy"], pred, gold)["accuracy"] == pytest.approx(accuracy_score(gold, pred))


@pytest.mark.parametrize("seed", [0, 1])
def test_f1_binary_is_positive_class_f1(seed):
    pred, gold = random_classes(200, 2, seed)
    value = compute_metrics(["f1"], pred, gold)["f1"]
    assert value == pytest.approx(f1_score(gold, pred, average="binary"))
    assert value != pytest.approx(f1_score(gold, pred, average="macro"))


@pytest.mark.parametrize("seed", [0, 1])
def test_f1_multiclass_is_macro(seed):
    pred, gold = random_classes(300, 4, seed)
    assert compute_metrics(["f1"], pred, gold)["f1"] == pytest.approx(f1_score(gold, pred, average="macro"))


@pytest.mark.parametrize("k", [2, 3])
def test_mcc(k):
    pred, gold = random_classes(250, k, 5)
    assert compute_metrics(["mcc"], pred, gold)["mcc"] == pytest.approx(matthews_corrcoef(gold, pred))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pearson_and_spearman(seed):
    rng = np.random.default_rng(seed)
    gold = rng.uniform(0, 5, 100)
    pred = gold + rng.normal(0, 1.5, 100)
    scores = compute_metrics(["pearson", "spearman", "mse"], pred, gold)
    assert scores["pearson"] == pytest.approx(pearsonr(pred, gold)[0])
    assert scores["spearman"] == pytest.approx(spearmanr(pred, gold)[0])
    assert scores["mse"] == pytest.approx(np.mean((pred - gold) ** 2))
    assert all(isinstance(v, float) for v in scores.values())


def test_inputs_may_be_lists_or_float32():
    gold = [0.5, 1.0, 2.5, 4.0]
    pred = np.array([0.4, 1.2, 2.0, 3.9], dtype=np.float32)
    assert compute_metrics(["pearson"], pred, gold)["pearson"] == pytest.approx(pearsonr(pred, gold)[0], rel=1e-5)
    assert compute_metrics(["accuracy"], [1, 0, 1], [1, 1, 1])["accuracy"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", ["pearson", "spearman"])
def test_constant_predictions_give_zero_not_nan(name):
    gold = RNG.uniform(0, 5, 50)
    assert compute_metrics([name], np.full(50, 2.0), gold)[name] == 0.0
    assert compute_metrics([name], gold, np.full(50, 2.0))[name] == 0.0  # constant references too
    assert compute_metrics([name], [1.0], [2.0])[name] == 0.0  # fewer than two points


@pytest.mark.parametrize("name", ["pearson", "spearman"])
def test_nan_predictions_give_zero(name):
    pred = np.array([0.1, np.nan, 0.3, 0.9])
    value = compute_metrics([name], pred, [0.0, 1.0, 2.0, 3.0])[name]
    assert not math.isnan(value)


def test_constant_class_predictions():
    gold = np.array([0, 1, 0, 1, 1, 0])
    scores = compute_metrics(["accuracy", "f1", "mcc"], np.zeros(6, dtype=int), gold)
    assert scores == {"accuracy": 0.5, "f1": 0.0, "mcc": 0.0}
    assert not any(math.isnan(v) for v in scores.values())


def test_perfect_predictions():
    gold = np.array([0, 1, 2, 1, 0])
    assert compute_metrics(["accuracy", "f1", "mcc"], gold, gold) == {"accuracy": 1.0, "f1": 1.0, "mcc": 1.0}
    values = np.array([0.1, 0.5, 0.2, 3.0])
    scores = compute_metrics(["pearson", "spearman", "mse"], values, values)
    assert scores["pearson"] == pytest.approx(1.0) and scores["spearman"] == pytest.approx(1.0)
    assert scores["mse"] == 0.0


def test_only_requested_metrics():
    assert set(compute_metrics(["mcc", "accuracy"], [0, 1], [0, 1])) == {"mcc", "accuracy"}
    assert set(METRICS) == {"accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman", "mse"}


def test_is_improvement():
    assert is_improvement("accuracy", 0.1, None)
    assert is_improvement("accuracy", 0.8, 0.7)
    assert not is_improvement("accuracy", 0.7, 0.7)  # ties keep the earlier best
    assert not is_improvement("pearson", -0.2, 0.1)
    assert LOWER_IS_BETTER == {"mse"}
    assert is_improvement("mse", 0.5, 0.6)
    assert not is_improvement("mse", 0.6, 0.5)
    assert not is_improvement("mse", 0.5, 0.5)
    assert is_improvement("mse", 3.0, None)
