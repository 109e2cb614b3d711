"""Every from-scratch model family on a single-sentence task, a pair task and a regression task, one epoch each
on the full data, against the trivial predictor: the majority class of train (classification) or the mean
train label (regression).

  python benchmarks/model_matrix.py                     # bag cnn lstm gru transformer x sst2 mrpc stsb
  python benchmarks/model_matrix.py --tasks mrpc --models bag,cnn --epochs 2

Each run is the real CLI (`python -m nlptune train`) with the model's and task's defaults. Classification
is compared on accuracy (what the majority predictor is defined by; the task's main metric is shown too),
regression on mean squared error (a constant predictor has no Pearson correlation; Pearson is shown too).
`trivial_main` is the majority predictor scored on the task's main metric (mrpc: F1 of always "equivalent").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from _common import DATA_DIR, REPO, print_machine, print_table


def _task_file(task: str) -> dict:
    """conf/task/<task>.yaml: the main metric and problem kind come from there, not a copy here."""
    return yaml.safe_load((REPO / "conf" / "task" / f"{task}.yaml").read_text(encoding="utf-8"))


TASKS = ("sst2", "mrpc", "stsb", "cola", "subj")
MAIN = {task: _task_file(task)["main_metric"] for task in TASKS}
REGRESSION = {task for task in TASKS if _task_file(task)["kind"] == "regression"}


def _labels(task: str, split: str, limit: int) -> list:
    lines = (DATA_DIR / task / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    labels = [json.loads(line)["label"] for line in lines if line.strip()]
    return labels[:limit] if limit else labels


def trivial_baseline(task: str, limit: int) -> dict:
    """What predicting the majority train class (or the mean train label) scores on validation."""
    train, gold = _labels(task, "train", limit), _labels(task, "validation", limit)
    if task in REGRESSION:
        mean = statistics.fmean(float(v) for v in train)
        return {"compare": "mse", "baseline": statistics.fmean((float(g) - mean) ** 2 for g in gold)}
    majority = Counter(train).most_common(1)[0][0]
    accuracy = sum(g == majority for g in gold) / len(gold)
    positive_rate = sum(g == 1 for g in gold) / len(gold)
    # the same predictor scored on the task's main metric: binary F1 (label 1 positive) and MCC of a constant
    main = {"accuracy": accuracy, "f1": 2 * positive_rate / (1 + positive_rate) if majority == 1 else 0.0,
            "mcc": 0.0}[MAIN[task]]
    return {"compare": "accuracy", "baseline": accuracy, "main_baseline": main}


def train_one(task: str, model: str, args) -> dict:
    out = Path(args.output_dir) / f"{task}-{model}"
    shutil.rmtree(out, ignore_errors=True)
    metrics = "[pearson,spearman,mse]" if task in REGRESSION else \
        f"[{','.join(dict.fromkeys([MAIN[task], 'accuracy']))}]"
    argv = [sys.executable, "-m", "nlptune", "--quiet", "train", f"task={task}", f"model={model}", f"output_dir={out}",
            f"trainer.max_epochs={args.epochs}", f"task.metrics={metrics}", f"task.data_dir={DATA_DIR}",
            "trainer.keep_last=0", "trainer.report_to=[]"]
    if args.limit:
        argv += [f"task.max_train_samples={args.limit}", f"task.max_eval_samples={args.limit}"]
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {"task": task, "model": model, "error": proc.stderr.strip().splitlines()[-1:], "wall_s": wall}
    summary = json.loads((out / "metrics.json").read_text())
    final = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"eval_' in line][-1]
    return {"task": task, "model": model, "final": {k[len("eval_"):]: v for k, v in final.items()
                                                    if k.startswith("eval_")},
            "train_s": summary["train_runtime_s"], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="sst2,mrpc,stsb")
    parser.add_argument("--models", default="bag,cnn,lstm,gru,transformer")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N rows of each split (smoke test)")
    parser.add_argument("--output-dir", default=str(REPO / "runs" / "model-matrix"))
    args = parser.parse_args()
    print_machine()
    rows = []
    for task in args.tasks.split(","):
        trivial = trivial_baseline(task, args.limit)
        for model in args.models.split(","):
            result = train_one(task, model, args)
            row = {"task": task, "model": model, "compare": trivial["compare"], "trivial": trivial["baseline"],
                   "trivial_main": trivial.get("main_baseline"), "train_s": result.get("train_s"),
                   "error": result.get("error")}
            if "final" in result:  # the model after the last epoch, not the best evaluation
                value = result["final"][trivial["compare"]]
                lower_is_better = trivial["compare"] == "mse"
                row.update(value=value, main_metric=MAIN[task], main=result["final"][MAIN[task]],
                           beats=value < trivial["baseline"] if lower_is_better else value > trivial["baseline"])
            rows.append(row)
            print(f"  {task} {model}: {row.get('value', row['error'])}", file=sys.stderr)
    print(f"epochs={args.epochs} limit={args.limit or 'all'} data={DATA_DIR}")
    print_table(rows, ["task", "model", "compare", "value", "trivial", "beats", "main_metric", "main",
                       "trivial_main", "train_s"])
    print(json.dumps({"benchmark": "model_matrix", "epochs": args.epochs, "results": rows,
                      "all_beat_trivial": all(r.get("beats") for r in rows)}))


if __name__ == "__main__":
    main()
