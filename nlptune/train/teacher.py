"""The teacher of a distilled run (``distill.teacher``): a finished run whose best model (or a saved model folder on
its own: a copy of a run's best/, an `export --format hf`) labels the student's training texts (and its transfer
set) once, in a batched pass; nlptune/data/soft_targets.py caches its outputs and asks for them only when its cache
lacks them, so this module loads the teacher's model at most once per (teacher, data, transfer set).

The teacher must fit the student's task: the same problem kind, the same output names in the same order, as many
text fields. It reads the texts with its own tokenizer and max_length, at the precision it was trained with (fp32
for a saved model folder on its own, which does not record it, as `nlptune predict` reads one).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from nlptune.config.errors import ConfigError, ConfigIssue, NlptuneError
from nlptune.config.schema import RunConfig, kind_of
from nlptune.data import encode_split
from nlptune.data.batching import Collator, EncodedDataset, eval_order
from nlptune.data.sources import model_folder_of, teacher_sha256
from nlptune.train.evaluation import forward
from nlptune.train.precision import autocast, resolve_precision
from nlptune.train.run_reading import (as_given, check_best, check_run, is_saved_model, load_best_model, loading_best,
                                       read_json, read_run_config, task_kind)
from nlptune.train.rundir import read_task_info
from nlptune.utils.console import console

CHUNK = 8192  # texts tokenized at a time: a transfer set of a million texts never sits in memory as token lists
FIX = ("give distill.teacher a run directory that `nlptune train` finished (runs/<task>-<model>/<time>/) on this "
       "task, or a saved model folder of one (a copy of its best/, an `nlptune export --format hf` folder)")
DAMAGED_FIX = ("train the teacher again (its run's config.yaml holds its settings) or copy its best/ again, or give "
               "distill.teacher another finished run or saved model folder")


def open_teacher(run: RunConfig, device: torch.device) -> "Teacher | None":
    """The run's teacher (nothing read yet), or None when ``distill.teacher`` is null."""
    return Teacher(run, device) if run.distill.active else None


class Teacher:
    """A finished run's best model as the teacher of ``run`` (the interface nlptune/data/soft_targets.py uses)."""

    def __init__(self, run: RunConfig, device: torch.device):
        self.run, self.device = run, device
        given = Path(run.distill.teacher).absolute()
        self.run_dir = as_given(given)  # a run's best/ is read as its run (its precision, its scores)
        self.saved_only = is_saved_model(self.run_dir)  # a saved model folder on its own: no run config, no scores
        self.best = model_folder_of(self.run_dir)
        self.info: dict = {}  # best/nlptune_task.json, once `check` has read it
        self._tokenizer = None

    # ---- does it fit the task? ----------------------------------------------------------------------------
    def check(self, label_names: list[str] | None) -> None:
        """Refuse a teacher that is not a finished run, or whose kind, outputs or text fields differ from the
        task's: one `ConfigError` listing every mismatch. Reads files only, never the model."""
        try:
            if self.saved_only:
                check_best(self.best)
            else:
                check_run(self.run_dir, finished=True)
        except NlptuneError as err:
            raise ConfigError([ConfigIssue("distill.teacher", str(err), FIX)]) from None
        info = read_task_info(self.best)
        task, issues = self.run.task, []
        if kind_of(info) != task.kind:
            issues.append(ConfigIssue("distill.teacher", f"the teacher's task is {kind_of(info)} "
                                      f"({info.get('task')}), this one is {task.kind}", FIX))
        elif info.get("label_names") != label_names:
            issues.append(ConfigIssue("distill.teacher", f"the teacher's outputs {info.get('label_names')} are not "
                                      f"this task's {label_names} (names and order must agree)", FIX))
        if len(info.get("text_fields") or ()) != len(task.text_fields):
            issues.append(ConfigIssue("distill.teacher", f"the teacher reads {len(info.get('text_fields') or ())} "
                                      f"text field(s) {info.get('text_fields')}, this task {len(task.text_fields)} "
                                      f"{list(task.text_fields)}", FIX))
        if issues:
            raise ConfigError(issues, source=f"teacher {self.run_dir}")
        self.info = info
        self.sha256 = teacher_sha256(self.run_dir)
        self.precision = self._precision()

    def _precision(self) -> str:
        """The mixed precision the teacher was trained with, as this device runs it ("no", "bf16", "fp16"); "no" for
        a saved model folder on its own."""
        if self.saved_only:
            return "no"
        trainer = read_run_config(self.run_dir).get("trainer")
        trainer = trainer if isinstance(trainer, dict) else {}
        return resolve_precision(trainer.get("mixed_precision") or "no", self.device.type == "cpu")

    @property
    def identity(self) -> dict:
        """What its outputs depend on besides the texts (the cache key's teacher part)."""
        return {"sha256": self.sha256, "precision": self.precision, "max_length": self.info["max_length"]}

    def describe(self) -> dict:
        """The manifest's and metrics.json's record of the teacher: where, which weights, how good it was (not
        known for a saved model folder on its own)."""
        metrics_file = self.run_dir / "metrics.json"
        summary = read_json(metrics_file) if metrics_file.is_file() and not self.saved_only else {}
        main = summary.get("main_metric") or self.info.get("main_metric")
        return {"run_dir": str(self.run_dir), "sha256": self.sha256, "task": self.info.get("task"),
                "model": self.info.get("model"), "main_metric": main,
                "best": (summary.get("best") or {}).get(main), "precision": self.precision}

    # ---- its tokens and its outputs -----------------------------------------------------------------------
    def tokenizer(self):
        if self._tokenizer is None:
            from nlptune.data.tokenization import load_tokenizer

            with self._loading():
                self._tokenizer = load_tokenizer(str(self.best), max_length=self.info["max_length"])
        return self._tokenizer

    @property
    def mask_token(self) -> str:
        """What a masked word of a transfer copy is for the teacher (its unknown token when it has no mask)."""
        return self.tokenizer().mask_token or self.tokenizer().unk_token

    @property
    def unk_token(self) -> str:
        return self.tokenizer().unk_token

    def _model(self):
        from nlptune.models.remote_code import check_remote_code

        check_remote_code(str(self.best), config_required=False)  # a saved model edited to carry custom code
        with self._loading():
            model, self._tokenizer = load_best_model(self.best, self.info, task_kind(self.best, self.info))
        return model.to(self.device)

    @contextlib.contextmanager
    def _loading(self):
        """Around loading the teacher's tokenizer or model: a best/ that passed the file checks but does not load
        (a tokenizer file missing, a tensor of the wrong shape) is reported as distill.teacher's, so the message
        says which run of the two is damaged."""
        try:
            with loading_best(self.best):
                yield
        except ConfigError:
            raise
        except NlptuneError as err:
            raise ConfigError([ConfigIssue("distill.teacher", f"the teacher's best model does not load: {err}",
                                           DAMAGED_FIX)], source=f"teacher {self.run_dir}") from None

    def logits(self, texts: list[list[str]]) -> np.ndarray:
        """The teacher's float32 logits [rows, outputs] for ``texts`` (one list per text field), in their order:
        batches of similar length in inference mode, ``trainer.eval_batch_size`` texts each."""
        model, rows = self._model(), len(texts[0])
        console().print(f"teacher {self.run_dir}: computing its outputs for {rows} training texts (cached for the "
                        "next runs)")
        collate = Collator(self.tokenizer().pad_token_id)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        for start in range(0, rows, CHUNK):
            chunk = [column[start:start + CHUNK] for column in texts]
            columns = encode_split(self.tokenizer(), chunk, None, words=False, max_length=self.info["max_length"],
                                   joint_pairs=self.info["joint_pairs"])
            dataset = EncodedDataset(columns, [0] * len(chunk[0]))
            order = eval_order(dataset.lengths)
            size = self.run.trainer.eval_batch_size
            for i in range(0, len(order), size):
                picked = order[i:i + size]
                batch = {k: v.to(self.device) for k, v in collate([dataset[j] for j in picked]).items()}
                with torch.inference_mode(), autocast(self.device.type, self.precision):
                    logits = forward(model, batch)[0].float().cpu().numpy()
                parts.append((np.asarray(picked) + start, logits))
        out = np.empty((rows, parts[0][1].shape[-1] if parts else 0), dtype=np.float32)
        for index, logits in parts:
            out[index] = logits
        return out
