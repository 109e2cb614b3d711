"""`nlptune freeze RUN_DIR my.yaml`: a finished run becomes a recipe (config, pins, expected result)."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    parser = sub.add_parser("freeze", help="turn a finished run into a recipe file")
    parser.add_argument("run_dir", help="a finished run directory that `nlptune train` wrote (or a sweep's trial)")
    parser.add_argument("dest", help="the recipe file to write (e.g. my.yaml)")
    parser.add_argument("--name", help="recipe name (default: the file name without .yaml)")
    parser.add_argument("--description", default="", help="what the recipe is for")
    parser.add_argument("--tolerance", type=float, help="allowed |reproduced - expected| on the main metric "
                        "(default 0.02)")
    parser.add_argument("--portable", action="store_true",
                        help="write task.data_dir as null: the recipe then reads $NLPTUNE_DATA_DIR/<task>/ (or the "
                             "hub); the data pins still check that the files are the same")
    parser.add_argument("--force", action="store_true", help="overwrite dest")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import math
    from pathlib import Path

    from nlptune.commands.recipes import check_destination
    from nlptune.inference.run_reading import check_run
    from nlptune.config.errors import NlptuneError
    from nlptune.recipes.format import DEFAULT_TOLERANCE, recipe_from_run, write_recipe
    from nlptune.train.rundir import run_holding

    check_run(args.run_dir, finished=False)  # recipe_from_run then requires metrics.json
    dest = Path(args.dest)
    if dest.is_dir():  # the example given is a path freeze accepts: not inside a run or a saved model
        example = Path("my.yaml") if run_holding(dest) else dest / "my.yaml"
        raise NlptuneError(f"{dest} is a folder; give the recipe file to write, e.g. {example}")
    check_destination(dest, args.force, "(the recipe to write)")
    if args.tolerance is not None and not 0 <= args.tolerance < math.inf:  # NaN fails both comparisons
        raise NlptuneError(f"--tolerance {args.tolerance} is not a finite number >= 0; give e.g. --tolerance 0.02")
    name = args.name or (dest.name[:-5] if dest.name.endswith(".yaml") else dest.name)
    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    recipe = recipe_from_run(args.run_dir, name=name, description=args.description, tolerance=tolerance)
    if args.portable:
        recipe["config"]["task"]["data_dir"] = None
    write_recipe(dest, recipe)
    expected = recipe["expected"]
    print(f"wrote {dest}: {expected['metric']} {expected['value']} ± {expected['tolerance']} "
          f"({expected['hardware']})\nrun it: nlptune train recipe={dest}   check it: nlptune reproduce {dest}")
    return 0
