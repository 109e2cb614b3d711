"""Crash-safe, pickle-free checkpoints: write, verify, find and load.

A checkpoint is a folder ``<run>/checkpoints/step-00000012/`` holding

  model.safetensors         the model's weights
  best_model.safetensors    the best weights so far (absent when they are the current ones)
  best_outputs.safetensors  the best evaluation's predictions and references (for the run's plots)
  optimizer.safetensors     optimizer state      } the tensors, plus the rest of the state as JSON in the
  scheduler.safetensors     scheduler state      } safetensors header: no pickle anywhere, so loading a
  scaler.safetensors        grad-scaler (fp16)   } checkpoint can never run code
  rank-<r>.safetensors      per process: python / numpy / torch / cuda RNG states and the running loss
  train_state.json          step, epoch, data position, best metric, early stopping, config, data sha256
  manifest.json             sha256 and size of every file above; written last

It is written into ``.tmp-step-...`` and renamed into place by rank 0 after every file has been flushed
to disk (fsync), so a folder named ``step-*`` is always complete; a crash leaves at most a ``.tmp-*``
folder, which is never used and is removed by the next save. A write that fails on an OS error (disk
full, read-only file system) removes its ``.tmp-*`` folder, keeps the previous checkpoints and raises
`DiskError` naming the file. Loading checks every hash before reading
anything and never falls back to unsafe unpickling.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import sys
from pathlib import Path

import torch

from nlptune.config.errors import NlptuneError
from nlptune.utils.console import process_rank
from nlptune.utils.files import (ensure_dir, fsync_path, os_errors_as_disk_errors, remove_tree, sha256_file,
                                 write_new_bytes)
from nlptune.utils.plain import parse_json
from nlptune.utils.weights import load_module, save_module, save_tensors

CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"
TRAIN_STATE = "train_state.json"
MODEL, BEST_MODEL, BEST_OUTPUTS = "model.safetensors", "best_model.safetensors", "best_outputs.safetensors"
AVERAGE_SUM = "average_sum.safetensors"  # trainer.average_from: the running sum of the averaged weights
OPTIMIZER, SCHEDULER, SCALER = "optimizer.safetensors", "scheduler.safetensors", "scaler.safetensors"
STATE_KEY = "nlptune_state"  # safetensors metadata entry holding a state's non-tensor structure (JSON)
FORMAT = "nlptune-checkpoint/1"
PREFIX, TMP_PREFIX = "step-", ".tmp-step-"


class CheckpointError(NlptuneError):
    """A checkpoint that cannot be used: incomplete, altered, unsafe or not matching the run."""


def note(message: str) -> None:
    """A line about checkpoints and resuming, on rank 0, to stderr: shown even with --quiet."""
    if process_rank() == 0:
        print(message, file=sys.stderr, flush=True)


def rank_file(rank: int) -> str:
    return f"rank-{rank}.safetensors"


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


# ----------------------------------------------------------------------------------------------- writing


def _encode(value, tensors: dict):
    """``value`` as JSON data, its tensors moved into ``tensors`` (named by number)."""
    if isinstance(value, torch.Tensor):
        name = str(len(tensors))
        tensors[name] = value.detach().to("cpu").contiguous()
        return {"$tensor": name}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: _encode(v, tensors) for k, v in value.items()}
        return {"$items": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint state")


def _decode(value, tensors: dict):
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if "$tensor" in value:
            return tensors[value["$tensor"]]
        if "$tuple" in value:
            return tuple(_decode(v, tensors) for v in value["$tuple"])
        if "$items" in value:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in value["$items"]}
        return {k: _decode(v, tensors) for k, v in value.items()}
    return value


def _state_save(state, path: Path) -> None:
    """A state dict (optimizer, scheduler, RNG, ...) as safetensors, its structure as JSON in the header."""
    tensors: dict = {}
    structure = json.dumps(_encode(state, tensors))
    with os_errors_as_disk_errors(path):
        save_tensors(tensors, path, metadata={STATE_KEY: structure})
    fsync_path(path)


def _json_save(obj, path: Path) -> None:
    write_new_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def _save_weights(model: torch.nn.Module | None, tensors: dict | None, path: Path) -> None:
    with os_errors_as_disk_errors(path):
        if model is not None:
            save_module(model, path)  # tied tensors once, cuDNN-packed RNN weights each on its own
        else:
            save_tensors({k: v.contiguous() for k, v in tensors.items()}, path)
    fsync_path(path)


def rng_state() -> dict:
    """This process's RNG states as tensors and plain numbers."""
    import numpy as np

    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python_version": version, "python_mt": torch.tensor(mt, dtype=torch.int64), "python_gauss": gauss,
            "numpy_keys": torch.from_numpy(keys.astype(np.int64)), "numpy_pos": int(pos),
            "numpy_has_gauss": int(has_gauss), "numpy_gauss": float(cached),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` captured; any mismatch is an error, never silently ignored."""
    import numpy as np

    random.setstate((state["python_version"], tuple(state["python_mt"].tolist()), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    torch.set_rng_state(state["torch"])
    cuda = state["cuda"]
    if torch.cuda.is_available() and cuda:
        if len(cuda) != torch.cuda.device_count():
            raise CheckpointError(f"the checkpoint holds RNG states of {len(cuda)} CUDA devices but this process "
                                  f"sees {torch.cuda.device_count()}; resume on the same devices")
        torch.cuda.set_rng_state_all(cuda)


def save(root: Path, step: int, accelerator, *, model, optimizer, scheduler, best_state: dict | None,
         best_outputs: dict | None, train_state: dict, rank_state: dict, keep_last: int,
         average_sum: dict | None = None) -> Path:
    """Write the checkpoint of ``step`` under ``root`` atomically; every process calls this together.

    ``rank_state`` is this process's own state (RNG, running loss); the rest is written by rank 0, including
    ``average_sum`` (trainer.average_from's running sum of weights) when there is one.
    Older checkpoints beyond ``keep_last`` are removed only once the new one is complete.
    """
    root = Path(root)
    tmp, final = root / f"{TMP_PREFIX}{step:08d}", root / checkpoint_name(step)
    if accelerator.is_main_process:
        _discard(tmp)  # left by a crash during an earlier write of this step
        ensure_dir(root, "(the checkpoints folder)")
        with os_errors_as_disk_errors(tmp):
            tmp.mkdir()
    accelerator.wait_for_everyone()
    try:
        _write_files(tmp, accelerator, model=model, optimizer=optimizer, scheduler=scheduler,
                     best_state=best_state, best_outputs=best_outputs, train_state=train_state,
                     rank_state=rank_state, average_sum=average_sum)
    except BaseException:
        if accelerator.is_main_process:
            _discard(tmp)  # the earlier checkpoints stay as they were; a partial one would only fill the disk
        raise
    accelerator.wait_for_everyone()  # every rank's file is on disk before the manifest vouches for it
    if accelerator.is_main_process:
        try:
            with os_errors_as_disk_errors(final):
                _finish(tmp, final, step)
        except BaseException:
            _discard(tmp)
            raise
        prune(root, keep_last)
    return final


def _discard(path: Path) -> None:
    """Remove a temporary checkpoint folder (a link there is removed as a link, its target untouched)."""
    if path.is_symlink():
        os.unlink(path)
    elif path.exists():
        remove_tree(path)


def _write_files(tmp: Path, accelerator, *, model, optimizer, scheduler, best_state, best_outputs, train_state,
                 rank_state, average_sum) -> None:
    """Every process writes its rank state; rank 0 also the model, optimizer, scheduler and train state."""
    _state_save(rank_state, tmp / rank_file(accelerator.process_index))
    if accelerator.is_main_process:
        # without a torch.compile wrapper: the names match the plain model that a resume loads them into
        _save_weights(accelerator.unwrap_model(model, keep_torch_compile=False), None, tmp / MODEL)
        if best_state is not None:
            _save_weights(None, best_state, tmp / BEST_MODEL)
        if best_outputs:
            _save_weights(None, {k: torch.as_tensor(v) for k, v in best_outputs.items()}, tmp / BEST_OUTPUTS)
        if average_sum is not None:
            _save_weights(None, average_sum, tmp / AVERAGE_SUM)
        _state_save(optimizer.state_dict(), tmp / OPTIMIZER)
        _state_save(scheduler.state_dict(), tmp / SCHEDULER)
        if accelerator.scaler is not None:
            _state_save(accelerator.scaler.state_dict(), tmp / SCALER)
        _json_save({"format": FORMAT, **train_state}, tmp / TRAIN_STATE)


def _finish(tmp: Path, final: Path, step: int) -> None:
    files = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in sorted(tmp.iterdir())}
    _json_save({"format": FORMAT, "step": step, "files": files}, tmp / MANIFEST)
    fsync_path(tmp)
    replaced = final.with_name(f"{TMP_PREFIX}{step:08d}-replaced")
    if final.exists():  # the same step written again (a finished run re-saved): swap, then drop the old one
        os.rename(final, replaced)
    os.rename(tmp, final)
    fsync_path(final.parent)
    shutil.rmtree(replaced, ignore_errors=True)


def prune(root: Path, keep_last: int) -> None:
    """Remove complete checkpoints beyond the newest ``keep_last`` and leftovers of interrupted writes."""
    for path in root.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
    complete = [p for p in by_step(root) if _manifest_or_none(p) is not None]
    for old in complete[keep_last:]:
        shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------------------------- reading


def step_of(path: Path) -> int:
    """The step number in a checkpoint folder's name (-1 if none)."""
    digits = path.name.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else -1


def by_step(root: Path) -> list[Path]:
    """The ``step-*`` folders under ``root``, newest first (complete or not)."""
    found = [p for p in Path(root).glob(f"{PREFIX}*") if p.is_dir() and step_of(p) >= 0]
    return sorted(found, key=step_of, reverse=True)


def _manifest_or_none(path: Path) -> dict | None:
    """The manifest of ``path`` if it exists, parses and lists files that all exist; else None."""
    try:
        manifest = parse_json((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("format") != FORMAT or not isinstance(files, dict) or MODEL not in files:
        return None
    if not all((path / name).is_file() for name in files):
        return None
    return manifest


def find_latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of ``run_dir``, logging every incomplete one it skips."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    newest_complete = None
    for path in by_step(root):
        if _manifest_or_none(path) is not None:
            newest_complete = path
            break
        note(f"skipping incomplete checkpoint {path} (no valid manifest)")
    floor = step_of(newest_complete) if newest_complete else -1
    for path in sorted(root.glob(f"{TMP_PREFIX}*")):
        if step_of(path) > floor:
            note(f"skipping incomplete checkpoint {path} (interrupted while being written)")
    return newest_complete


def verify(path: Path) -> dict:
    """Check the manifest and the sha256 of every file it lists; return the manifest or raise."""
    path = Path(path)
    manifest = _manifest_or_none(path)
    if manifest is None:
        raise CheckpointError(f"{path} is not a complete checkpoint (missing or invalid {MANIFEST}, or a listed "
                              "file is missing); it was interrupted while being written or altered afterwards. "
                              "Use an older checkpoint, or resume=auto to pick the newest complete one")
    for name, entry in manifest["files"].items():
        if not isinstance(entry, dict) or sha256_file(path / name) != entry.get("sha256"):
            raise CheckpointError(f"{path / name} does not match the sha256 recorded in {path / MANIFEST}: the "
                                  "file was corrupted or altered after it was written. Refusing to load it; "
                                  "resume from an older checkpoint (resume=PATH)")
    for required in (TRAIN_STATE, OPTIMIZER, SCHEDULER):
        if required not in manifest["files"]:
            raise CheckpointError(f"{path} lacks {required}; it is not a training checkpoint")
    return manifest


def load_state(path: Path):
    """A state written by `_state_save`: safetensors tensors + JSON structure; nothing is unpickled, ever."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            structure = parse_json((handle.metadata() or {})[STATE_KEY])
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        return _decode(structure, tensors)
    except Exception as err:  # not safetensors, no state header, malformed JSON, a missing tensor
        raise CheckpointError(f"{path} is not a valid nlptune checkpoint state ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:200] if str(err) else 'unreadable'}); refusing to load "
                              "it") from None


def read_train_state(path: Path) -> dict:
    """The train_state.json of a verified checkpoint."""
    file = Path(path) / TRAIN_STATE
    try:
        state = parse_json(file.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{file} is not valid JSON ({err}); refusing to load it") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not an nlptune train state (format {FORMAT})")
    return state


def load_weights(path: Path, model: torch.nn.Module) -> None:
    """Load ``model.safetensors`` into ``model`` (strict: every tensor must match)."""
    file = Path(path) / MODEL
    try:
        load_module(model, file)
    except Exception as err:
        raise CheckpointError(f"{file} does not fit the configured model ({str(err).splitlines()[0][:300]}); "
                              "resume with the model config the checkpoint was trained with") from None


def load_tensors(path: Path, manifest: dict, name: str) -> dict | None:
    """The tensors of ``name`` (e.g. BEST_MODEL, BEST_OUTPUTS) on the CPU, or None when it was not saved."""
    from safetensors.torch import load_file

    if name not in manifest["files"]:
        return None
    try:
        return load_file(str(Path(path) / name), device="cpu")
    except Exception as err:
        raise CheckpointError(f"{Path(path) / name} is not a valid safetensors file ({err})") from None


def load_states(path: Path, manifest: dict, accelerator, *, optimizer, scheduler) -> dict:
    """Load optimizer, scheduler and grad-scaler state; return this process's rank state (RNG, loss)."""
    path = Path(path)
    optimizer.load_state_dict(load_state(path / OPTIMIZER))
    scheduler.load_state_dict(load_state(path / SCHEDULER))
    if accelerator.scaler is not None:
        if SCALER not in manifest["files"]:
            raise CheckpointError(f"{path} has no grad-scaler state but this run uses fp16")
        accelerator.scaler.load_state_dict(load_state(path / SCALER))
    name = rank_file(accelerator.process_index)
    if name not in manifest["files"]:
        return {}
    return load_state(path / name)
