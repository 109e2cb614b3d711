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
DAMAGED_HINT = ("the run directory is damaged or incomplete: train it again, or restore the file from a copy "
                "of the run")
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
        raise NlptuneError(f"{path} is not an nlptune run directory (no config.yaml or metrics.jsonl); {TRAIN_HINT}")
    return path


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
    from nlptune.config.safety import safe_load_file

    path = run_folder(run_dir)
    if (path / "config.yaml").is_file():
        safe_load_file(path / "config.yaml", recipe=False)
    for name in ("metrics.json", "manifest.json"):
        if (path / name).is_file():
            read_json(path / name)
    if (path / "metrics.jsonl").is_file():
        check_records(path / "metrics.jsonl")
    if not finished:
        return path
    best = path / "best"
    if not (best / "nlptune_task.json").is_file():
        raise NlptuneError(f"{path} is not a finished nlptune run (no best/nlptune_task.json): its training did "
                           f"not save a best model; {TRAIN_HINT}")
    for name in BEST_JSON:
        if (best / name).is_file():
            read_json(best / name)
    weights = sorted(best.glob("*.safetensors"))
    if not weights:
        raise NlptuneError(f"{best} holds no model weights (*.safetensors); {DAMAGED_HINT}")
    for file in weights:
        check_weights(file)
    return path


@contextlib.contextmanager
def loading_best(run_dir: str | Path) -> Iterator[None]:
    """Around loading a checked run's best model: what the file checks cannot see (a tensor of the wrong
    shape, a key missing from nlptune_task.json, a tokenizer file of the wrong structure) becomes one message
    naming best/. nlptune's own errors pass through unchanged."""
    from safetensors import SafetensorError

    try:
        yield
    except NlptuneError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:
        raise NlptuneError(f"cannot load the best model in {Path(run_dir) / 'best'}: {type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}; {DAMAGED_HINT}") from err
    except Exception as err:  # the tokenizers library raises a bare Exception for a malformed tokenizer.json
        if type(err) is not Exception:
            raise
        raise NlptuneError(f"cannot load the tokenizer in {Path(run_dir) / 'best'}: {err}; {DAMAGED_HINT}") from err


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


def load_best_model(best: Path, info: dict, kind) -> tuple:
    """``(model, tokenizer)`` saved in a run's ``best/`` (``info``: its nlptune_task.json), the model in eval mode:
    a transformers folder for pretrained models, safetensors + nlptune_model.json for scratch ones. Call it
    inside `loading_best` on a folder `check_run` accepted."""
    from nlptune.data.tokenization import load_tokenizer

    tokenizer = load_tokenizer(str(best), max_length=info["max_length"])
    if info["joint_pairs"]:  # pretrained: a standard transformers folder
        from nlptune.models.pretrained import AUTO_MODELS

        model = AUTO_MODELS[kind.hf_auto_model].from_pretrained(best, use_safetensors=True)
    else:
        from nlptune.models import load_scratch_model

        model = load_scratch_model(best)
    model.eval()
    return model, tokenizer
