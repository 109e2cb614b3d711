"""A module's weights to and from a safetensors file, whatever storage its tensors live in.

safetensors refuses tensors that share memory. Two kinds do: tied weights (one tensor under two names), and the
weights cuDNN packs into one buffer when an RNN (GRU, LSTM) moves to a GPU, whose state-dict entries are views of
parts of that buffer (`save_model` gives up on those: "found no suitable name to keep"). Here a tied tensor is
written once, under its first name, and every other tensor gets its own storage on the CPU; loading fills the
other names of a tied tensor through the one loaded.
"""
from __future__ import annotations

from pathlib import Path

import torch


def _identity(tensor: torch.Tensor) -> tuple:
    """Same identity = the same tensor under another name (tied): same memory, offset, shape and strides."""
    return (tensor.device, tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
            tensor.stride(), tensor.dtype)


def _owns_its_storage(tensor: torch.Tensor) -> bool:
    """A CPU tensor that is the whole of its memory: safetensors writes it as it is, no copy needed."""
    return (tensor.device.type == "cpu" and tensor.is_contiguous() and tensor.storage_offset() == 0
            and tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size())


def writable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state dict as safetensors can write it: each tied tensor once, and a CPU copy of each tensor
    that is on a GPU or part of a larger buffer (the others are written as they are: no copy of a CPU model)."""
    kept: dict[str, torch.Tensor] = {}
    seen: set[tuple] = set()
    for name, tensor in module.state_dict().items():
        identity = _identity(tensor)
        if identity not in seen:
            seen.add(identity)
            tensor = tensor.detach()
            kept[name] = tensor if _owns_its_storage(tensor) else tensor.to("cpu", copy=True).contiguous()
    return kept


def save_tensors(tensors: dict, path: str | Path, metadata: dict | None = None) -> None:
    """Write ``tensors`` to the safetensors file ``path`` with the mode the run's other files get (safetensors
    writes its files readable by their owner only: `as_created`)."""
    from safetensors.torch import save_file

    from nlptune.utils.files import as_created

    save_file(tensors, str(path), metadata=metadata if metadata is not None else {"format": "pt"})
    as_created(path)


def save_module(module: torch.nn.Module, path: str | Path) -> None:
    """Write ``module``'s weights to the safetensors file ``path`` (tied tensors once)."""
    save_tensors(writable_state(module), path)


def load_module(module: torch.nn.Module, path: str | Path) -> None:
    """Load the safetensors file ``path`` into ``module``, strictly: every tensor in the file must be one of the
    module's with its shape, and every one of the module's must be in the file or tied to one that is.

    Raises ValueError naming the missing, unexpected or misshapen tensors."""
    from safetensors.torch import load_file

    tensors = load_file(str(path), device="cpu")
    state = module.state_dict()
    loaded = {_identity(state[name]) for name in tensors if name in state}
    missing = [name for name, tensor in state.items() if name not in tensors and _identity(tensor) not in loaded]
    unexpected = [name for name in tensors if name not in state]
    misshapen = [f"{name} {tuple(tensors[name].shape)} vs {tuple(state[name].shape)}" for name in tensors
                 if name in state and tensors[name].shape != state[name].shape]
    problems = [f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                for label, names in (("missing", missing), ("unexpected", unexpected), ("shape", misshapen)) if names]
    if problems:
        raise ValueError("the weights do not fit the model (" + "; ".join(problems) + ")")
    module.load_state_dict(tensors, strict=False)  # strict above; the names left out are tied to loaded ones
