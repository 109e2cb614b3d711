"""Optimizers and learning-rate schedules, each registered by its name in `nlptune.config.names` when this module
is imported (the schedules are transformers' scheduler functions)."""
from __future__ import annotations

import math

import torch

from nlptune.config.registry import lookup, register
from nlptune.config.schema import OptimizerConfig, SchedulerConfig

_NORMS = (torch.nn.LayerNorm, torch.nn.BatchNorm1d, torch.nn.GroupNorm, torch.nn.RMSNorm)


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: decayed weights, and biases / norm weights (never decayed; decaying them only hurts)."""
    no_decay = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if isinstance(module, _NORMS) or "bias" in name or "norm" in type(module).__name__.lower():
                no_decay.add(id(param))
    decay, plain = [], []
    for param in model.parameters():
        if param.requires_grad:
            (plain if id(param) in no_decay else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


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
    return lookup("optimizer", cfg.name)(parameter_groups(model, cfg.weight_decay), cfg, device)


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
