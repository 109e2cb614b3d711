"""Issue 15, acceptance 3: does trainer.class_weights=balanced help on imbalanced labels? Measured, not assumed.

The sst2 train split is cut to 10 % positives (every negative row, and a seeded random sample of positives so that
they are 10 % of the result) into a temporary folder; the validation split stays as it is (balanced). The sst2-lstm
recipe (BiLSTM) is then trained with class_weights none and balanced (and, with --focal, focal loss) for each seed,
and macro F1 on validation is printed side by side (with its mean over the seeds).

  python benchmarks/imbalance.py                      # 3 seeds, the full recipe (long: run it on an idle machine)
  python benchmarks/imbalance.py --smoke              # a few steps on 256 rows: checks the plumbing only
  python benchmarks/imbalance.py --seeds 1 2 3 --focal --json results/imbalance.json
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA_DIR, REPO, print_machine, print_table  # noqa: E402

POSITIVE_SHARE = 0.10
SMOKE = ["task.max_train_samples=256", "task.max_eval_samples=128", "trainer.max_steps=6", "trainer.eval_every=3",
         "model.embedding_dim=16", "model.hidden_size=16"]


def build_imbalanced(source: Path, out: Path, seed: int, share: float = POSITIVE_SHARE) -> dict:
    """sst2 train with ``share`` positives (all negatives kept, positives sampled with ``seed``), rows shuffled
    with the same seed; validation copied unchanged. Returns the counts."""
    rows = [json.loads(line) for line in (source / "train.jsonl").read_text(encoding="utf-8").splitlines() if line]
    negatives = [r for r in rows if int(r["label"]) == 0]
    positives = [r for r in rows if int(r["label"]) == 1]
    rng = random.Random(seed)
    keep = round(len(negatives) * share / (1 - share))
    chosen = negatives + rng.sample(positives, keep)
    rng.shuffle(chosen)
    (out / "sst2").mkdir(parents=True, exist_ok=True)
    (out / "sst2" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chosen), encoding="utf-8")
    (out / "sst2" / "validation.jsonl").write_bytes((source / "validation.jsonl").read_bytes())
    return {"negatives": len(negatives), "positives": keep}


def train(data: Path, out: Path, seed: int, setting: list[str], extra: list[str]) -> dict:
    """One run of the sst2-lstm recipe on the imbalanced data (its metrics.json; the best step is the one with the
    best validation macro F1)."""
    args = [sys.executable, "-m", "nlptune", "--quiet", "train", "recipe=sst2-lstm", f"seed={seed}",
            "task.metrics=[accuracy,macro_f1]", "task.main_metric=macro_f1", "trainer.keep_last=0", "trainer.report_to=[]", f"task.data_dir={data}",
            f"output_dir={out}", *setting, *extra]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads((out / "metrics.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--focal", action="store_true", help="also trainer.loss=focal (gamma 2)")
    parser.add_argument("--smoke", action="store_true", help="a few steps on a small slice: plumbing only")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args(argv)
    print_machine()
    settings = {"none": ["trainer.class_weights=none"], "balanced": ["trainer.class_weights=balanced"]}
    if args.focal:
        settings["focal"] = ["trainer.loss=focal", "trainer.focal_gamma=2.0"]
    extra = SMOKE if args.smoke else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="nlptune-imbalance-") as tmp:
        for seed in args.seeds:
            data = Path(tmp) / f"data-{seed}"
            counts = build_imbalanced(args.data_dir / "sst2", data, seed)
            row = {"seed": seed, **counts}
            for name, setting in settings.items():
                summary = train(data, Path(tmp) / f"run-{seed}-{name}", seed, setting, extra)
                row[f"{name}_macro_f1"] = summary["best"]["macro_f1"]
                row[f"{name}_accuracy"] = summary["best"]["accuracy"]
            rows.append(row)
    mean = {"seed": "mean", **{k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k != "seed"}}
    columns = ["seed", "negatives", "positives", *[f"{n}_macro_f1" for n in settings], "none_accuracy",
               "balanced_accuracy"]
    print_table(rows + [mean], columns)
    gain = mean["balanced_macro_f1"] - mean["none_macro_f1"]
    print(f"balanced - none: {100 * gain:+.1f} macro F1 points (acceptance: >= +5)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "mean": mean, "smoke": args.smoke}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
