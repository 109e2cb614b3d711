"""`nlptune distill TEACHER_RUN key=value ...`: train a model on a finished run's outputs (knowledge distillation).

It is `nlptune train distill.teacher=TEACHER_RUN key=value ...`, except that a command line naming no task (no
``task=``, no ``recipe=``) trains on the teacher's own task: its whole task section (data files, fields, labels,
max_train_samples), with any ``task.*`` override applied on top. The teacher may be a saved model folder on its own
(a copy of a run's best/, an `export --format hf`); it holds no task data, so the command line names the task.
"""
from __future__ import annotations

import argparse

DESCRIPTION = """Train a model on the outputs of a finished run's best model (the teacher) as well as on the gold
labels (knowledge distillation). The teacher labels every training text once; its outputs are cached, so later runs
with the same teacher and data (a resume, sweep trials) never run it again.

Without task= (or recipe=) the student trains on the teacher's task, task.* overrides applied on top; the teacher
must have the student's problem kind and label names. The teacher may be a saved model folder on its own (a copy of a
run's best/, an hf export): name the task then (task=...), the folder holds no data. Keys: distill.alpha (the mix of
gold and teacher loss), distill.loss (mse | kl), distill.temperature, distill.augment_copies (transfer set: noised
copies of every training text labelled by the teacher only), distill.mask_prob, distill.replace_prob,
distill.ngram_prob."""

EXAMPLES = """examples:
  nlptune train recipe=sst2-minilm output_dir=runs/teacher          the teacher (any finished run)
  nlptune distill runs/teacher model=lstm                           a BiLSTM on the teacher's task (sst2)
  nlptune distill runs/teacher model=lstm distill.augment_copies=10 distill.alpha=0.9
  nlptune tune distill.teacher=runs/teacher task=sst2 model=lstm tune.space.distill.alpha='uniform(0,1)'
"""


def add_parser(sub) -> None:
    parser = sub.add_parser("distill", help="train a model on a finished run's outputs (knowledge distillation)",
                            description=DESCRIPTION, epilog=EXAMPLES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("teacher", help="the teacher: a run directory that `nlptune train` finished, or a saved "
                        "model folder (a copy of its best/, an hf export)")
    parser.add_argument("overrides", nargs="*", help="as for `nlptune train`, e.g. model=lstm distill.alpha=0.7")
    parser.add_argument("--cfg", choices=["job"], help="print the student's config and exit")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="let a pretrained student run the code in its hub repository (never from a config file)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from nlptune.commands.train import train_config

    config = distill_config(args.teacher, args.overrides)
    if args.cfg == "job":
        from nlptune.recipes.format import dump_config

        print(dump_config(config.plain), end="")
        return 0
    return train_config(config, args.overrides, trust_remote_code=args.trust_remote_code,
                        command=("distill", args.teacher))


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def distill_config(teacher: str, overrides: list[str]):
    """The student's `RunConfig`: the overrides with ``distill.teacher`` = the teacher's absolute path (a run's
    best/ read as its run), on the teacher's task unless they name one."""
    from pathlib import Path

    from nlptune.config.errors import ConfigError, ConfigIssue
    from nlptune.recipes.run import has_recipe, load_run_config
    from nlptune.train.run_reading import as_given, is_saved_model, run_folder

    if any(_key(o) == "distill.teacher" for o in overrides):
        raise ConfigError([ConfigIssue("distill.teacher", "is given twice: as TEACHER_RUN and as an override",
                                       "give the teacher once, as the first argument of `nlptune distill`")])
    folder = as_given(teacher)
    if not is_saved_model(folder):
        folder = run_folder(folder)  # a missing or non-run folder: one message before anything composes
    folder = folder.absolute()
    items = [f"distill.teacher={folder}", *overrides]
    if has_recipe(items) or any(_key(o) == "task" for o in items):
        return load_run_config(items)
    return _on_teachers_task(Path(folder), items)


def _on_teachers_task(folder, items: list[str]):
    """Compose conf/ with the overrides, the teacher's task section in place of the task group's, then the
    ``task.*`` overrides on it."""
    from nlptune.config.compose import apply_overrides, compose, to_plain
    from nlptune.config.errors import NlptuneError
    from nlptune.config.schema import build_run_config
    from nlptune.config.sources import resolve_plain
    from nlptune.recipes.run import split_recipe_overrides
    from nlptune.train.run_reading import is_saved_model, read_run_config, run_it_came_from

    _, _, rest = split_recipe_overrides(items)  # (strict_pins without a recipe is refused there)
    if is_saved_model(folder):
        raise NlptuneError(f"{folder} is a saved model folder: it holds the teacher's model, not the data it was "
                           f"trained on, so the student's task must be named -> nlptune distill {folder} "
                           f"task=NAME ... (the teacher's task was {_saved_task_name(folder)!r}), or "
                           f"{run_it_came_from(folder)} to train on its task")
    task = read_run_config(folder).get("task") if (folder / "config.yaml").is_file() else None
    if not isinstance(task, dict):
        raise NlptuneError(f"{folder / 'config.yaml'} holds no task section to train the student on; name the task: "
                           f"nlptune distill {folder} task=NAME ...")
    plain = to_plain(compose([o for o in rest if not _key(o).startswith("task.")]))
    plain["task"] = task
    plain = apply_overrides(plain, [o for o in rest if _key(o).startswith("task.")])
    return build_run_config(resolve_plain(plain))


def _saved_task_name(folder) -> str | None:
    """The task name a saved model folder's nlptune_task.json records (None when unreadable: the teacher check
    reports the file then)."""
    from nlptune.config.errors import NlptuneError
    from nlptune.train.run_reading import read_json

    try:
        return read_json(folder / "nlptune_task.json").get("task")
    except (NlptuneError, OSError):
        return None
