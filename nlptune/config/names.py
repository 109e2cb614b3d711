"""The one list of registered names for each kind of component (no torch: config validation and `--help` use
them). Implementations register against these lists (`nlptune.config.registry.register`), and
tests/unit/test_registry.py checks that the names and the implementations agree.
"""
from __future__ import annotations

# the pretrained-checkpoint model; every other model is trained from scratch with its own tokenizer
PRETRAINED = "pretrained"

NAMES: dict[str, tuple[str, ...]] = {
    "model": ("bag", "cnn", "lstm", "gru", "transformer", PRETRAINED),
    "optimizer": ("adamw", "adam", "sgd", "rmsprop", "adagrad"),
    "scheduler": ("constant", "linear", "cosine", "polynomial"),
    # problem kinds (nlptune/kinds/): what a label is
    "kind": ("single_label", "multi_label", "regression", "tokens"),
    "metric": ("accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman", "mse"),
}

# each kind's generic task (conf/task/<name>.yaml: the kind's metrics, no data of its own), where a user's own data
# of that kind starts from: a task config of another kind carries that kind's metrics
GENERIC_TASKS = {"single_label": "text_classification", "multi_label": "multi_label",
                 "regression": "text_regression", "tokens": "token_classification"}


# the inference-cost figures a run records in metrics.json's "cost" section (nlptune/train/cost.py), under the
# names cost-aware sweeps give them (objectives and constraints): parameters, MB of weights on disk, ms per example
# at batch 1, examples per second at batch 32
COST_FIGURES = ("params", "size_mb", "latency_ms", "throughput")


def names(component: str) -> tuple[str, ...]:
    """The registered names of ``component`` (model, optimizer, scheduler, kind, metric)."""
    return NAMES[component]


def is_pretrained(model_name: str) -> bool:
    """True when ``model_name`` is the pretrained-checkpoint model (not a from-scratch one)."""
    return model_name == PRETRAINED
