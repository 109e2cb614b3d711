"""Typed, frozen run configuration, built from the composed (plain) config and validated in one pass.

Every problem found is collected so the user sees all of them at once (`ConfigError`).
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from nlptune.config.errors import ConfigError, ConfigIssue

# What config validation must know of each problem kind (nlptune/kinds/ implements the rest; the kind names are
# config/names.py NAMES["kind"]): the metrics it can report, and whether task.label_names applies to it.
METRICS = {"single_label": ("accuracy", "f1", "mcc"), "regression": ("pearson", "spearman", "mse")}
KINDS_WITH_LABEL_NAMES = ("single_label",)
# The key before task.kind: task.problem_type (still in older configs, recipes and run directories) -> the kind.
LEGACY_PROBLEM_TYPES = {"classification": "single_label", "regression": "regression"}

TOKENIZERS = ("wordlevel", "wordpiece")
NORMALIZATIONS = ("nfkc", "nfc", "nfd", "nfkd", "none")
OPTIMIZERS = ("adamw", "adam", "sgd", "rmsprop", "adagrad")
SCHEDULERS = ("constant", "linear", "cosine", "polynomial")
PRECISIONS = ("no", "fp16", "bf16", "auto")
DEVICES = ("auto", "cpu", "cuda")
REPORTERS = ("tensorboard", "mlflow", "wandb")
# Keys of the model group that configure the scratch tokenizer rather than the network.
TOKENIZER_KEYS = ("tokenizer", "vocab_size", "min_frequency", "lowercase", "normalization")


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

    @property
    def is_pair(self) -> bool:
        return len(self.text_fields) == 2

    def __post_init__(self) -> None:
        if self.kind is None and isinstance(self.problem_type, str):
            object.__setattr__(self, "kind", LEGACY_PROBLEM_TYPES.get(self.problem_type))


@dataclass(frozen=True)
class TokenizerConfig:
    kind: str = "wordlevel"
    vocab_size: int = 30000
    min_frequency: int = 1
    lowercase: bool = True
    normalization: str = "nfkc"


@dataclass(frozen=True)
class ModelConfig:
    """`name` picks the registered builder; `args` are its flat keyword arguments."""

    name: str
    args: Mapping[str, Any]
    tokenizer: TokenizerConfig | None  # None: the pretrained model brings its own


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.0
    nesterov: bool = False


@dataclass(frozen=True)
class SchedulerConfig:
    name: str = "linear"
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    power: float = 1.0
    lr_end: float = 1e-7


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: int = 3
    max_steps: int = 0
    batch_size: int = 32
    eval_batch_size: int = 128
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    eval_every: int = 0
    patience: int = 0
    mixed_precision: str = "no"
    group_by_length: bool = True
    device: str = "auto"
    log_every: int = 50
    num_workers: int = 0
    threads: int = 0
    compile: bool = False
    report_to: tuple[str, ...] = ("tensorboard",)  # experiment trackers; () = none
    save_every: int = 0  # optimizer steps between checkpoints; 0 = every epoch end
    keep_last: int = 2  # complete checkpoints kept; 0 = none written
    dist_timeout_s: int = 300  # collective timeout across processes
    deterministic: bool = False  # torch deterministic algorithms (+ CUBLAS_WORKSPACE_CONFIG on GPU)


@dataclass(frozen=True)
class AugmentConfig:
    """Noise applied to training batches only (never validation): per-token probabilities, seeded by `seed`."""

    name: str = "none"
    delete_prob: float = 0.0  # random deletion (token dropout): the token is removed
    swap_prob: float = 0.0  # random swap: the token trades places with another of its sentence
    unk_prob: float = 0.0  # word dropout: the token becomes [UNK]


@dataclass(frozen=True)
class RunConfig:
    task: TaskConfig
    model: ModelConfig
    optimizer: OptimizerConfig
    scheduler: SchedulerConfig
    trainer: TrainerConfig
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 42
    output_dir: str | None = None
    resume: str | None = None  # None | "auto" | a checkpoint or run directory path
    resume_allow_changes: bool = False
    # the resolved plain config as composed, for config.yaml and the manifest
    plain: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # where the run came from, for the manifest: {"recipe": ..., "trust_remote_code": ...} (config/recipe_run.py)
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _build(cls, section: str, data: Mapping[str, Any], issues: list[ConfigIssue]):
    """Instantiate dataclass ``cls`` from ``data``, recording unknown keys and wrong types."""
    known = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "plain"}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"did you mean '{section}.{close[0]}'?" if close else f"valid keys: {', '.join(known)}"
            issues.append(ConfigIssue(f"{section}.{key}", "unknown key", hint))
            continue
        kwargs[key] = _freeze(value)
    for key, f in known.items():
        if key in kwargs:
            _check_type(section, key, kwargs[key], f.default, issues)
    return cls(**kwargs)


def _check_type(section: str, key: str, value: Any, default: Any, issues: list[ConfigIssue]) -> None:
    if value is None or default is None or default is dataclasses.MISSING:
        return
    expected = type(default)
    ok = isinstance(value, expected)
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok:
        issues.append(ConfigIssue(f"{section}.{key}", f"expected {expected.__name__}, got {value!r}",
                                  f"set it to a {expected.__name__}"))


def build_run_config(plain: Mapping[str, Any]) -> RunConfig:
    """Turn the composed plain config into a validated `RunConfig`; raise `ConfigError` listing every problem."""
    issues: list[ConfigIssue] = []
    plain = dict(plain)
    plain.pop("tune", None)  # the sweep's own section (nlptune/config/tune.py); it never reaches training
    for section in ("task", "model", "optimizer", "scheduler", "trainer"):
        if not isinstance(plain.get(section), Mapping):
            issues.append(ConfigIssue(section, "missing section", f"select one, e.g. {section}=<name>"))
    if issues:
        raise ConfigError(issues)
    model_plain = dict(plain["model"])
    name = model_plain.pop("name", None)
    tok_plain = {k: model_plain.pop(k) for k in TOKENIZER_KEYS if k in model_plain}
    tokenizer = None
    if tok_plain:
        tok_plain["kind"] = tok_plain.pop("tokenizer", "wordlevel")
        tokenizer = _build(TokenizerConfig, "model", tok_plain, issues)
    run = RunConfig(
        task=_build(TaskConfig, "task", plain["task"], issues),
        model=ModelConfig(name=name, args=_freeze(model_plain), tokenizer=tokenizer),
        optimizer=_build(OptimizerConfig, "optimizer", plain["optimizer"], issues),
        scheduler=_build(SchedulerConfig, "scheduler", plain["scheduler"], issues),
        trainer=_build(TrainerConfig, "trainer", plain["trainer"], issues),
        augment=_build(AugmentConfig, "augment", plain.get("augment") or {}, issues),
        seed=plain.get("seed", 42),
        output_dir=plain.get("output_dir"),
        resume=plain.get("resume"),
        resume_allow_changes=plain.get("resume_allow_changes", False),
        plain=_freeze(plain),
    )
    unknown_top = set(plain) - {"task", "model", "optimizer", "scheduler", "trainer", "augment", "seed", "output_dir",
                                "resume", "resume_allow_changes"}
    for key in sorted(unknown_top):
        issues.append(ConfigIssue(key, "unknown top-level key", "remove it"))
    if not issues:
        from nlptune.config.validate import validate_values

        issues.extend(validate_values(run))
    if issues:
        raise ConfigError(issues)
    return run
