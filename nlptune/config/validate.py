"""Value checks on a `RunConfig`: ranges, choices and the model's builder arguments."""
from __future__ import annotations

import difflib
import inspect
from typing import Iterable

from nlptune.config import schema
from nlptune.config.checks import choice_issues, range_issues, type_issues, value_issues
from nlptune.config.errors import ConfigIssue, NlptuneError
from nlptune.config.names import GENERIC_TASKS, is_pretrained, names
from nlptune.config.registry import UnknownComponentError

# Arguments the trainer supplies to every builder; they are not config keys.
RUNTIME_ARGS = {"vocab_size", "pad_token_id", "num_labels", "pair", "vocab", "id2label", "problem_type",
                "auto_model", "per_token"}
# Model arguments that only a per-word task (task.kind=tokens) uses, with the value that leaves them off.
PER_TOKEN_ARGS = {"crf": False, "char_embedding": None}
# Builder arguments a config must never set (ARCHITECTURE.md, safety rules): configs and recipes are
# shared data, so they may not turn on remote code or pickled weights.
UNSAFE_ARGS = {"trust_remote_code": "remote code is never enabled from a config or recipe",
               "use_safetensors": "weights are always read as safetensors"}


def _kind_issues(task: schema.TaskConfig) -> list[ConfigIssue]:
    """task.kind, and the legacy task.problem_type it replaces (either may be given; both must agree)."""
    legacy = schema.LEGACY_PROBLEM_TYPES
    if task.problem_type is not None:
        issues = choice_issues("task.problem_type", task.problem_type, legacy)
        if issues:
            return issues
        if task.kind != legacy[task.problem_type]:
            return [ConfigIssue("task.problem_type", f"the legacy problem_type {task.problem_type!r} disagrees with "
                                f"task.kind {task.kind!r}", "drop task.problem_type (task.kind replaces it: "
                                f"problem_type {task.problem_type} is kind {legacy[task.problem_type]})")]
    if task.kind is None:
        return [ConfigIssue("task.kind", "missing", f"set task.kind to one of: {', '.join(names('kind'))}")]
    return choice_issues("task.kind", task.kind, names("kind"))


def _label_name_issues(task: schema.TaskConfig) -> list[ConfigIssue]:
    if task.label_names and task.kind not in schema.KINDS_WITH_LABEL_NAMES:
        return [ConfigIssue("task.label_names", f"a {task.kind} task has no label names", "set it to null")]
    names = [str(name) for name in task.label_names or ()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # found before any data is read (the labels' checks would find it too, later)
        return [ConfigIssue("task.label_names", f"lists {', '.join(map(repr, repeated))} more than once",
                            "list each class name once")]
    return []


def _word_task_issues(task: schema.TaskConfig) -> list[ConfigIssue]:
    """The keys of per-word tasks: the tag scheme, the CoNLL format and its columns, one words column."""
    issues = choice_issues("task.tag_scheme", task.tag_scheme, schema.TAG_SCHEMES)
    if task.format is not None:
        issues += choice_issues("task.format", task.format, schema.FORMATS)
    for key in ("token_column", "tag_column"):
        issues += type_issues(f"task.{key}", getattr(task, key), "int")
    if not issues and task.token_column == task.tag_column:
        issues.append(ConfigIssue("task.tag_column", f"the words and the tags cannot both be column "
                                  f"{task.token_column}", "point task.token_column and task.tag_column at "
                                  "different columns of the CoNLL file (0-based; -1 is the last)"))
    if task.kind == "tokens" and len(task.text_fields) != 1:
        issues.append(ConfigIssue("task.text_fields", f"a tokens task reads one column of words, got "
                                  f"{list(task.text_fields)}", "e.g. task.text_fields=[tokens]"))
    return issues


def _multi_label_issues(task: schema.TaskConfig) -> list[ConfigIssue]:
    """The keys only a multi_label task reads: its label columns, separator and decision thresholds."""
    keys = {"label_fields": None, "label_separator": None, "threshold": None}
    if task.kind != "multi_label":
        return [ConfigIssue(f"task.{key}", "applies to task.kind=multi_label only", "set it to null")
                for key, off in keys.items() if getattr(task, key) != off]
    issues = choice_issues("task.threshold_tuning", task.threshold_tuning, schema.THRESHOLD_TUNING)
    if task.threshold is not None:
        issues += range_issues("task.threshold", task.threshold, 0.0, 1.0, low_open=True, high_open=True)
    if task.label_separator == "":
        issues.append(ConfigIssue("task.label_separator", "an empty separator splits nothing",
                                  "e.g. 'task.label_separator=\",\"' (or null for list columns)"))
    fields = task.label_fields
    if fields is not None:
        if not fields or not all(isinstance(f, str) and f for f in fields) or len(set(fields)) != len(fields):
            issues.append(ConfigIssue("task.label_fields", f"expected distinct column names, got {list(fields)}",
                                      "e.g. task.label_fields=[joy,anger] (one 0/1 column per label)"))
        if task.label_names:
            issues.append(ConfigIssue("task.label_names", "task.label_fields already names the labels (one "
                                      "column each)", "set task.label_names to null"))
    return issues


def _metric_issues(task: schema.TaskConfig) -> list[ConfigIssue]:
    """task.metrics against the kind's; a set of another kind (task.kind changed on a task of that kind, e.g. the
    demo's accuracy and f1 under kind=regression) is one issue whose fix names the kind's generic task."""
    valid = schema.METRICS[task.kind]
    wrong = [metric for metric in task.metrics if metric not in valid]
    if not wrong:
        return []
    if any(metric not in names("metric") for metric in wrong):  # a misspelling: the closest names help most
        return [issue for metric in task.metrics for issue in choice_issues("task.metrics", metric, valid)]
    return [ConfigIssue("task.metrics", f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not a "
                        f"{task.kind} metric ({task.kind}: {', '.join(valid)})",
                        f"set task.metrics=[{','.join(valid)}] task.main_metric={valid[0]}, or start from the "
                        f"{task.kind} task, task={GENERIC_TASKS[task.kind]}: its metrics and label names fit")]


def _task_issues(task: schema.TaskConfig) -> list[ConfigIssue]:
    issues = _kind_issues(task)
    if issues:
        return issues
    issues += _metric_issues(task)
    if task.main_metric not in task.metrics:
        issues.append(ConfigIssue("task.main_metric", f"{task.main_metric!r} is not in task.metrics {list(task.metrics)}",
                                  "pick one of task.metrics"))
    if not 1 <= len(task.text_fields) <= 2 or not all(isinstance(f, str) and f for f in task.text_fields):
        issues.append(ConfigIssue("task.text_fields", f"expected one or two column names, got {list(task.text_fields)}",
                                  "e.g. task.text_fields=[sentence] or [sentence1,sentence2]"))
    else:
        issues += _column_issues(task)
    issues += _label_name_issues(task)
    issues += _word_task_issues(task)
    issues += _multi_label_issues(task)
    issues += range_issues("task.max_length", task.max_length, 0, low_open=True)
    issues += range_issues("task.max_train_samples", task.max_train_samples, 0, low_open=True)
    issues += range_issues("task.max_eval_samples", task.max_eval_samples, 0, low_open=True)
    return issues


def _column_issues(task: schema.TaskConfig) -> list[ConfigIssue]:
    """The text columns are distinct, and none of them is a label column: a model that reads its label trains to a
    perfect, meaningless score."""
    texts = list(task.text_fields)
    if len(set(texts)) < len(texts):
        return [ConfigIssue("task.text_fields", f"names the column {texts[0]!r} twice: a sentence-pair task reads "
                            "two different columns", "e.g. task.text_fields=[sentence1,sentence2], or one column: "
                            f"task.text_fields=[{texts[0]}]")]
    labels = list(task.label_fields or ()) or ([task.label_field] if task.label_field else [])
    both = [column for column in labels if column in texts]
    if not both:
        return []
    key = "task.label_fields" if task.label_fields else "task.label_field"
    return [ConfigIssue(key, f"{', '.join(map(repr, both))} is also a text column (task.text_fields={texts}): the "
                        "model would read the label it is to predict", f"point {key} at the label column(s) and "
                        "task.text_fields at the text column(s) of the files")]


def _per_token_issues(model: schema.ModelConfig, builder, kind: str | None) -> list[ConfigIssue]:
    """A per-word task needs a model that keeps one vector per word; the per-word options need such a task."""
    if kind == "tokens":
        if getattr(builder, "per_token", False):
            pooling = model.args.get("pooling") if model.name == "pretrained" else None
            return [] if pooling in (None, "cls") else [ConfigIssue(
                "model.pooling", f"pooling={pooling!r} pools a whole text into one vector; a word tagger reads every "
                "token", "remove it, or set model.pooling=cls")]
        from nlptune.models import model_builder

        fit = [name for name in names("model") if getattr(model_builder(name), "per_token", False)]
        return [ConfigIssue("model.name", f"model {model.name!r} cannot tag words: it pools a text's words into one "
                            "vector", f"for task.kind=tokens use one of: {', '.join(fit)} (e.g. model=lstm)")]
    return [ConfigIssue(f"model.{key}", f"{key}={model.args[key]!r} applies to task.kind=tokens only",
                        f"remove it (or set model.{key}={'null' if off is None else str(off).lower()})")
            for key, off in PER_TOKEN_ARGS.items() if model.args.get(key, off) != off]


def _builder_check_issues(builder, params, args) -> list[ConfigIssue]:
    """What a builder's ``check_args`` (if it has one) finds in ``args`` with its defaults for the rest."""
    check = getattr(builder, "check_args", None)
    if check is None:
        return []
    full = {name: p.default for name, p in params.items() if p.default is not inspect.Parameter.empty}
    try:
        check({**full, **args})
    except NlptuneError as err:  # a ModelArgumentError: "model.<key>=<value> is not valid; <the fix>"
        key = str(err).partition("=")[0]
        problem, _, fix = str(err).partition("; ")
        return [ConfigIssue(key if key.startswith("model.") else "model", problem, fix or "change it")]
    return []


def _model_issues(model: schema.ModelConfig, kind: str | None = None) -> list[ConfigIssue]:
    # The one upward import of config/ (ARCHITECTURE.md): a builder's signature is the truth about the arguments
    # it takes, and checking them here reports a bad key with every other problem, before any data is read.
    # Importing nlptune.models registers the builders (and loads torch), so it happens here, never on import.
    from nlptune.models import model_builder

    try:
        builder = model_builder(model.name)
    except UnknownComponentError as err:
        return [ConfigIssue("model.name", f"unknown model {model.name!r}",
                            f"choose one of: {', '.join(err.known)} (e.g. model=lstm)")]
    params = inspect.signature(builder).parameters
    per_token = _per_token_issues(model, builder, kind)
    if kind == "tokens" and not getattr(builder, "per_token", False):
        return per_token  # a model that cannot tag words: its other arguments do not matter
    accepted = [p for p in params if p not in RUNTIME_ARGS and p not in UNSAFE_ARGS
                and params[p].kind == inspect.Parameter.KEYWORD_ONLY]
    issues, unknown = [], []
    choices = getattr(builder, "choices", {})  # a builder's arguments that take one of a few values
    for key in model.args:
        if key in UNSAFE_ARGS:
            issues.append(ConfigIssue(f"model.{key}", f"'{key}' cannot be set in a config", f"remove it: "
                                      f"{UNSAFE_ARGS[key]}"))
        elif key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"did you mean 'model.{close[0]}'?" if close else f"valid keys: {', '.join(accepted)}"
            issues.append(ConfigIssue(f"model.{key}", f"model '{model.name}' has no argument '{key}'", hint))
        elif key in choices:  # e.g. pooling: mean|max; None where it is the default (char_embedding: none)
            if not (model.args[key] is None and params[key].default is None):
                unknown += choice_issues(f"model.{key}", model.args[key], choices[key])
        else:  # the builder's annotation says what a value must be (a string where a number goes, ...)
            issues += type_issues(f"model.{key}", model.args[key], params[key].annotation)
    if issues:  # the range checks below compare values: only once every type is right
        return issues + unknown
    issues += per_token + unknown
    if not issues:  # and its own checks of the values together (cnn: one layer; transformer: heads divide d_model)
        issues += _builder_check_issues(builder, params, model.args)
    for key in ("dropout", "embedding_dropout", "hidden_dropout", "attention_dropout", "classifier_dropout"):
        issues += range_issues(f"model.{key}", model.args.get(key), 0.0, 1.0)
    for key in ("embedding_dim", "hidden_size", "num_heads", "num_filters"):
        issues += range_issues(f"model.{key}", model.args.get(key), 0, low_open=True)
    # a builder may declare that it runs with no layers (the bag: its layers are an optional MLP over the
    # pooled words); encoders need at least one
    issues += range_issues("model.num_layers", model.args.get("num_layers"), getattr(builder, "min_layers", 1))
    tok = model.tokenizer
    if tok is not None:
        issues += choice_issues("model.tokenizer", tok.kind, schema.TOKENIZERS)
        issues += choice_issues("model.normalization", tok.normalization, schema.NORMALIZATIONS)
        issues += range_issues("model.vocab_size", tok.vocab_size, 4, low_open=True)
    return issues


def _training_issues(run: schema.RunConfig) -> list[ConfigIssue]:
    opt, sched, trainer = run.optimizer, run.scheduler, run.trainer
    issues = choice_issues("optimizer.name", opt.name, schema.OPTIMIZERS)
    issues += range_issues("optimizer.lr", opt.lr, 0.0, low_open=True)
    issues += range_issues("optimizer.weight_decay", opt.weight_decay, 0.0)
    issues += range_issues("optimizer.momentum", opt.momentum, 0.0, 1.0)
    issues += range_issues("optimizer.head_lr_scale", opt.head_lr_scale, 0.0, low_open=True)
    issues += range_issues("optimizer.layer_decay", opt.layer_decay, 0.0, 1.0, low_open=True, high_open=False)
    for key in ("head_lr_scale", "layer_decay"):
        if getattr(opt, key) != 1.0 and not is_pretrained(run.model.name):
            issues.append(ConfigIssue(f"optimizer.{key}", f"applies to model=pretrained only (a pretrained encoder "
                                      f"and its new task head); model={run.model.name} has neither",
                                      f"remove optimizer.{key} or set it to 1.0"))
    betas = opt.betas if isinstance(opt.betas, (list, tuple)) else [opt.betas]
    if len(betas) != 2 or any(isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b < 1
                              for b in betas):
        issues.append(ConfigIssue("optimizer.betas", f"expected two values in [0, 1), got {list(betas)}",
                                  "e.g. optimizer.betas=[0.9,0.999]"))
    issues += choice_issues("scheduler.name", sched.name, schema.SCHEDULERS)
    issues += range_issues("scheduler.warmup_ratio", sched.warmup_ratio, 0.0, 1.0)
    issues += range_issues("scheduler.warmup_steps", sched.warmup_steps, 0)
    if sched.name == "polynomial" and opt.lr is not None and sched.lr_end is not None and sched.lr_end >= opt.lr:
        issues.append(ConfigIssue("scheduler.lr_end", f"lr_end {sched.lr_end!r} is not below optimizer.lr "
                                  f"{opt.lr!r}", "the polynomial schedule decays to lr_end: set it below optimizer.lr"))
    issues += range_issues("trainer.batch_size", trainer.batch_size, 0, low_open=True)
    issues += range_issues("trainer.eval_batch_size", trainer.eval_batch_size, 0, low_open=True)
    issues += range_issues("trainer.gradient_accumulation_steps", trainer.gradient_accumulation_steps, 1)
    issues += range_issues("trainer.max_epochs", trainer.max_epochs, 0)
    issues += range_issues("trainer.max_steps", trainer.max_steps, 0)
    issues += range_issues("trainer.max_grad_norm", trainer.max_grad_norm, 0.0)
    issues += range_issues("trainer.eval_every", trainer.eval_every, 0)
    issues += range_issues("trainer.patience", trainer.patience, 0)
    issues += range_issues("trainer.log_every", trainer.log_every, 1)
    issues += range_issues("trainer.threads", trainer.threads, 0)
    issues += range_issues("trainer.save_every", trainer.save_every, 0)
    issues += range_issues("trainer.keep_last", trainer.keep_last, 0)
    issues += range_issues("trainer.average_from", trainer.average_from, 0.0, 1.0)
    issues += range_issues("trainer.dist_timeout_s", trainer.dist_timeout_s, 0, low_open=True)
    if trainer.max_epochs == 0 and trainer.max_steps == 0:
        issues.append(ConfigIssue("trainer.max_epochs", "both max_epochs and max_steps are 0",
                                  "set trainer.max_epochs or trainer.max_steps above 0"))
    issues += choice_issues("trainer.mixed_precision", trainer.mixed_precision, schema.PRECISIONS)
    issues += choice_issues("trainer.device", trainer.device, schema.DEVICES)
    if not isinstance(run.seed, int) or isinstance(run.seed, bool):
        issues.append(ConfigIssue("seed", f"expected an integer, got {run.seed!r}", "e.g. seed=42"))
    elif not -2**63 <= run.seed < 2**64:  # what torch.manual_seed takes
        issues.append(ConfigIssue("seed", f"{run.seed} is outside -2**63 .. 2**64-1, the seeds torch takes",
                                  "e.g. seed=42"))
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


def _weights_issues(key: str, value) -> list[ConfigIssue]:
    if value is None or isinstance(value, str):
        return choice_issues(f"trainer.{key}", "none" if value is None else value, schema.WEIGHT_MODES)
    if not value or any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in value):
        return [ConfigIssue(f"trainer.{key}", f"expected none, balanced or non-negative weights, got {list(value)}",
                            "e.g. trainer.class_weights=balanced or [1.0,3.0] (one weight per class)")]
    return []


def _imbalance_issues(run: schema.RunConfig) -> list[ConfigIssue]:
    """trainer.class_weights / pos_weight / loss / focal_gamma / label_smoothing, and the kinds they fit."""
    trainer, kind = run.trainer, run.task.kind
    issues = _weights_issues("class_weights", trainer.class_weights)
    issues += _weights_issues("pos_weight", trainer.pos_weight)
    issues += choice_issues("trainer.loss", trainer.loss, schema.LOSSES)
    issues += range_issues("trainer.focal_gamma", trainer.focal_gamma, 0.0)
    issues += range_issues("trainer.label_smoothing", trainer.label_smoothing, 0.0, 1.0, high_open=True)
    if trainer.pos_weight not in (None, "none") and kind != "multi_label":
        issues.append(ConfigIssue("trainer.pos_weight", "weights the positive examples of each label of a "
                                  "multi_label task", "use trainer.class_weights for single-label classes"))
    if issues:
        return issues
    active = {"class_weights": trainer.class_weights not in (None, "none"), "loss": trainer.loss != "cross_entropy",
              "label_smoothing": trainer.label_smoothing > 0}
    if kind not in schema.CLASSIFICATION_KINDS:
        issues += [ConfigIssue(f"trainer.{key}", f"a {kind} task has no classes to weight or smooth",
                               f"remove it (trainer.{key} applies to {', '.join(schema.CLASSIFICATION_KINDS)})")
                   for key, on in active.items() if on]
    elif kind == "tokens" and run.model.args.get("crf"):
        issues += [ConfigIssue(f"trainer.{key}", "a CRF tagger is trained on whole tag sequences, not per word",
                               "remove it, or set model.crf=false") for key, on in active.items() if on]
    return issues


def _experience_issues(run: schema.RunConfig) -> list[ConfigIssue]:
    """Trackers (trainer.report_to) and training-data augmentation (augment.*)."""
    issues = []
    for name in run.trainer.report_to:
        issues += choice_issues("trainer.report_to", name, schema.REPORTERS)
    for key in ("delete_prob", "swap_prob", "unk_prob"):
        issues += range_issues(f"augment.{key}", getattr(run.augment, key), 0.0, 1.0)
    return issues


# the transfer set is made in memory, N copies of every training text, and the teacher labels each: beyond this
# (Tang et al. use 20) a typo such as 10000000 grinds for hours before running out of memory, where a refusal helps
MAX_AUGMENT_COPIES = 1000


def _distill_issues(run: schema.RunConfig) -> list[ConfigIssue]:
    """distill.*: the mix, the loss and the transfer set's probabilities, and the kinds and losses that fit. (The
    teacher run itself is checked when the training data is known: nlptune/train/teacher.py.)"""
    distill = run.distill
    issues = range_issues("distill.alpha", distill.alpha, 0.0, 1.0, high_open=False)
    issues += range_issues("distill.temperature", distill.temperature, 0.0, low_open=True)
    issues += choice_issues("distill.loss", distill.loss, schema.DISTILL_LOSSES)
    issues += range_issues("distill.augment_copies", distill.augment_copies, 0, MAX_AUGMENT_COPIES,
                           high_open=False)
    probabilities = [issue for key in ("mask_prob", "replace_prob", "ngram_prob")
                     for issue in range_issues(f"distill.{key}", getattr(distill, key), 0.0, 1.0, high_open=False)]
    issues += probabilities
    # their sum only when each is a valid probability: a mask_prob of 2 or inf is one problem, reported once
    if not [i for i in probabilities if i.key != "distill.ngram_prob"] and \
            distill.mask_prob + distill.replace_prob > 1:
        issues.append(ConfigIssue("distill.replace_prob", f"mask_prob + replace_prob = "
                                  f"{distill.mask_prob + distill.replace_prob:g} is above 1 (a word is masked or "
                                  "replaced, not both)", "lower distill.mask_prob or distill.replace_prob"))
    if distill.teacher is None:
        if distill.augment_copies:
            issues.append(ConfigIssue("distill.augment_copies", "the transfer set is labelled by a teacher, and "
                                      "distill.teacher is null", "set distill.teacher=RUN_DIR (or run `nlptune "
                                      "distill RUN_DIR ...`), or distill.augment_copies=0"))
        return issues
    if not distill.teacher:
        issues.append(ConfigIssue("distill.teacher", "is empty",
                                  "give a finished run directory or a saved model folder, or null"))
    kind = run.task.kind
    if kind not in schema.DISTILL_KINDS:
        issues.append(ConfigIssue("distill.teacher", f"distillation of a {kind} task is not supported: its "
                                  "windows of sub-tokens do not line up with a teacher's", "train without "
                                  f"distill.teacher (distillation works for {', '.join(schema.DISTILL_KINDS)})"))
    elif kind == "regression" and distill.loss != "mse":
        issues.append(ConfigIssue("distill.loss", f"a regression teacher outputs a score, not a distribution to "
                                  f"compare with {distill.loss}", "set distill.loss=mse"))
    return issues


def _check_groups(run: schema.RunConfig) -> list:
    """The value checks, one call per group, in config order."""
    return [lambda: _task_issues(run.task), lambda: _model_issues(run.model, run.task.kind),
            lambda: _length_issues(run), lambda: _training_issues(run), lambda: _imbalance_issues(run),
            lambda: _experience_issues(run), lambda: _distill_issues(run)]


def _length_issues(run: schema.RunConfig) -> list[ConfigIssue]:
    """Texts cut to task.max_length tokens must fit a scratch model's position table (a pretrained model's limit
    is read from its config when its tokenizer loads: nlptune/data/tokenization.py)."""
    positions, length = run.model.args.get("max_positions"), run.task.max_length
    if isinstance(positions, int) and isinstance(length, int) and length > positions:
        return [ConfigIssue("task.max_length", f"{length} tokens, more than model.max_positions={positions}",
                            f"set task.max_length={positions} or less, or model.max_positions={length} or more")]
    return []


def validate_values(run: schema.RunConfig, refused: Iterable[str] = ()) -> list[ConfigIssue]:
    """Every value problem of ``run``, in config order (empty when the config is valid); ``refused``: keys already
    reported (a wrong type, a missing key), whose checks are left out (`nlptune.config.checks.value_issues`)."""
    return value_issues(_check_groups(run), refused)
