"""The run directory: config.yaml, manifest.json, metrics.jsonl, metrics.json and best/.

Only rank 0 writes into it, and only while it holds the directory's lock (`claim`): one process per run
directory, no file written through a link (utils/files.py), every OS error named with its file.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Iterable, Iterator

import yaml

from nlptune.config.schema import RunConfig
from nlptune.data.sources import TASK_FILE, is_model_folder
from nlptune.utils.files import (LinkError, as_created, atomic_write_text, disk_error, ensure_dir, links_under,
                                 open_append, os_errors_as_disk_errors, refuse_link, remove_tree)
from nlptune.utils.errors import NlptuneError
from nlptune.utils.lock import LOCK_FILE, FolderLock
from nlptune.utils.plain import parse_json, plain_data
from nlptune.utils.text import listed

# everything nlptune writes in a run directory (folders are checked inside too): none may be a link
WRITTEN = ("config.yaml", "manifest.json", "metrics.jsonl", "metrics.json", "resume_changes.json", LOCK_FILE,
           "best", "checkpoints", "plots", "tensorboard", "wandb")


def default_output_dir(run: RunConfig, make: bool = False) -> Path:
    """``runs/<task>-<model>/<YYYYmmdd-HHMMSS>/``, relative to the working directory. ``make`` (the process that
    writes the run): the directory is made now, and when that name is taken (runs launched together share the
    second) the first free ``<name>-2``, ``-3``, ... is made and returned instead."""
    base = Path("runs") / f"{run.task.name}-{run.model.name}" / time.strftime("%Y%m%d-%H%M%S")
    return new_directory(base) if make else base


def write_json(path: Path, data) -> None:
    """Write JSON atomically (temporary file + rename), so a reader never sees half a file; never through a
    link."""
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def refuse_links(run_dir: str | Path) -> None:
    """Refuse a run directory that is a link, or holds a link where nlptune writes (named in the message)."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        raise LinkError(run_dir, "(the run directory, output_dir)")
    links = links_under(run_dir, WRITTEN) if run_dir.is_dir() else []
    if links:
        raise LinkError(links[0], f"(in the run directory {run_dir}"
                        + (f"; also {', '.join(map(str, links[1:4]))}" if len(links) > 1 else "") + ")")


# The file `nlptune tune` writes first in a sweep directory (its plan): read here so that a command given a sweep
# where it takes a run says so (a sweep's best/ is a model folder, which would make it look like a run).
SWEEP_PLAN_FILE = "sweep.json"


def is_sweep_dir(folder: str | Path) -> bool:
    """``folder`` is a sweep directory that `nlptune tune` wrote or is writing."""
    return os.path.isfile(Path(folder) / SWEEP_PLAN_FILE)


def is_run_dir(folder: str | Path) -> bool:
    """``folder`` holds a run `nlptune train` wrote or is writing: its metrics log (opened first), its best model,
    or config.yaml beside manifest.json. A config.yaml alone is no sign: many projects keep one at their top."""
    folder = Path(folder)
    return os.path.isfile(folder / "metrics.jsonl") or is_model_folder(folder / "best") or (
        os.path.isfile(folder / "config.yaml") and os.path.isfile(folder / "manifest.json"))


def run_holding(folder: str | Path) -> tuple[Path, str] | None:
    """``(place, what)``: the saved model folder or run directory that ``folder`` is or lies inside, links
    followed (a linked parent must not hide one); None when it is neither."""
    real = Path(os.path.realpath(folder))
    for place in (real, *real.parents):
        if is_model_folder(place):
            return place, "saved model folder"
        if is_run_dir(place):
            return place, "run directory"
    return None


def refuse_run_contents(folder: str | Path, what: str, fix: str, allow: Iterable[str | Path] = ()) -> None:
    """Refuse ``folder`` as the folder a command writes its output into when it is a run directory, lies inside
    one (best/, checkpoints/, plots/, ...) or is or lies inside a saved model folder: a report or plot there
    mixes with the run's own files, and a model folder is copied, exported and loaded as a whole. ``allow``: run
    directories whose top folder may take the output (compare's plot goes beside the compared runs' files)."""
    found = run_holding(folder)
    if found is None:
        return
    place, kind = found
    real = Path(os.path.realpath(folder))
    if place == real and kind == "run directory" and any(Path(os.path.realpath(run)) == real for run in allow):
        return
    where = f"is the {kind} {place}" if place == real else f"is inside the {kind} {place}"
    raise NlptuneError(f"{folder} {what} {where}; nlptune never writes a command's output among a run's own files "
                       f"or into a saved model -> {fix}")


RUN_PARTS = ("best", "checkpoints", "plots")  # a run's own subfolders: rewritten, copied or pruned as a whole


def model_or_run_part(folder: str | Path) -> str | None:
    """What ``folder`` is or lies inside that no new output may go into: "the saved model folder P" (a run's
    best/, an export) or "best/ of the run R" (its checkpoints/, plots/ too), with "is " or "lies inside "
    before it; None when neither. Links are followed (a linked parent must not hide one)."""
    real = Path(os.path.realpath(folder))
    for place in (real, *real.parents):
        if is_model_folder(place):
            found = f"the saved model folder {place}"
        elif place.name in RUN_PARTS and is_run_dir(place.parent):
            found = f"{place.name}/ of the {'sweep' if is_sweep_dir(place.parent) else 'run'} {place.parent}"
        else:
            continue
        return ("is " if place == real else "lies inside ") + found
    return None


def refuse_nested_run(output_dir: str | Path, key: str = "output_dir", what: str = "a new run's files") -> None:
    """Refuse ``output_dir`` for a fresh run when it is or lies inside a saved model folder, or inside another
    run's best/, checkpoints/ or plots/: the new run's files would be mixed into a model that is loaded, exported
    and copied as a whole, or deleted with the checkpoints it was put among. A run inside another run's top
    folder stays allowed: a sweep's trials live inside its folder, beside the best model it copies there."""
    found = model_or_run_part(output_dir)
    if found is not None:
        raise NlptuneError(f"{key} {output_dir} {found}; {what} would be mixed into it -> give {key} a folder "
                           "outside saved models and runs' best/, checkpoints/ and plots/ (or leave it unset for a "
                           "new timestamped folder)")


# what other nlptune commands write into a run directory before its training starts: a multi-process sweep
# trial's launch spec, log and result (tuning/objective.py, `_train_launched`)
LAUNCH_FILES = ("trial_spec.json", "trial.log", "trial_result.json")
FRESH_FIX = ("give a new or empty output_dir (or leave it unset for a new timestamped folder); to continue an "
             "interrupted run, give its own folder with resume=auto")


# what file browsers leave in any folder they show (macOS Finder, Windows Explorer): no one's data, and no name
# nlptune writes, so a folder holding only these is as good as empty
DESKTOP_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")


def not_written(folder: str | Path, own: Iterable[str]) -> list[str]:
    """The names in ``folder`` that are none of ``own``, nor a temporary file of one of them (an interrupted atomic
    write leaves ``.<name>.<pid>-<hex>.tmp``, a lock ``.<name>.<pid>.<hex>.tmp``, a best/ swap
    ``.best.<pid>.tmp``), nor a file browser's `DESKTOP_FILES` file, sorted; [] when ``folder`` is not a folder."""
    own = (*own, *DESKTOP_FILES)
    temporary = tuple(f".{name}." for name in own)
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(name for name in names if name not in own and not (name.startswith(temporary)
                                                                     and name.endswith(".tmp")))


def shown(folder: Path, names: list[str]) -> list[str]:
    """``names`` (entries of ``folder``) as a message lists them: a folder with a trailing "/"."""
    return [f"{name}/" if (folder / name).is_dir() and not (folder / name).is_symlink() else name for name in names]


def refuse_foreign_contents(output_dir: str | Path) -> None:
    """Refuse ``output_dir`` for a run that starts afresh in it (no checkpoint of its own is continued) unless
    nlptune may write there: it is new or empty (its lock and a sweep trial's launch files aside), or it holds an
    interrupted run nlptune started: only names a run writes (`WRITTEN`), and its metrics.jsonl (opened first),
    config.yaml and manifest.json are nlptune's own. Anything else is someone's files: the new run would write
    its config.yaml, manifest.json and plots over them, or append its metrics to them."""
    folder = Path(output_dir)
    present = not_written(folder, (LOCK_FILE, *LAUNCH_FILES))
    if not present:
        return
    foreign = not_written(folder, (*WRITTEN, *LAUNCH_FILES))
    if foreign:
        raise NlptuneError(f"output_dir {folder} already holds files a run does not write "
                           f"({listed(shown(folder, foreign), 3)}); "
                           f"nlptune never writes a run among files it did not write -> {FRESH_FIX}")
    why = _not_own_run(folder)
    if why:
        raise NlptuneError(f"output_dir {folder} holds {listed(shown(folder, present), 3)} but not as a run nlptune "
                           f"started ({why}); a new run would write over them -> {FRESH_FIX}")


def _not_own_run(folder: Path) -> str | None:
    """Why ``folder``'s run files are not those of a run nlptune started; None when they are."""
    from nlptune.train.run_reading import read_json, read_run_config

    if not (folder / "metrics.jsonl").is_file():  # the first file a run makes: every other one comes after it
        return "no metrics.jsonl"
    if not _is_metrics_log(folder / "metrics.jsonl"):
        return "its metrics.jsonl is not a log of metrics records"
    checks = {"config.yaml": lambda: {"task", "trainer"} <= set(read_run_config(folder)),
              "manifest.json": lambda: "environment" in read_json(folder / "manifest.json")}
    for name, check in checks.items():
        if not (folder / name).is_file():
            continue
        try:
            own = check()
        except (OSError, NlptuneError):  # unreadable, or not YAML/JSON: not a file nlptune wrote
            own = False
        if not own:
            return f"its {name} is not a run's"
    return None


def _is_metrics_log(path: Path) -> bool:
    """``path`` holds only metrics records (JSON objects with an integer step), as `RunDir.log` writes them; text
    after the last newline is the half-written record of a killed run and is not judged."""
    try:
        lines = path.read_bytes().decode("utf-8").split("\n")[:-1]
        records = [parse_json(line) for line in lines if line.strip()]
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return False
    return all(isinstance(r, dict) and isinstance(r.get("step"), int) for r in records)


def new_directory(base: Path) -> Path:
    """Make and return ``base``, or the first of ``base-2``, ``base-3``, ... that does not exist yet (each made
    with one exclusive mkdir: two processes never get the same one)."""
    ensure_dir(base.parent, "(the folder of the run directory)")
    candidate, number = base, 1
    while True:
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:  # a run started in the same second (or anything else there): left alone
            number += 1
            candidate = base.with_name(f"{base.name}-{number}")
        except OSError as err:
            raise disk_error(candidate, err) from None


@contextlib.contextmanager
def claim(run_dir: str | Path, writer: bool = True, made: bool = False) -> Iterator[Path]:
    """Hold ``run_dir`` for this run: refuse links in it, create it and take its lock (``writer``: rank 0;
    the other ranks of a multi-process run write nothing and take nothing). ``made``: this run made the
    directory just before (`default_output_dir`), so a failure before anything is written removes it. Any
    exception leaving the block carries the directory as ``err.run_dir`` (the CLI prints how to resume it)."""
    run_dir = Path(run_dir)
    lock, created = None, writer and (made or not os.path.lexists(run_dir))
    try:
        if writer:
            refuse_links(run_dir)
            ensure_dir(run_dir, "(the run directory, output_dir)")
            lock = FolderLock(run_dir, "run directory").acquire()
            refuse_links(run_dir)  # again, now that no other nlptune process can plant one meanwhile
        yield run_dir
    except BaseException as err:
        with contextlib.suppress(AttributeError, TypeError):
            err.run_dir = run_dir
        raise
    finally:
        if lock is not None:
            lock.release()
        if created:  # a run that stopped before writing anything leaves no empty folder behind
            with contextlib.suppress(OSError):
                run_dir.rmdir()


class RunDir:
    """Writer for one run's directory."""

    def __init__(self, path: Path):
        self.path = ensure_dir(path, "(the run directory)")
        self._metrics = open_append(self.path / "metrics.jsonl")
        self.tracker = None  # a tracking.Tracker: every logged record also goes to TensorBoard/MLflow/W&B

    def write_config(self, run: RunConfig) -> None:
        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(plain_data(run.plain), sort_keys=False))

    def write_manifest(self, manifest: dict) -> None:
        write_json(self.path / "manifest.json", manifest)

    def log(self, record: dict) -> None:
        """Append one line to metrics.jsonl (and send it to the run's trackers)."""
        with os_errors_as_disk_errors(self.path / "metrics.jsonl"):
            self._metrics.write(json.dumps(record) + "\n")
        if self.tracker is not None:
            self.tracker.log(record)

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / "metrics.json", summary)

    def close(self) -> None:
        with os_errors_as_disk_errors(self.path / "metrics.jsonl"):
            self._metrics.close()
        if self.tracker is not None:
            self.tracker.close()

    @property
    def best_dir(self) -> Path:
        return self.path / "best"


def save_best_model(model, tokenizer, directory: Path, *, pretrained: bool, task_info: dict) -> None:
    """Save the best model so `transformers.pipeline` (pretrained) or `nlptune predict` (both) load it.

    It is written into a fresh folder beside ``directory`` and swapped in when complete: no file of an
    earlier best/ (nor a link in it) is written through, and a failed write (disk full) leaves the old one.
    """
    directory = Path(directory)
    fresh = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    replaced = directory.with_name(f".{directory.name}.{os.getpid()}.replaced.tmp")
    for leftover in (fresh, replaced):  # of an earlier save of this process that was interrupted
        if leftover.is_symlink():
            os.unlink(leftover)  # the link itself, never its target
        elif leftover.exists():
            remove_tree(leftover)
    try:
        with os_errors_as_disk_errors(directory):
            fresh.mkdir()
            _save_model_files(model, tokenizer, fresh, pretrained=pretrained)
            write_json(fresh / TASK_FILE, task_info)
            refuse_link(directory, "(best/)")
            if directory.exists():
                os.rename(directory, replaced)
            os.rename(fresh, directory)
    except BaseException:
        if fresh.exists():
            remove_tree(fresh)  # a half-written best/ would only fill the disk further
        raise
    if replaced.exists():
        remove_tree(replaced)


def _save_model_files(model, tokenizer, directory: Path, *, pretrained: bool) -> None:
    if pretrained:
        model.save_pretrained(directory, safe_serialization=True)
        as_created(*directory.glob("*.safetensors"))  # every shard, as safetensors writes them 0600
    else:
        from nlptune.models import save_scratch_model

        save_scratch_model(model, directory)
    tokenizer.save_pretrained(directory)


def read_task_info(directory: Path) -> dict:
    """The task description saved next to a best model."""
    return parse_json((Path(directory) / TASK_FILE).read_text())
