"""Measure recipes and write the result into their `expected:` section, in place.

    python benchmarks/measure_recipes.py                       # every recipe in recipes/ whose value is null
    python benchmarks/measure_recipes.py sst2-minilm cola-minilm
    python benchmarks/measure_recipes.py --all                 # re-measure every shipped recipe
    python benchmarks/measure_recipes.py --dry-run             # list what would run, train nothing
    python benchmarks/measure_recipes.py --deterministic-cost sst2-minilm   # trainer.deterministic on vs off

Each recipe is trained with `nlptune train recipe=...` in a child process (on CUDA when available: the
recipes say `trainer.device: auto`), reading the data from NLPTUNE_DATA_DIR (default ../shared/data).
Afterwards the recipe file is rewritten with `expected.value` (the run's best main metric), `hardware`,
`wall_time_s` (training time, as `nlptune freeze` records it) and the pins of the environment it ran in;
the config, name, description and tolerance are kept. A failed run leaves its recipe untouched.

`--deterministic-cost` trains a recipe four times (deterministic off, off, on, on) and prints the training
times side by side and whether the repeated runs' best metrics and best/ weights are identical.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("NLPTUNE_DATA_DIR", str(REPO.parent / "shared" / "data"))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def train(recipe: Path, output_dir: Path, overrides: list[str] = ()) -> dict:
    """Train ``recipe`` into ``output_dir`` in a child process; its metrics, manifest and wall time."""
    command = [sys.executable, "-m", "nlptune", "--quiet", "train", f"recipe={recipe}", f"output_dir={output_dir}",
               *overrides]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return {"metrics": json.loads((output_dir / "metrics.json").read_text()),
            "manifest": json.loads((output_dir / "manifest.json").read_text()), "wall_s": wall}


def measure(path: Path, runs_dir: Path) -> dict:
    """Train one recipe and rewrite its `expected:` (and pins) from the run."""
    from nlptune.recipes.format import build_recipe, load_recipe, write_recipe

    recipe = load_recipe(path)
    out = runs_dir / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    result = train(path, out)
    metric = recipe["expected"]["metric"]
    value = result["metrics"]["best"][metric]
    updated = build_recipe(recipe["config"], result["manifest"], name=recipe["recipe"]["name"],
                           description=recipe["recipe"].get("description") or "", metric=metric, value=value,
                           tolerance=recipe["expected"]["tolerance"],
                           wall_time_s=result["metrics"]["train_runtime_s"])
    updated["config"] = recipe["config"]  # exactly as shipped (e.g. packaged: model sources stay symbolic)
    note = recipe["expected"].get("note")
    if note and not note.startswith("not measured yet"):  # e.g. what was tried for a target out of reach
        updated["expected"]["note"] = note
    write_recipe(path, updated)
    return {"recipe": path.stem, metric: value, "hardware": updated["expected"]["hardware"],
            "train_s": result["metrics"]["train_runtime_s"], "wall_s": round(result["wall_s"], 1), "run_dir": str(out)}


def _weights_sha(run_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((run_dir / "best").glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def deterministic_cost(path: Path, runs_dir: Path) -> None:
    """Train ``path`` with trainer.deterministic false twice and true twice; print times and identity."""
    rows = []
    for flag in ("false", "false", "true", "true"):
        out = runs_dir / f"{path.stem}-det-{flag}-{len(rows)}"
        result = train(path, out, [f"trainer.deterministic={flag}"])
        rows.append((flag, result["metrics"]["train_runtime_s"], json.dumps(result["metrics"]["best"], sort_keys=True),
                     _weights_sha(out), result["manifest"]["environment"]["devices"]))
    print(f"{'deterministic':>13} {'train s':>9}  weights sha  best")
    for flag, seconds, best, sha, _ in rows:
        print(f"{flag:>13} {seconds:9.1f}  {sha}  {best}")
    for flag in ("false", "true"):
        pair = [r for r in rows if r[0] == flag]
        same = pair[0][2] == pair[1][2] and pair[0][3] == pair[1][3]
        print(f"deterministic={flag}: repeated runs identical: {same}")
    off = sum(r[1] for r in rows if r[0] == "false") / 2
    on = sum(r[1] for r in rows if r[0] == "true") / 2
    print(f"speed cost of deterministic=true on {rows[0][4]}: {100 * (on - off) / off:+.1f}% training time")


def main() -> int:
    from nlptune.recipes.format import is_measured, load_recipe, resolve_recipe, shipped_recipes

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipes", nargs="*", help="names or paths (default: every unmeasured shipped recipe)")
    parser.add_argument("--all", action="store_true", help="every shipped recipe, measured or not")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--runs-dir", default=str(REPO / "runs" / "measure"))
    parser.add_argument("--deterministic-cost", metavar="RECIPE")
    args = parser.parse_args()
    runs_dir = Path(args.runs_dir)
    if args.deterministic_cost:
        deterministic_cost(resolve_recipe(args.deterministic_cost), runs_dir)
        return 0
    paths = [resolve_recipe(r) for r in args.recipes] or \
        [p for p in shipped_recipes() if args.all or not is_measured(load_recipe(p))]
    print(f"{len(paths)} recipe(s): {', '.join(p.stem for p in paths)}")
    failed = 0
    for path in paths:
        if args.dry_run:
            continue
        try:
            print(json.dumps(measure(path, runs_dir)), flush=True)
        except Exception as err:  # one failure must not cost the measurements of the others
            failed += 1
            print(f"FAILED {path.stem}: {err}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
