"""Export a finished run's best model, or a saved model folder on its own: ONNX (checked against PyTorch with
onnxruntime) or the HF layout.

ONNX export tries torch's exporters in turn and keeps the first whose graph reproduces the PyTorch logits
on two batches of different sizes and lengths (so dynamic batch/sequence axes are proven, not assumed):

1. the dynamo exporter (``torch.export``; handles transformers and the CNN/bag/transformer encoders),
2. the same without the ONNX graph optimizer (its constant folding trips over some dynamic splits),
3. the TorchScript exporter (for what ``torch.export`` cannot trace, e.g. packed sequences); sentence-pair
   scratch models run their shared encoder once per sentence there, as the traced stacked call would fix the
   batch size.

The ONNX folder holds ``model.onnx`` (+ ``model.onnx.data``), the tokenizer and ``nlptune_task.json`` (labels),
and for a CRF tagger ``crf_transitions.json`` (what Viterbi decoding of the logits needs; a tagger without a CRF
that decodes under its tag scheme: ``tag_transitions.json``).
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nlptune.config.errors import NlptuneError
from nlptune.data.sources import model_folder_of
from nlptune.utils.files import remove_tree
from nlptune.utils.text import listed

INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids", "input_ids_b", "attention_mask_b", "char_ids")
EXPORTERS = ("dynamo", "dynamo-unoptimized", "torchscript")


@dataclass
class ExportResult:
    path: Path
    exporter: str
    max_abs_diff: float
    rows_checked: int
    inputs: list[str]
    attempts: list[str] = field(default_factory=list)  # why earlier exporters were not kept


class _Logits(nn.Module):
    """The model with positional tensor inputs (ONNX input order) and the logits as its only output."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, *tensors):
        return self.model(**dict(zip(self.names, tensors)))["logits"]


class _SiameseLogits(nn.Module):
    """A sentence-pair scratch model with one encoder call per sentence (same result as its stacked call, whose
    padding of both texts to one length a trace would fix at the example's lengths)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, input_ids_b, attention_mask_b):
        model, encoder, mask_a, mask_b = self.model, self.model.encoder, attention_mask.bool(), attention_mask_b.bool()
        if model.pair_attention is None:
            u, v = encoder(input_ids, mask_a), encoder(input_ids_b, mask_b)
        else:  # each text's tokens alone, then aligned with the other's: no padding of both to one length
            u, v = model.pair_attention(encoder.contextual(encoder.embedding(input_ids), mask_a), mask_a,
                                        encoder.contextual(encoder.embedding(input_ids_b), mask_b), mask_b)
        return model.head(torch.cat([u, v, (u - v).abs(), u * v], dim=-1))


def _check_installed() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise NlptuneError(f"ONNX export needs {', '.join(missing)}: pip install 'nlptune[export]' "
                           f"(or pip install {' '.join(missing)})")


def _texts(loaded, file: str | None, rows: int) -> list[list[str]]:
    """Up to ``rows`` example texts: from ``file``, else from the validation split of the run's task."""
    from nlptune.data.loading import load_raw_splits
    from nlptune.inference.predict import read_inputs

    fields = loaded.info["text_fields"]
    if file:
        texts = read_inputs(file, fields, words=loaded.kind.words_in_text_column, task=loaded.task)
    else:
        try:
            split = load_raw_splits(loaded.task)["validation"]
        except NlptuneError as err:
            raise NlptuneError(f"cannot read the run's validation data to check the export ({err}); pass "
                               f"--file FILE, a jsonl/csv/tsv/parquet file with the column(s) {fields}") from None
        texts = [split.columns[f] if loaded.kind.words_in_text_column else
                 ["" if t is None else str(t) for t in split.columns[f]] for f in fields]
    texts = [column[:rows] for column in texts]
    if len(texts[0]) < 3:
        raise NlptuneError(f"need at least 3 example rows to check the export, got {len(texts[0])}; "
                           "pass --file with more rows")
    return texts


def _check_batches(loaded, texts: list[list[str]]) -> list[dict[str, torch.Tensor]]:
    """Two batches of different sizes (and, with real text, lengths): the export example and a second one."""
    n = len(texts[0])
    first = max(2, (n * 2) // 3)
    batches = [next(loaded.batches([c[:first] for c in texts], batch_size=first)),
               next(loaded.batches([c[first:] for c in texts], batch_size=n))]
    return [{k: b[k] for k in INPUT_ORDER if k in b} for b in batches]


@contextlib.contextmanager
def _quiet_output():
    """Silence file descriptors 1 and 2 too: torch's C++ exporter prints shape-inference notes on 2, and a failed
    TorchScript pass its whole IR graph on 1, directly (the reasons reach the user in the export's error)."""
    import os
    import sys
    import tempfile

    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile() as sink:
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


def _export(module: nn.Module, example: dict, path: Path, exporter: str) -> None:
    names = list(example)
    axes = [{0: "batch", 1: "sequence_b" if name.endswith("_b") else "sequence"} for name in names]
    args = tuple(example.values())
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet_output():
        warnings.simplefilter("ignore")  # the exporters' deprecation and tracer notes are not for the user
        if exporter.startswith("dynamo"):
            # *tensors is one positional parameter: its shapes are given as one tuple
            torch.onnx.export(module, args, str(path), input_names=names, output_names=["logits"], dynamo=True,
                              dynamic_shapes=(tuple(axes),), optimize=exporter == "dynamo", external_data=True)
        else:
            # per-word logits [batch, sequence, tags] vary along the sequence too
            per_word = module(*args).ndim == 3
            dynamic_axes = {name: axis for name, axis in zip(names, axes)} | \
                {"logits": {0: "batch", 1: "sequence"} if per_word else {0: "batch"}}
            torch.onnx.export(module, args, str(path), input_names=names, output_names=["logits"], dynamo=False,
                              dynamic_axes=dynamic_axes)


@torch.no_grad()
def _max_diff(module: nn.Module, path: Path, batches: list[dict]) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name for i in session.get_inputs()}
    worst = 0.0
    for batch in batches:
        expected = module(*batch.values()).float().numpy()
        got = session.run(["logits"], {k: v.numpy() for k, v in batch.items() if k in feeds})[0]
        if got.shape != expected.shape:
            raise ValueError(f"ONNX logits have shape {got.shape}, PyTorch {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def _clear(path: Path) -> None:
    for stale in (path, path.with_name(path.name + ".data")):
        stale.unlink(missing_ok=True)


def check_tolerance(atol: float) -> None:
    """Refuse an ``atol`` no check can pass (negative) or that checks nothing (inf, NaN)."""
    if not (math.isfinite(atol) and atol >= 0):
        raise NlptuneError(f"--atol {atol:g} is not a tolerance: the largest accepted |onnx - pytorch| is a finite "
                           "number >= 0 -> e.g. --atol 1e-4 (the default), or larger for a model in low precision")


def export_onnx(run_dir: str | Path, output: str | Path | None = None, *, file: str | None = None,
                rows: int = 12, atol: float = 1e-4) -> ExportResult:
    """Export the run's best model to ``<output>/model.onnx`` (default ``<run_dir>/onnx``) and check it. The folder
    is built aside and swapped in when the check passed (`check_onnx_folder` says which folders it may replace):
    no file of an earlier export is left beside the new model, and a failed export leaves the earlier one."""
    check_tolerance(atol)
    _check_installed()
    from nlptune.inference.predict import LoadedRun
    from nlptune.train.run_reading import is_saved_model

    if is_saved_model(Path(run_dir)):
        check_saved_folder_export(Path(run_dir), file, output)
    folder = Path(output) if output else Path(run_dir) / "onnx"
    check_onnx_folder(folder, run_dir)  # before the model loads: a refused folder fails at once
    loaded = LoadedRun(run_dir)
    model = loaded.model.float().eval()
    batches = _check_batches(loaded, _texts(loaded, file, rows))
    fresh = _fresh_folder(folder)
    try:
        result = _export_checked(loaded, model, batches, fresh, atol)
        _copy_companions(model_folder_of(loaded.run_dir), fresh)
        _write_transitions(model, batches[0], fresh, loaded.decoding)
        _swap_in(fresh, folder)
    finally:
        if fresh.is_dir() and not fresh.is_symlink():
            remove_tree(fresh)
    result.path = folder / result.path.name
    return result


def _export_checked(loaded, model: nn.Module, batches: list[dict], folder: Path, atol: float) -> ExportResult:
    """``folder/model.onnx`` from the first exporter whose graph reproduces the PyTorch logits within ``atol``."""
    names = list(batches[0])
    path = folder / "model.onnx"
    attempts, skip = [], set()
    for exporter in EXPORTERS:
        if exporter in skip:
            continue
        siamese = exporter == "torchscript" and "input_ids_b" in names
        module = (_SiameseLogits(model) if siamese else _Logits(model, names)).eval()
        _clear(path)
        try:
            _export(module, batches[0], path, exporter)
            diff = _max_diff(_Logits(model, names), path, batches)
        except Exception as err:  # noqa: BLE001 - the next exporter may succeed; all reasons are reported
            attempts.append(f"{exporter}: {type(err).__name__}: {str(err).strip().splitlines()[0][:200]}")
            if type(err).__name__ == "TorchExportError":  # torch.export cannot trace it: skip its other variant
                skip.add("dynamo-unoptimized")
            continue
        if diff <= atol:
            rows_checked = sum(b["input_ids"].shape[0] for b in batches)
            return ExportResult(path, exporter, diff, rows_checked, names, attempts)
        attempts.append(f"{exporter}: max abs diff {diff:.3g} > {atol:g}")
    raise NlptuneError("no ONNX exporter reproduced the PyTorch outputs:\n  " + "\n  ".join(attempts))


# what an ONNX export folder holds (`_copy_companions`, `_write_transitions`): an earlier export of only these files
# may be replaced by a new one; a folder holding anything else is not the export's to replace
ONNX_FILES = ("model.onnx", "model.onnx.data", "nlptune_task.json", "thresholds.json", "crf_transitions.json",
              "tag_transitions.json", "special_tokens_map.json", "vocab.txt")


def _is_export_file(name: str) -> bool:
    return name in ONNX_FILES or name.startswith("tokenizer")


def check_onnx_folder(folder: str | Path, run_dir: str | Path | None = None) -> None:
    """Refuse an ONNX export folder that is or holds a link, is a file, holds files an export did not write (they
    would be mixed with the model, or lost when an export is replaced), is or lies inside a saved model folder
    or a run's best/, checkpoints/ or plots/, or holds the export of a run other than ``run_dir`` (a folder in
    that run's directory). A missing or empty folder, or an earlier export, is accepted."""
    from nlptune.train.rundir import is_run_dir, model_or_run_part
    from nlptune.utils.files import refuse_links_in

    folder = Path(folder)
    fix = "give --output a new or empty folder outside saved models and runs' best/, checkpoints/ and plots/"
    refuse_links_in(folder, "(the export folder)")
    if folder.exists() and not folder.is_dir():
        raise NlptuneError(f"the export folder {folder} is a file, not a folder -> {fix}")
    entries = sorted(os.listdir(folder)) if folder.is_dir() else []
    foreign = [name for name in entries if not _is_export_file(name)]
    if foreign:
        raise NlptuneError(f"the export folder {folder} already holds files an ONNX export does not write "
                           f"({listed(foreign, 3)}); they would be mixed with the model -> {fix}")
    if "model.onnx" in entries:  # an earlier export, replaced as a whole: only where it lies matters
        found = model_or_run_part(folder.parent)
        found = None if found is None else f"lies in {folder.parent}, which {found}"
        owner = folder.parent.resolve()
        if found is None and run_dir is not None and is_run_dir(owner) and owner != Path(run_dir).resolve():
            found = f"holds the export of the run {folder.parent}, which would be lost"
    else:
        found = model_or_run_part(folder)
    if found is not None:
        raise NlptuneError(f"the export folder {folder} {found}; the export would be mixed into it -> {fix}")


def _fresh_folder(folder: Path) -> Path:
    """An empty folder beside ``folder`` to build the export in (a leftover of an interrupted one removed)."""
    from nlptune.utils.files import ensure_dir, os_errors_as_disk_errors

    ensure_dir(folder.parent, "(the folder of the export folder)")
    fresh = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    if fresh.is_symlink():
        os.unlink(fresh)  # the link itself, never its target
    elif fresh.exists():
        remove_tree(fresh)
    with os_errors_as_disk_errors(fresh):
        fresh.mkdir()
    return fresh


def _swap_in(fresh: Path, folder: Path) -> None:
    """Put the complete export ``fresh`` in place of ``folder`` (an earlier export, or nothing)."""
    from nlptune.utils.files import os_errors_as_disk_errors, refuse_link

    replaced = folder.with_name(f".{folder.name}.{os.getpid()}.replaced.tmp")
    with os_errors_as_disk_errors(folder):
        refuse_link(folder, "(the export folder)")
        if folder.exists():
            os.rename(folder, replaced)
        os.rename(fresh, folder)
    if replaced.exists():
        remove_tree(replaced)


@torch.no_grad()
def _write_transitions(model: nn.Module, batch: dict, folder: Path, decoding) -> None:
    """The tag transition scores Viterbi decoding of the exported logits needs: a CRF tagger's (learned) as
    ``crf_transitions.json``, or those a tagger without a CRF decodes under (`Kind.decoding`: 0, or -10000 where the
    tag scheme forbids it) as ``tag_transitions.json``. Both [L + 2][L + 2], row = from, column = to; index L is
    the sentence start and L + 1 its end."""
    import json

    from nlptune.utils.files import atomic_write_text

    transitions = model(**batch).get("transitions")
    name = "crf_transitions.json"
    if transitions is None and decoding is not None:
        transitions, name = decoding, "tag_transitions.json"
    if transitions is not None:
        atomic_write_text(folder / name, json.dumps({"transitions": transitions.float().tolist()}))


def _copy_companions(best: Path, folder: Path) -> None:
    """Tokenizer files, the task description (labels, text fields) and a multi-label model's decision
    thresholds (thresholds.json: apply them to the sigmoid of the exported logits) next to model.onnx."""
    for item in best.iterdir():
        if item.name.startswith("tokenizer") or item.name in ("special_tokens_map.json", "vocab.txt",
                                                               "nlptune_task.json", "thresholds.json"):
            shutil.copy2(item, folder / item.name)


def check_saved_folder_export(folder: Path, file: str | None, output: str | Path | None) -> None:
    """Refuse an ONNX export of a saved model folder on its own (no run) that lacks what a run would give: rows to
    check the export on (``file``: the folder holds no validation split) and a folder to write it to (``output``:
    never inside the saved model). Both in one message."""
    from nlptune.train.run_reading import read_json, run_it_came_from

    fields = read_json(folder / "nlptune_task.json").get("text_fields")
    missing = []
    if file is None:
        missing.append(f"--file ROWS (a jsonl/csv/tsv/parquet file with the column(s) {fields} to check the export "
                       "on: the folder holds no validation split)")
    if output is None:
        missing.append("--output DIR (a new folder: the export is never written inside the saved model)")
    if missing:
        raise NlptuneError(f"{folder} is a saved model folder on its own; its ONNX export needs "
                           + " and ".join(missing) + f" -> nlptune export {folder} --format onnx --file ROWS "
                           f"--output DIR, or {run_it_came_from(folder)}")


def export_hf(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """The best model's folder (``best/``, or a saved model folder given as ``run_dir``), copied to ``output`` when
    given: a new folder, never inside a saved model folder or a run's best/, checkpoints/ or plots/ (a model inside
    best/ would be copied, exported and loaded with it)."""
    from nlptune.train.rundir import model_or_run_part
    from nlptune.utils.files import os_errors_as_disk_errors, refuse_link

    best = model_folder_of(run_dir)
    if not (best / "nlptune_task.json").is_file():
        raise NlptuneError(f"{run_dir} is not a finished nlptune run (no best/nlptune_task.json); "
                           "pass the run directory that `nlptune train` printed")
    if output is None:
        return best
    refuse_link(output, "(--output)")
    if Path(output).exists():
        raise NlptuneError(f"{output} already exists; choose a new folder for --output")
    found = model_or_run_part(output)
    if found is not None:
        raise NlptuneError(f"--output {output} {found}; the copy would be mixed into it -> choose a new folder "
                           "outside saved models and runs' best/, checkpoints/ and plots/")
    _refuse_links_to_copy(best)
    with os_errors_as_disk_errors(output):
        return Path(shutil.copytree(best, output))


def _refuse_links_to_copy(best: Path) -> None:
    """A link inside best/ would be copied as the file it points to: whatever that is (another model's weights, a
    private file) would leave the run inside the copy. nlptune never writes one there, so it is refused."""
    import os

    from nlptune.utils.files import links_under

    found = links_under(best, sorted(os.listdir(best)))
    if found:
        raise NlptuneError(f"{found[0]} is a symbolic link inside the saved model folder (to {os.readlink(found[0])})"
                           f"{f' and {len(found) - 1} more' if len(found) > 1 else ''}; the copy would take the file "
                           "it points to -> replace the link by the file itself, or train the run again")
