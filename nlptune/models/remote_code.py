"""Pretrained models that bring their own Python code (``auto_map`` in config.json / tokenizer_config.json).

Loading such a model runs code from the model's repository on this machine, so nlptune refuses it unless the
user passed ``nlptune train --trust-remote-code`` (a flag no config file or recipe can set). transformers itself
would ask on the terminal (a prompt that hangs a batch job) or raise; and when the model type is one it knows,
it loads its own classes and ignores the custom ones without a word: that is reported here as a warning.

`check_remote_code` is called before transformers touches the model (building a pretrained model, loading a
run's best/ for eval/predict); the tokenizer, loaded earlier in the data pipeline (which may not import this
layer), passes ``trust_remote_code`` explicitly so transformers refuses rather than prompts. It reads the local
folder's JSON files, or for a hub id the files in the Hugging Face cache (downloaded only
when the hub may be used), and turns a missing folder, a broken config.json or an unknown hub id into one
message naming the model and the fix.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nlptune.config.errors import NlptuneError
from nlptune.utils.network import hub_status
from nlptune.utils.plain import parse_json

CONFIG_FILE = "config.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
TRUST_HINT = ("loading it runs Python code from the model's repository on this machine. If you trust its "
              "authors and have read that code, pass --trust-remote-code to `nlptune train` (a config file or "
              "recipe cannot set it); otherwise choose a model that transformers supports natively")
_warned: set[tuple[str, str]] = set()  # (model, file): warn once per process, not once per loader


def _problem(name_or_path: str, problem: str, fix: str) -> NlptuneError:
    return NlptuneError(f"pretrained model {name_or_path!r}: {problem}; {fix}")


def _looks_local(name_or_path: str) -> bool:
    """A path rather than a hub id (``org/name``): absolute, relative with ./ or ../, ~, or deeper than one /."""
    return (name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") > 1
            or (os.sep != "/" and os.sep in name_or_path))


def _hub_file(repo_id: str, filename: str, revision: str | None, required: bool) -> Path | None:
    """The cached (or, when online, downloaded) ``filename`` of hub model ``repo_id``; None when the repository
    has no such file and it is not ``required``."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub import errors as hub

    try:
        cached = try_to_load_from_cache(repo_id, filename, revision=revision)
    except hub.HFValidationError:
        raise _problem(repo_id, "is neither an existing folder nor a valid Hugging Face hub id",
                       "give the path of a model folder or a hub id such as bert-base-uncased") from None
    if isinstance(cached, str):
        return Path(cached)
    if cached is not None:  # the cache knows the repository has no such file
        if required:
            raise _problem(repo_id, f"the hub repository has no {filename}", "give a transformers model")
        return None
    hub_now = hub_status()
    if not hub_now.reachable:
        if not required:
            return None
        raise _problem(repo_id, f"is not a local folder and not in the Hugging Face cache, and {hub_now.reason}",
                       "download it once online, or give the path of a local model folder")
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except hub.EntryNotFoundError:
        if required:
            raise _problem(repo_id, f"the hub repository has no {filename}", "give a transformers model") from None
        return None
    except hub.GatedRepoError:
        raise _problem(repo_id, "is a gated repository", "accept its terms on huggingface.co and log in "
                       "(`hf auth login`), or give a local folder") from None
    except hub.RepositoryNotFoundError:
        raise _problem(repo_id, "is not a local folder and no such model exists on the Hugging Face hub (or it "
                       "is private)", "check the spelling, log in for a private model, or give a local "
                       "folder") from None
    except hub.RevisionNotFoundError:
        raise _problem(repo_id, f"the hub repository has no revision {revision!r}",
                       "give an existing branch, tag or commit in model.revision") from None
    except (hub.LocalEntryNotFoundError, hub.HfHubHTTPError, OSError) as err:
        raise _problem(repo_id, f"cannot fetch {filename} from the Hugging Face hub ({type(err).__name__})",
                       "check the network, or set HF_HUB_OFFLINE=1 with the model in the cache, or give a "
                       "local folder") from None


def _read_json(name_or_path: str, path: Path) -> dict[str, Any]:
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise _problem(name_or_path, f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: "
                       f"{err.msg})", "restore the file or download the model again") from None
    except (OSError, UnicodeDecodeError) as err:
        raise _problem(name_or_path, f"cannot read {path} ({err})", "check the file") from None
    except ValueError as err:  # an int of more than 4300 digits, nesting past the parser's depth
        raise _problem(name_or_path, f"{path} is not a model's JSON file ({type(err).__name__}: {str(err)[:120]})",
                       "restore the file or download the model again") from None
    if not isinstance(data, dict):
        raise _problem(name_or_path, f"{path} is not a JSON object", "restore the file or download the model again")
    return data


def model_file(name_or_path: str, filename: str, revision: str | None = None, *,
               required: bool = True) -> dict[str, Any] | None:
    """The JSON ``filename`` of a model (a local folder or a hub id); None when absent and not ``required``.

    `NlptuneError` naming the model for a missing folder, a path that is a file, an unknown or unreachable hub
    id, or a broken file.
    """
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        path: Path | None = local / filename
        if not path.is_file():
            if required:
                raise _problem(name_or_path, f"the folder has no {filename}: it is not a transformers model "
                               "folder", "give the folder that save_pretrained wrote (or a hub id)")
            return None
    elif local.exists():
        raise _problem(name_or_path, "is a file, not a model folder", "give the model's folder or a hub id")
    elif _looks_local(name_or_path):
        raise _problem(name_or_path, "the folder does not exist", "check the path (or give a hub id)")
    else:
        path = _hub_file(name_or_path, filename, revision, required)
        if path is None:
            return None
    return _read_json(name_or_path, path)


def _model_type_known(config: dict) -> bool:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return config.get("model_type") in CONFIG_MAPPING_NAMES


def _tokenizer_class_known(tokenizer_config: dict) -> bool:
    import transformers

    name = tokenizer_config.get("tokenizer_class")
    if not isinstance(name, str):
        return False
    return any(hasattr(transformers, n) for n in (name, name.removesuffix("Fast"), name + "Fast"))


def _custom_code(name_or_path: str, where: str, data: dict, known: bool, trust_remote_code: bool,
                 native: str) -> None:
    """Refuse, or warn about, the ``auto_map`` in ``data`` (the file ``where`` of the model)."""
    auto_map = data.get("auto_map")
    if not auto_map or trust_remote_code:
        return
    keys = ", ".join(sorted(auto_map)) if isinstance(auto_map, dict) else repr(auto_map)
    if not known:
        raise _problem(name_or_path, f"it needs custom code: {where} has auto_map ({keys}) and {native}",
                       TRUST_HINT)
    if (name_or_path, where) not in _warned:
        from nlptune.utils.console import warn

        _warned.add((name_or_path, where))
        warn(f"pretrained model {name_or_path!r}: the custom code that {where} declares in auto_map ({keys}) is "
             f"ignored: transformers loads the model with its own classes for {native}. Pass --trust-remote-code "
             "to `nlptune train` if the model needs that code (it then runs code from the model's repository)")


def check_remote_code(name_or_path: str, revision: str | None = None, *, trust_remote_code: bool = False,
                      config_required: bool = True) -> None:
    """Refuse a model whose config.json or tokenizer_config.json declares custom code (``auto_map``) unless
    ``trust_remote_code``; warn when transformers would ignore that code. ``config_required=False`` accepts a
    local folder without config.json (a from-scratch model's tokenizer). See the module docstring."""
    local = Path(name_or_path).expanduser().is_dir()
    config = model_file(name_or_path, CONFIG_FILE, revision, required=config_required or not local)
    if config is not None:
        known = _model_type_known(config)
        native = f"model_type {config.get('model_type')!r}" + ("" if known else " is not a type transformers knows")
        _custom_code(name_or_path, CONFIG_FILE, config, known, trust_remote_code, native)
    tokenizer_config = model_file(name_or_path, TOKENIZER_CONFIG_FILE, revision, required=False)
    if tokenizer_config is not None:
        # transformers falls back on the model type's own tokenizer, so a known model type ignores it too
        known = _tokenizer_class_known(tokenizer_config) or (config is not None and _model_type_known(config))
        native = f"tokenizer_class {tokenizer_config.get('tokenizer_class')!r}" + (
            "" if known else " is not a class transformers has")
        _custom_code(name_or_path, TOKENIZER_CONFIG_FILE, tokenizer_config, known, trust_remote_code, native)
