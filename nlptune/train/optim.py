"""Optimizers and learning-rate schedules, each registered by its name in `nlptune.config.names` when this module
is imported (the schedules are transformers' scheduler functions)."""
from __future__ import annotations

import math

import torch

from nlptune.config.registry import lookup, register
from nlptune.config.schema import OptimizerConfig, SchedulerConfig

_NORMS = (torch.nn.LayerNorm, torch.nn.BatchNorm1d, torch.nn.GroupNorm, torch.nn.RMSNorm)


def _no_decay_ids(model: torch.nn.Module) -> set[int]:
    """Biases and norm weights: never decayed (decaying them only hurts)."""
    no_decay = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if isinstance(module, _NORMS) or "bias" in name or "norm" in type(module).__name__.lower():
                no_decay.add(id(param))
    return no_decay


def lr_scales(model: torch.nn.Module, head_lr_scale: float = 1.0, layer_decay: float = 1.0) -> dict[int, float]:
    """Each parameter's learning-rate multiplier (by ``id``) for a pretrained encoder with a task head.

    The head (every parameter outside ``model.base_model``: weights the checkpoint did not have) gets
    ``head_lr_scale``. With ``layer_decay`` < 1 (layer-wise lr decay, Clark et al. 2020; Zhang et al. 2021), block
    i of the L transformer blocks gets ``layer_decay ** (L - i)``, the embeddings ``layer_decay ** (L + 1)``, and
    what sits above the blocks (a pooler, a final norm) 1: the lower layers, which hold general features, move
    least. A model without ``base_model`` (scratch models) gets 1 everywhere."""
    from nlptune.models.pretrained import find_layers

    base = getattr(model, "base_model", None)
    if base is None or base is model:
        return {id(p): 1.0 for p in model.parameters()}
    scales = {id(p): head_lr_scale for p in model.parameters()}
    in_base = {id(p) for p in base.parameters()}
    scales.update({pid: 1.0 for pid in in_base})
    blocks = find_layers(base) if layer_decay != 1.0 else None
    if blocks is not None:
        depth = len(blocks)
        in_blocks = set()
        for index, block in enumerate(blocks):
            for p in block.parameters():
                scales[id(p)] = layer_decay ** (depth - index)
                in_blocks.add(id(p))
        embeddings = getattr(base, "embeddings", None) or base.get_input_embeddings()
        for p in embeddings.parameters():
            if id(p) not in in_blocks:
                scales[id(p)] = layer_decay ** (depth + 1)
    return scales


def parameter_groups(model: torch.nn.Module, weight_decay: float, lr: float = 1.0, head_lr_scale: float = 1.0,
                     layer_decay: float = 1.0) -> list[dict]:
    """The trainable parameters in groups of equal weight decay (none for biases and norms) and equal learning
    rate (``lr`` x `lr_scales`); each group keeps its multiplier as ``lr_scale`` (lr-find sweeps the base lr)."""
    no_decay, scales = _no_decay_ids(model), lr_scales(model, head_lr_scale, layer_decay)
    groups: dict[tuple[bool, float], list] = {(False, 1.0): [], (True, 1.0): []}  # always both, as before
    for param in model.parameters():
        if param.requires_grad:
            key = (id(param) in no_decay, scales[id(param)])
            groups.setdefault(key, []).append(param)
    # decayed first, then by falling lr: the order is fixed, so a checkpoint's optimizer state maps back
    return [{"params": params, "weight_decay": 0.0 if plain else weight_decay, "lr": lr * scale, "lr_scale": scale}
            for (plain, scale), params in sorted(groups.items(), key=lambda item: (item[0][0], -item[0][1]))]


def _fast_path(device: torch.device) -> dict:
    # Fused kernels exist for CUDA and (since torch 2.4) CPU Adam/AdamW/SGD; one kernel per step instead of
    # one per parameter tensor.
    return {"fused": True} if device.type in ("cuda", "cpu") else {"foreach": True}


@register("optimizer", "adamw")
def _adamw(groups, cfg: OptimizerConfig, device):
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **_fast_path(device))


@register("optimizer", "adam")
def _adam(groups, cfg: OptimizerConfig, device):
    return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **_fast_path(device))


@register("optimizer", "sgd")
def _sgd(groups, cfg: OptimizerConfig, device):
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                           **_fast_path(device))


@register("optimizer", "rmsprop")
def _rmsprop(groups, cfg: OptimizerConfig, device):
    return torch.optim.RMSprop(groups, lr=cfg.lr, eps=cfg.eps, momentum=cfg.momentum, foreach=True)


@register("optimizer", "adagrad")
def _adagrad(groups, cfg: OptimizerConfig, device):
    return torch.optim.Adagrad(groups, lr=cfg.lr, eps=cfg.eps, foreach=True)


def build_optimizer(model: torch.nn.Module, cfg: OptimizerConfig, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer ``cfg.name`` over ``model``'s trainable parameters."""
    groups = parameter_groups(model, cfg.weight_decay, cfg.lr, cfg.head_lr_scale, cfg.layer_decay)
    return lookup("optimizer", cfg.name)(groups, cfg, device)


def base_lr(scheduler) -> float:
    """The schedule's current learning rate before any group's multiplier (`lr_scales`): what the run logs."""
    group = scheduler.optimizer.param_groups[0]
    return scheduler.get_last_lr()[0] / group.get("lr_scale", 1.0)


def warmup_steps(cfg: SchedulerConfig, total_steps: int) -> int:
    """``warmup_steps`` when set, else ``warmup_ratio`` of the total optimizer steps (rounded up)."""
    return cfg.warmup_steps if cfg.warmup_steps > 0 else math.ceil(cfg.warmup_ratio * total_steps)


# registered schedule name -> transformers' name; every one warms up linearly over `warmup_steps(...)` steps
TRANSFORMERS_SCHEDULES = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine",
                          "polynomial": "polynomial"}


def _transformers_schedule(hf_name: str):
    """A scheduler builder ``(optimizer, cfg, total_steps) -> schedule`` for transformers' ``hf_name``."""
    def build(optimizer, cfg: SchedulerConfig, total_steps: int):
        from transformers import get_scheduler

        extra = {"power": cfg.power, "lr_end": cfg.lr_end} if hf_name == "polynomial" else None
        return get_scheduler(hf_name, optimizer, num_warmup_steps=warmup_steps(cfg, total_steps),
                             num_training_steps=total_steps, scheduler_specific_kwargs=extra)

    return build


for _name, _hf_name in TRANSFORMERS_SCHEDULES.items():
    register("scheduler", _name)(_transformers_schedule(_hf_name))


def build_scheduler(optimizer, cfg: SchedulerConfig, total_steps: int):
    """The schedule ``cfg.name`` (transformers' constant, linear, cosine or polynomial decay) with linear
    warmup over ``warmup_steps(cfg, total_steps)`` steps."""
    return lookup("scheduler", cfg.name)(optimizer, cfg, total_steps)
