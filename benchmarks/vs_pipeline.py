"""`nlptune predict` vs `transformers.pipeline(..., batch_size=32)` vs the ONNX export in onnxruntime, side by side
in one run.

The same model (a finished nlptune run's best/: by default all-MiniLM-L6-v2 fine-tuned on sst2 here first), the same
texts (the task's validation split, read as `nlptune predict --input` reads a file), the same threads, at equal
precision: bf16 autocast on both where the CPU has AMX bf16 units (where `trainer.mixed_precision: auto` picks
bf16), fp32 on both otherwise or with --precision fp32. The ONNX model (`nlptune export`, fp32) runs in
onnxruntime in batches sorted by length like nlptune's; onnxruntime has no bf16 autocast, so its row is fp32.

Each contender runs in its own child process (its peak RSS is its own): load the model (load_s), one untimed call
on the first 32 texts, then --repeats timed calls over all the texts. A call is texts in, one prediction per text
out (tokenizing, batching, forward passes, probabilities): what `LoadedRun.predict` does for `nlptune predict`,
and `pipe(texts)`. texts_per_s = texts / the median call. Every contender's labels are compared with the
pipeline's on every text (differing_labels; the acceptance wants 0 and nlptune >= 1.5x the pipeline's texts/s).

The full run (a few minutes on an idle 2-core Xeon with AMX, most of it the 200 training steps and the export):

  NLPTUNE_DATA_DIR=../shared/data python benchmarks/vs_pipeline.py
  NLPTUNE_DATA_DIR=../shared/data python benchmarks/vs_pipeline.py --precision fp32     # fp32 on both
  NLPTUNE_DATA_DIR=../shared/data python benchmarks/vs_pipeline.py --run RUN_DIR       # an existing sst2 run

A quick check that it works: --limit 64 --train-steps 2 --repeats 1.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import DATA_DIR, REPO, emit, machine, peak_rss_mb, print_machine, print_table, run_child

MODEL = "packaged:sentence-transformers/all-MiniLM-L6-v2"
CONTENDERS = ("nlptune", "pipeline", "onnxruntime")
WARMUP_TEXTS = 32


# ---------------------------------------------------------------------------------------------- the parent
def train_run(args) -> Path:
    """A short fine-tuning of --model (MiniLM) on --task into <output-dir>/run (a fresh one each time)."""
    out = Path(args.output_dir) / "run"
    shutil.rmtree(out, ignore_errors=True)
    overrides = [f"task={args.task}", "model=pretrained", f"model.name_or_path={args.model}",
                 f"task.data_dir={DATA_DIR}", f"trainer.max_steps={args.train_steps}", "trainer.max_epochs=1000",
                 "trainer.measure_cost=false", "trainer.report_to=[]", "trainer.keep_last=0",
                 "trainer.log_every=1000000", f"output_dir={out}"]
    if args.limit:  # a smoke test: neither the full training set nor a full evaluation during training
        overrides += [f"task.max_train_samples={args.limit}", f"task.max_eval_samples={args.limit}"]
    _nlptune(["--quiet", "train", *overrides], args.threads)
    return out


def export_onnx(args, run: Path) -> Path:
    """The run's ONNX export (`nlptune export`): --onnx when given, else written into <output-dir>/onnx."""
    if args.onnx:
        return Path(args.onnx)
    folder = Path(args.output_dir) / "onnx"
    shutil.rmtree(folder, ignore_errors=True)
    _nlptune(["export", str(run), "--format", "onnx", "--output", str(folder)], args.threads)
    return folder


def _nlptune(argv: list[str], threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "NLPTUNE_DATA_DIR": str(DATA_DIR)}
    proc = subprocess.run([sys.executable, "-m", "nlptune", *argv], capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"nlptune {' '.join(argv[:2])} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


def default_precision(choice: str) -> str:
    """--precision default: bf16 where the CPU has AMX bf16 units (benchmarks/_common.machine), fp32 elsewhere."""
    if choice != "default":
        return choice
    return "bf16" if "AMX bf16" in machine()["cpu_features"] else "fp32"


def compare(rows: list[dict]) -> None:
    """Each row against the pipeline's, text by text: how many labels differ (and the first few, with both
    scores), the largest score difference where the labels agree, the speed-up; then the per-text lists go."""
    reference = next((row for row in rows if row["name"] == "pipeline"), None)
    for row in rows:
        if reference is None:
            break
        pairs = list(zip(row["labels"], reference["labels"], row["scores"], reference["scores"]))
        differing = [i for i, (mine, theirs, _, _) in enumerate(pairs) if mine != theirs]
        row["differing_labels"] = len(differing)
        row["max_score_diff"] = max((abs(a - b) for mine, theirs, a, b in pairs if mine == theirs), default=0.0)
        row["speedup_vs_pipeline"] = row["texts_per_s"] / reference["texts_per_s"]
        row["differing_examples"] = [{"index": i, "label": pairs[i][0], "score": pairs[i][2],
                                      "pipeline_label": pairs[i][1], "pipeline_score": pairs[i][3]}
                                     for i in differing[:5]]
    for row in rows:
        del row["labels"], row["scores"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a finished nlptune run (a single_label task) to predict with; default: train "
                        "--model (MiniLM) on --task for --train-steps into --output-dir first")
    parser.add_argument("--task", default="sst2", help="the task to train on when no --run is given")
    parser.add_argument("--model", default=MODEL, help="the pretrained model to train when no --run is given")
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--onnx", help="a folder `nlptune export --format onnx` wrote for --run (default: export "
                        "into --output-dir)")
    parser.add_argument("--precision", default="default", choices=["default", "fp32", "bf16"],
                        help="default: bf16 autocast on both where the CPU has AMX bf16 units, fp32 otherwise")
    parser.add_argument("--batch-size", type=int, default=0, help="nlptune's and onnxruntime's texts per batch (0: "
                        "nlptune predict's default)")
    parser.add_argument("--pipeline-batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls over all the texts (the median counts)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N validation texts (smoke test)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--output-dir", default="/tmp/nlptune-bench-predict")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)  # the children's run (trained or --run)
    args = parser.parse_args()
    if args.child:
        emit({**child(args), "peak_rss_mb": peak_rss_mb()})
        return
    print_machine()
    args.precision = default_precision(args.precision)
    contenders = args.contenders.split(",")
    run = Path(args.run) if args.run else train_run(args)
    forwarded = ["--run-dir", str(run), "--precision", args.precision, "--batch-size", str(args.batch_size),
                 "--pipeline-batch-size", str(args.pipeline_batch_size), "--threads", str(args.threads),
                 "--repeats", str(args.repeats), "--limit", str(args.limit)]
    if "onnxruntime" in contenders:
        forwarded += ["--onnx", str(export_onnx(args, run))]
    rows = []
    for name in contenders:
        rows.append(run_child(__file__, forwarded + ["--child", name], args.threads))
        print(f"  done: {name}: {rows[-1]['texts_per_s']:.1f} texts/s", file=sys.stderr)
    compare(rows)
    report(rows, args, run)


def report(rows: list[dict], args, run: Path) -> None:
    """The table, the acceptance line (nlptune predict vs the pipeline), and every figure as one JSON line."""
    print(f"run={run} texts={rows[0]['texts']} threads={args.threads} repeats={args.repeats} "
          f"precision={args.precision} (onnxruntime: fp32)")
    print_table(rows, ["name", "precision", "batch_size", "texts", "load_s", "first_call_s", "median_s",
                       "texts_per_s", "speedup_vs_pipeline", "differing_labels", "max_score_diff", "peak_rss_mb"])
    ours = next((row for row in rows if row["name"] == "nlptune"), None)
    if ours is not None and "speedup_vs_pipeline" in ours:
        print(f"nlptune predict / pipeline(batch_size={args.pipeline_batch_size}): "
              f"{ours['speedup_vs_pipeline']:.2f}x texts/s (target >= 1.5x); labels differing from the pipeline's: "
              f"{ours['differing_labels']} of {ours['texts']} (target 0)")
    for row in rows:
        for example in row.get("differing_examples", []):
            print(f"  {row['name']} differs on text {example['index']}: {example['label']} "
                  f"({example['score']:.4f}) vs pipeline {example['pipeline_label']} ({example['pipeline_score']:.4f})")
    print(json.dumps({"benchmark": "vs_pipeline", "run": str(run), "precision": args.precision,
                      "threads": args.threads, "results": rows}))


# ---------------------------------------------------------------------------------------------- the children
def child(args) -> dict:
    """Load one contender, warm it up, time --repeats calls over all the texts; its labels and scores."""
    import torch

    torch.set_num_threads(args.threads)
    texts, info = _texts(Path(args.run_dir), args.limit)
    started = time.perf_counter()
    predict, precision, batch_size = LOADERS[args.child](args, info)
    load_s = time.perf_counter() - started
    predict([column[:WARMUP_TEXTS] for column in texts])
    timings, results = [], None
    for _ in range(max(args.repeats, 1)):
        started = time.perf_counter()
        results = predict(texts)
        timings.append(time.perf_counter() - started)
    median = statistics.median(timings)
    return {"name": args.child, "precision": precision, "batch_size": batch_size, "texts": len(texts[0]),
            "load_s": load_s, "first_call_s": timings[0], "median_s": median, "texts_per_s": len(texts[0]) / median,
            "labels": [label for label, _ in results], "scores": [score for _, score in results]}


def _texts(run: Path, limit: int) -> tuple[list[list[str]], dict]:
    """The validation texts of the run's task (one list per text field) and its best/nlptune_task.json."""
    from nlptune.inference.predict import read_inputs

    info = json.loads((run / "best" / "nlptune_task.json").read_text())
    if info["kind"] != "single_label":
        raise SystemExit(f"{run}: a {info['kind']} run; this benchmark compares the labels of single_label runs")
    texts = read_inputs(str(DATA_DIR / info["task"] / "validation.jsonl"), info["text_fields"])
    return ([column[:limit] for column in texts] if limit else texts), info


def _autocast(precision: str):
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def load_nlptune(args, info: dict):
    """`nlptune predict`'s path: the checked run's LoadedRun, its predict() at the benchmark's precision."""
    from nlptune.inference import PREDICT_BATCH_SIZE
    from nlptune.inference.run_reading import load_run

    loaded = load_run(args.run_dir)
    batch_size = args.batch_size or PREDICT_BATCH_SIZE

    def predict(texts):
        found = loaded.predict(texts, batch_size=batch_size, precision=args.precision)
        return [(p["label"], p["score"]) for p in found]

    return predict, args.precision, batch_size


def load_pipeline(args, info: dict):
    """`pipeline("text-classification")` on best/, called on every text at once with batch_size; bf16 is autocast
    around the call (its weights stay fp32, as nlptune's)."""
    from transformers import pipeline

    best = str(Path(args.run_dir) / "best")
    pipe = pipeline("text-classification", model=best, tokenizer=best, device="cpu")

    def predict(texts):
        inputs = texts[0] if len(texts) == 1 else [{"text": a, "text_pair": b} for a, b in zip(*texts)]
        with _autocast(args.precision):
            found = pipe(inputs, batch_size=args.pipeline_batch_size, truncation=True, max_length=info["max_length"])
        return [(p["label"], p["score"]) for p in found]

    return predict, args.precision, args.pipeline_batch_size


def load_onnxruntime(args, info: dict):
    """The exported model.onnx in an onnxruntime session (--threads intra-op threads), its tokenizer, batches sorted
    by length (longest first), padded to the longest of each, softmax over the logits."""
    import numpy as np
    import onnxruntime
    from transformers import AutoTokenizer

    from nlptune.inference import PREDICT_BATCH_SIZE

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    session = onnxruntime.InferenceSession(str(Path(args.onnx) / "model.onnx"), options,
                                           providers=["CPUExecutionProvider"])
    tokenizer = AutoTokenizer.from_pretrained(args.onnx)
    feeds = [i.name for i in session.get_inputs()]
    names, batch_size = info["label_names"], args.batch_size or PREDICT_BATCH_SIZE

    def predict(texts):
        encoded = tokenizer(*texts, truncation=True, max_length=info["max_length"])
        ids, types = encoded["input_ids"], encoded.get("token_type_ids")
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        found = [None] * len(ids)
        for start in range(0, len(order), batch_size):
            picked = order[start: start + batch_size]
            width = max(len(ids[i]) for i in picked)
            batch = {"input_ids": np.full((len(picked), width), tokenizer.pad_token_id, dtype=np.int64),
                     "attention_mask": np.zeros((len(picked), width), dtype=np.int64),
                     "token_type_ids": np.zeros((len(picked), width), dtype=np.int64)}
            for row, i in enumerate(picked):
                batch["input_ids"][row, :len(ids[i])] = ids[i]
                batch["attention_mask"][row, :len(ids[i])] = 1
                if types is not None:
                    batch["token_type_ids"][row, :len(ids[i])] = types[i]
            logits = session.run(["logits"], {name: batch[name] for name in feeds})[0]
            probabilities = np.exp(logits - logits.max(-1, keepdims=True))
            probabilities /= probabilities.sum(-1, keepdims=True)
            for row, i in enumerate(picked):
                best = int(probabilities[row].argmax())
                found[i] = (names[best], float(probabilities[row, best]))
        return found

    return predict, "fp32", batch_size


LOADERS = {"nlptune": load_nlptune, "pipeline": load_pipeline, "onnxruntime": load_onnxruntime}


if __name__ == "__main__":
    main()
