"""The benchmark scripts run on a tiny slice and print their table (no figure is asserted: speed lives in
benchmarks/, never in timed tests)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA_DIR as DATA

REPO = Path(__file__).resolve().parents[2]
needs_data = pytest.mark.skipif(not (DATA / "sst2" / "train.jsonl").is_file(),
                                reason="the shared data ($NLPTUNE_DATA_DIR or ../shared/data) is not present")


def _run(*argv: str, timeout: int = 600) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NLPTUNE_DATA_DIR": str(DATA)}
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _json_line(stdout: str) -> dict:
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def test_startup_script_reports_both_commands():
    out = _run("benchmarks/startup.py", "--repeats", "1")
    summary = _json_line(out)
    assert [r["command"] for r in summary["results"]] == ["nlptune --help", "nlptune train --cfg job"]
    assert summary["results"][0]["heavy_imports"] == "none"
    assert out.splitlines()[0].startswith("machine: ") and "wall_s" in out.splitlines()[1]


@needs_data
def test_vs_plain_loop_runs_on_a_slice(tmp_path):
    out = _run("benchmarks/vs_plain_loop.py", "--epochs", "1", "--limit", "32", "--seeds", "1,2", "--threads", "1",
               "--output-dir", str(tmp_path))
    summary = _json_line(out)
    assert {r["name"] for r in summary["results"]} == {"nlptune", "plain_loop"}
    assert all(r["samples_per_s"] > 0 and r["seeds"] == 2 and r["precision"] == "fp32" for r in summary["results"])
    assert sorted(r["seed"] for r in summary["runs"]) == [1, 1, 2, 2]
    assert "final_accuracy" in out


@needs_data
def test_model_matrix_runs_on_a_slice(tmp_path):
    out = _run("benchmarks/model_matrix.py", "--tasks", "mrpc,stsb", "--models", "bag", "--limit", "64",
               "--output-dir", str(tmp_path))
    summary = _json_line(out)
    assert [(r["task"], r["compare"]) for r in summary["results"]] == [("mrpc", "accuracy"), ("stsb", "mse")]
    assert all(r["error"] is None and r["trivial"] > 0 for r in summary["results"])
    assert out.splitlines()[0].startswith("machine: ") and "beats" in out.splitlines()[2]


@needs_data
def test_vs_pipeline_trains_a_run_and_compares_on_a_slice(tmp_path, tiny_pretrained):
    """The plumbing (train, export, three predictors, the comparison) on a tiny random BERT: MiniLM's figures are
    the benchmark's, not a test's."""
    import importlib.util

    contenders = ["nlptune", "pipeline"] + (["onnxruntime"] if importlib.util.find_spec("onnxruntime") else [])
    out = _run("benchmarks/vs_pipeline.py", "--limit", "32", "--train-steps", "2", "--repeats", "1", "--threads", "1",
               "--model", str(tiny_pretrained), "--contenders", ",".join(contenders), "--output-dir", str(tmp_path))
    summary = _json_line(out)
    assert [r["name"] for r in summary["results"]] == contenders
    assert all(r["texts"] == 32 and r["texts_per_s"] > 0 and r["differing_labels"] >= 0 for r in summary["results"])
    assert out.splitlines()[0].startswith("machine: ") and "labels differing from the pipeline's" in out


@needs_data
def test_data_scale_measures_both_tokenizers_at_each_size():
    out = _run("benchmarks/data_scale.py", "--rows", "100", "200", "--no-cached")
    summary = _json_line(out)
    assert [(r["tokenizer"], r["rows"], r["cache"]) for r in summary["results"]] == [
        ("minilm", 100, "fresh"), ("lstm", 100, "fresh"), ("minilm", 200, "fresh"), ("lstm", 200, "fresh")]
    assert all(r["rows_per_s"] > 0 and r["encode_cores"] > 0 and r["peak_mb"] > r["base_mb"] > 0 < r["token_mb"]
               for r in summary["results"])
    assert [(c["tokenizer"], c["rows"]) for c in summary["checks"]] == [("minilm", "100->200"), ("lstm", "100->200")]
    assert out.splitlines()[0].startswith("machine: ") and "limit_mb" in out


def test_the_machine_line_names_the_cpu_and_its_features(capsys):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import _common

    info = _common.print_machine()
    line = capsys.readouterr().out
    assert line.startswith("machine: ") and info["cpu"] in line and f"{info['cores']} cores" in line
    assert set(info["cpu_features"]) <= set(_common.CPU_FEATURES.values())


def test_distill_compares_a_teacher_and_student_groups(tmp_path):
    def train(name: str, model: str, seed: int) -> str:
        _run("-m", "nlptune", "--quiet", "train", "task=demo", f"model={model}", f"seed={seed}",
             "trainer.max_steps=2", "trainer.report_to=[]",
             "trainer.measure_cost=false", "trainer.threads=1", f"output_dir={tmp_path / name}")
        return str(tmp_path / name)

    teacher = train("teacher", "cnn", 1)
    students = ",".join(train(f"bag-{seed}", "bag", seed) for seed in (1, 2))
    out = _run("benchmarks/distill.py", "--teacher", teacher, "--group", f"bag={students}",
               "--json", str(tmp_path / "rows.json"))
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [(r["model"], r["runs"]) for r in rows] == [("teacher", 1), ("bag", 2)]
    assert rows[0]["latency_x"] == "1.0x" and all(r["latency_ms"] > 0 and r["throughput"] > 0 for r in rows)
    assert len(rows[1]["values"].split()) == 2
    assert out.splitlines()[0].startswith("machine: ") and "throughput_x" in out


def test_tuned_rows_are_read_only_from_confirmation_runs_of_the_shipped_recipe(tmp_path):
    """tuned_vs_defaults --tuned-from: a confirmation run counts for its seed when its config is the recipe's
    (seed, output_dir, data folder and the packaged model's spelling apart); any other key differing, it does not."""
    import yaml

    sys.path.insert(0, str(REPO / "benchmarks"))
    import tuned_vs_defaults

    from nlptune.config.sources import resolve_model_source

    config = yaml.safe_load((REPO / "recipes" / "mrpc-minilm.yaml").read_text())["config"]
    sweep = tmp_path / "sweep"
    for trial, seed, change in ((3, 43, {}), (5, 44, {"optimizer": {**config["optimizer"], "lr": 1e-3}})):
        run = sweep / "confirm" / f"trial-{trial:04d}" / f"seed-{seed}"
        run.mkdir(parents=True)
        model = {**config["model"], "name_or_path": str(resolve_model_source(config["model"]["name_or_path"]))}
        stored = {**config, **change, "seed": seed, "output_dir": str(run), "model": model,
                  "task": {**config["task"], "data_dir": "/somewhere"}}
        (run / "config.yaml").write_text(yaml.safe_dump(stored))
        (run / "metrics.json").write_text(json.dumps({"best": {"f1": 0.85 + seed / 1000}, "train_runtime_s": 9.0,
                                                      "epochs": 5}))
        (run / "metrics.jsonl").write_text(json.dumps({"eval_f1": 0.8}) + "\n")
    found = tuned_vs_defaults.confirmed_run("mrpc", 43, [sweep])
    assert found == {"metric": 0.893, "final": 0.8, "train_wall_s": 9.0, "epochs": 5, "from": str(sweep)}
    assert tuned_vs_defaults.confirmed_run("mrpc", 44, [sweep]) is None  # another lr: not the recipe's run
    assert tuned_vs_defaults.confirmed_run("mrpc", 45, [sweep]) is None  # no run of that seed
    assert tuned_vs_defaults.confirmed_run("sst2", 43, [sweep]) is None  # another task's recipe
