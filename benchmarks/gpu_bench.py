"""GPU throughput and model FLOPs utilisation: nlptune vs the Transformers Trainer (dynamic padding +
length grouping), fp32 and bf16, for an all-MiniLM-L6-v2-shaped model and a BERT-base-sized model, both
built from a config (random weights: throughput depends on the shapes, not the values).

Run through benchmarks/gpu.sh on a machine with a GPU. MFU counts the FLOPs the model needs for the real
(non-padding) tokens: 6 * N_non_embedding + 12 * layers * hidden * mean_length per token, over the GPU's
dense peak (H100/H200: 989 TFLOP/s bf16, 67 TFLOP/s fp32 without TF32).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import DATA_DIR, print_machine, print_table, run_child

SHAPES = {"minilm-l6": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
          "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)}
PEAK_TFLOPS = {"bf16": 989.0, "fp32": 67.0}  # H100 SXM / H200 dense peaks


def make_model(shape: str, tokenizer_dir: str, out: Path) -> dict:
    """Save a randomly initialised BertForSequenceClassification of ``shape`` with the given tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=len(tokenizer), num_labels=2, **SHAPES[shape])
    model = BertForSequenceClassification(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    embedding = sum(p.numel() for p in model.bert.embeddings.parameters())
    return {"params": sum(p.numel() for p in model.parameters()), "non_embedding": model.num_parameters() - embedding,
            "layers": config.num_hidden_layers, "hidden": config.hidden_size}


def mean_tokens(tokenizer_dir: str, limit: int = 0) -> float:
    """Mean real (non-padding) token count of an sst2 training example (of the first ``limit`` when set), as both
    contenders feed it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    rows = [json.loads(x)["sentence"] for x in (DATA_DIR / "sst2" / "train.jsonl").read_text().splitlines() if x]
    rows = rows[:limit] if limit else rows
    lengths = [len(ids) for ids in tokenizer(rows, truncation=True, max_length=128)["input_ids"]]
    return sum(lengths) / len(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer-dir", required=True, help="a BERT uncased tokenizer (e.g. MiniLM's)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--work-dir", default="/tmp/nlptune-gpu")
    parser.add_argument("--shapes", default="minilm-l6,bert-base")
    parser.add_argument("--precisions", default="bf16,fp32")
    parser.add_argument("--json-out")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N rows of each split (smoke test)")
    args = parser.parse_args()
    print_machine()
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    tokens = mean_tokens(args.tokenizer_dir, args.limit)
    rows = []
    for shape in args.shapes.split(","):
        model_dir = Path(args.work_dir) / shape
        info = make_model(shape, args.tokenizer_dir, model_dir)
        flops_per_token = 6 * info["non_embedding"] + 12 * info["layers"] * info["hidden"] * tokens
        for precision in args.precisions.split(","):
            for contender in ("nlptune", "trainer_grouped"):
                child = ["--task", "sst2", "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                         "--model-dir", str(model_dir), "--precision", precision, "--threads", str(args.threads),
                         "--output-dir", f"{args.work_dir}/runs", "--child", contender]
                child += ["--limit", str(args.limit)] if args.limit else []
                result = run_child(str(Path(__file__).with_name("vs_trainer.py")), child, args.threads)
                tflops = result["samples_per_s"] * tokens * flops_per_token / 1e12
                rows.append({"model": shape, "precision": precision, "contender": contender,
                             "samples_per_s": result["samples_per_s"], "tokens_per_s": result["samples_per_s"] * tokens,
                             "model_tflops": tflops, "mfu": tflops / PEAK_TFLOPS[precision],
                             "accuracy": result["metric"]})
                print(f"  {shape} {precision} {contender}: {result['samples_per_s']:.0f} samples/s", file=sys.stderr)
    print(f"device: {device}; sst2, {args.steps} steps, batch {args.batch_size}, mean {tokens:.1f} real tokens/example")
    print_table(rows, ["model", "precision", "contender", "samples_per_s", "tokens_per_s", "model_tflops", "mfu",
                       "accuracy"])
    summary = {"benchmark": "gpu", "device": device, "steps": args.steps, "results": rows}
    print(json.dumps(summary))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
