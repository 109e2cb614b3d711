"""Where the folders nlptune ships besides its code (conf/, recipes/) are.

They live at the repository's top level. A wheel carries them inside the package as ``nlptune/_conf`` and
``nlptune/_recipes`` (pyproject.toml maps the folders there), so an installed nlptune finds them with
importlib.resources; a checkout (or an editable install) reads the top-level folders. Standard library only.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

CHECKOUT_ROOT = Path(__file__).resolve().parents[2]


def shipped_dir(name: str) -> Path:
    """The folder ``name`` ("conf" or "recipes"): the installed package's copy, else the checkout's.

    The path may not exist (a broken install); the caller says what is missing.
    """
    packaged = resources.files("nlptune").joinpath(f"_{name}")
    if packaged.is_dir():
        return Path(str(packaged))
    return CHECKOUT_ROOT / name
