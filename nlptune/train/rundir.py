"""The run directory: config.yaml, manifest.json, metrics.jsonl, metrics.json and best/.

Only rank 0 calls into this module.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import yaml

from nlptune.config.schema import RunConfig
from nlptune.utils.plain import plain_data

TASK_FILE = "nlptune_task.json"


def default_output_dir(run: RunConfig) -> Path:
    """``runs/<task>-<model>/<YYYYmmdd-HHMMSS>/``, relative to the working directory."""
    return Path("runs") / f"{run.task.name}-{run.model.name}" / time.strftime("%Y%m%d-%H%M%S")


def write_json(path: Path, data) -> None:
    """Write JSON atomically (temporary file + rename), so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


class RunDir:
    """Writer for one run's directory."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._metrics = (self.path / "metrics.jsonl").open("a", buffering=1)
        self.tracker = None  # a tracking.Tracker: every logged record also goes to TensorBoard/MLflow/W&B

    def write_config(self, run: RunConfig) -> None:
        (self.path / "config.yaml").write_text(yaml.safe_dump(plain_data(run.plain), sort_keys=False))

    def write_manifest(self, manifest: dict) -> None:
        write_json(self.path / "manifest.json", manifest)

    def log(self, record: dict) -> None:
        """Append one line to metrics.jsonl (and send it to the run's trackers)."""
        self._metrics.write(json.dumps(record) + "\n")
        if self.tracker is not None:
            self.tracker.log(record)

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / "metrics.json", summary)

    def close(self) -> None:
        self._metrics.close()
        if self.tracker is not None:
            self.tracker.close()

    @property
    def best_dir(self) -> Path:
        return self.path / "best"


def save_best_model(model, tokenizer, directory: Path, *, pretrained: bool, task_info: dict) -> None:
    """Save the best model so `transformers.pipeline` (pretrained) or `nlptune predict` (both) load it."""
    directory.mkdir(parents=True, exist_ok=True)
    if pretrained:
        model.save_pretrained(directory, safe_serialization=True)
    else:
        from nlptune.models import save_scratch_model

        save_scratch_model(model, directory)
    tokenizer.save_pretrained(directory)
    write_json(directory / TASK_FILE, task_info)


def read_task_info(directory: Path) -> dict:
    """The task description saved next to a best model."""
    return json.loads((Path(directory) / TASK_FILE).read_text())
