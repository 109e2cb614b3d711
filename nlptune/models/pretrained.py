"""Pretrained Transformers checkpoints with a sequence-classification head ("pretrained").

The model returned is the plain ``AutoModelForSequenceClassification`` instance so that
``save_pretrained`` / ``from_pretrained`` keep working on it. Its pooling choice (``pooling=mean``) is recorded
in its config (config.json) and put back on loading (`restore_pooling`).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

from nlptune.config.names import PRETRAINED
from nlptune.config.registry import register
from nlptune.models.layers import ModelArgumentError, check_choice, check_int, check_prob
from nlptune.models.remote_code import check_remote_code, model_file
from nlptune.utils.errors import NlptuneError
from nlptune.utils.network import hub_or_cache
from nlptune.utils.plain import plain_data

# Config attribute names, per override, across architectures; the first one present is set.
DROPOUT_ATTRIBUTES = {
    "hidden_dropout": ("hidden_dropout_prob", "dropout", "hidden_dropout", "resid_pdrop", "dropout_rate"),
    "attention_dropout": ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop",
                          "attention_probs_dropout"),
    "classifier_dropout": ("classifier_dropout", "seq_classif_dropout", "classifier_dropout_prob",
                           "summary_last_dropout"),
}
# Where the stack of transformer blocks lives in the base model, for the common families.
LAYER_PATHS = ("encoder.layer", "encoder.layers", "layers", "layer", "transformer.layer", "h",
               "encoder.block", "block")
# What the classification head reads: "cls", the checkpoint's own choice (the first token, or the pooler
# computed from it); "mean", the mean of the last hidden states over the real tokens (what sentence-transformers
# checkpoints such as all-MiniLM-L6-v2 were trained to embed a text with).
POOLINGS = ("cls", "mean")
POOLING_ATTRIBUTE = "nlptune_pooling"  # the config.json key that keeps the choice with the weights
# Model types whose sequence-classification head reads the base model's pooler output or its first token's last
# hidden state: the two places `_mean_pooled` writes the mean. A head that reads anything else (the last token,
# as decoder models do) would silently ignore it, so other types are refused.
FIRST_TOKEN_HEADS = ("albert", "bert", "camembert", "data2vec-text", "deberta", "deberta-v2", "distilbert",
                     "electra", "ernie", "megatron-bert", "mpnet", "roberta", "xlm-roberta", "xlm-roberta-xl")
RUNTIME_ARGS = ("vocab_size", "pad_token_id", "pair", "vocab", "per_token")
# The transformers auto classes a problem kind may ask for (`Kind.hf_auto_model`), by name: an allowlist, never
# an arbitrary attribute of transformers.
AUTO_MODELS = {"AutoModelForSequenceClassification": AutoModelForSequenceClassification,
               "AutoModelForTokenClassification": AutoModelForTokenClassification}


def apply_dropout_overrides(config, **overrides: float | None) -> None:
    """Set each non-None override on the attribute this architecture uses for it."""
    for key, value in overrides.items():
        if value is None:
            continue
        check_prob(key, value)
        attr = next((a for a in DROPOUT_ATTRIBUTES[key] if hasattr(config, a)), None)
        if attr is None:
            raise ModelArgumentError(f"{key}={value!r} cannot be applied: model type {config.model_type!r} has "
                             f"none of the config attributes {', '.join(DROPOUT_ATTRIBUTES[key])}")
        setattr(config, attr, float(value))


def find_layers(base_model: nn.Module) -> nn.ModuleList | None:
    """The ModuleList of transformer blocks: a known path, else the longest ModuleList."""
    for path in LAYER_PATHS:
        module = base_model
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            return module
    lists = [m for m in base_model.modules() if isinstance(m, nn.ModuleList)]
    return max(lists, key=len, default=None)


def freeze(model: nn.Module, *, embeddings: bool, layers: int) -> None:
    """Freeze the base model's embeddings and/or its bottom ``layers`` transformer blocks."""
    check_int("freeze_layers", layers, minimum=0)
    base = model.base_model
    if embeddings:
        module = getattr(base, "embeddings", None)
        (module if module is not None else base.get_input_embeddings()).requires_grad_(False)
    if layers:
        blocks = find_layers(base)
        if blocks is None:
            raise ModelArgumentError(f"freeze_layers={layers} but no layer stack was found in {type(base).__name__}")
        if layers > len(blocks):
            raise ModelArgumentError(f"freeze_layers={layers} is larger than the model's {len(blocks)} layers")
        for block in blocks[:layers]:
            block.requires_grad_(False)


def reinitialise_top(model: nn.Module, layers: int) -> None:
    """Put the top ``layers`` transformer blocks and the pooler (when the model has one) back to the
    architecture's random initialisation (Zhang et al. 2021, "Revisiting few-sample BERT fine-tuning": the top
    blocks of a pretrained encoder specialise to its pretraining task; re-initialised, they fine-tune better on
    small data). Draws from torch's global generator: the run's seed makes it repeatable."""
    check_int("reinit_layers", layers, minimum=0)
    if not layers:
        return
    base = model.base_model
    blocks = find_layers(base)
    if blocks is None:
        raise ModelArgumentError(f"reinit_layers={layers} but no layer stack was found in {type(base).__name__}")
    if layers > len(blocks):
        raise ModelArgumentError(f"reinit_layers={layers} is larger than the model's {len(blocks)} layers")
    modules = list(blocks[len(blocks) - layers:])
    if isinstance(getattr(base, "pooler", None), nn.Module):
        modules.append(base.pooler)
    for module in modules:
        # from_pretrained marks what it loaded as initialised, and transformers' init functions skip such tensors
        for part in (*module.modules(), *module.parameters(), *module.buffers()):
            if getattr(part, "_is_hf_initialized", False):
                part._is_hf_initialized = False
        module.apply(model._init_weights)


def _mean_pooled(base: nn.Module, args: tuple, kwargs: dict, output):
    """Forward hook of the base model (``pooling=mean``): the mean of the last hidden states over the real tokens
    (the attention mask's ones) takes the place of the pooler output and of the first token's state, which the
    classification head reads."""
    hidden = output[0]
    mask = kwargs.get("attention_mask")
    if mask is None:
        mask = args[1] if len(args) > 1 and args[1] is not None else hidden.new_ones(hidden.shape[:2])
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    output.last_hidden_state = torch.cat([mean.unsqueeze(1), hidden[:, 1:]], dim=1)
    if getattr(output, "pooler_output", None) is not None:
        output.pooler_output = mean
    return output


def use_pooling(model: nn.Module, pooling: str) -> None:
    """Make ``model``'s sequence-classification head read ``pooling`` (`POOLINGS`) and record it in the model's
    config, which ``save_pretrained`` writes to config.json. Raises `ModelArgumentError` for a model type whose
    head reads neither the first token nor the pooler (`FIRST_TOKEN_HEADS`)."""
    check_choice("pooling", pooling, POOLINGS)
    if pooling == "cls":  # a checkpoint fine-tuned with mean pooling, fine-tuned again with cls, must not keep it
        if hasattr(model.config, POOLING_ATTRIBUTE):
            delattr(model.config, POOLING_ATTRIBUTE)
        return
    model_type = getattr(model.config, "model_type", None)
    if model_type not in FIRST_TOKEN_HEADS:
        raise ModelArgumentError(f"pooling={pooling!r} is not available for model type {model_type!r}: its "
                                 "classification head does not read the first token; set pooling=cls (mean "
                                 f"pooling works for: {', '.join(FIRST_TOKEN_HEADS)})")
    setattr(model.config, POOLING_ATTRIBUTE, pooling)
    base = model.base_model
    if _mean_pooled not in base._forward_hooks.values():  # once, however often it is asked
        base.register_forward_hook(_mean_pooled, with_kwargs=True)


def restore_pooling(model: nn.Module) -> nn.Module:
    """Put back the pooling a saved model was trained with (its config's `POOLING_ATTRIBUTE`; none: cls)."""
    use_pooling(model, getattr(model.config, POOLING_ATTRIBUTE, "cls"))
    return model


def saved_pooling(folder) -> str:
    """The pooling of the transformers model saved in ``folder`` (its config.json; cls when unrecorded)."""
    import json
    from pathlib import Path

    try:
        return str(json.loads((Path(folder) / "config.json").read_text()).get(POOLING_ATTRIBUTE, "cls"))
    except (OSError, ValueError, AttributeError):  # missing, unreadable or not an object: no choice recorded
        return "cls"


def _load_model(auto_model, name_or_path: str, config, **kwargs) -> nn.Module:
    try:  # SDPA is the fast fused attention; not every architecture implements it
        return auto_model.from_pretrained(name_or_path, config=config, attn_implementation="sdpa", **kwargs)
    except (ValueError, ImportError) as err:
        if "sdpa" not in str(err) and "scaled_dot_product_attention" not in str(err):
            raise
    return auto_model.from_pretrained(name_or_path, config=config, **kwargs)


@register("model", PRETRAINED)
def build_pretrained(*, name_or_path: str, num_labels: int, id2label: dict[int, str] | None = None,
                     problem_type: str | None = None, auto_model: str = "AutoModelForSequenceClassification",
                     revision: str | None = None, hidden_dropout: float | None = None,
                     attention_dropout: float | None = None, classifier_dropout: float | None = None,
                     freeze_embeddings: bool = False, freeze_layers: int = 0, reinit_layers: int = 0,
                     pooling: str = "cls", trust_remote_code: bool = False, use_safetensors: bool = True,
                     **ignored_runtime_args) -> nn.Module:
    """A pretrained checkpoint (hub id or local directory) with a fresh or existing head of ``num_labels``
    outputs. The problem kind gives ``problem_type``, transformers' name of what the outputs mean
    (`Kind.hf_problem_type`: "single_label_classification", "regression"; None leaves transformers to infer
    it), and ``auto_model``, the transformers auto class of the head (`Kind.hf_auto_model`, one of AUTO_MODELS).
    ``pooling`` (`POOLINGS`): what a text classifier's head reads; a word tagger's head reads every token.

    The scratch runtime args (vocab_size, pair, vocab) are accepted and ignored: the checkpoint brings its own
    tokenizer and encodes pairs as one sequence. ``pad_token_id`` (the tokenizer's) is set on a checkpoint's config
    that has none (a decoder's, e.g. GPT-2's: its classification head reads each text's last token that is not
    padding, and refuses batches of several texts without knowing the padding id).
    """
    args = {k: v for k, v in locals().items() if k != "ignored_runtime_args"}
    unknown = sorted(set(ignored_runtime_args) - set(RUNTIME_ARGS))
    if unknown:
        raise ValueError(f"pretrained model got unknown argument(s) {', '.join(unknown)}; it takes "
                         "name_or_path, num_labels, id2label, problem_type, auto_model, revision, hidden_dropout, "
                         "attention_dropout, classifier_dropout, freeze_embeddings, freeze_layers, "
                         "reinit_layers, pooling, trust_remote_code, use_safetensors")
    if auto_model not in AUTO_MODELS:
        raise ValueError(f"auto_model={auto_model!r} is not one of {', '.join(AUTO_MODELS)}")
    check_int("num_labels", num_labels)
    check_int("freeze_layers", freeze_layers, minimum=0)
    check_int("reinit_layers", reinit_layers, minimum=0)
    check_choice("pooling", pooling, POOLINGS)
    if pooling != "cls" and auto_model != "AutoModelForSequenceClassification":
        raise ModelArgumentError(f"pooling={pooling!r} is for a classifier of whole texts; a word tagger's head "
                                 "reads every token: set model.pooling=cls")
    hub = {"trust_remote_code": trust_remote_code}
    if revision is not None:  # from_pretrained's own default is "main"; None would override it
        hub["revision"] = revision
    check_remote_code(name_or_path, revision, trust_remote_code=trust_remote_code)  # before loading
    with hub_or_cache(name_or_path):  # no network: the cache only, at once
        config = AutoConfig.from_pretrained(name_or_path, num_labels=num_labels, **hub)
    if problem_type is not None:
        config.problem_type = problem_type
    if getattr(config, "pad_token_id", None) is None and ignored_runtime_args.get("pad_token_id") is not None:
        config.pad_token_id = ignored_runtime_args["pad_token_id"]
    if id2label is not None:
        labels = {int(k): str(v) for k, v in dict(id2label).items()}
        if sorted(labels) != list(range(num_labels)):
            raise ValueError(f"id2label={labels!r} must map exactly the ids 0..{num_labels - 1}")
        config.id2label, config.label2id = labels, {v: k for k, v in labels.items()}
    apply_dropout_overrides(config, hidden_dropout=hidden_dropout, attention_dropout=attention_dropout,
                            classifier_dropout=classifier_dropout)
    with hub_or_cache(name_or_path):
        model = _load_model(AUTO_MODELS[auto_model], name_or_path, config, use_safetensors=use_safetensors, **hub)
    reinitialise_top(model, reinit_layers)
    use_pooling(model, pooling)
    freeze(model, embeddings=freeze_embeddings, layers=freeze_layers)
    model.builder_args = {"name": PRETRAINED, **{k: plain_data(v) for k, v in args.items()}}
    return model


# The config.json keys that hold the number of transformer blocks, across architectures (BERT's first).
LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layers", "n_layer", "num_layers")


def _check_args(args: dict) -> None:
    """The arguments' checks that need the checkpoint's config.json (a local folder's, or a hub id's from the cache,
    or fetched when the hub is reachable): ``freeze_layers`` and ``reinit_layers`` at most its number of layers.
    Read by config validation, so a run is refused before its data is read."""
    name = args.get("name_or_path")
    if not isinstance(name, str) or not name:  # missing: the builder's own check says so
        return
    try:  # a problem reading it (no such folder, a broken file) is said when the model loads, with the rest
        config = model_file(name, "config.json", args.get("revision"), required=False) or {}
    except NlptuneError:
        return
    count = next((config[key] for key in LAYER_COUNT_KEYS if isinstance(config.get(key), int)), None)
    for key in ("freeze_layers", "reinit_layers"):
        layers = args.get(key)
        if count is not None and isinstance(layers, int) and layers > count:
            raise ModelArgumentError(f"{key}={layers} is more than the {count} layers of {name}; set "
                                     f"model.{key}={count} or less")


build_pretrained.choices = {"pooling": POOLINGS}  # read by config validation
build_pretrained.check_args = _check_args
build_pretrained.per_token = True  # read by config validation: a token-classification head tags every word
