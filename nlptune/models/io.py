"""Saving and loading from-scratch models: safetensors weights + the builder arguments as JSON.

No pickle anywhere: the weights are plain tensors and the architecture is rebuilt from the
registry with the recorded arguments.
"""
from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from nlptune.config.names import is_pretrained
from nlptune.utils.plain import parse_json
from nlptune.utils.weights import load_module, save_module

WEIGHTS_FILE = "model.safetensors"
ARGS_FILE = "nlptune_model.json"


def save_scratch_model(model: nn.Module, directory: str | Path) -> Path:
    """Write ``model.safetensors`` and ``nlptune_model.json`` (the builder_args) to ``directory``."""
    args = getattr(model, "builder_args", None)
    if not args or "name" not in args:
        raise ValueError("the model has no builder_args; build it with nlptune.models.build_model")
    if is_pretrained(args["name"]):
        raise ValueError("pretrained models are saved with model.save_pretrained(directory), "
                         "not save_scratch_model")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_module(model, directory / WEIGHTS_FILE)  # tied tensors once, cuDNN-packed RNN weights each on its own
    (directory / ARGS_FILE).write_text(json.dumps(args, indent=2, sort_keys=True) + "\n")
    return directory


def load_scratch_model(directory: str | Path, map_location: str = "cpu") -> nn.Module:
    """Rebuild the model saved in ``directory`` via the registry and load its weights (strict).

    The vectors file is not needed: the weights already hold the embedding, so the model is
    rebuilt with ``pretrained_vectors=None`` (``builder_args`` keeps the original value).
    """
    from nlptune.models import build_model  # the package imports this module

    directory = Path(directory)
    stored = parse_json((directory / ARGS_FILE).read_text())
    args = dict(stored)
    name = args.pop("name")
    args["vocab"] = None
    if "pretrained_vectors" in args:
        args["pretrained_vectors"] = None
    model = build_model(name, **args)
    load_module(model, directory / WEIGHTS_FILE)  # raises on any mismatch
    model.builder_args = stored
    return model.to(map_location)
