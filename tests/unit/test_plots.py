"""Plots and the learning-rate finder's arithmetic: PNGs from records written the way a run writes them."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nlptune.kinds import get_kind
from nlptune.train import plots
from nlptune.train.lr_find import lr_schedule, smooth, suggest
from nlptune.train.tracking import scalars

PNG = b"\x89PNG\r\n\x1a\n"


def _write_run(folder, resumed=False):
    records = []
    for step in range(1, 21):
        records.append({"step": step, "epoch": step // 10, "samples": 32 * step, "loss": 1.0 / step, "lr": 1e-3})
        if step % 5 == 0:
            records.append({"step": step, "epoch": step // 10, "samples": 32 * step, "eval_accuracy": step / 25,
                            "eval_f1": step / 30, "eval_loss": 1.0 / step})
    if resumed:  # a resumed run logs steps 16-20 again: the later records win
        records += [{**r, "loss": 9.0} for r in records if r["step"] > 15 and "loss" in r]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def _is_png(path):
    return path.is_file() and path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


def test_read_records_splits_and_deduplicates(tmp_path):
    train, evals = plots.read_records(_write_run(tmp_path / "run", resumed=True))
    assert [r["step"] for r in train] == list(range(1, 21))
    assert [r["loss"] for r in train][-5:] == [9.0] * 5
    assert [r["step"] for r in evals] == [5, 10, 15, 20]


def test_classification_run_plots(tmp_path):
    run = _write_run(tmp_path / "run")
    outputs = {"predictions": np.array([0, 1, 1, 2, 2, 2]), "references": np.array([0, 1, 2, 2, 2, 1])}
    written = plots.write_run_plots(run, best_step=20, outputs=outputs, label_names=["a", "b", "c"],
                                    kind_plots=get_kind("single_label").plots)
    assert sorted(p.name for p in written) == ["confusion_matrix.png", "training.png", "validation.png"]
    assert all(_is_png(p) and p.parent == run / "plots" for p in written)


@pytest.mark.parametrize("kind", ["single_label", "multi_label"])
def test_plots_of_thousands_of_classes_show_the_most_frequent_and_stay_small(tmp_path, kind, monkeypatch):
    """A confusion matrix of 2,600 classes drew a cell each: 22 GB and most of an hour, then the machine's memory."""
    import time

    from nlptune.train import entity_plots, label_plots

    titles = []
    for module in (plots, label_plots, entity_plots):  # each holds its own name for it
        monkeypatch.setattr(module, "_save", lambda fig, path: titles.append(fig.axes[0].get_title()) or path)
    rng = np.random.default_rng(0)
    names = [f"c{i}" for i in range(2000)]
    if kind == "single_label":
        gold = np.concatenate([np.zeros(200, int), rng.integers(0, 2000, 800)])
        outputs = {"predictions": rng.integers(0, 2000, 1000), "references": gold}
    else:
        gold = rng.random((300, 2000)) < 0.002
        gold[:, 7] = True  # the most frequent label
        outputs = {"predictions": rng.random((300, 2000)), "references": gold.astype(int)}
    started = time.perf_counter()
    plots.write_run_plots(_write_run(tmp_path / "run"), outputs=outputs, label_names=names,
                          kind_plots=get_kind(kind).plots)
    assert time.perf_counter() - started < 60
    shown = [t for t in titles if "most frequent" in t]
    assert len(shown) == len(get_kind(kind).plots) and all("30 most frequent of 2000" in t for t in shown)
    assert plots.most_frequent([5, 1, 9, 3], limit=2).tolist() == [0, 2] and plots.most_frequent([1], 2) is None


def test_regression_run_plots_scatter_and_no_confusion_matrix(tmp_path):
    run = _write_run(tmp_path / "run")
    rng = np.random.default_rng(0)
    gold = rng.uniform(0, 5, 50)
    written = plots.write_run_plots(run, outputs={"predictions": gold + rng.normal(0, 0.3, 50), "references": gold},
                                    kind_plots=get_kind("regression").plots)
    assert sorted(p.name for p in written) == ["predictions_scatter.png", "training.png", "validation.png"]
    assert all(_is_png(p) for p in written)


def test_a_run_without_records_still_gets_explanatory_plots(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    written = plots.write_run_plots(tmp_path)
    assert [p.name for p in written] == ["training.png", "validation.png"] and all(_is_png(p) for p in written)


def test_compare_and_lr_find_plots(tmp_path):
    a = plots.read_records(_write_run(tmp_path / "a"))[1]
    out = plots.plot_compare([("a", a), ("b", [{**r, "eval_accuracy": r["eval_accuracy"] / 2} for r in a])],
                             "accuracy", tmp_path / "compare.png")
    assert _is_png(out)
    noted = plots.plot_compare([("a", a)], "accuracy", tmp_path / "noted.png", note="NOT comparable: the runs "
                               "differ in task")  # runs of different tasks: the plot says so under its title
    assert _is_png(noted) and noted.read_bytes() != out.read_bytes()
    lrs = list(lr_schedule(1e-6, 1.0, 100))
    losses = [1.0] * 100
    assert _is_png(plots.plot_lr_find(lrs, losses, smooth(losses), 1e-3, tmp_path / "lr.png"))


@pytest.mark.parametrize("arguments, words", [
    ({"beta": 1.0}, "--smoothing 1 is not in [0, 1)"),  # the bias correction divided by 1 - 1**n = 0
    ({"beta": -1.0}, "--smoothing -1 is not in [0, 1)"),  # 1 - (-1)**2 = 0
    ({"beta": float("nan")}, "--smoothing nan is not in [0, 1)"),
    ({"end_lr": float("inf")}, "both finite"),  # every step after the first at lr inf: a NaN curve, no answer
    ({"start_lr": float("nan")}, "need 0 < --start-lr < --end-lr"),
    # the minimum is stated, not only the recommendation (19 passed a check that said "use 100 or more")
    ({"steps": 19}, "--steps 19 is too few for a range test: at least 20 are needed, 100 or more recommended"),
    ({"steps": 0}, "--steps 0 is too few for a range test: at least 20 are needed"),
])
def test_lr_find_refuses_settings_it_cannot_run_with_before_training(monkeypatch, arguments, words):
    from nlptune.config.errors import NlptuneError
    from nlptune.recipes.run import load_run_config
    from nlptune.train import lr_find

    def no_training(config):
        raise AssertionError("the range test started")

    monkeypatch.setattr(lr_find, "_setup", no_training)
    with pytest.raises(NlptuneError) as caught:
        lr_find.lr_range_test(load_run_config([]), **{"steps": 100, **arguments})
    assert words in str(caught.value)


def test_lr_find_reports_its_settings_and_the_config_problems_at_once():
    """Every bad argument and override in one message (they used to come one run at a time)."""
    import argparse

    from nlptune.commands.lr_find import handle
    from nlptune.config.errors import ConfigError

    args = argparse.Namespace(overrides=["trainer.batch_size=0"], start_lr=-1.0, end_lr=0.0, steps=5, smoothing=2.0)
    with pytest.raises(ConfigError) as caught:
        handle(args)
    assert [issue.key for issue in caught.value.issues] == ["--start-lr/--end-lr", "--smoothing", "--steps",
                                                            "trainer.batch_size"]


def test_lr_find_takes_the_minimum_number_of_steps(monkeypatch):
    from nlptune.recipes.run import load_run_config
    from nlptune.train import lr_find

    def no_training(config):
        raise AssertionError("the range test started")

    monkeypatch.setattr(lr_find, "_setup", no_training)
    with pytest.raises(AssertionError, match="range test started"):  # 20 passes the checks
        lr_find.lr_range_test(load_run_config([]), steps=20)


def test_tracker_scalar_names():
    record = {"step": 5, "epoch": 0, "samples": 160, "loss": 0.5, "lr": 1e-3, "eval_accuracy": 0.8, "note": "x"}
    assert scalars(record) == {"train/epoch": 0, "train/samples": 160, "train/loss": 0.5, "train/lr": 1e-3,
                               "eval/accuracy": 0.8}


def test_lr_schedule_is_exponential():
    lrs = lr_schedule(1e-7, 10.0, 81)
    assert lrs[0] == pytest.approx(1e-7) and lrs[-1] == pytest.approx(10.0)
    assert np.allclose(lrs[1:] / lrs[:-1], 10 ** (8 / 80))


def test_smoothing_is_bias_corrected():
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # no pull towards zero at the start
    assert smooth([1.0, 0.0], beta=0.5)[1] == pytest.approx(1 / 3)


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = lr_schedule(1e-6, 1.0, 200)
    x = np.log10(lrs)
    # flat, a steepest fall centred at 1e-3, a minimum near 1e-2, then divergence
    loss = 1.0 - 0.5 * (1 + np.tanh((x + 3) * 3)) / 2 + np.where(x > -2, (x + 2) ** 2 * 5, 0)
    suggestion = suggest(lrs, list(loss))
    assert 10 ** -3.2 < suggestion < 10 ** -2.8
    assert suggest(lrs[:5], list(loss[:5])) is None  # too short to say
