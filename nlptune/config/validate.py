"""Value checks on a `RunConfig`: ranges, choices and the model's builder arguments."""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Iterable

from nlptune.config import schema
from nlptune.config.errors import ConfigIssue
from nlptune.config.names import names
from nlptune.config.registry import UnknownComponentError, lookup

# Arguments the trainer supplies to every builder; they are not config keys.
RUNTIME_ARGS = {"vocab_size", "pad_token_id", "num_labels", "pair", "vocab", "id2label", "problem_type",
                "auto_model"}
# Builder arguments a config must never set (ARCHITECTURE.md, safety rules): configs and recipes are
# shared data, so they may not turn on remote code or pickled weights.
UNSAFE_ARGS = {"trust_remote_code": "remote code is never enabled from a config or recipe",
               "use_safetensors": "weights are always read as safetensors"}


def _choice(key: str, value: Any, choices: Iterable[str]) -> list[ConfigIssue]:
    choices = list(choices)
    if value in choices:
        return []
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return [ConfigIssue(key, f"unknown value {value!r}", f"{hint}choose one of: {', '.join(choices)}")]


def _range(key: str, value: Any, low: float, high: float | None = None, *, low_open=False, high_open=True):
    if value is None:
        return []
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if not (too_low or too_high):
        return []
    lo = f"{'(' if low_open else '['}{low}"
    hi = f"{high}{')' if high_open else ']'}" if high is not None else "inf)"
    return [ConfigIssue(key, f"value {value!r} is out of range {lo}, {hi}", f"set {key} within {lo}, {hi}")]


def _kind_issues(task: schema.TaskConfig) -> list[ConfigIssue]:
    """task.kind, and the legacy task.problem_type it replaces (either may be given; both must agree)."""
    legacy = schema.LEGACY_PROBLEM_TYPES
    if task.problem_type is not None:
        issues = _choice("task.problem_type", task.problem_type, legacy)
        if issues:
            return issues
        if task.kind != legacy[task.problem_type]:
            return [ConfigIssue("task.problem_type", f"the legacy problem_type {task.problem_type!r} disagrees with "
                                f"task.kind {task.kind!r}", "drop task.problem_type (task.kind replaces it: "
                                f"problem_type {task.problem_type} is kind {legacy[task.problem_type]})")]
    if task.kind is None:
        return [ConfigIssue("task.kind", "missing", f"set task.kind to one of: {', '.join(names('kind'))}")]
    return _choice("task.kind", task.kind, names("kind"))


def _label_name_issues(task: schema.TaskConfig) -> list[ConfigIssue]:
    if task.label_names and task.kind not in schema.KINDS_WITH_LABEL_NAMES:
        return [ConfigIssue("task.label_names", f"a {task.kind} task has no label names", "set it to null")]
    return []


def _task_issues(task: schema.TaskConfig) -> list[ConfigIssue]:
    issues = _kind_issues(task)
    if issues:
        return issues
    valid = schema.METRICS[task.kind]
    for metric in task.metrics:
        issues += _choice("task.metrics", metric, valid)
    if task.main_metric not in task.metrics:
        issues.append(ConfigIssue("task.main_metric", f"{task.main_metric!r} is not in task.metrics {list(task.metrics)}",
                                  "pick one of task.metrics"))
    if not 1 <= len(task.text_fields) <= 2 or not all(isinstance(f, str) and f for f in task.text_fields):
        issues.append(ConfigIssue("task.text_fields", f"expected one or two column names, got {list(task.text_fields)}",
                                  "e.g. task.text_fields=[sentence] or [sentence1,sentence2]"))
    issues += _label_name_issues(task)
    issues += _range("task.max_length", task.max_length, 0, low_open=True)
    issues += _range("task.max_train_samples", task.max_train_samples, 0, low_open=True)
    issues += _range("task.max_eval_samples", task.max_eval_samples, 0, low_open=True)
    return issues


def _model_issues(model: schema.ModelConfig) -> list[ConfigIssue]:
    try:
        builder = lookup("model", model.name)
    except UnknownComponentError as err:
        return [ConfigIssue("model.name", f"unknown model {model.name!r}",
                            f"choose one of: {', '.join(err.known)} (e.g. model=lstm)")]
    params = inspect.signature(builder).parameters
    accepted = [p for p in params if p not in RUNTIME_ARGS and p not in UNSAFE_ARGS
                and params[p].kind == inspect.Parameter.KEYWORD_ONLY]
    issues = []
    for key in model.args:
        if key in UNSAFE_ARGS:
            issues.append(ConfigIssue(f"model.{key}", f"'{key}' cannot be set in a config", f"remove it: "
                                      f"{UNSAFE_ARGS[key]}"))
        elif key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"did you mean 'model.{close[0]}'?" if close else f"valid keys: {', '.join(accepted)}"
            issues.append(ConfigIssue(f"model.{key}", f"model '{model.name}' has no argument '{key}'", hint))
    for key in ("dropout", "embedding_dropout", "hidden_dropout", "attention_dropout", "classifier_dropout"):
        issues += _range(f"model.{key}", model.args.get(key), 0.0, 1.0)
    for key in ("embedding_dim", "hidden_size", "num_heads", "num_filters"):
        issues += _range(f"model.{key}", model.args.get(key), 0, low_open=True)
    # a builder may declare that it runs with no layers (the bag: its layers are an optional MLP over the
    # pooled words); encoders need at least one
    issues += _range("model.num_layers", model.args.get("num_layers"), getattr(builder, "min_layers", 1))
    tok = model.tokenizer
    if tok is not None:
        issues += _choice("model.tokenizer", tok.kind, schema.TOKENIZERS)
        issues += _choice("model.normalization", tok.normalization, schema.NORMALIZATIONS)
        issues += _range("model.vocab_size", tok.vocab_size, 4, low_open=True)
    return issues


def _training_issues(run: schema.RunConfig) -> list[ConfigIssue]:
    opt, sched, trainer = run.optimizer, run.scheduler, run.trainer
    issues = _choice("optimizer.name", opt.name, schema.OPTIMIZERS)
    issues += _range("optimizer.lr", opt.lr, 0.0, low_open=True)
    issues += _range("optimizer.weight_decay", opt.weight_decay, 0.0)
    issues += _range("optimizer.momentum", opt.momentum, 0.0, 1.0)
    if len(opt.betas) != 2 or any(not 0 <= b < 1 for b in opt.betas):
        issues.append(ConfigIssue("optimizer.betas", f"expected two values in [0, 1), got {list(opt.betas)}",
                                  "e.g. optimizer.betas=[0.9,0.999]"))
    issues += _choice("scheduler.name", sched.name, schema.SCHEDULERS)
    issues += _range("scheduler.warmup_ratio", sched.warmup_ratio, 0.0, 1.0)
    issues += _range("scheduler.warmup_steps", sched.warmup_steps, 0)
    if sched.name == "polynomial" and opt.lr is not None and sched.lr_end is not None and sched.lr_end >= opt.lr:
        issues.append(ConfigIssue("scheduler.lr_end", f"lr_end {sched.lr_end!r} is not below optimizer.lr "
                                  f"{opt.lr!r}", "the polynomial schedule decays to lr_end: set it below optimizer.lr"))
    issues += _range("trainer.batch_size", trainer.batch_size, 0, low_open=True)
    issues += _range("trainer.eval_batch_size", trainer.eval_batch_size, 0, low_open=True)
    issues += _range("trainer.gradient_accumulation_steps", trainer.gradient_accumulation_steps, 1)
    issues += _range("trainer.max_epochs", trainer.max_epochs, 0)
    issues += _range("trainer.max_steps", trainer.max_steps, 0)
    issues += _range("trainer.max_grad_norm", trainer.max_grad_norm, 0.0)
    issues += _range("trainer.eval_every", trainer.eval_every, 0)
    issues += _range("trainer.patience", trainer.patience, 0)
    issues += _range("trainer.log_every", trainer.log_every, 1)
    issues += _range("trainer.threads", trainer.threads, 0)
    issues += _range("trainer.save_every", trainer.save_every, 0)
    issues += _range("trainer.keep_last", trainer.keep_last, 0)
    issues += _range("trainer.dist_timeout_s", trainer.dist_timeout_s, 0, low_open=True)
    if trainer.max_epochs == 0 and trainer.max_steps == 0:
        issues.append(ConfigIssue("trainer.max_epochs", "both max_epochs and max_steps are 0",
                                  "set trainer.max_epochs or trainer.max_steps above 0"))
    issues += _choice("trainer.mixed_precision", trainer.mixed_precision, schema.PRECISIONS)
    issues += _choice("trainer.device", trainer.device, schema.DEVICES)
    if not isinstance(run.seed, int) or isinstance(run.seed, bool):
        issues.append(ConfigIssue("seed", f"expected an integer, got {run.seed!r}", "e.g. seed=42"))
    issues += _resume_issues(run)
    return issues


def _resume_issues(run: schema.RunConfig) -> list[ConfigIssue]:
    issues = []
    if run.resume is not None and (not isinstance(run.resume, str) or not run.resume):
        issues.append(ConfigIssue("resume", f"expected null, auto or a path, got {run.resume!r}",
                                  "e.g. resume=auto output_dir=runs/my-run"))
    elif run.resume == "auto" and not run.output_dir:
        issues.append(ConfigIssue("resume", "resume=auto needs output_dir (the run directory to continue)",
                                  "add output_dir=PATH, or give the checkpoint: resume=PATH"))
    if not isinstance(run.resume_allow_changes, bool):
        issues.append(ConfigIssue("resume_allow_changes", f"expected true or false, got {run.resume_allow_changes!r}",
                                  "resume_allow_changes=true"))
    return issues


def _experience_issues(run: schema.RunConfig) -> list[ConfigIssue]:
    """Trackers (trainer.report_to) and training-data augmentation (augment.*)."""
    issues = []
    for name in run.trainer.report_to:
        issues += _choice("trainer.report_to", name, schema.REPORTERS)
    for key in ("delete_prob", "swap_prob", "unk_prob"):
        issues += _range(f"augment.{key}", getattr(run.augment, key), 0.0, 1.0)
    return issues


def validate_values(run: schema.RunConfig) -> list[ConfigIssue]:
    """Every value problem of ``run``, in config order (empty when the config is valid)."""
    return _task_issues(run.task) + _model_issues(run.model) + _training_issues(run) + _experience_issues(run)
