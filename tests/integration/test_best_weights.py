"""The best weights a run keeps (in this process, on a 64-row slice): a CPU copy at an improving evaluation that
more steps follow, none at the last evaluation (nothing changes the weights after it), and best/ holds the
weights of the best evaluation either way."""
from __future__ import annotations

import torch
from safetensors.torch import load_file

from conftest import child_env


def run_counting_copies(monkeypatch, data_dir, cache_dir, out, eval_every: int):
    """A 4-step run with a checkpoint every 2 steps, evaluated every ``eval_every`` steps and at the end; returns
    the steps at which `_cpu_copy` ran and the run's result."""
    for key, value in child_env(cache_dir, {"NLPTUNE_DATA_DIR": str(data_dir)}).items():
        monkeypatch.setenv(key, value)
    from nlptune.config.compose import load_run_config
    from nlptune.train import loop

    copies, real_copy = [], loop._cpu_copy
    session_step = {}

    def counted_copy(model):
        copies.append(session_step["step"])
        return real_copy(model)

    real_evaluate = loop._Session.evaluate_now

    def evaluate_now(self):
        session_step["step"] = self.state.step
        return real_evaluate(self)

    monkeypatch.setattr(loop, "_cpu_copy", counted_copy)
    monkeypatch.setattr(loop._Session, "evaluate_now", evaluate_now)
    result = loop.run(load_run_config([
        "task=sst2", "task.max_train_samples=64", "task.max_eval_samples=64", "model=lstm", "model.embedding_dim=16",
        "model.hidden_size=16", "trainer.batch_size=16", "trainer.max_epochs=1", f"trainer.eval_every={eval_every}",
        "trainer.save_every=2", "trainer.keep_last=2", "trainer.report_to=[]", "trainer.measure_cost=false",
        f"output_dir={out}"]))
    return copies, result


def assert_best_is_the_checkpoint_of(result, best_step: int) -> None:
    best = load_file(str(result.output_dir / "best" / "model.safetensors"))
    at_best = load_file(str(result.output_dir / "checkpoints" / f"step-{best_step:08d}" / "model.safetensors"))
    assert best.keys() == at_best.keys()
    assert all(torch.equal(best[key], at_best[key]) for key in best)


def test_the_last_evaluation_keeps_the_weights_without_copying_them(monkeypatch, data_dir, cache_dir, tmp_path):
    copies, result = run_counting_copies(monkeypatch, data_dir, cache_dir, tmp_path / "run", eval_every=0)
    assert result.summary["steps"] == 4 and result.best_step == 4  # one evaluation, at the end: the best
    assert copies == []
    assert_best_is_the_checkpoint_of(result, 4)


def test_an_evaluation_that_more_steps_follow_copies_the_best_weights(monkeypatch, data_dir, cache_dir, tmp_path):
    copies, result = run_counting_copies(monkeypatch, data_dir, cache_dir, tmp_path / "run", eval_every=2)
    assert copies == [2]  # the first evaluation always improves; the last one, best or not, copies nothing
    assert_best_is_the_checkpoint_of(result, result.best_step)
