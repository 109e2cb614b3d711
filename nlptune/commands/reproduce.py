"""`nlptune reproduce my.yaml`: train a recipe and compare its result with the recipe's `expected:`.

Exit 0 when |result - expected.value| <= expected.tolerance, 1 outside it (2 for a user error, e.g. a recipe
whose expected value was never measured). The comparison is written to <run dir>/reproduce.json.
"""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    parser = sub.add_parser("reproduce", help="train a recipe and check its result against the one it expects")
    parser.add_argument("recipe", help="a shipped recipe's name or a path")
    parser.add_argument("overrides", nargs="*", help="e.g. output_dir=runs/check strict_pins=true "
                        "task.data_dir=/data")
    parser.set_defaults(handler=handle)


def compare(expected: dict, best: dict | None) -> dict:
    """The check of a finished run's ``best`` metrics against a recipe's ``expected`` section."""
    metric, value, tolerance = expected["metric"], expected["value"], expected["tolerance"]
    got = None if not best else best.get(metric)
    diff = None if got is None else got - value
    return {"metric": metric, "expected": value, "tolerance": tolerance, "got": got, "difference": diff,
            "within_tolerance": diff is not None and abs(diff) <= tolerance + 1e-12}


def other_data(drift: list[dict]) -> str:
    """The verdict's note when the data read is not the data the recipe pins (a changed or other file): the result
    is then not a reproduction of the recipe's, whatever it scores ("" when the data is the pinned data)."""
    changed = [d["pin"] for d in drift if d["pin"].startswith("pins.data.")]
    if not changed:
        return ""
    verb = "differs" if len(changed) == 1 else "differ"
    return (f"; BUT on other data than the recipe's ({', '.join(changed)} {verb}: see the warning above; "
            "strict_pins=true refuses to run then)")


# keys an override may change without changing what the recipe trains: where and how it runs and reports (the
# device and threads change the last digits only), and the teacher's path (its identity is pinned: see below)
WHERE_NOT_WHAT = ("trainer.device", "trainer.threads", "trainer.num_workers", "trainer.report_to",
                  "trainer.log_every", "trainer.keep_last", "trainer.save_every", "trainer.dist_timeout_s",
                  "trainer.measure_cost", "trainer.eval_batch_size", "distill.teacher")
TASK_RESULT_KEYS = ("max_train_samples", "max_eval_samples", "max_length")  # (the data itself: its pins)


def overridden(path, config) -> dict[str, tuple]:
    """What the command line's overrides change in what the recipe trains: ``{key: (recipe's, now)}`` over its
    hyperparameters and the task keys that decide the result."""
    from nlptune.recipes.run import run_config_from_recipe
    from nlptune.train.report import hyperparameters

    def deciding(run) -> dict:
        task = run.plain.get("task") or {}
        keys = {f"task.{key}": task.get(key) for key in TASK_RESULT_KEYS}
        return {k: v for k, v in {**hyperparameters(run), **keys}.items() if k not in WHERE_NOT_WHAT}

    # the recipe alone, read again: its drift was warned about when ``config`` was read
    recipe, now = deciding(run_config_from_recipe(str(path), warn_drift=False)), deciding(config)
    return {key: (recipe.get(key), now.get(key)) for key in dict.fromkeys([*recipe, *now])
            if recipe.get(key) != now.get(key)}


def _changes(changed: dict[str, tuple]) -> str:
    return ", ".join(f"{key} {before!r} -> {after!r}" for key, (before, after) in changed.items())


def refuse_other_teacher(path, recipe: dict, config) -> None:
    """Refuse to reproduce a distilled recipe without the teacher it pins: a student learns from its teacher's
    outputs, so another teacher (or none) cannot reproduce it. The message says which of the three it is."""
    from nlptune.config.errors import NlptuneError

    changed = [d for d in config.provenance["recipe"]["drift"] if d["pin"] == "pins.teacher.sha256"]
    if not changed:
        return
    pinned = recipe["pins"]["teacher"]
    teacher = config.distill.teacher
    if teacher is None:
        now = "distill.teacher is null here (an override turned distillation off)"
        fix = f"drop the distill.teacher override, or use `nlptune train recipe={path} ...` to train without it"
    else:
        now = (f"the teacher {teacher} " + (f"has sha256 {changed[0]['found']}" if changed[0]["found"]
                                            else "is not a finished run (no best/ model)"))
        fix = ("restore that teacher run, or pass distill.teacher=RUN_DIR naming a copy of it; or train and freeze "
               "a new recipe")
    raise NlptuneError(f"{path} was distilled from a teacher whose best/ model had sha256 {pinned.get('sha256')} "
                       f"(the run {pinned.get('run_dir')}); {now} -> {fix}")


def handle(args: argparse.Namespace) -> int:
    from nlptune.recipes.run import load_run_config
    from nlptune.config.errors import NlptuneError
    from nlptune.recipes.format import is_measured, load_recipe, resolve_recipe
    from nlptune.recipes.run import RECIPE_KEY

    path = resolve_recipe(args.recipe)
    recipe = load_recipe(path)
    if not is_measured(recipe):
        raise NlptuneError(f"{path} has no measured expected value ({recipe['expected'].get('note') or 'value: null'})"
                           f"; train it with `nlptune train recipe={path}` or measure it first")
    if any(item.startswith(RECIPE_KEY + "=") for item in args.overrides):
        raise NlptuneError("give the recipe once, as the first argument of `nlptune reproduce`")
    config = load_run_config([f"{RECIPE_KEY}={path}", *args.overrides])
    refuse_other_teacher(path, recipe, config)
    from nlptune.train.loop import run, shutdown
    from nlptune.train.rundir import write_json
    from nlptune.utils.console import process_rank, warn

    changed = overridden(path, config) if args.overrides else {}
    if changed:
        warn(f"the overrides change what {path} trains ({_changes(changed)}): its expected figure was measured "
             "without them, so this run checks another config -> drop them to reproduce the recipe")

    result = run(config)
    check = compare(recipe["expected"], result.best)
    check.update(recipe=str(path), run_dir=str(result.output_dir), train_runtime_s=result.summary.get(
        "train_runtime_s"), expected_wall_time_s=recipe["expected"].get("wall_time_s"),
        drift=config.provenance["recipe"]["drift"], overridden={k: list(v) for k, v in changed.items()})
    shutdown()
    if process_rank() == 0 and (result.output_dir / "metrics.json").is_file():
        write_json(result.output_dir / "reproduce.json", check)
    verdict = "REPRODUCED" if check["within_tolerance"] else "NOT REPRODUCED"
    got = "none" if check["got"] is None else f"{check['got']:.6f}"
    diff = "" if check["difference"] is None else f" (difference {check['difference']:+.6f})"
    if process_rank() == 0:  # the verdict is the command's result: printed even with --quiet
        print(f"{verdict}: {check['metric']} {got}, expected {check['expected']:.6f} ± {check['tolerance']:g}{diff}; "
              f"run dir {result.output_dir}{other_data(check['drift'])}"
              + (f"; BUT with overrides that change the recipe ({', '.join(changed)})" if changed else ""),
              flush=True)
    return 0 if check["within_tolerance"] else 1
