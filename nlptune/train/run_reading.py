"""Reading a RUN_DIR given to eval, predict, export, compare or freeze, or named as a distillation teacher:
the checks they share, and loading its best model.

A run directory is data from disk that may be missing, mistyped, half-copied or damaged. Each file the
commands read is checked here first, so a problem ends in one message naming the file and the fix instead of
a JSON, YAML, safetensors or tokenizer error from deep inside the loading code.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

from nlptune.config.errors import NlptuneError
from nlptune.utils.plain import parse_json

TRAIN_HINT = "pass a directory that `nlptune train` printed (runs/<task>-<model>/<time>/)"
DAMAGED_HINT = ("the run directory (or saved model) is damaged or incomplete: train it again, or restore the file "
                "from a copy of the run (or export the model again)")
# best/ files that are JSON when present (the first two are nlptune's own, the rest are transformers')
BEST_JSON = ("nlptune_task.json", "nlptune_model.json", "config.json", "tokenizer.json", "tokenizer_config.json",
             "special_tokens_map.json", "thresholds.json")


def run_folder(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path once it is known to be an existing folder holding a run (config.yaml)."""
    path = Path(run_dir)
    if not path.exists():
        raise NlptuneError(f"run directory {path} does not exist; {TRAIN_HINT}")
    if not path.is_dir():
        raise NlptuneError(f"{path} is a file, not a run directory; {TRAIN_HINT}")
    if not (path / "config.yaml").is_file() and not (path / "metrics.jsonl").is_file():
        raise NlptuneError(f"{path} is not an nlptune run directory (no config.yaml or metrics.jsonl); "
                           f"{_sweep_hint(path) or _model_folder_hint(path) or TRAIN_HINT}")
    return path


def _sweep_hint(path: Path) -> str | None:
    """The fix for a RUN_DIR that is a sweep directory; None for any other folder."""
    from nlptune.train.rundir import is_sweep_dir

    if not is_sweep_dir(path):
        return None
    best = _best_trial(path)
    return ("it is a sweep directory (`nlptune tune`): pass one of its trials' run directories ("
            + (f"its best trial: {best}; " if best else "") + f"{path / 'leaderboard.csv'} ranks them); its best "
            f"trial's recipe is {path / 'best_recipe.yaml'}; `nlptune predict`, `nlptune eval --file`, `nlptune "
            f"export` and `nlptune distill` take its best model, {path / 'best'}")


def _best_trial(sweep: Path) -> str | None:
    """The run directory of the first-ranked trial of a sweep's leaderboard.csv; None when it is unreadable."""
    import csv

    try:
        with open(sweep / "leaderboard.csv", encoding="utf-8", newline="") as file:
            first = next(csv.DictReader(file), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    run = (first or {}).get("run_dir")
    return run if isinstance(run, str) and run else None


def _model_folder_hint(path: Path) -> str | None:
    """The fix for a RUN_DIR that is a saved model folder (a run's best/, or an export of one) rather than the run
    directory a command reads its config and records from; None for any other folder."""
    from nlptune.data.sources import is_model_folder
    from nlptune.train.rundir import is_sweep_dir

    if not is_model_folder(path):
        return None
    sweep = path.resolve().parent
    if path.resolve().name == "best" and is_sweep_dir(sweep):
        best = _best_trial(sweep)
        return (f"it is the best model of the sweep {sweep}, a copy of its best trial's best/: pass that trial's "
                f"run directory ({best or sweep / 'leaderboard.csv'}); `nlptune predict`, `nlptune eval --file`, "
                "`nlptune export` and `nlptune distill FOLDER task=...` take the folder itself")
    run = run_of_best(path)
    if run is not None:
        return f"it is the saved model folder (best/) of the run {run}: pass {run} instead"
    return ("it is a saved model folder (an export or a copy of a run's best/), which holds no run config: pass "
            "the run directory it came from (runs/<task>-<model>/<time>/); `nlptune predict`, `nlptune eval "
            "--file`, `nlptune export` and `nlptune distill FOLDER task=...` take the folder itself")


def run_of_best(path: Path) -> Path | None:
    """The run directory whose best/ ``path`` is (links followed); None when it is not a run's best/."""
    from nlptune.train.rundir import is_run_dir, is_sweep_dir

    real = path.resolve()
    return real.parent if real.name == "best" and is_run_dir(real.parent) and not is_sweep_dir(real.parent) else None


def as_given(path: str | Path) -> Path:
    """A RUN_DIR argument as the commands read it: a run's best/ is its run (its config, precision and scores),
    anything else the path as given."""
    return run_of_best(Path(path)) or Path(path)


def run_it_came_from(folder: Path) -> str:
    """How to name the run a saved model folder came from, for a fix: a sweep's best/ names the sweep's best trial
    (whose best/ it copies), any other folder the run in general."""
    from nlptune.train.rundir import is_sweep_dir

    sweep = folder.resolve().parent
    best = _best_trial(sweep) if folder.resolve().name == "best" and is_sweep_dir(sweep) else None
    return f"pass the run it came from, the sweep's best trial {best}" if best else \
        "pass the run directory the model came from"


def is_saved_model(path: Path) -> bool:
    """``path`` is a saved model folder on its own: an `export --format hf` copy or a copy of a run's best/, neither a
    run directory nor the best/ of one (`run_of_best`: read as its run). `nlptune predict` and `nlptune eval --file`
    read it without a run config (`saved_task`)."""
    from nlptune.data.sources import is_model_folder
    from nlptune.train.rundir import is_run_dir

    return path.is_dir() and is_model_folder(path) and not is_run_dir(path) and run_of_best(path) is None


def read_json(path: Path) -> dict:
    """A JSON object from a run's file; `NlptuneError` naming the file, line and column when it is not one."""
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise NlptuneError(f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                           f"{DAMAGED_HINT}") from None
    except UnicodeDecodeError:
        raise NlptuneError(f"{path} is not UTF-8 text; {DAMAGED_HINT}") from None
    except ValueError as err:  # an int of more than 4300 digits, nesting past the parser's depth
        raise NlptuneError(f"{path} is not a JSON file nlptune wrote ({type(err).__name__}: "
                           f"{str(err)[:120]}); {DAMAGED_HINT}") from None
    if not isinstance(data, dict):
        raise NlptuneError(f"{path} holds {type(data).__name__}, not a JSON object; {DAMAGED_HINT}")
    return data


def check_records(path: Path) -> None:
    """Every line of metrics.jsonl is a JSON object (a half-written last line included)."""
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = parse_json(line)
        except json.JSONDecodeError as err:
            raise NlptuneError(f"{path}, line {number}, is not valid JSON ({err.msg}); {DAMAGED_HINT}") from None
        except ValueError as err:  # as in `read_json`
            raise NlptuneError(f"{path}, line {number}, is not a metrics record nlptune wrote "
                               f"({type(err).__name__}: {str(err)[:120]}); {DAMAGED_HINT}") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise NlptuneError(f"{path}, line {number}, is not a metrics record (an object with a step); "
                               f"{DAMAGED_HINT}")


def check_weights(path: Path) -> None:
    """The safetensors file's header is readable and its tensors fit in the file (a truncated copy is not)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as weights:
            weights.keys()
    except (SafetensorError, OSError, ValueError) as err:
        raise NlptuneError(f"{path} is not a readable safetensors file ({err}); {DAMAGED_HINT}") from None


def check_run(run_dir: str | Path, *, finished: bool) -> Path:
    """Refuse a RUN_DIR whose files the commands would fail on, naming the file; returns its Path.

    ``finished``: the run must have its best model (eval, predict, export, freeze); otherwise a run still
    training passes (compare). config.yaml goes through the bounded, hostile-input-checked YAML reader.
    """
    path = run_folder(run_dir)
    if (path / "config.yaml").is_file():
        read_run_config(path)
    for name in ("metrics.json", "manifest.json"):
        if (path / name).is_file():
            read_json(path / name)
    if (path / "metrics.jsonl").is_file():
        check_records(path / "metrics.jsonl")
    if not finished:
        return path
    if not (path / "best" / "nlptune_task.json").is_file():
        raise NlptuneError(f"{path} is not a finished nlptune run (no best/nlptune_task.json): its training did "
                           f"not save a best model; {TRAIN_HINT}")
    check_best(path / "best")
    return path


def check_best(best: Path) -> None:
    """Refuse a saved model folder (a run's best/, an `export --format hf` copy) holding nlptune_task.json whose
    files loading it would fail on, naming the file: its JSON files, its weights, its task description."""
    if not any(best.glob("*.safetensors")) and (best / "model.onnx").is_file():
        raise NlptuneError(f"{best} is an ONNX export (model.onnx), which nlptune does not run: it reads the "
                           "PyTorch weights (*.safetensors) -> pass the run directory it was exported from, or a "
                           "Hugging Face export of it (nlptune export RUN_DIR --format hf --output DIR); or run "
                           "model.onnx with onnxruntime")
    for name in BEST_JSON:
        if (best / name).is_file():
            read_json(best / name)
    weights = sorted(best.glob("*.safetensors"))
    if not weights:
        raise NlptuneError(f"{best} holds no model weights (*.safetensors); {DAMAGED_HINT}")
    for file in weights:
        check_weights(file)
    check_task_info(best)


def read_run_config(run_dir: str | Path) -> dict:
    """A run's config.yaml as plain data, through the bounded, hostile-input-checked YAML reader; `NlptuneError`
    naming the file when it is not a mapping of sections (`load_run_config_file`)."""
    from nlptune.config.safety import load_run_config_file

    return load_run_config_file(Path(run_dir) / "config.yaml", DAMAGED_HINT)


def _is_names(value, *, empty: bool = False) -> bool:
    """``value`` is a list of distinct non-empty strings (``empty``: possibly none)."""
    return isinstance(value, list) and (empty or bool(value)) and len(set(map(str, value))) == len(value) and \
        all(isinstance(item, str) and item for item in value)


def _task_info_issues(info: dict, kind: str) -> list[str]:
    """What is wrong with the keys of a best model's nlptune_task.json that eval, predict, export and a teacher
    read, each ``key=value: what it must be`` (keys later versions added may be missing: older runs lack them)."""
    from nlptune.config.schema import METRICS, TAG_SCHEMES

    def is_int(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    checks = {
        "text_fields": (lambda v: _is_names(v) and len(v) <= 2, "a list of one or two column names"),
        "label_names": ((lambda v: v is None) if kind == "regression" else _is_names,
                        "null (a regression has one unnamed output)" if kind == "regression" else
                        "a list of distinct label names (strings)"),
        "metrics": (lambda v: _is_names(v) and set(v) <= set(METRICS[kind]),
                    f"a list of {kind} metrics ({', '.join(METRICS[kind])})"),
        "max_length": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
        "joint_pairs": (lambda v: isinstance(v, bool), "true or false"),
    }
    optional = {
        "char_features": (lambda v: isinstance(v, bool), "true or false"),
        "constrained_decoding": (lambda v: isinstance(v, bool), "true or false"),
        "tag_scheme": (lambda v: v in TAG_SCHEMES, f"one of {', '.join(TAG_SCHEMES)}"),
    }
    issues = [f"{key}={info.get(key)!r}: expected {what}" for key, (ok, what) in checks.items()
              if key not in info or not ok(info[key])]
    issues += [f"{key}={info[key]!r}: expected {what}" for key, (ok, what) in optional.items()
               if key in info and not ok(info[key])]
    return issues


def _saved_outputs(best: Path, info: dict) -> int | None:
    """The width of the saved model's output layer as its config records it (nlptune_model.json for a scratch
    model, transformers' config.json for a pretrained one); None when it is not recorded."""
    if info.get("joint_pairs"):
        config = read_json(best / "config.json") if (best / "config.json").is_file() else {}
        id2label = config.get("id2label")
        width = len(id2label) if isinstance(id2label, dict) else config.get("num_labels")
    else:
        model = best / "nlptune_model.json"
        width = read_json(model).get("num_labels") if model.is_file() else None
    return width if isinstance(width, int) and not isinstance(width, bool) else None


def check_task_info(best: Path) -> None:
    """Refuse a best/nlptune_task.json whose keys are of the wrong type or whose labels do not match the saved
    model's outputs (an edited or mixed-up file): eval and predict would otherwise crash, or silently name the
    model's outputs after the wrong labels. Every problem in one `NlptuneError` naming the file."""
    path = best / "nlptune_task.json"
    info = read_json(path)
    kind = task_kind(best, info)
    issues = _task_info_issues(info, kind.name)
    if not issues:
        width, expected = _saved_outputs(best, info), kind.num_outputs(info["label_names"])
        if width is not None and width != expected:
            issues.append(f"label_names={info['label_names']!r}: {expected} output(s) for the {kind.name} kind, "
                          f"but the saved model has {width}")
    if issues:
        raise NlptuneError(f"{path} does not describe the saved model: " + "; ".join(issues) + f"; {DAMAGED_HINT}")


@contextlib.contextmanager
def loading_best(best: str | Path) -> Iterator[None]:
    """Around loading a checked saved model (a run's ``best`` folder, or an export): what the file checks cannot
    see (a tensor of the wrong shape, a key missing from nlptune_task.json, a tokenizer file of the wrong
    structure) becomes one message naming the folder. nlptune's own errors pass through unchanged."""
    from safetensors import SafetensorError

    try:
        yield
    except NlptuneError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:
        raise NlptuneError(f"cannot load the saved model in {best}: {type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}; {DAMAGED_HINT}") from err
    except Exception as err:  # the tokenizers library raises a bare Exception for a malformed tokenizer.json
        if type(err) is not Exception:
            raise
        raise NlptuneError(f"cannot load the tokenizer in {best}: {err}; {DAMAGED_HINT}") from err


def task_kind(best: Path, info: dict):
    """The problem kind of a best model from its nlptune_task.json ``info`` (runs written before task.kind hold
    problem_type); `NlptuneError` for a kind this nlptune does not know."""
    from nlptune.config.names import names
    from nlptune.config.schema import kind_of
    from nlptune.kinds import get_kind

    kind = kind_of(info)
    if kind not in names("kind"):
        raise NlptuneError(f"{best / 'nlptune_task.json'} names no known problem kind ({kind!r}); known: "
                           f"{', '.join(names('kind'))}. Was it written by a newer nlptune?")
    return get_kind(kind)


def saved_task(info: dict, kind):
    """The `TaskConfig` of a saved model used without its run (`is_saved_model`), from what its checked
    nlptune_task.json ``info`` records (`nlptune.train.results.task_info`): its text and label columns, labels,
    metrics and tag scheme. What only a run config holds takes its default: the data's source (there is none: only
    files named on the command line are read), the CoNLL column layout (word first, tag last) and multi-label 0/1
    columns (a label list in ``label_field`` instead)."""
    from nlptune.config.schema import TaskConfig

    def text(key: str, default: str) -> str:
        value = info.get(key)
        return value if isinstance(value, str) and value else default

    metrics = tuple(info["metrics"])
    main_metric = text("main_metric", metrics[0])
    return TaskConfig(name=text("task", "saved-model"), kind=kind.name, text_fields=tuple(info["text_fields"]),
                      label_field=text("label_field", "label"),
                      label_names=None if info["label_names"] is None else tuple(info["label_names"]),
                      metrics=metrics, main_metric=main_metric if main_metric in metrics else metrics[0],
                      max_length=info["max_length"], tag_scheme=info.get("tag_scheme", "iob2"),
                      constrained_decoding=info.get("constrained_decoding", False))


def load_best_model(best: Path, info: dict, kind) -> tuple:
    """``(model, tokenizer)`` saved in a run's ``best/`` (``info``: its nlptune_task.json), the model in eval mode:
    a transformers folder for pretrained models, safetensors + nlptune_model.json for scratch ones. Call it
    inside `loading_best` on a folder `check_run` accepted."""
    from nlptune.data.tokenization import load_tokenizer
    from nlptune.utils.console import quiet_libraries

    quiet_libraries()  # eval, predict and export print their own results: no loading bars of transformers
    tokenizer = load_tokenizer(str(best), max_length=info["max_length"])
    if info["joint_pairs"]:  # pretrained: a standard transformers folder
        from nlptune.models.pretrained import AUTO_MODELS, restore_pooling

        model = restore_pooling(AUTO_MODELS[kind.hf_auto_model].from_pretrained(best, use_safetensors=True))
    else:
        from nlptune.models import load_scratch_model

        model = load_scratch_model(best)
    model.eval()
    return model, tokenizer
