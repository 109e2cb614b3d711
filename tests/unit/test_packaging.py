"""pyproject.toml ships every nlptune package and the top-level conf/ and recipes/ folders (inside the package)."""
from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

REPO_ROOT = Path(__file__).resolve().parents[2]


def setuptools_config() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_of_the_source_tree_is_listed():
    found = {".".join(p.parent.relative_to(REPO_ROOT).parts) for p in (REPO_ROOT / "nlptune").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    listed = set(setuptools_config()["packages"])
    assert found <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
    assert listed - found == {"nlptune._conf", "nlptune._recipes"}


def test_conf_and_recipes_ship_inside_the_package():
    config = setuptools_config()
    assert config["package-dir"] == {"nlptune._conf": "conf", "nlptune._recipes": "recipes"}
    for package, folder in config["package-dir"].items():
        patterns = config["package-data"][package]
        files = {p.relative_to(REPO_ROOT / folder) for p in (REPO_ROOT / folder).rglob("*") if p.is_file()}
        assert files and all(any(f.match(pattern) and len(f.parts) == len(Path(pattern).parts) for pattern in patterns)
                             for f in files), f"a file of {folder}/ would be left out of the wheel"


def test_a_checkout_reads_the_top_level_folders():
    from nlptune.config.compose import conf_dir
    from nlptune.recipes.format import recipes_dir

    assert conf_dir() == REPO_ROOT / "conf" and recipes_dir() == REPO_ROOT / "recipes"


def test_a_missing_conf_folder_is_one_clear_error(monkeypatch, tmp_path):
    from nlptune.config.compose import load_run_config
    from nlptune.config.errors import ConfigError

    monkeypatch.setenv("NLPTUNE_CONF_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="holds no config.yaml") as err:
        load_run_config([])
    assert "NLPTUNE_CONF_DIR" in str(err.value)
