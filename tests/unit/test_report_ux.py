"""What a user sees, without training: the progress bar before the first log line, the hyperparameter table
(changes from the defaults first), `compare`'s output folder (never the working directory, never through a
link) and every table rendered at 80 columns."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from rich.console import Console

import nlptune.utils.console as shared_console
from nlptune.config.compose import load_run_config
from nlptune.config.errors import NlptuneError
from nlptune.train import report

WIDTH = 80


def render(renderable, width: int = WIDTH) -> str:
    console = Console(width=width, record=True, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def assert_fits(text: str, *cells: str, width: int = WIDTH) -> None:
    """No line wider than ``width``, and each cell shown whole (not cut down to an ellipsis)."""
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, too_wide
    for cell in cells:
        assert cell in text, f"{cell!r} not shown whole in:\n{text}"


@pytest.fixture
def recorded(monkeypatch) -> Console:
    """The program's shared console, replaced by an 80-column recording one."""
    console = Console(width=WIDTH, record=True, force_terminal=False, highlight=False)
    monkeypatch.setattr(shared_console, "_console", console)
    return console


# ------------------------------------------------------------------ progress bar


def test_progress_shows_no_placeholder_before_the_first_log_line(recorded):
    progress = report.Progress(total_steps=10, enabled=True)
    try:
        progress.advance(epoch=0, step=1, samples=0)
        assert progress.bar.tasks[0].fields["stats"] == ""  # nothing known yet: nothing shown
        progress.advance(epoch=0, step=2, samples=64)
        stats = progress.bar.tasks[0].fields["stats"]
        assert "samples/s" in stats and "loss" not in stats and "nan" not in stats
        progress.note_loss(0.6931, 1e-3)
        progress.advance(epoch=0, step=3, samples=96)
        stats = progress.bar.tasks[0].fields["stats"]
        assert stats.startswith("loss 0.6931 lr 1.00e-03") and "nan" not in stats
    finally:
        progress.close()
    assert "nan" not in recorded.export_text()


def test_progress_line_keeps_counts_and_figures_whole_at_80_columns(recorded):
    progress = report.Progress(total_steps=12000, enabled=True)
    try:
        progress.note_loss(0.69314, 1.234e-4)
        progress.advance(epoch=9, step=11999, samples=12_345_678)
        text = render(progress.bar.get_renderable())
    finally:
        progress.close()
    assert_fits(text, "epoch 10", "11999/12000", "loss 0.6931", "lr 1.23e-04", "samples/s")


def test_stats_show_each_figure_once_known():
    assert report._stats(None, None, None) == ""
    assert report._stats(None, None, 12.4) == "12 samples/s"
    assert report._stats(0.5, 2e-5, None) == "loss 0.5000 lr 2.00e-05"


# ------------------------------------------------------------------ hyperparameters


def test_hyperparameter_table_shows_the_changes_first_and_counts_the_rest():
    run = load_run_config(["task=demo", "model=lstm", "optimizer.lr=0.003", "trainer.max_steps=7"])
    defaults = report.default_hyperparameters(run)
    assert defaults is not None and defaults["optimizer.lr"] != 0.003
    table, note = report.hyperparameter_table(run, defaults)
    text = render(table)
    assert_fits(text, "optimizer.lr", "0.003", "trainer.max_steps", str(defaults["optimizer.lr"]))
    lines = text.splitlines()
    row = {key: next(i for i, line in enumerate(lines) if f" {key} " in line)
           for key in ("optimizer.lr", "trainer.max_steps", "trainer.batch_size", "seed")}
    assert max(row["optimizer.lr"], row["trainer.max_steps"]) < min(row["trainer.batch_size"], row["seed"])
    assert "(default)" in lines[row["trainer.batch_size"]]  # an essential key, shown at its default
    # the model file's own settings are its defaults, not changes; other unchanged keys are counted, not listed
    assert "model.hidden_size" not in text and "trainer.log_every" not in text
    everything = report.hyperparameters(run)  # what metrics.json records: all of them
    assert "trainer.log_every" in everything and "model.hidden_size" in everything
    shown = sum(1 for key in everything if f" {key} " in text)
    assert note.startswith(f"{len(everything) - shown} more keys unchanged") and "metrics.json" in note


def test_hyperparameter_table_with_nothing_changed_says_so():
    run = load_run_config(["task=demo", "model=bag"])
    table, note = report.hyperparameter_table(run, report.default_hyperparameters(run))
    text = render(table)
    assert "all at the defaults" in text and "optimizer.lr" in text
    assert note.startswith(f"{len(report.hyperparameters(run)) - len(report.ESSENTIAL)} more keys unchanged")


def test_hyperparameter_table_without_defaults_lists_every_key():
    run = load_run_config(["task=demo", "model=bag"])
    table, note = report.hyperparameter_table(run, None)
    text = render(table)
    assert note == "" and "trainer.batch_size" in text and "optimizer.lr" in text


def test_long_values_fold_within_80_columns():
    long_list = [f"tracker_number_{i}" for i in range(12)]
    run = load_run_config(["task=demo", "model=bag", "trainer.gradient_accumulation_steps=3"])
    defaults = report.default_hyperparameters(run)
    defaults["trainer.report_to"] = long_list  # a default far wider than the screen
    text = render(report.hyperparameter_table(run, defaults)[0])
    assert_fits(text, "trainer.gradient_accumulation_steps", "trainer.report_to")


# ------------------------------------------------------------------ start / end tables at 80 columns


def test_parameter_and_result_tables_fit_80_columns():
    modules = {f"encoder.layers.{i}.attention.self.query_projection": {"total": 123_456_789, "trainable": 0}
               for i in range(3)}
    parameters = {"modules": modules, "total": 370_370_367, "trainable": 12, "frozen": 370_370_355}
    assert_fits(render(report.parameter_table(parameters)), "370.37M", "trainable", "module")
    summary = {"best": {"accuracy": 0.91234, "macro_f1_of_a_long_metric_name": 0.8}, "main_metric": "accuracy",
               "best_step": 1200, "train_runtime_s": 12.5, "train_samples_per_second": 1234.5,
               "parameters": {"trainable": 370_370_367, "total": 370_370_367}}
    text = render(report.result_table(summary, [{}] * 4))
    assert_fits(text, "best accuracy (main)", "best macro_f1_of_a_long_metric_name", "0.9123",
                "370,370,367 trainable")
    assert "inference" not in text  # not measured (trainer.measure_cost=false, or an older run)
    summary["weight_average"] = {"evaluations": 6, "from_step": 384, "kept": True,  # trainer.average_from
                                 "scores": {"accuracy": 0.91234, "loss": 0.3}}
    assert_fits(render(report.result_table(summary, [{}] * 4)), "averaged weights",
                "accuracy 0.9123 (6 evals from step", "384): kept")
    del summary["weight_average"]
    summary["cost"] = {**COST, "cuda": {"latency_ms": 3.25, "throughput": 99_000.0, "device": "cuda",
                                        "precision": "bf16"}}
    text = render(report.result_table(summary, [{}] * 4))
    assert_fits(text, "inference size", "370.37M params · 1481.50 MB", "inference cpu, 16 threads, fp32",
                "12.35 ms @1 · 12,346/s @32", "inference cuda, bf16", "3.25 ms @1 · 99,000/s @32")


# ------------------------------------------------------------------ compare


COST = {"params": 370_370_367, "size_mb": 1481.5, "latency_ms": 12.3456, "throughput": 12345.6, "device": "cpu",
        "threads": 16, "precision": "fp32", "latency_examples": 100, "throughput_examples": 2048}


def fake_run(folder: Path, lr: float, accuracy: float, cost: dict | None = None, task: dict | None = None,
             validation: str | None = None) -> Path:
    """A run's files without training. ``task``: config.yaml's task section (name, kind, main_metric, ...), its
    main metric then scored ``accuracy``; ``validation``: the validation split's identity in manifest.json."""
    folder.mkdir(parents=True)
    metric = (task or {}).get("main_metric", "accuracy")
    records = [{"step": 1, "epoch": 0, "samples": 32, "loss": 0.7, "lr": lr},
               {"step": 2, "epoch": 0, "samples": 64, f"eval_{metric}": accuracy, "eval_loss": 0.69}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if task is not None:
        (folder / "config.yaml").write_text(json.dumps({"task": task, "model": {"name": "lstm"}}))  # JSON is YAML
    if validation is not None:
        manifest = {"data": {"sha256": {"train": "t", "validation": validation}}}
        (folder / "manifest.json").write_text(json.dumps(manifest))
    summary = {"best": {metric: accuracy}, "best_step": 2, "steps": 2, "main_metric": metric,
               "train_runtime_s": 1.25, "train_samples_per_second": 51.2,
               "parameters": {"trainable": 1_292_026, "total": 1_292_026},
               "hyperparameters": {"optimizer.lr": lr, "model.name": "lstm", "trainer.batch_size": 32}}
    if cost:
        summary["cost"] = cost
    (folder / "metrics.json").write_text(json.dumps(summary))
    return folder


def compare(*run_dirs: Path, output: str | None = None, allow: bool = False, metric: str | None = None) -> int:
    from nlptune.commands.compare import handle

    return handle(argparse.Namespace(run_dirs=[str(d) for d in run_dirs], metric=metric, output=output,
                                     allow_different_tasks=allow))


def test_compare_refuses_a_metric_no_run_has_before_writing(tmp_path, recorded):
    runs = [fake_run(tmp_path / name, 1e-3, 0.8) for name in ("a", "b")]
    with pytest.raises(NlptuneError, match=r"--metric acuracy: no run has evaluations of it -> use one the runs "
                                           r"have: accuracy, loss"):
        compare(*runs, metric="acuracy")
    assert not (runs[0] / "compare.png").exists()
    assert compare(*runs, metric="loss") == 0  # one they have, named


def test_compare_refuses_a_run_given_twice(tmp_path, recorded):
    """`compare a a` (or `a ./a/`) drew one curve over the other and said "the hyperparameters are the same"."""
    run = fake_run(tmp_path / "a", 1e-3, 0.8)
    for twice, said in (([run, run], "is given twice"), ([run, f"{run}/"], "is the same run as"),
                        ([run, f"{tmp_path}/./a"], "is the same run as")):
        with pytest.raises(NlptuneError, match=said):
            compare(*twice)
    assert not (run / "compare.png").exists()


def test_compare_writes_into_the_first_run_folder_not_the_working_directory(tmp_path, monkeypatch, recorded):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    first = fake_run(tmp_path / "runs" / "sst2-lstm" / "20260101-120000-with-a-long-run-name", 1e-3, 0.81)
    second = fake_run(tmp_path / "runs" / "sst2-lstm" / "20260101-130000-with-a-long-run-name", 3e-3, 0.84)
    assert compare(first, second) == 0
    assert (first / "compare.png").stat().st_size > 5000
    assert list(work.iterdir()) == []
    assert not list(first.glob(".compare-*"))  # no temporary file left
    text = recorded.export_text()
    assert_fits(text, "best accuracy", "0.8100", "0.8400", "1,292,026", "optimizer.lr=0.003")
    assert "Inference cost" not in text  # neither run measured it


def test_compare_shows_a_running_run_by_its_config_and_best_evaluation_so_far(tmp_path, monkeypatch, recorded):
    """A run without metrics.json (still training, or stopped) was "unfinished" and differed in every key, each
    "=None": its config.yaml holds its hyperparameters and metrics.jsonl its evaluations so far."""
    monkeypatch.chdir(tmp_path)
    done = fake_run(tmp_path / "done", 1e-3, 0.81)
    running = fake_run(tmp_path / "running", 3e-3, 0.5)
    (running / "metrics.json").unlink()
    (running / "config.yaml").write_text(json.dumps({"model": {"name": "lstm"}, "optimizer": {"lr": 3e-3},
                                                     "trainer": {"batch_size": 32}, "seed": 42}))
    with (running / "metrics.jsonl").open("a") as records:
        records.write(json.dumps({"step": 4, "epoch": 0, "eval_accuracy": 0.74, "eval_loss": 0.6}) + "\n")
        records.write(json.dumps({"step": 6, "epoch": 0, "eval_accuracy": 0.7, "eval_loss": 0.6}) + "\n")
    assert compare(done, running) == 0
    text = recorded.export_text()
    assert_fits(text, "0.7400 so far", "4/6", "optimizer.lr=0.003")
    assert "=None" not in text.replace("seed=None", "")  # the summary of "done" records no seed


def test_compare_shows_the_runs_inference_cost_at_80_columns(tmp_path, monkeypatch, recorded):
    monkeypatch.chdir(tmp_path)
    measured = fake_run(tmp_path / "runs" / "sst2-lstm" / "20260101-120000-with-a-long-run-name", 1e-3, 0.81, COST)
    older = fake_run(tmp_path / "runs" / "sst2-lstm" / "20250101-120000-from-before-the-cost", 3e-3, 0.84)
    assert compare(measured, older) == 0
    text = recorded.export_text()
    assert_fits(text, "Inference cost", "latency ms", "examples/s", "params", "size MB", "12.35", "12,346",
                "370,370,367", "1481.50")
    older_row = next(line for line in text.split("Inference cost")[1].splitlines() if "sst2-lstm/2025" in line)
    assert older_row.split()[1:] == ["-"] * 5  # not measured


def test_compare_output_folder_is_created(tmp_path, monkeypatch, recorded):
    monkeypatch.chdir(tmp_path)
    runs = [fake_run(tmp_path / name, lr, 0.8) for name, lr in (("a", 1e-3), ("b", 2e-3))]
    assert compare(*runs, output=str(tmp_path / "reports" / "cmp")) == 0
    assert (tmp_path / "reports" / "cmp" / "compare.png").is_file()
    assert not (runs[0] / "compare.png").exists()


def test_compare_never_writes_through_a_link(tmp_path, monkeypatch, recorded):
    monkeypatch.chdir(tmp_path)
    runs = [fake_run(tmp_path / name, lr, 0.8) for name, lr in (("a", 1e-3), ("b", 2e-3))]
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    (runs[0] / "compare.png").symlink_to(victim)
    with pytest.raises(NlptuneError, match="symbolic link"):
        compare(*runs)
    assert victim.read_bytes() == b"precious" and (runs[0] / "compare.png").is_symlink()


@pytest.mark.parametrize("where", ["output", "first run"])
def test_compare_never_writes_into_a_linked_folder(tmp_path, monkeypatch, recorded, where):
    """`--output DIR` (or, without it, the first run's folder) that is a link is refused, as `export --output` and
    run directories are: the plot would land wherever the link points."""
    monkeypatch.chdir(tmp_path)
    runs = [fake_run(tmp_path / name, lr, 0.8) for name, lr in (("a", 1e-3), ("b", 2e-3))]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "link"
    if where == "output":
        link.symlink_to(elsewhere)
        call = lambda: compare(*runs, output=str(link))  # noqa: E731
    else:
        link.symlink_to(runs[0])
        call = lambda: compare(link, runs[1])  # noqa: E731
    with pytest.raises(NlptuneError, match="link.*is a symbolic link"):
        call()
    assert list(elsewhere.iterdir()) == [] and not (runs[0] / "compare.png").exists()


def test_compare_output_that_is_a_file_is_refused(tmp_path, monkeypatch, recorded):
    monkeypatch.chdir(tmp_path)
    runs = [fake_run(tmp_path / name, lr, 0.8) for name, lr in (("a", 1e-3), ("b", 2e-3))]
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    with pytest.raises(NlptuneError, match="is a file, not a folder"):
        compare(*runs, output=str(taken))
    assert taken.read_text() == "mine"


def files_under(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder): what a refused compare must leave."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def with_best_model(run: Path) -> Path:
    for name in ("best", "checkpoints/step-00000002", "plots"):
        (run / name).mkdir(parents=True)
    (run / "best" / "nlptune_task.json").write_text("{}")
    return run


@pytest.mark.parametrize("output, words", [
    ("a/best", "is the saved model folder"),  # the reported defect: compare.png among the model's files
    ("a/best/compare.png", "is the saved model folder"),
    ("a/checkpoints", "is inside the run directory"),
    ("a/checkpoints/step-00000002", "is inside the run directory"),
    ("a/plots", "is inside the run directory"),
    ("a/reports/new", "is inside the run directory"),  # not made yet: still inside the run
    ("other", "is the run directory"),  # a run that is not compared: its folder is not compare's to write into
    ("other/cmp.png", "is the run directory"),
    ("exported/cmp", "is inside the saved model folder"),  # an `export --format hf` copy
])
def test_compare_never_writes_inside_a_run_or_a_saved_model(tmp_path, monkeypatch, recorded, output, words):
    monkeypatch.chdir(tmp_path)
    runs = [with_best_model(fake_run(tmp_path / name, lr, 0.8)) for name, lr in (("a", 1e-3), ("b", 2e-3))]
    fake_run(tmp_path / "other", 1e-3, 0.8)
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "nlptune_task.json").write_text("{}")
    before = files_under(tmp_path)
    with pytest.raises(NlptuneError) as caught:
        compare(*runs, output=output)
    message = str(caught.value)
    assert output.split("/compare.png")[0].split("/cmp.png")[0] in message and words in message
    assert "give --output a fresh folder outside every run directory" in message
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("output", ["b", "b/cmp.png", "reports"])
def test_compare_writes_beside_a_compared_runs_files_or_into_a_fresh_folder(tmp_path, monkeypatch, recorded, output):
    monkeypatch.chdir(tmp_path)
    runs = [with_best_model(fake_run(tmp_path / name, lr, 0.8)) for name, lr in (("a", 1e-3), ("b", 2e-3))]
    assert compare(*runs, output=output) == 0
    written = tmp_path / output if output.endswith(".png") else tmp_path / output / "compare.png"
    assert written.is_file()


def test_compare_inside_a_run_exits_2_with_one_message(tmp_path, monkeypatch, capsys):
    from nlptune.cli import main

    monkeypatch.chdir(tmp_path)
    runs = [with_best_model(fake_run(tmp_path / name, lr, 0.8)) for name, lr in (("a", 1e-3), ("b", 2e-3))]
    with pytest.raises(SystemExit) as caught:
        main(["compare", str(runs[0]), str(runs[1]), "--output", str(runs[0] / "best")])
    stderr = capsys.readouterr().err
    assert caught.value.code == 2 and "Traceback" not in stderr
    assert stderr.startswith(f"error: {runs[0] / 'best'} (--output, the compare plot's folder) is the saved model "
                             "folder") and not (runs[0] / "best" / "compare.png").exists()


SST2 = {"name": "sst2", "kind": "single_label", "main_metric": "accuracy"}
STSB = {"name": "stsb", "kind": "regression", "main_metric": "pearson"}


def test_compare_refuses_runs_of_different_tasks(tmp_path, monkeypatch, recorded):
    monkeypatch.chdir(tmp_path)
    sst2 = fake_run(tmp_path / "runs" / "sst2-lstm" / "1", 1e-3, 0.81, task=SST2)
    stsb = fake_run(tmp_path / "runs" / "stsb-lstm" / "1", 1e-3, 0.7, task=STSB)
    before = files_under(tmp_path)
    with pytest.raises(NlptuneError) as caught:
        compare(sst2, stsb)
    message = str(caught.value)
    assert message.startswith("these runs differ in task, kind, main metric, so their results are not comparable")
    assert "sst2-lstm/1: task sst2, kind single_label, main metric accuracy" in message
    assert "stsb-lstm/1: task stsb, kind regression, main metric pearson" in message
    assert "--allow-different-tasks" in message
    assert files_under(tmp_path) == before  # no plot


def test_compare_refuses_different_main_metrics_or_validation_data_of_one_task(tmp_path, monkeypatch, recorded):
    monkeypatch.chdir(tmp_path)
    first = fake_run(tmp_path / "a", 1e-3, 0.81, task=SST2, validation="a" * 64)
    by_f1 = fake_run(tmp_path / "b", 1e-3, 0.8, task={**SST2, "main_metric": "f1"}, validation="a" * 64)
    with pytest.raises(NlptuneError, match=r"(?s)differ in main metric,.*/a: main metric accuracy\n.*/b: main "
                                           "metric f1\n"):
        compare(first, by_f1)
    other_data = fake_run(tmp_path / "c", 1e-3, 0.9, task=SST2, validation="b" * 64)
    with pytest.raises(NlptuneError, match=r"(?s)differ in validation data,.*a: validation data aaaaaaaaaaaa\.\.\."):
        compare(first, other_data)
    fewer_rows = fake_run(tmp_path / "d", 1e-3, 0.9, task={**SST2, "max_eval_samples": 64}, validation="a" * 64)
    with pytest.raises(NlptuneError, match=r"d: validation data aaaaaaaaaaaa\.\.\., first 64 rows"):
        compare(first, fewer_rows)


def test_compare_takes_runs_of_one_task_recorded_differently(tmp_path, monkeypatch, recorded):
    """The hub dataset's fingerprint (it varies with the `datasets` version) and what an older run did not record
    are no difference."""
    monkeypatch.chdir(tmp_path)
    hub = "hub:nyu-mll/glue:sst2:unpinned"
    runs = [fake_run(tmp_path / "a", 1e-3, 0.81, task=SST2, validation=f"{hub}:fingerprint1"),
            fake_run(tmp_path / "b", 2e-3, 0.82, task=SST2, validation=f"{hub}:fingerprint2"),
            fake_run(tmp_path / "c", 3e-3, 0.83)]  # no config.yaml, no manifest: main metric from metrics.json
    assert compare(*runs) == 0
    assert "NOT comparable" not in recorded.export_text()


def test_compare_of_different_tasks_when_allowed_ranks_by_no_common_metric(tmp_path, monkeypatch, recorded,
                                                                           capsys):
    monkeypatch.chdir(tmp_path)
    sst2 = fake_run(tmp_path / "runs" / "sst2-lstm" / "20260101-120000-with-a-long-run-name", 1e-3, 0.81,
                    task=SST2)
    stsb = fake_run(tmp_path / "runs" / "stsb-lstm" / "20260101-120000-with-a-long-run-name", 1e-3, 0.7,
                    task=STSB)
    assert compare(sst2, stsb, allow=True) == 0
    warning = " ".join(capsys.readouterr().err.split())
    assert "warning: these runs differ in task, kind, main metric, so their results are not comparable" in warning
    assert "task stsb, kind regression, main metric pearson" in warning
    text = recorded.export_text()
    assert_fits(text, "NOT comparable", "best main metric", "accuracy 0.8100", "pearson 0.7000")
    assert "best accuracy" not in text  # no column of one metric that reads as a ranking
    assert (sst2 / "compare.png").stat().st_size > 5000


# ------------------------------------------------------------------ sweep table and recipes list


def sweep_trials(space: dict[str, str]):
    import optuna

    from nlptune.tuning.space import parse_space, suggest

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        for dim in parse_space(space):
            suggest(trial, dim)
        trial.set_user_attr("train_samples", 123_456)
        if trial.number == 1:
            trial.set_user_attr("fail_reason", "out of memory: CUDA out of memory. Tried to allocate 2.00 GiB "
                                               "(GPU 0; 79.15 GiB total capacity; 75.00 GiB already allocated)")
            raise RuntimeError("oom")
        return 0.1 * trial.number

    study.optimize(objective, n_trials=4, catch=(RuntimeError,))
    return study.get_trials()


def sweep_plan(space: dict[str, str]):
    from nlptune.tuning.plan import SweepPlan

    return SweepPlan(sweep_dir="/nonexistent", storage="journal:/nonexistent/j", study_name="sst2-lstm",
                     overrides=[], space=space, tune={}, n_trials=20, metric="accuracy", direction="maximize",
                     budget_samples=1000, seed=0, run_seed=0)


@pytest.mark.parametrize("count", [2, 6])
def test_sweep_table_fits_80_columns(count):
    from nlptune.tuning.live import SweepTable

    keys = ["optimizer.lr", "scheduler.warmup_ratio", "model.dropout", "model.hidden_size", "trainer.batch_size",
            "model.num_layers"][:count]
    specs = {"optimizer.lr": "loguniform(1e-4,1e-2)", "scheduler.warmup_ratio": "uniform(0,0.2)",
             "model.dropout": "uniform(0,0.6)", "model.hidden_size": "choice(128,256)",
             "trainer.batch_size": "choice(16,32)", "model.num_layers": "int(1,3)"}
    space = {k: specs[k] for k in keys}
    console = Console(width=WIDTH, record=True, force_terminal=False)
    table = SweepTable(sweep_plan(space), quiet=True, console=console)
    text = render(table.table(sweep_trials(space)))
    assert_fits(text, "accuracy", "samples", "failed", "done", "trial 1 failed: out of memory", "123k", "3*")
    for key in keys:
        assert key.split(".")[-1] in text


def test_recipes_list_fits_80_columns(recorded):
    from nlptune.commands.recipes import handle_list
    from nlptune.recipes.format import shipped_recipes

    assert handle_list(argparse.Namespace()) == 0
    text = recorded.export_text()
    assert_fits(text, "expected", "runtime", *[p.stem for p in shipped_recipes()])
    assert "…" not in text
    # the model column folds in readable pieces, never a character a line
    assert "all-Mini" in text


def test_warnings_reach_stderr_even_when_quiet(capsys):
    """--quiet drops progress and tables, never a warning about the user's data, model or settings."""
    from nlptune.utils import console as console_module

    console_module.set_quiet(True)
    try:
        console_module.warn("declared label 'neutral' has no example")
    finally:
        console_module.set_quiet(False)
    captured = capsys.readouterr()
    assert "declared label 'neutral' has no example" in captured.err and captured.out == ""
