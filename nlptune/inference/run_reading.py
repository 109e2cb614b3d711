"""Loading a RUN_DIR's best model for eval, predict and export.

The checks of a run directory live in `nlptune.train.run_reading` (training reads a distillation teacher's run
with them too); they are imported here for the commands that reach them through this module.
"""
from __future__ import annotations

from pathlib import Path

from nlptune.train.run_reading import (DAMAGED_HINT, TRAIN_HINT, check_records, check_run, check_weights,
                                       loading_best, read_json, run_folder)

__all__ = ["DAMAGED_HINT", "TRAIN_HINT", "check_records", "check_run", "check_weights", "load_run", "loading_best",
           "read_json", "run_folder"]


def load_run(run_dir: str | Path):
    """The checked run's `LoadedRun` (best model, tokenizer, task), every failure one message."""
    path = check_run(run_dir, finished=True)  # before importing torch: a wrong path fails at once
    from nlptune.inference.predict import LoadedRun
    from nlptune.models.remote_code import check_remote_code

    check_remote_code(str(path / "best"), config_required=False)  # a best/ edited to carry custom code

    with loading_best(path):
        return LoadedRun(path)
