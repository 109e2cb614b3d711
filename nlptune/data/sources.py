"""Where each split of a task comes from, and the identity recorded for it (run manifests, recipe pins); the same
for a distillation teacher, whose outputs are data to its student (`teacher_sha256`).

The one place that knows the order of sources (explicit files, a generator, a data folder, the hub), the file
names looked for in a data folder and the identity strings; the loader (`nlptune.data.loading`) and the
recipe pins (`nlptune.recipes.pins`) both ask here. A task is a `TaskConfig` or its plain mapping (a recipe's
``config.task``). Standard library only: recipes import this without loading any data library.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Mapping

from nlptune.config.schema import kind_of
from nlptune.config.sources import absolute_path
from nlptune.data.compression import COMPRESSIONS, compression, data_suffix
from nlptune.data.errors import DataError, ProblemCollector
from nlptune.utils.files import folder_sha256, sha256_file
from nlptune.utils.plain import parse_json

# looked for in this order in a data folder; .conll: CoNLL columns (tokens tasks)
EXTENSIONS = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".conll")
SPLITS = ("train", "validation")
GENERATOR_VERSION = "v1"  # bump when a generator's output changes, so old pins show drift
MODEL_CARD = "README.md"  # best/README.md is rewritten from a run's files: not part of its model
THRESHOLDS_FILE = "thresholds.json"  # multi_label decisions, chosen after training: not part of its outputs
TASK_FILE = "nlptune_task.json"
# The keys of best/nlptune_task.json that decide a model's outputs for given texts (how it is loaded, how texts
# become tokens, which output is which); the rest (task name, metrics, how tags are decoded) do not, and keys a
# later nlptune adds stay out of a teacher's identity unless they are added here. Its kind counts too, read by
# `kind_of` (older files name it problem_type).
TEACHER_TASK_KEYS = ("label_names", "max_length", "model", "joint_pairs", "char_features")
# Keys transformers writes into a model's JSON files that name the library or where it was read from, not the model
VOLATILE_JSON_KEYS = ("transformers_version", "_name_or_path", "_commit_hash")
SPREADSHEETS = (".xlsx", ".xls", ".xlsm", ".ods", ".numbers")  # not read: a spreadsheet is saved as CSV first


def _get(task: Any, key: str):
    return task.get(key) if isinstance(task, Mapping) else getattr(task, key, None)


def _path(value: str) -> Path:
    # a "~" after "key=" on a command line reaches us unexpanded: the shell expands it only at a word's start
    return Path(os.path.expanduser(str(value)))


def source_kind(task: Any) -> str:
    """Which source ``task`` reads: "files", "generator", "data_dir", "hub", or "none" (first configured).
    Files named on purpose win over the generator a built-in task (demo) comes with: `task.train_file=a.csv`
    without `task=...` must train on a.csv, not silently on generated text."""
    if _get(task, "train_file") or _get(task, "validation_file"):
        return "files"
    if _get(task, "generator"):
        return "generator"
    if _get(task, "data_dir"):
        return "data_dir"
    return "hub" if _get(task, "hub_id") else "none"


def is_model_folder(folder: str | Path) -> bool:
    """``folder`` holds a model nlptune saved: a run's best/, or a copy of one (`export --format hf`, the ONNX
    folder): its nlptune_task.json says so."""
    return os.path.isfile(Path(folder) / TASK_FILE)  # isfile: False, not an error, on an unreadable path


def generator_identity(name: str, split: str) -> str:
    return f"generator:{name}:{GENERATOR_VERSION}:{split}"


def hub_source(task: Any) -> str:
    """How a hub split is named as a source: ``hub:<id>/<config>``."""
    return f"hub:{_get(task, 'hub_id')}/{_get(task, 'hub_config')}"


def hub_identity(task: Any, fingerprint: str | None = None) -> str:
    """``hub:<id>:<config>:<revision or unpinned>[:<fingerprint>]``; the fingerprint is known after loading."""
    identity = f"hub:{_get(task, 'hub_id')}:{_get(task, 'hub_config')}:{_get(task, 'hub_revision') or 'unpinned'}"
    return f"{identity}:{fingerprint}" if fingerprint else identity


def same_split_identity(pinned: str, current: str) -> bool:
    """Whether a pinned identity still describes the split: a hub pin taken after loading carries the
    dataset fingerprint, one computed before loading (`split_identity`) only the revision."""
    if pinned.startswith("hub:") and current.startswith("hub:"):
        return pinned == current or pinned.startswith(current + ":")
    return pinned == current


def task_folder(task: Any) -> Path:
    """``<data_dir>/<task name>``: the folder a data_dir task reads its split files from."""
    return _path(_get(task, "data_dir")) / str(_get(task, "name"))


def find_split_file(folder: Path, split: str) -> Path | None:
    """The first of ``<split>.jsonl``, ``.json``, ``.csv``, ``.tsv``, ``.parquet``, ``.conll`` (each also compressed:
    ``.gz``, ``.bz2``, ``.xz``) in ``folder`` that exists (a folder or broken link of that name counts, so that it is
    reported rather than skipped), or None. Loading refuses a folder holding several (`split_file_candidates`)."""
    candidates = split_file_candidates(folder, split)
    return candidates[0] if candidates else None


def split_file_candidates(folder: Path, split: str) -> list[Path]:
    """Every file of ``folder`` that could hold ``split`` (`find_split_file`'s names), in its order."""
    return [folder / f"{split}{ext}{compressed}" for ext in EXTENSIONS  # train.jsonl, then .gz, .bz2, .xz
            for compressed in ("", *COMPRESSIONS) if os.path.lexists(folder / f"{split}{ext}{compressed}")]


def split_files(task: Any) -> dict[str, Path | None]:
    """The file each split of a "files" or "data_dir" task is read from (None: not set / not found)."""
    if source_kind(task) == "files":
        return {s: _path(_get(task, f"{s}_file")) if _get(task, f"{s}_file") else None for s in SPLITS}
    folder = task_folder(task)
    return {s: find_split_file(folder, split_stem(task, s)) for s in SPLITS}


def split_stem(task: Any, split: str) -> str:
    """The file name (without extension) of ``split`` in a data folder: task.train_split / task.validation_split,
    the split names a hub dataset uses too (train, validation unless set: e.g. dev)."""
    stem = _get(task, f"{split}_split")
    return stem if isinstance(stem, str) and stem else split


def split_identity(task: Any, split: str) -> str:
    """The identity of ``split`` as the loader records it, without loading: the sha256 of its file,
    ``missing:<path>`` for a file that cannot be read, the generator's or the hub dataset's identity
    (up to the revision: the fingerprint is known after loading), or ``none``."""
    kind = source_kind(task)
    if kind == "generator":
        return generator_identity(_get(task, "generator"), split)
    if kind == "hub":
        return hub_identity(task)
    if kind == "none":
        return "none"
    path = split_files(task)[split]
    try:
        return sha256_file(path) if path is not None and path.is_file() else f"missing:{path}"
    except OSError:
        return f"missing:{path}"


# ------------------------------------------------------------------------------------------ checks
def file_problem(path: Path, split: str, origin: str, any_type: bool = False) -> DataError | None:
    """Why ``path`` cannot be read as a data file (missing, a folder, unreadable, unsupported type), or None.
    ``origin`` says where the path came from (e.g. "task.train_file"), for the fix; ``any_type``: the file's
    format is configured (task.format), so any extension is read."""
    def problem(text: str, fix: str) -> DataError:
        return DataError(text, file=str(path), split=split, fix=fix)

    if not os.path.lexists(path):
        where = "" if path.is_absolute() else f" (a relative path: looked for in the current folder, {os.getcwd()})"
        return problem(f"file not found{where}", f"check the path ({origin})")
    try:
        mode = path.stat().st_mode
    except OSError as err:
        broken = path.is_symlink() and not path.exists()
        return problem("the file is a link to something missing" if broken else f"cannot be read: {err.strerror}",
                       f"point {origin} at the data file itself")
    if stat.S_ISDIR(mode):
        return problem("this is a folder, but a data file is expected here",
                       f"set {origin} to a file inside it (e.g. {path / (split + '.jsonl')})")
    if not stat.S_ISREG(mode):
        return problem("not a regular file (a pipe, device or socket)", f"save the data to a file and use {origin}")
    if data_suffix(path) not in EXTENSIONS and not any_type:
        shown = "".join(path.suffixes[-2:]) if compression(path) else path.suffix
        spreadsheet = "save the sheet as CSV (its first row naming the columns), or " \
            if shown.lower() in SPREADSHEETS else ""
        return problem(f"unsupported file type '{shown}'", f"{spreadsheet}use one of {', '.join(EXTENSIONS)} (each "
                       f"may be compressed: {', '.join(COMPRESSIONS)})")
    try:
        with path.open("rb"):
            pass
    except PermissionError:
        return problem("permission denied: this user cannot read the file",
                       "make it readable (chmod a+r FILE) or copy it somewhere readable")
    except OSError as err:
        return problem(f"cannot be read: {err.strerror or err}", "check the file")
    return None


def _folder_problem(folder: Path, what: str, fix: str) -> DataError | None:
    if not folder.exists():
        return DataError(f"{what} not found", file=str(folder), fix=fix)
    if not folder.is_dir():
        return DataError(f"{what} is a file, but a folder is expected", file=str(folder), fix=fix)
    return None


def _data_dir_origin(data_dir: str) -> str:
    env = os.environ.get("NLPTUNE_DATA_DIR")
    # compared absolute: a run records task.data_dir absolute (`absolute_data_paths`), the variable may be relative
    from_env = bool(env) and absolute_path(env) == absolute_path(data_dir)
    return "NLPTUNE_DATA_DIR" if from_env else "task.data_dir"


def _missing_split_problem(task: Any, split: str) -> DataError:
    folder, stem = task_folder(task), split_stem(task, split)
    try:
        names = sorted(p.name for p in folder.iterdir())
        held = (f"; the folder holds: {', '.join(names[:12])}" + (f" and {len(names) - 12} more" if names[12:] else "")
                if names else "; the folder is empty")
    except OSError as err:  # e.g. a folder this user may not list
        names, held = [], f"; the folder cannot be listed ({err.strerror or err})"
    looked = ", ".join(f"{stem}{ext}" for ext in EXTENSIONS)
    taken = {split_stem(task, other) for other in SPLITS}  # the other split's file is not a candidate
    stems = [Path(Path(name).stem if compression(name) else name) for name in names]  # dev.csv.gz: dev.csv
    others = [stem.stem for stem in stems if stem.suffix.lower() in EXTENSIONS and stem.stem not in taken]
    named = f", or name the file it has: task.{split}_split={others[0]}" if others else \
        f" (or name another file: task.{split}_split=NAME)"
    return DataError(f"no {split} file (looked for {looked}){held}", file=str(folder), split=split,
                     fix=f"add the {split} split as {folder / (stem + '.jsonl')} (or .json/.csv/.tsv/.parquet)"
                     f"{named}")


def _data_dir_problems(task: Any, problems: ProblemCollector) -> bool:
    """Report a missing or wrong data folder / task folder; True when the split files can be looked for."""
    data_dir = str(_get(task, "data_dir"))
    origin = _data_dir_origin(data_dir)
    shown = data_dir if os.path.isabs(data_dir) else f"{data_dir}, resolved to {_path(data_dir).resolve()}"
    name, folder = _get(task, "name"), task_folder(task)
    contents = f"a folder per task, e.g. {name}/train.jsonl and {name}/validation.jsonl (or .json/.csv/.tsv/.parquet)"
    hub = f", or unset {origin} to load the task from the hub ({_get(task, 'hub_id')})" if _get(task, "hub_id") else ""
    problem = _folder_problem(_path(data_dir), f"the data folder ({origin}={shown})",
                              f"point {origin} at the folder that holds {contents}{hub}")
    problem = problem or _folder_problem(
        folder, f"the folder of task '{name}' inside the data folder ({origin}={shown})",
        f"create {folder}/ with train.jsonl and validation.jsonl (or .json/.csv/.tsv/.parquet), or point "
        f"{origin} at the folder that holds {name}/{hub}")
    if problem:
        problems.add(problem)
    return problem is None


def _several_split_files(task: Any, split: str) -> DataError | None:
    """A data folder holding several files for ``split`` (train.jsonl and train.csv: a converted or edited copy
    beside the original) would have one of them read without a word: refused, naming them all."""
    if source_kind(task) != "data_dir":
        return None
    found = split_file_candidates(task_folder(task), split_stem(task, split))
    if len(found) < 2:
        return None
    return DataError(f"the task's data folder holds {len(found)} files for the {split} split: "
                     f"{', '.join(path.name for path in found)}; only one can be read, and nlptune will not guess "
                     "which", file=str(found[0].parent), split=split,
                     fix=f"move all but one out of {found[0].parent}, or name the file to read: "
                         f"task.train_file=PATH task.validation_file=PATH")


def checked_split_files(task: Any, splits: tuple[str, ...] = SPLITS) -> dict[str, Path]:
    """The file of each of ``splits`` of a "files" or "data_dir" task, after checking every one of them (exists, is
    a regular file of a supported type, is readable); all problems of those splits are raised together."""
    problems = ProblemCollector()
    if source_kind(task) == "data_dir" and not _data_dir_problems(task, problems):
        problems.raise_if_any()
    paths = {split: path for split, path in split_files(task).items() if split in splits}
    for split, path in paths.items():
        if path is None and source_kind(task) == "files":
            problems.add(DataError(f"task.{split}_file is not set", split=split,
                                   fix=f"set task.{split}_file=PATH as well (both splits are needed)"))
        elif path is None:
            problems.add(_missing_split_problem(task, split))
        else:
            origin = (f"task.{split}_file" if source_kind(task) == "files"
                      else _data_dir_origin(str(_get(task, "data_dir"))))
            problem = _several_split_files(task, split) or \
                file_problem(path, split, origin, any_type=_get(task, "format") == "conll")
            if problem:
                problems.add(problem)
    problems.raise_if_any()
    return paths  # type: ignore[return-value]  # no None left once the checks pass


def model_folder_of(run_or_folder: str | Path) -> Path:
    """The folder holding the model of ``run_or_folder``: itself when it is a saved model folder (a run's best/, a
    copy of one, an `export --format hf`), else the best/ of the run it names."""
    return Path(run_or_folder) if is_model_folder(run_or_folder) else Path(run_or_folder) / "best"


def teacher_sha256(teacher: str | Path) -> str:
    """One sha256 over what fixes a teacher's model's outputs for given texts (a finished run's best/, or a saved
    model folder: `model_folder_of`): its weights, model and tokenizer files and the output-deciding keys of its
    task file (`TEACHER_TASK_KEYS`); not the model card, the decision thresholds, nor the library versions its JSON
    files name. A distillation teacher's identity in its outputs' cache, the student's manifest and a recipe's pins:
    a teacher trained again to the same weights by a later nlptune (whose task file has gained keys) or saved by a
    later transformers keeps its identity, and so does a copy of its best/ (an hf export is one)."""
    best = model_folder_of(teacher)
    return folder_sha256(best, skip=(MODEL_CARD, THRESHOLDS_FILE), content=_teacher_file_digest)


def is_teacher(teacher: str | Path, recorded: str | None, current: str | None = None) -> bool:
    """Whether ``recorded`` (a recipe's pin, a manifest's record) names the teacher in ``teacher`` (a run or a saved
    model folder) as it is now: its identity (``current``, or `teacher_sha256` computed here), or the sha256 of all
    of best/ but the model card that earlier versions of nlptune recorded (their recipes and runs keep reproducing
    and resuming with an unchanged teacher)."""
    best = model_folder_of(teacher)
    if not recorded or not best.is_dir():
        return False
    return recorded == (current or teacher_sha256(teacher)) or recorded == folder_sha256(best, skip=(MODEL_CARD,))


def _teacher_file_digest(path: Path) -> str:
    """The part of one best/ file a teacher's identity hashes (see `teacher_sha256`)."""
    if path.suffix != ".json":
        return sha256_file(path)
    try:
        record = parse_json(path.read_bytes())
    except (OSError, ValueError):
        return sha256_file(path)  # not JSON after all (or nested past the parser's depth): its bytes decide
    if not isinstance(record, dict):
        return sha256_file(path)
    if path.name == TASK_FILE:
        record = {key: record.get(key) for key in TEACHER_TASK_KEYS} | {"kind": kind_of(record)}
    else:
        record = {key: value for key, value in record.items() if key not in VOLATILE_JSON_KEYS}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
