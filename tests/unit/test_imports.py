"""Import rules of ARCHITECTURE.md, checked on the source (ast) and on a real `nlptune --help`."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "nlptune"
HEAVY = ("torch", "transformers", "datasets", "optuna", "accelerate")

# Library -> the package folder (relative to nlptune/) that alone may import it.
CONFINED = {"hydra": "config", "omegaconf": "config", "optuna": "tuning", "accelerate": "train"}
# nlptune packages and the nlptune packages each may import (ARCHITECTURE.md: nothing imports upward).
LAYERS = {
    "utils": {"utils"},
    "config": {"config", "utils"},
    "kinds": {"kinds", "config", "utils"},
    "data": {"data", "kinds", "config", "utils"},
    "models": {"models", "config", "utils"},
    "metrics": {"metrics", "config", "utils"},
    "train": {"train", "data", "kinds", "models", "metrics", "config", "utils"},
    "inference": {"inference", "train", "data", "kinds", "models", "metrics", "config", "utils"},
    "recipes": {"recipes", "data", "kinds", "config", "utils"},
    "tuning": {"tuning", "recipes", "train", "data", "kinds", "models", "metrics", "config", "utils"},
}
# The documented exceptions (file, module it imports upward), each with its reason at the import:
# config/validate.py checks a model's builder arguments against the builder's signature before any data is read.
UPWARD_EXCEPTIONS = {("config/validate.py", "nlptune.models")}
# a string that names an nlptune module ("nlptune.train.optim"): importlib.import_module, subprocess -m, ...
MODULE_NAME = re.compile(r"nlptune(\.[A-Za-z_]\w*)+")


def sources() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert files, f"no sources under {PACKAGE}"
    return files


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(absolute module name, line, inside a function) for every import statement of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: resolve against the file's package
                    package = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)[:-child.level]
                    found.append((".".join(package + ([child.module] if child.module else [])), child.lineno,
                                  in_function))
                else:
                    found.append((child.module, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def module_names_in_strings(path: Path) -> list[tuple[str, int]]:
    """(module name, line) for every string literal of ``path`` that is exactly an nlptune module name, and
    ("<computed>", line) for an f-string that starts with ``nlptune.`` (a module name built at run time)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.fullmatch(node.value):
            found.append((node.value, node.lineno))
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant) \
                and str(node.values[0].value).startswith("nlptune."):
            found.append(("<computed>", node.lineno))
    return found


def where(path: Path) -> str:
    """The package folder under nlptune/ (or the file name, e.g. metrics.py, for top-level modules)."""
    return path.relative_to(PACKAGE).parts[0]


def test_the_scan_sees_imports():
    names = {name for path in sources() for name, _, _ in imports(path)}
    assert {"torch", "omegaconf", "hydra", "accelerate"} <= {n.split(".")[0] for n in names}


@pytest.mark.parametrize("library", sorted(CONFINED))
def test_library_confined_to_its_package(library):
    home = CONFINED[library]
    offenders = []
    for path in sources():
        relative = path.relative_to(PACKAGE)
        for name, line, _ in imports(path):
            if name.split(".")[0] != library or relative.parts[0] == home:
                continue
            offenders.append(f"nlptune/{relative}:{line} imports {name}")
    assert not offenders, f"{library} may only be imported under nlptune/{home}/:\n" + "\n".join(offenders)


def test_config_never_imports_torch():
    offenders = [f"{path.relative_to(PACKAGE)}:{line} imports {name}"
                 for path in sorted((PACKAGE / "config").rglob("*.py"))
                 for name, line, _ in imports(path) if name.split(".")[0] in HEAVY]
    assert not offenders, offenders


def upward(layer: str, name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "nlptune" and len(parts) > 1 and parts[1] not in LAYERS[layer]


def test_nothing_imports_upward():
    offenders = []
    for path in sources():
        layer = where(path).removesuffix(".py")
        if layer not in LAYERS:
            continue  # cli.py, commands/, __main__.py, __init__.py may import everything
        relative = path.relative_to(PACKAGE).as_posix()
        for name, line, _ in imports(path):
            if upward(layer, name) and (relative, name) not in UPWARD_EXCEPTIONS:
                offenders.append(f"nlptune/{relative}:{line} ({layer}) imports {name}")
        for name, line in module_names_in_strings(path):
            if name == "<computed>" or upward(layer, name):
                offenders.append(f"nlptune/{relative}:{line} ({layer}) names module {name} in a string")
    assert not offenders, "\n".join(offenders)


def test_the_scan_sees_module_names_in_strings(tmp_path):
    source = tmp_path / "example.py"
    source.write_text('import importlib\nimportlib.import_module("nlptune.train.optim")\n'
                      'NAME = f"nlptune.{1}"\nTEXT = "see nlptune.models"\n')
    assert sorted(module_names_in_strings(source)) == [("<computed>", 3), ("nlptune.train.optim", 2)]
    assert upward("config", "nlptune.train.optim") and not upward("train", "nlptune.config.names")


def test_every_package_is_in_the_layers_table():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} | {"metrics"}
    assert packages - {"commands"} <= set(LAYERS), sorted(packages - {"commands"} - set(LAYERS))


def test_upward_exceptions_are_still_needed():
    # an exception whose import went away is dropped from the table, so it cannot hide a new one
    for relative, name in UPWARD_EXCEPTIONS:
        assert name in {n for n, _, _ in imports(PACKAGE / relative)}, (relative, name)


def test_importing_config_does_not_load_torch():
    # (validating a model's arguments imports nlptune.models inside the check, the one documented exception;
    # importing config/ must not)
    code = ("import sys\n"
            "import nlptune.config, nlptune.config.compose, nlptune.config.validate, nlptune.config.registry\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))")
    result = subprocess.run([sys.executable, "-c", code, *HEAVY], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _imported_modules(stderr: str) -> set[str]:
    """Top-level module names from `python -X importtime` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name and name != "imported package":
                names.add(name.split(".")[0])
    return names


def test_help_imports_no_heavy_library():
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "nlptune", "--help"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: nlptune" in result.stdout and "train" in result.stdout
    modules = _imported_modules(result.stderr)
    assert "nlptune" in modules, "importtime output was not parsed"
    heavy = sorted(modules & set(HEAVY))
    assert not heavy, f"`nlptune --help` imports {heavy}"


@pytest.mark.parametrize("args", [["train", "--help"], ["predict", "--help"], ["eval", "--help"], []])
def test_subcommand_help_is_light(args):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "nlptune", *args], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: nlptune" in result.stdout
    assert not _imported_modules(result.stderr) & set(HEAVY)


def _calls(path: Path):
    """(dotted callee name, keywords, line) of every call in ``path`` whose callee is a plain name/attribute."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            parts, func = [], node.func
            while isinstance(func, ast.Attribute):
                parts.append(func.attr)
                func = func.value
            if isinstance(func, ast.Name):
                parts.append(func.id)
                yield ".".join(reversed(parts)), {k.arg: k.value for k in node.keywords}, node.lineno


def test_no_unsafe_deserialisation():
    """ARCHITECTURE.md safety rules: torch.load only with weights_only=True, YAML only with a safe loader,
    no pickle, never eval/exec."""
    offenders = []
    for path in sources():
        where_ = f"nlptune/{path.relative_to(PACKAGE)}"
        for name, line, _ in imports(path):
            if name.split(".")[0] in ("pickle", "dill", "cloudpickle", "marshal"):
                offenders.append(f"{where_}:{line} imports {name}")
        for callee, keywords, line in _calls(path):
            if callee == "torch.load":
                flag = keywords.get("weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    offenders.append(f"{where_}:{line} torch.load without weights_only=True")
            elif callee in ("yaml.load", "yaml.load_all"):
                loader = keywords.get("Loader")
                if not (isinstance(loader, ast.Attribute) and loader.attr in ("SafeLoader", "CSafeLoader")):
                    offenders.append(f"{where_}:{line} {callee} without a safe Loader")
            elif callee in ("yaml.unsafe_load", "yaml.full_load", "eval", "exec"):
                offenders.append(f"{where_}:{line} calls {callee}")
    assert not offenders, "\n".join(offenders)
