"""`nlptune tune recipe=...`: a sweep starts from a recipe's config (the recipe's keys, not conf/'s defaults),
with the sweep's dimensions and the command line's overrides on top."""
from __future__ import annotations

import yaml


def test_a_sweep_starts_from_a_recipe(run_cli, tmp_path):
    demo = tmp_path / "demo-run"
    trained = run_cli(["--quiet", "train", "task.max_train_samples=64", "task.max_eval_samples=32",
                       "trainer.max_steps=2", "model.embedding_dim=24", "trainer.report_to=[]", f"output_dir={demo}"])
    assert trained.returncode == 0, trained.stderr
    recipe = tmp_path / "small.yaml"
    frozen = run_cli(["freeze", demo, recipe])
    assert frozen.returncode == 0, frozen.stderr
    sweep = tmp_path / "sweep"
    proc = run_cli(["--quiet", "tune", f"recipe={recipe}", "trainer.max_steps=3", "tune.n_trials=1",
                    "tune.pruner=none", "tune.plots=false", f"tune.dir={sweep}"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = yaml.safe_load((sweep / "trials" / "trial-0000" / "config.yaml").read_text())
    assert config["model"]["embedding_dim"] == 24  # the recipe's value (conf/'s default differs)
    assert config["trainer"]["max_steps"] == 3  # the command line's override on top
