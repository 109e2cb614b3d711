"""One list of names per component kind (nlptune/config/names.py) and the implementations registered against
it: the two agree, registering an unlisted name fails, and config/ looks nothing up by importing upward."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from nlptune.config import names, registry
from nlptune.config.registry import UnknownComponentError, lookup, register, registered

PACKAGE = Path(__file__).resolve().parents[2] / "nlptune"
HEAVY = ("torch", "transformers", "datasets", "optuna", "accelerate")


def test_every_kind_of_component_has_a_registry():
    assert set(registry._REGISTRY) == set(names.NAMES) == {"model", "optimizer", "scheduler", "kind", "metric"}


@pytest.mark.parametrize("component, package", [("model", "nlptune.models"), ("optimizer", "nlptune.train.optim"),
                                                ("scheduler", "nlptune.train.optim")])
def test_names_equal_the_registered_implementations(component, package):
    importlib.import_module(package)
    assert registered(component) == sorted(names.names(component))
    for name in names.names(component):
        assert callable(lookup(component, name))


def test_problem_kinds_registered_once_the_kinds_package_exists():
    if not (PACKAGE / "kinds" / "__init__.py").is_file():
        # nlptune/kinds/ is being written on another branch; until it is merged there is nothing registered
        assert registered("kind") == []
        return
    importlib.import_module("nlptune.kinds")
    assert registered("kind") == sorted(names.names("kind"))


def test_metric_names_equal_the_metrics_nlptune_computes():
    from nlptune.metrics import METRICS

    assert sorted(METRICS) == sorted(names.names("metric"))


def test_the_config_choices_are_the_names_lists():
    from nlptune.config.schema import OPTIMIZERS, SCHEDULERS

    assert OPTIMIZERS == names.names("optimizer") and SCHEDULERS == names.names("scheduler")


def test_registering_a_name_missing_from_the_list_fails():
    with pytest.raises(ValueError, match="not in nlptune/config/names.py"):
        register("optimizer", "lion")
    with pytest.raises(ValueError, match="unknown component kind 'loss'"):
        register("loss", "mse")
    assert "lion" not in registered("optimizer")


def test_registering_a_second_implementation_under_a_name_fails():
    importlib.import_module("nlptune.train.optim")  # registers adamw

    with pytest.raises(ValueError, match="registered twice"):
        register("optimizer", "adamw")(lambda *args: None)


def test_unknown_name_suggests_the_closest_one():
    importlib.import_module("nlptune.models")

    with pytest.raises(UnknownComponentError, match="Did you mean 'lstm'") as err:
        lookup("model", "lstn")
    assert "pretrained" in str(err.value)  # every registered name is listed


def test_lookup_before_the_registering_package_is_imported_is_a_clear_error():
    # a fresh interpreter: nothing but config/ is imported, so no optimizer is registered yet
    code = ("from nlptune.config.registry import lookup\n"
            "try:\n    lookup('optimizer', 'adamw')\nexcept LookupError as err:\n    print(err)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "optimizer 'adamw' is a known name but no implementation is registered" in result.stdout


def test_is_pretrained():
    assert names.is_pretrained("pretrained") and not names.is_pretrained("lstm")
    assert names.PRETRAINED in names.names("model")


def test_importing_every_config_module_loads_no_torch():
    modules = sorted(f"nlptune.config.{p.stem}" for p in (PACKAGE / "config").glob("*.py") if p.stem != "__init__")
    assert "nlptune.config.registry" in modules and "nlptune.config.names" in modules
    code = (f"import sys\nimport {', '.join(['nlptune.config', *modules])}\n"
            "from nlptune.config.compose import compose, to_plain\n"
            "to_plain(compose(['task=sst2', 'model=lstm']))\n"  # composing loads no torch either
            "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))")
    result = subprocess.run([sys.executable, "-c", code, *HEAVY], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
