"""The built wheel is a working nlptune on its own: conf/ and recipes/ ship inside it.

The wheel is built from a copy of the checkout's sources, installed with ``--no-deps`` into a fresh virtual
environment that sees the system's packages (torch & co. are not reinstalled: the point is what the wheel holds),
and run from a folder outside the checkout with no PYTHONPATH, so nothing can be read from the repository.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# what a build reads: the package, the shipped folders, the project metadata
SOURCES = ("pyproject.toml", "README.md", "nlptune", "conf", "recipes")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """{"python": the venv's python, "nlptune": its console script, "cwd": a folder outside the checkout}."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:  # a copy, so the build's build/ and *.egg-info never land in the checkout
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO_ROOT / name, source / name)
    wheels = tmp_path_factory.mktemp("wheels")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = wheels.glob("nlptune-*.whl")
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, system_site_packages=True, with_pip=False)  # pip runs from outside: much faster
    python = env_dir / "bin" / "python"
    # --ignore-installed: the checkout's editable nlptune in the system site-packages is left alone, not replaced
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "--ignore-installed", "--quiet", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    return {"python": python, "nlptune": env_dir / "bin" / "nlptune", "cwd": tmp_path_factory.mktemp("outside"),
            "wheel": wheel}


def run(installed: dict, make_env, *args, extra_env=None, timeout=300) -> subprocess.CompletedProcess:
    env = make_env(extra_env)
    env.pop("PYTHONPATH", None)  # the checkout must not be importable
    env.pop("NLPTUNE_CONF_DIR", None), env.pop("NLPTUNE_RECIPES_DIR", None)
    return subprocess.run([str(a) for a in args], cwd=installed["cwd"], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_wheel_holds_conf_and_recipes(installed):
    import zipfile

    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    assert {"nlptune/_conf/config.yaml", "nlptune/_conf/trainer/default.yaml", "nlptune/_conf/task/demo.yaml",
            "nlptune/_recipes/sst2-lstm.yaml"} <= names
    for folder, prefix in (("conf", "nlptune/_conf/"), ("recipes", "nlptune/_recipes/")):
        shipped = {p.relative_to(REPO_ROOT / folder).as_posix() for p in (REPO_ROOT / folder).rglob("*.yaml")}
        assert shipped == {n[len(prefix):] for n in names if n.startswith(prefix)}


def test_the_venv_imports_the_wheel_not_the_checkout(installed, make_env):
    proc = run(installed, make_env, installed["python"], "-c",
               "import nlptune, nlptune.config.compose as c, nlptune.recipes.format as r; "
               "print(nlptune.__file__); print(c.conf_dir()); print(r.recipes_dir())")
    assert proc.returncode == 0, proc.stderr[-2000:]
    module, conf, recipes = proc.stdout.split()
    site = str(installed["python"].parents[1])
    assert module.startswith(site) and conf.startswith(site) and recipes.startswith(site), proc.stdout
    assert not any(p.startswith(str(REPO_ROOT)) for p in (module, conf, recipes))


def test_train_from_a_folder_outside_the_checkout(installed, make_env):
    proc = run(installed, make_env, installed["nlptune"], "train", "trainer.max_steps=5")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (run_dir,) = (installed["cwd"] / "runs" / "demo-bag").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_step"] == 5 and "accuracy" in metrics["best"]
    assert (run_dir / "best" / "model.safetensors").is_file()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["environment"]["git_commit"] is None  # an installed nlptune is no checkout


def test_recipes_list_and_show_by_name(installed, make_env):
    listed = run(installed, make_env, installed["nlptune"], "recipes", "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "_recipes" in listed.stdout and "sst2-lstm" in listed.stdout and "stsb-lstm" in listed.stdout
    shown = run(installed, make_env, installed["nlptune"], "recipes", "show", "sst2-lstm")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "name: sst2-lstm" in shown.stdout and "conf/ default" in shown.stdout


def test_a_recipe_by_name_trains(installed, make_env, data_dir):
    proc = run(installed, make_env, installed["nlptune"], "train", "recipe=sst2-lstm", "trainer.max_steps=3",
               "task.max_train_samples=64", "task.max_eval_samples=64", "output_dir=recipe-run",
               extra_env={"NLPTUNE_DATA_DIR": str(data_dir)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    manifest = json.loads((installed["cwd"] / "recipe-run" / "manifest.json").read_text())
    assert manifest["recipe"]["name"] == "sst2-lstm"
    assert "/nlptune/_recipes/" in manifest["recipe"]["path"]
