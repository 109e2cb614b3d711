"""Loading a RUN_DIR's best model for eval, predict and export (a saved model folder too).

The checks of a run directory live in `nlptune.train.run_reading` (training reads a distillation teacher's run
with them too); they are imported here for the commands that reach them through this module.
"""
from __future__ import annotations

import os
from pathlib import Path

from nlptune.config.errors import NlptuneError
from nlptune.data.errors import DataError
from nlptune.data.sources import source_kind, split_files, task_folder
from nlptune.train.run_reading import (DAMAGED_HINT, TRAIN_HINT, as_given, check_best, check_records, check_run,
                                       check_weights, is_saved_model, loading_best, read_json, run_folder,
                                       run_it_came_from)

__all__ = ["DAMAGED_HINT", "TRAIN_HINT", "as_given", "check_best", "check_records", "check_run", "check_weights",
           "check_split_file", "is_saved_model", "load_run", "loading_best", "read_json", "recorded_sha256",
           "refuse_split_of_saved_model", "run_folder", "warn_if_data_changed"]


def load_run(run_dir: str | Path):
    """The checked `LoadedRun` of RUN_DIR, every failure one message: a run directory (its best model, used with
    the run's config), a run's best/ (read as its run: the same settings its evaluation used), or a saved model
    folder on its own (an `export --format hf` copy, a copy of best/: what its nlptune_task.json records)."""
    path = as_given(run_dir)
    if is_saved_model(path):
        check_best(path)  # before importing torch: a damaged folder fails at once
        best = path
    else:
        path = check_run(path, finished=True)
        best = path / "best"
    from nlptune.inference.predict import LoadedRun
    from nlptune.models.remote_code import check_remote_code

    check_remote_code(str(best), config_required=False)  # a saved model edited to carry custom code

    with loading_best(best):
        return LoadedRun(path)


def refuse_split_of_saved_model(path: Path, split: str) -> None:
    """Refuse scoring a task split of a saved model folder on its own (`is_saved_model`): it holds no task data."""
    if is_saved_model(path):
        raise NlptuneError(f"{path} is a saved model folder, which holds no task data: there is no {split} split "
                           f"to score -> score a labelled file: nlptune eval {path} --file PATH (or "
                           f"{run_it_came_from(path)})")


def _path_key(task, split: str) -> tuple[str, str]:
    """The config key (and its value) that places ``split``'s file of a local-files task."""
    key = f"{split}_file" if source_kind(task) == "files" else "data_dir"
    return f"task.{key}", str(getattr(task, key))


def _relative_note(value: str) -> str:
    """Why a relative path recorded by a run may name another file now ("" for an absolute one)."""
    if os.path.isabs(os.path.expanduser(value)):  # as the loader reads it
        return ""
    return (f"; {value} is a relative path: the run (made before nlptune recorded absolute data paths) read it "
            f"from the folder `nlptune train` ran in, here it is read from the current folder {os.getcwd()}")


def recorded_sha256(run_dir: Path, split: str) -> str | None:
    """The sha256 of ``split``'s data that the run's manifest.json records (None: not recorded)."""
    try:
        manifest = read_json(Path(run_dir) / "manifest.json")
    except (OSError, ValueError):  # no manifest (check_run refuses a damaged one): nothing to compare with
        return None
    recorded = ((manifest.get("data") or {}).get("sha256") or {}).get(split)
    return recorded if isinstance(recorded, str) else None


def check_split_file(run_dir: Path, task, split: str) -> None:
    """Refuse, before anything is read, a split of the run's task whose local file is gone, with a fix that
    `nlptune eval` (which takes no overrides) can act on: restore the file, run from the folder a relative path is
    read from, or score a copy with --file. Other problems with the file are the loader's to report."""
    if source_kind(task) not in ("files", "data_dir"):
        return  # generated or hub data: nothing recorded as a path
    path = split_files(task)[split]
    if path is not None and os.path.lexists(path):
        return
    key, value = _path_key(task, split)
    shown = path if path is not None else task_folder(task)
    recorded = recorded_sha256(run_dir, split)
    note = _relative_note(value)
    fix = ("run nlptune eval from the folder the run was made in, " if note else
           f"restore the file there{f' (the run read sha256 {recorded})' if recorded else ''}, ")
    raise DataError(f"the run's {split} data was not found ({key}={value} in {Path(run_dir) / 'config.yaml'}){note}",
                    file=str(shown), split=split,
                    fix=f"{fix}or score the file where it is now: nlptune eval {run_dir} --file PATH")


def warn_if_data_changed(run_dir: Path, task, raw, split: str) -> None:
    """Warn when the local ``split`` file just read (``raw``, a `RawSplit`) is not the one the run was trained and
    evaluated on: its sha256 differs from the one the run's manifest.json records. Hub and generated data are not
    compared (their identities are the loader's, and are checked where a recipe pins them)."""
    from nlptune.utils.console import warn

    recorded = recorded_sha256(run_dir, split)
    if source_kind(task) not in ("files", "data_dir") or recorded is None or recorded == raw.sha256:
        return
    warn(f"the {split} file {raw.source} is not the one the run {run_dir} was trained with: its sha256 is "
         f"{raw.sha256}, the run's manifest.json records {recorded}{_relative_note(_path_key(task, split)[1])}; "
         "these scores are of other data than the run's own evaluation")
