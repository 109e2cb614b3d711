"""`nlptune recipes list|show|copy|validate`: the shipped recipes and checks of any recipe file."""
from __future__ import annotations

import argparse

EPILOG = """examples:
  nlptune recipes list                      name, task, model, metric, expected value, typical runtime
  nlptune recipes show sst2-lstm            the recipe, annotated (conf/ defaults, installed versions, data)
  nlptune recipes copy sst2-lstm my.yaml    a local copy to edit
  nlptune recipes validate my.yaml          every problem at once, nothing trained (a folder: each recipe in it)
  nlptune train recipe=my.yaml trainer.max_epochs=2   train it (overrides apply on top)
"""


def add_parser(sub) -> None:
    parser = sub.add_parser("recipes", help="list, show, copy and validate recipes", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="the shipped recipes").set_defaults(handler=handle_list)
    show = actions.add_parser("show", help="a recipe file, annotated")
    show.add_argument("recipe", help="a shipped recipe's name or a path")
    show.set_defaults(handler=handle_show)
    copy = actions.add_parser("copy", help="copy a recipe to a file to edit")
    copy.add_argument("recipe", help="a shipped recipe's name or a path")
    copy.add_argument("dest", help="where to write the copy")
    copy.add_argument("--force", action="store_true", help="overwrite dest")
    copy.set_defaults(handler=handle_copy)
    validate = actions.add_parser("validate", help="check recipe files: every problem at once, nothing trained")
    validate.add_argument("recipes", nargs="+", help="shipped names, recipe files or folders of them")
    validate.add_argument("--strict-pins", action="store_true", help="pins that differ from this machine are errors")
    validate.set_defaults(handler=handle_validate)


def _runtime(expected: dict) -> str:
    seconds = expected.get("wall_time_s")
    if seconds is None:
        return "-"
    text = f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"
    hardware = (expected.get("hardware") or "").split(" (")[0]  # "cpu (x86_64, 1 threads)" -> "cpu"
    # a CPU time goes unmarked (the table's caption says so), which keeps the table within 80 columns
    return text if hardware in ("", "cpu") else f"{text} {hardware}"


def _model(config: dict) -> str:
    from nlptune.config.names import is_pretrained

    model = config.get("model") or {}
    if is_pretrained(model.get("name")):
        return str(model.get("name_or_path", "")).rstrip("/").split("/")[-1]  # e.g. all-MiniLM-L6-v2
    return str(model.get("name"))


def handle_list(args: argparse.Namespace) -> int:
    from rich import box
    from rich.table import Table

    from nlptune.config.errors import NlptuneError
    from nlptune.recipes.format import read_recipe, recipes_dir, shipped_recipes
    from nlptune.utils.console import console

    if console().quiet:  # --quiet: no table, but the list is the command's result: one name a line, for scripts
        for path in shipped_recipes():
            print(path.stem)
        return 0
    # no edge padding, collapsed padding, only the model column folds (never below 8 characters, where it would
    # fold a character a line): fits 80 columns, no name cut
    table = Table(title=f"Recipes in {recipes_dir()}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True, caption="runtime: on a CPU unless another device is named",
                  caption_justify="left")
    for column in ("name", "task", "model", "metric", "expected", "runtime"):
        table.add_column(column, justify="right" if column == "expected" else "left",
                         no_wrap=column != "model", overflow="fold", min_width=8 if column == "model" else None)
    for path in shipped_recipes():
        try:
            data = read_recipe(path)
            config, expected = data["config"], data["expected"]
            value = expected.get("value")
            shown = "unmeasured" if value is None else f"{value:.4f} ± {expected.get('tolerance', 0):.2g}"
            table.add_row(path.stem, str(config["task"]["name"]), _model(config), str(expected.get("metric")),
                          shown, _runtime(expected))
        except (NlptuneError, KeyError, TypeError, AttributeError):
            table.add_row(path.stem, "", "", "", "INVALID", f"see `nlptune recipes validate {path.stem}`")
    console().print(table, soft_wrap=True)
    if not shipped_recipes():
        console().print("no recipes found")
    return 0


def handle_show(args: argparse.Namespace) -> int:
    from nlptune.recipes.annotate import annotate
    from nlptune.recipes.format import resolve_recipe

    path = resolve_recipe(args.recipe)
    print(f"# {path}")
    print(annotate(path), end="")
    return 0


def check_destination(dest, force: bool, what: str) -> None:
    """Refuse ``dest`` as the recipe file a command writes when it is a link, lies among a run's own files or in
    a saved model folder (a recipe there would replace or mix with the run's config.yaml, metrics.json, best/),
    or exists without ``force``."""
    from nlptune.config.errors import NlptuneError
    from nlptune.train.rundir import refuse_run_contents
    from nlptune.utils.files import refuse_link

    refuse_link(dest, what)
    refuse_run_contents(dest.parent, f"(where {dest.name} would be written)",
                        f"write the recipe outside run directories and saved models, e.g. ./{dest.name}")
    if dest.exists() and not force:
        raise NlptuneError(f"{dest} exists; pass --force to overwrite it")


def handle_copy(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nlptune.config.errors import NlptuneError
    from nlptune.recipes.format import load_recipe, resolve_recipe
    from nlptune.utils.files import atomic_write_bytes, ensure_dir, refuse_link

    source = resolve_recipe(args.recipe)
    load_recipe(source)  # never hand out a copy of an invalid recipe
    dest = Path(args.dest)
    refuse_link(dest, "(the copy's destination)")
    if dest.is_dir():
        dest = dest / source.name
    if dest.exists() and dest.resolve() == source.resolve():
        raise NlptuneError(f"{dest} is the recipe itself; give another file to copy it to")
    check_destination(dest, args.force, "(the copy's destination)")
    ensure_dir(dest.parent)
    atomic_write_bytes(dest, source.read_bytes())  # --force replaces the file, never what a link points to
    print(f"copied {source} -> {dest}\nedit it, then: nlptune recipes validate {dest} && nlptune train recipe={dest}")
    return 0


def handle_validate(args: argparse.Namespace) -> int:
    import sys

    from nlptune.recipes import pins as pinning
    from nlptune.config.errors import NlptuneError
    from nlptune.recipes.format import is_measured, load_recipe, resolve_recipe
    from nlptune.recipes.run import run_config_from_recipe

    failed = 0
    for name in _with_folders_expanded(args.recipes):
        try:
            path = resolve_recipe(name)
            recipe = load_recipe(path)
            run = run_config_from_recipe(str(path), (), strict_pins=args.strict_pins, warn_drift=False)
        except NlptuneError as err:
            failed += 1
            print(f"INVALID {name}\n{err}", file=sys.stderr)
            continue
        drift = run.provenance["recipe"]["drift"]
        notes = [] if is_measured(recipe) else ["expected not measured yet"]
        notes += [f"{len(drift)} pin(s) differ from this machine"] if drift else []
        print(f"ok {path} ({recipe['recipe']['name']})" + (f": {'; '.join(notes)}" if notes else ""))
        if drift:
            print(pinning.describe_drift(drift))
    return 2 if failed else 0


def _with_folders_expanded(names: list[str]) -> list[str]:
    """``names`` with each folder replaced by the YAML files in it (sorted; none: the folder itself, refused as
    a recipe with its reason)."""
    from pathlib import Path

    expanded = []
    for name in names:
        folder = Path(name)
        found = sorted(str(p) for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()) \
            if folder.is_dir() else []
        expanded += found or [name]
    return expanded
