"""nlptune `model=lstm` vs a minimal hand-written PyTorch BiLSTM loop on sst2, side by side in one run.

Both: the same data (../shared/data/sst2), vocabulary rule (lowercased words seen at least twice),
embedding 300, BiLSTM 256 per direction, max pooling, dropout 0.3, batch 32 (--batch-size), Adam-family optimizer at
lr 2e-3, the same number of epochs and threads. Each runs in its own child process.

  python benchmarks/vs_plain_loop.py --epochs 3
  python benchmarks/vs_plain_loop.py --epochs 3 --batch-size 64 --seeds 42,43,44

With several --seeds, each contender runs once per seed (alternating) and the table shows the mean samples/s and
the mean ± std of the final accuracy over the seeds.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
from collections import Counter

from _common import DATA_DIR, emit, peak_rss_mb, print_machine, print_table, run_child, strip_option


def child_nlptune(args) -> dict:
    from nlptune.config.compose import load_run_config
    from nlptune.train.loop import run

    shutil.rmtree(f"{args.output_dir}/nlptune", ignore_errors=True)  # a fresh run, not a refused resume
    overrides = ["task=sst2", "model=lstm", f"task.data_dir={DATA_DIR}", f"trainer.max_epochs={args.epochs}",
                 f"seed={args.seed}", f"trainer.batch_size={args.batch_size}", f"output_dir={args.output_dir}/nlptune",
                 "trainer.log_every=1000000"]
    if args.limit:
        overrides += [f"task.max_train_samples={args.limit}", f"task.max_eval_samples={args.limit}"]
    result = run(load_run_config(overrides))
    s = result.summary
    final = json.loads((result.output_dir / "metrics.jsonl").read_text().splitlines()[-1])
    precision = json.loads((result.output_dir / "manifest.json").read_text())["mixed_precision"]
    return {"name": "nlptune", "precision": "fp32" if precision == "no" else precision,
            "samples_per_s": s["train_samples_per_second"], "train_wall_s": s["train_runtime_s"] - s["eval_runtime_s"], "final_accuracy": final["eval_accuracy"],
            "best_accuracy": s["best"]["accuracy"]}


def _read(split: str, limit: int) -> tuple[list[list[str]], list[int]]:
    rows = [json.loads(line) for line in (DATA_DIR / "sst2" / f"{split}.jsonl").read_text().splitlines() if line]
    rows = rows[:limit] if limit else rows
    return [r["sentence"].lower().split() for r in rows], [int(r["label"]) for r in rows]


def child_plain(args) -> dict:
    """The peer: what a user writes by hand in ~50 lines."""
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    train_x, train_y = _read("train", args.limit)
    val_x, val_y = _read("validation", args.limit)
    counts = Counter(w for sent in train_x for w in sent)
    vocab = {w: i + 2 for i, w in enumerate(w for w, c in counts.items() if c >= 2)}  # 0 pad, 1 unk

    def batchify(sents, labels, order):
        for i in range(0, len(order), args.batch_size):
            idx = order[i: i + args.batch_size]
            ids = [torch.tensor([vocab.get(w, 1) for w in sents[j]] or [1]) for j in idx]
            lengths = torch.tensor([len(t) for t in ids])
            yield nn.utils.rnn.pad_sequence(ids, batch_first=True), lengths, torch.tensor([labels[j] for j in idx])

    class BiLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(len(vocab) + 2, 300, padding_idx=0)
            self.lstm = nn.LSTM(300, 256, batch_first=True, bidirectional=True)
            self.drop = nn.Dropout(0.3)
            self.out = nn.Linear(512, 2)

        def forward(self, ids, lengths):
            packed = pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False)
            hidden, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, padding_value=-1e4)
            return self.out(self.drop(hidden.max(dim=1).values))

    model = BiLSTM()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    train_time, samples = 0.0, 0
    for _ in range(args.epochs):
        order = list(range(len(train_x)))
        random.shuffle(order)
        model.train()
        started = time.perf_counter()
        for ids, lengths, labels in batchify(train_x, train_y, order):
            loss = nn.functional.cross_entropy(model(ids, lengths), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            samples += len(labels)
        train_time += time.perf_counter() - started
    model.eval()
    correct = 0
    with torch.no_grad():
        for ids, lengths, labels in batchify(val_x, val_y, list(range(len(val_x)))):
            correct += (model(ids, lengths).argmax(-1) == labels).sum().item()
    accuracy = correct / len(val_y)
    return {"name": "plain_loop", "precision": "fp32", "samples_per_s": samples / train_time,
            "train_wall_s": train_time, "final_accuracy": accuracy, "best_accuracy": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42, help=argparse.SUPPRESS)  # a child's seed (see --seeds)
    parser.add_argument("--seeds", default="42", help="comma-separated; both contenders run each seed")
    parser.add_argument("--batch-size", type=int, default=32, help="both contenders' batch size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N rows of each split (smoke test)")
    parser.add_argument("--output-dir", default="/tmp/nlptune-bench-plain")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.child:  # the parent names the machine once; children print only their RESULT
        print_machine()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        result = child_nlptune(args) if args.child == "nlptune" else child_plain(args)
        emit({**result, "peak_rss_mb": peak_rss_mb()})
        return
    rows, seeds = [], [int(seed) for seed in args.seeds.split(",")]
    forwarded = strip_option(strip_option(sys.argv[1:], "--child"), "--seeds")
    for seed in seeds:
        for _ in range(args.repeats):  # alternate the contenders so machine noise hits both alike
            for name in ("nlptune", "plain_loop"):
                rows.append({**run_child(__file__, forwarded + ["--child", name, "--seed", str(seed)], args.threads),
                             "seed": seed})
    table = [_summary([r for r in rows if r["name"] == name]) for name in ("nlptune", "plain_loop")]
    ratio = table[0]["samples_per_s"] / table[1]["samples_per_s"]
    print(f"sst2, epochs={args.epochs}, batch={args.batch_size}, threads={args.threads}, seeds={args.seeds}, "
          f"repeats={args.repeats} (per seed the fastest repeat; means over seeds)")
    print_table(table, ["name", "precision", "samples_per_s", "train_wall_s", "final_accuracy", "accuracy_std",
                        "best_accuracy", "peak_rss_mb"])
    print(f"nlptune / plain loop samples/s: {ratio:.2f}x")
    print(json.dumps({"benchmark": "vs_plain_loop", "ratio": ratio, "results": table, "runs": rows}))


def _summary(runs: list[dict]) -> dict:
    """One contender over its seeds: the fastest repeat of each seed, then means (accuracy: mean and std)."""
    by_seed: dict[int, dict] = {}
    for run in runs:
        if run["seed"] not in by_seed or run["samples_per_s"] > by_seed[run["seed"]]["samples_per_s"]:
            by_seed[run["seed"]] = run
    best = [r["best_accuracy"] for r in by_seed.values() if r["best_accuracy"] is not None]
    accuracy = [r["final_accuracy"] for r in by_seed.values()]
    return {"name": runs[0]["name"], "precision": runs[0]["precision"], "seeds": len(by_seed),
            "samples_per_s": statistics.mean(r["samples_per_s"] for r in by_seed.values()),
            "train_wall_s": statistics.mean(r["train_wall_s"] for r in by_seed.values()),
            "final_accuracy": statistics.mean(accuracy),
            "accuracy_std": statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0,
            "best_accuracy": statistics.mean(best) if best else None,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in by_seed.values())}


if __name__ == "__main__":
    main()
