"""Experiment tracking through Accelerate's trackers: TensorBoard by default, MLflow and W&B when selected.

`trainer.report_to` names the trackers (`[tensorboard]` by default, `[]` for none). The run's Accelerator is
built with ``log_with`` (see `accelerator_kwargs`); `start` opens the trackers on rank 0 with the run's
hyperparameters and its parameter report; every record the run directory logs (train loss/lr, evaluation
metrics) is then sent to them as scalars; `Tracker.close` finishes them. Ranks other than 0 log nothing.

TensorBoard writes to ``<run dir>/tensorboard/``; MLflow uses its own tracking URI (``MLFLOW_TRACKING_URI``,
default ``./mlruns``) with the experiment ``nlptune``; W&B logs to the project ``nlptune`` (files in the run dir).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from nlptune.config.errors import NlptuneError
from nlptune.config.schema import RunConfig, TrainerConfig

PROJECT = "nlptune"
LOG_SUBDIR = "tensorboard"
# tracker -> (importable modules, any of which makes it usable; the pip package to install)
REQUIREMENTS = {"tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
                "mlflow": (("mlflow",), "mlflow"), "wandb": (("wandb",), "wandb")}
# metrics.jsonl keys -> tracker scalar names; eval_<metric> becomes eval/<metric>
RENAMES = {"loss": "train/loss", "lr": "train/lr", "epoch": "train/epoch", "samples": "train/samples"}


def check_installed(report_to) -> None:
    """Raise a clear error for a selected tracker whose package is not installed."""
    for name in report_to:
        modules, package = REQUIREMENTS[name]
        if not any(importlib.util.find_spec(m) is not None for m in modules):
            others = [n for n in report_to if n != name]
            raise NlptuneError(f"trainer.report_to selects {name!r} but {package} is not installed: "
                               f"`pip install {package}`, or drop it: trainer.report_to=[{','.join(others)}]")


def accelerator_kwargs(trainer: TrainerConfig, output_dir: Path) -> dict:
    """Keyword arguments for `Accelerator(...)`: the selected trackers, logging under ``output_dir``."""
    if not trainer.report_to or int(os.environ.get("RANK", "0")) != 0:
        return {}  # no trackers at all on the other ranks: nothing can be logged from them
    check_installed(trainer.report_to)
    from accelerate.utils import ProjectConfiguration

    project = ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(Path(output_dir) / LOG_SUBDIR))
    return {"log_with": list(trainer.report_to), "project_config": project}


def _loggable(value):
    """Tracker hyperparameters accept bool/int/float/str only."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return "null" if value is None else str(list(value) if isinstance(value, tuple) else value)


def init_config(run: RunConfig, parameters: dict) -> dict:
    """What each tracker stores for the run: the hyperparameters (what you set) and the parameter counts
    (what the model learns)."""
    from nlptune.train.report import hyperparameters

    config = {key: _loggable(value) for key, value in hyperparameters(run).items()}
    config["task"] = run.task.name
    for key in ("total", "trainable", "frozen"):
        config[f"parameters.{key}"] = parameters[key]
    for module, counts in parameters["modules"].items():
        config[f"parameters.{module}"] = counts["total"]
    return config


def scalars(record: dict) -> dict[str, float]:
    """The numeric values of one metrics.jsonl record, named for trackers (train/loss, eval/accuracy, ...)."""
    out = {}
    for key, value in record.items():
        if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[f"eval/{key[5:]}" if key.startswith("eval_") else RENAMES.get(key, key)] = value
    return out


def _parameter_text(parameters: dict) -> str:
    rows = ["| module | total | trainable |", "|---|---:|---:|"]
    rows += [f"| {name} | {c['total']:,} | {c['trainable']:,} |" for name, c in parameters["modules"].items()]
    rows.append(f"| **all** | **{parameters['total']:,}** | **{parameters['trainable']:,}** |")
    return "\n".join(rows)


class Tracker:
    """The open trackers of one run (rank 0): `log` a record, `close` at the end."""

    def __init__(self, accelerator):
        self.accelerator = accelerator

    def log(self, record: dict) -> None:
        """Send one metrics.jsonl record to every tracker, at its optimizer step."""
        values = scalars(record)
        if values:
            self.accelerator.log(values, step=record.get("step"))

    def close(self) -> None:
        """Finish every tracker (flush and close files/runs). Unlike `Accelerator.end_training`, this leaves
        the process group alone: the caller tears it down once every reference to the model is gone."""
        for tracker in self.accelerator.trackers:
            tracker.finish()
        self.accelerator.trackers.clear()


def start(accelerator, run: RunConfig, parameters: dict, output_dir: Path) -> Tracker | None:
    """Open the Accelerator's trackers with the run's hyperparameters and parameter report (rank 0 only)."""
    if not accelerator.is_main_process or not accelerator.log_with:
        return None
    init_kwargs = {"mlflow": {"run_name": Path(output_dir).name},
                   "wandb": {"dir": str(output_dir), "name": Path(output_dir).name}}
    accelerator.init_trackers(PROJECT, config=init_config(run, parameters),
                              init_kwargs={k: v for k, v in init_kwargs.items() if k in run.trainer.report_to})
    if "tensorboard" in run.trainer.report_to:
        accelerator.get_tracker("tensorboard", unwrap=True).add_text("parameters", _parameter_text(parameters))
    return Tracker(accelerator)
