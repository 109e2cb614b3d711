"""Start-up cost of the CLI: wall time of `nlptune --help` and `nlptune train --cfg job`, and which heavy
modules each imports (from `python -X importtime`).

  python benchmarks/startup.py --repeats 5
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import REPO, print_machine, print_table

HEAVY = ("torch", "transformers", "datasets", "optuna", "accelerate", "hydra", "omegaconf", "sklearn", "scipy",
         "pandas", "pyarrow", "matplotlib")
COMMANDS = {"nlptune --help": ["--help"], "nlptune train --cfg job": ["train", "--cfg", "job"]}


def _wall(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nlptune", *argv], capture_output=True, check=True, cwd=REPO)
        times.append(time.perf_counter() - started)
    return min(times)  # the least disturbed run: start-up cost, not machine noise


def _heavy_imports(argv: list[str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "nlptune", *argv], capture_output=True,
                          text=True, cwd=REPO, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    top = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip().split(".")[0]
            if name in HEAVY:
                top.add(name)
    return sorted(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print_machine()
    rows = [{"command": name, "wall_s": _wall(argv, args.repeats), "heavy_imports": ",".join(_heavy_imports(argv))
             or "none"} for name, argv in COMMANDS.items()]
    print_table(rows, ["command", "wall_s", "heavy_imports"])
    print(json.dumps({"benchmark": "startup", "results": rows}))


if __name__ == "__main__":
    main()
