"""Typed, frozen run configuration, built from the composed (plain) config and validated in one pass.

Every problem found is collected so the user sees all of them at once (`ConfigError`).
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from nlptune.config.checks import with_article
from nlptune.config.errors import ConfigError, ConfigIssue
from nlptune.config.names import names
from nlptune.utils.plain import freeze, plain_data

# What config validation must know of each problem kind (nlptune/kinds/ implements the rest; the kind names are
# config/names.py NAMES["kind"]): the metrics it can report, and whether task.label_names applies to it.
# tokens: f1/precision/recall are entity-level micro averages (seqeval, as conlleval counts), accuracy is per word
# multi_label: macro/micro F1 over the labels and subset accuracy (every label of a row right), at the decision
# thresholds (nlptune/kinds/thresholds.py)
METRICS = {"single_label": ("accuracy", "f1", "macro_f1", "mcc"), "multi_label": ("macro_f1", "micro_f1", "subset_accuracy"),
           "regression": ("pearson", "spearman", "mse"), "tokens": ("f1", "precision", "recall", "accuracy")}
KINDS_WITH_LABEL_NAMES = ("single_label", "multi_label", "tokens")
# multi_label: how tuned decision thresholds are fitted (task.threshold_tuning)
THRESHOLD_TUNING = ("per_label", "global")
# the kinds whose outputs are classes: trainer.class_weights / loss / label_smoothing apply to them
CLASSIFICATION_KINDS = ("single_label", "multi_label", "tokens")
LOSSES = ("cross_entropy", "focal")
WEIGHT_MODES = ("none", "balanced")
# tokens: how tags mark entities (nlptune/kinds/tags.py); plain = tags without a scheme (part of speech, chunks)
TAG_SCHEMES = ("iob2", "iob1", "bioes", "plain")
# distillation (nlptune/train/teacher.py): the losses against a teacher's outputs, and the kinds it applies to (a
# tokens task's windows of sub-tokens do not line up with a teacher's own)
DISTILL_LOSSES = ("mse", "kl")
DISTILL_KINDS = ("single_label", "multi_label", "regression")
# the file formats a task may name explicitly (task.format); null: by the file's extension
FORMATS = ("conll",)
# The key before task.kind: task.problem_type (still in older configs, recipes and run directories) -> the kind.
LEGACY_PROBLEM_TYPES = {"classification": "single_label", "regression": "regression"}

TOKENIZERS = ("wordlevel", "wordpiece")
NORMALIZATIONS = ("nfkc", "nfc", "nfd", "nfkd", "none")
OPTIMIZERS = names("optimizer")
SCHEDULERS = names("scheduler")
PRECISIONS = ("no", "fp16", "bf16", "auto")
DEVICES = ("auto", "cpu", "cuda")
REPORTERS = ("tensorboard", "mlflow", "wandb")
# Keys of the model group that configure the scratch tokenizer rather than the network.
TOKENIZER_KEYS = ("tokenizer", "vocab_size", "min_frequency", "lowercase", "normalization")
# top-level keys of a run config besides its sections (conf/config.yaml)
RUN_KEYS = ("seed", "output_dir", "resume", "resume_allow_changes")


def kind_of(task: Mapping[str, Any]) -> str | None:
    """The kind of a plain task record of any nlptune version (config.yaml's task, best/nlptune_task.json):
    its ``kind``, else the one its legacy ``problem_type`` names."""
    legacy = task.get("problem_type")
    return task.get("kind") or (LEGACY_PROBLEM_TYPES.get(legacy) if isinstance(legacy, str) else None)


@dataclass(frozen=True)
class TaskConfig:
    """One task. ``kind`` (single_label | regression) says what a label is; configs written before it existed
    give the legacy ``problem_type`` (classification | regression) instead, from which ``kind`` is derived
    (both given and disagreeing: a config error, see config/validate.py)."""

    name: str
    text_fields: tuple[str, ...]
    label_field: str
    label_names: tuple[str, ...] | None
    metrics: tuple[str, ...]
    main_metric: str
    kind: str | None = None
    problem_type: str | None = None  # legacy: classification | regression
    hub_id: str | None = None
    hub_config: str | None = None
    hub_revision: str | None = None
    column_map: Mapping[str, str] = field(default_factory=dict)
    train_split: str = "train"
    validation_split: str = "validation"
    train_file: str | None = None
    validation_file: str | None = None
    data_dir: str | None = None
    generator: str | None = None
    max_length: int = 128
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    # tokens only: the tag scheme; the format of local files (null: by extension, .conll is CoNLL columns) and
    # which whitespace-separated column of a CoNLL file holds the word and which the tag (0-based; -1 = last)
    tag_scheme: str = "iob2"
    # tokens only: a tagger without a CRF decodes each window's best tag sequence the tag scheme allows (Viterbi
    # over its logits, no I-PER after O); false takes every word's most probable tag on its own. conf/task's
    # tokens tasks set it true; false here keeps a stored config that predates the key decoding as it ran
    constrained_decoding: bool = False
    format: str | None = None
    token_column: int = 0
    tag_column: int = -1
    # multi_label only: one 0/1 column per label instead of a list column (label_field is then unused); the
    # separator that splits a text label column (csv/tsv) into names; the decision threshold (a float fixes it,
    # null tunes it on validation outputs) and how it is tuned (per_label | global)
    label_fields: tuple[str, ...] | None = None
    label_separator: str | None = None
    threshold: float | None = None
    threshold_tuning: str = "per_label"

    @property
    def is_pair(self) -> bool:
        return len(self.text_fields) == 2

    def __post_init__(self) -> None:
        if self.kind is None and isinstance(self.problem_type, str):
            object.__setattr__(self, "kind", LEGACY_PROBLEM_TYPES.get(self.problem_type))


# The sections below have no defaults on purpose: conf/ holds every default once (conf/<group>/*.yaml), and a
# key missing from a composed config or a recipe is a ConfigError naming it (`build_section`).
@dataclass(frozen=True)
class TokenizerConfig:
    kind: str
    vocab_size: int
    min_frequency: int
    lowercase: bool
    normalization: str


@dataclass(frozen=True)
class ModelConfig:
    """`name` picks the registered builder; `args` are its flat keyword arguments."""

    name: str
    args: Mapping[str, Any]
    tokenizer: TokenizerConfig | None  # None: the pretrained model brings its own


@dataclass(frozen=True)
class OptimizerConfig:
    name: str
    lr: float
    weight_decay: float
    betas: tuple[float, float]
    eps: float
    momentum: float
    nesterov: bool
    head_lr_scale: float  # pretrained: the task head's lr = lr x this (nlptune/train/optim.py)
    layer_decay: float  # pretrained: layer-wise lr decay, block i of L at lr x decay^(L - i); 1.0 = off


@dataclass(frozen=True)
class SchedulerConfig:
    name: str
    warmup_steps: int
    warmup_ratio: float
    power: float
    lr_end: float


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: int
    max_steps: int
    batch_size: int
    eval_batch_size: int
    gradient_accumulation_steps: int
    max_grad_norm: float
    eval_every: int
    patience: int
    mixed_precision: str
    group_by_length: bool
    device: str
    log_every: int
    num_workers: int
    threads: int
    compile: bool
    report_to: tuple[str, ...]  # experiment trackers; () = none
    save_every: int  # optimizer steps between checkpoints; 0 = every epoch end
    keep_last: int  # complete checkpoints kept; 0 = none written
    dist_timeout_s: int  # collective timeout across processes
    deterministic: bool  # torch deterministic algorithms (+ CUBLAS_WORKSPACE_CONFIG on GPU)
    # imbalance (classification kinds; nlptune/kinds/losses.py): none | balanced | a weight per output
    class_weights: str | tuple[float, ...] | None  # null = none
    pos_weight: str | tuple[float, ...] | None  # multi_label: each label's positive-example weight in BCE
    loss: str  # cross_entropy | focal
    focal_gamma: float
    label_smoothing: float
    measure_cost: bool  # the best model's inference cost in metrics.json (nlptune/train/cost.py)
    fast_dropout: bool  # CPU: dropout masks from a faster generator (nlptune/models/fast_dropout.py)
    clip_in_optimizer: bool  # the clip's scale applied inside fused Adam/AdamW (nlptune/train/clipping.py)
    longest_first: bool  # each epoch's first batch holds its longest row (nlptune/data/batching.py)
    average_from: float | None  # None = off; else average the weights of the evaluations from this fraction of
    # the steps on, kept as best if the mean scores better (nlptune/train/averaging.py)


@dataclass(frozen=True)
class AugmentConfig:
    """Noise applied to training batches only (never validation): per-token probabilities, seeded by `seed`."""

    name: str
    delete_prob: float  # random deletion (token dropout): the token is removed
    swap_prob: float  # random swap: the token trades places with another of its sentence
    unk_prob: float  # word dropout: the token becomes [UNK]


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation: the loss against a finished run's outputs, and the transfer set (conf/distill/)."""

    name: str
    teacher: str | None  # a finished run directory or a saved model folder; None: no distillation
    alpha: float  # loss = (1 - alpha) * gold loss + alpha * teacher loss
    loss: str  # mse | kl
    temperature: float  # kl only
    augment_copies: int  # transfer set: noised copies of every training text, labelled by the teacher only
    mask_prob: float
    replace_prob: float
    ngram_prob: float

    @property
    def active(self) -> bool:
        return self.teacher is not None


@dataclass(frozen=True)
class RunConfig:
    task: TaskConfig
    model: ModelConfig
    optimizer: OptimizerConfig
    scheduler: SchedulerConfig
    trainer: TrainerConfig
    augment: AugmentConfig
    distill: DistillConfig
    seed: int
    output_dir: str | None
    resume: str | None  # None | "auto" | a checkpoint or run directory path
    resume_allow_changes: bool
    # the resolved plain config as composed, for config.yaml and the manifest
    plain: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # where the run came from, for the manifest: {"recipe": ..., "trust_remote_code": ...} (nlptune/recipes/run.py)
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


# Keys added to a section after run directories, checkpoints and recipes were first written, with the value that
# behaves as nlptune did before they existed: a stored config that lacks one still loads (conf/ sets them all).
LATER_KEYS = {"trainer": {"class_weights": "none", "pos_weight": "none", "loss": "cross_entropy", "focal_gamma": 2.0,
                          "label_smoothing": 0.0, "measure_cost": True, "fast_dropout": False,
                          "clip_in_optimizer": False, "longest_first": False,
                          "average_from": None},
              "optimizer": {"head_lr_scale": 1.0, "layer_decay": 1.0}}


def build_section(cls, section: str, data: Mapping[str, Any], issues: list[ConfigIssue],
                  keys: Mapping[str, str] | None = None):
    """Instantiate dataclass ``cls`` from ``data``, recording unknown keys, missing keys and wrong types in
    ``issues``; None when a field without a default is missing (the caller raises `ConfigError`).

    ``keys`` maps a field name to its key in the config where the two differ (for the messages).
    """
    keys = keys or {}
    known = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "plain"}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"did you mean '{section}.{close[0]}'?" if close else f"valid keys: {', '.join(known)}"
            issues.append(ConfigIssue(f"{section}.{key}", "unknown key", hint))
            continue
        kwargs[key] = freeze(value)
        _check_type(f"{section}.{keys.get(key, key)}", kwargs[key], hints[key], issues)
    missing = [key for key, f in known.items() if key not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    for key in missing:  # conf/ holds every default once, so a missing key is a config (or recipe) problem
        issues.append(ConfigIssue(f"{section}.{keys.get(key, key)}", "missing key",
                                  f"set it (conf/{section}/ gives every key a value; a recipe's config lists "
                                  "every key)"))
    return None if missing else cls(**kwargs)


def _accepted_types(annotation: Any) -> tuple[tuple[type, ...], bool] | None:
    """(types a value may have, whether None is allowed) for a field annotation; None: not checked here."""
    optional = False
    options = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(options) < len(typing.get_args(annotation))
    accepted = []
    for option in options:
        origin = typing.get_origin(option) or option
        if origin is collections.abc.Mapping or origin is dict:
            accepted.append(Mapping)
        elif origin in (tuple, list):
            accepted.append(tuple)  # lists are frozen to tuples
        elif origin in (str, int, float, bool):
            accepted.append(origin)
        else:
            return None  # Any and the like: the value checks (validate.py) look at it
    return tuple(accepted), optional


def _check_type(key: str, value: Any, annotation: Any, issues: list[ConfigIssue]) -> None:
    found = _accepted_types(annotation)
    if found is None:
        return
    accepted, optional = found
    if value is None:
        ok = optional
    elif isinstance(value, bool):  # a bool is an int to isinstance; true is never a number here
        ok = bool in accepted
    elif isinstance(value, int) and float in accepted:
        ok = True
    else:
        ok = isinstance(value, accepted)
    if not ok:
        name = " or ".join("mapping" if t is Mapping else "list" if t is tuple else t.__name__ for t in accepted)
        fix = f"set it to {with_article(name)}"
        if tuple in accepted and isinstance(value, str):  # `report_to=wandb` for `[wandb]`
            from nlptune.config.compose import override_value

            fix += f", e.g. {key}={override_value([value])} for that one value"
        issues.append(ConfigIssue(key, f"expected {name}, got {plain_data(value)!r}", fix))


# Sections added after run directories, checkpoints and recipes were first written, with the values that behave as
# nlptune did before them (conf/ selects them all): a stored config without one still loads, as it ran.
LATER_SECTIONS = {"distill": {"name": "none", "teacher": None, "alpha": 0.5, "loss": "mse", "temperature": 2.0,
                              "augment_copies": 0, "mask_prob": 0.1, "replace_prob": 0.1, "ngram_prob": 0.25}}
SECTIONS = ("task", "model", "optimizer", "scheduler", "trainer", "augment", *LATER_SECTIONS)


def with_later_sections(plain: Mapping[str, Any]) -> dict:
    """A stored plain config (config.yaml, a checkpoint's or a recipe's) with the sections and keys it predates
    filled in (`LATER_SECTIONS`, `LATER_KEYS`) as nlptune behaved before them; a copy, its own values kept."""
    filled = dict(plain)
    for section, values in LATER_SECTIONS.items():
        if section not in filled:
            filled[section] = dict(values)
    for section, keys in LATER_KEYS.items():  # and the keys added to a section since (a resume compares them)
        if isinstance(filled.get(section), Mapping):
            filled[section] = {**keys, **filled[section]}
    return filled


def build_run_config(plain: Mapping[str, Any]) -> RunConfig:
    """Turn the composed plain config into a validated `RunConfig`; raise `ConfigError` listing every problem."""
    issues: list[ConfigIssue] = []
    plain = with_later_sections(plain)
    plain.pop("tune", None)  # the sweep's own section (nlptune/config/tune.py); it never reaches training
    for section in SECTIONS:
        value = plain.get(section)
        if value is None:
            issues.append(ConfigIssue(section, "missing section", f"select one, e.g. {section}=<name>"))
        elif not isinstance(value, Mapping):  # e.g. a hand-written recipe's `task: sst2`, Hydra's way of naming it
            issues.append(ConfigIssue(section, f"{value!r} is not a section of keys", f"give its keys (a recipe's "
                                      f"config lists them all: see `nlptune recipes show sst2-lstm`), or select one "
                                      f"on the command line, e.g. {section}=<name>"))
    for key in RUN_KEYS:
        if key not in plain:
            issues.append(ConfigIssue(key, "missing key", "set it (conf/config.yaml gives it a value; a recipe's "
                                      "config lists every key)"))
    if issues:
        raise ConfigError(issues)
    model_plain = dict(plain["model"])
    name = model_plain.pop("name", None)
    if name is None:
        issues.append(ConfigIssue("model.name", "missing key", "pick a model, e.g. model=lstm"))
    # the scratch tokenizer's keys sit in the model group; `model.tokenizer` is TokenizerConfig.kind
    tok_plain = {("kind" if k == "tokenizer" else k): model_plain.pop(k) for k in TOKENIZER_KEYS if k in model_plain}
    tokenizer = build_section(TokenizerConfig, "model", tok_plain, issues, keys={"kind": "tokenizer"}) \
        if tok_plain else None
    run = RunConfig(
        task=build_section(TaskConfig, "task", plain["task"], issues),
        model=ModelConfig(name=name, args=freeze(model_plain), tokenizer=tokenizer),
        optimizer=build_section(OptimizerConfig, "optimizer", plain["optimizer"], issues),
        scheduler=build_section(SchedulerConfig, "scheduler", plain["scheduler"], issues),
        trainer=build_section(TrainerConfig, "trainer", plain["trainer"], issues),
        augment=build_section(AugmentConfig, "augment", plain["augment"], issues),
        distill=build_section(DistillConfig, "distill", plain["distill"], issues),
        **{key: plain[key] for key in RUN_KEYS},
        plain=freeze(plain),
    )
    unknown_top = set(plain) - {*SECTIONS, *RUN_KEYS}
    for key in sorted(unknown_top):
        issues.append(ConfigIssue(key, "unknown top-level key", "remove it"))
    from nlptune.config.validate import validate_values

    # beside keys refused for their type, the checks that can still judge the others run: one pass, every problem
    issues.extend(validate_values(run, refused={issue.key for issue in issues}))
    if issues:
        raise ConfigError(issues)
    return run
