"""`nlptune tune` when things go wrong or start again: a sweep that fails before its first trial leaves
nothing that blocks the corrected command; a resumed sweep draws new parameters (new sampler seeds); every
search-space problem at once; a warning when pruning cannot save anything; trial checkpoints deleted unless
kept. The built-in demo task on 64 rows, a few optimizer steps per trial."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).parent))
from test_tune import journal_study  # noqa: E402

TINY = ["task=demo", "task.max_train_samples=64", "task.max_eval_samples=32", "model=bag", "model.embedding_dim=8",
        "model.hidden_size=8", "trainer.max_steps=4", "trainer.batch_size=32", "trainer.report_to=[]",
        "tune.pruner=none", "tune.plots=false"]


def check_one_error(proc, *fragments: str) -> str:
    """Exit 2, a single `error:` message naming ``fragments``, no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.count("error:") == 1, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr
    return proc.stderr


def test_unreachable_storage_leaves_nothing_and_the_corrected_command_runs(run_cli, tmp_path):
    sweep = tmp_path / "sweeps" / "first"
    proc = run_cli(["tune", *TINY, "tune.n_trials=1", f"tune.dir={sweep}", "tune.storage=postgresql://nohost/x"])
    check_one_error(proc, "tune.storage=postgresql://nohost/x", "->")
    assert not (tmp_path / "sweeps").exists()  # not even the parent folders it made
    fixed = run_cli(["tune", *TINY, "tune.n_trials=1", f"tune.dir={sweep}"])
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert (sweep / "sweep.json").is_file() and (sweep / "trials" / "trial-0000" / "best").is_dir()


def test_failed_start_in_an_existing_folder_keeps_what_was_there(run_cli, tmp_path):
    sweep = tmp_path / "mine"
    sweep.mkdir()
    proc = run_cli(["tune", *TINY, "tune.n_trials=1", f"tune.dir={sweep}",
                    "tune.storage=sqlite:////nonexistent/dir/x.db"])
    check_one_error(proc, "/nonexistent/dir does not exist")
    assert sweep.is_dir() and not any(sweep.iterdir())  # the folder it did not make stays, empty
    (sweep / "notes.txt").write_text("keep me")  # someone's files: no new sweep starts among them
    proc = run_cli(["tune", *TINY, "tune.n_trials=1", f"tune.dir={sweep}"])
    check_one_error(proc, f"{sweep} (tune.dir) already holds files but no sweep (sweep.json): notes.txt")
    assert sorted(p.name for p in sweep.iterdir()) == ["notes.txt"]
    assert (sweep / "notes.txt").read_text() == "keep me"


def test_failed_start_in_the_default_folder_is_not_resumed_later(run_cli, tmp_path):
    proc = run_cli(["tune", *TINY, "tune.n_trials=1", "tune.storage=sqlite:////nonexistent/dir/x.db"], cwd=tmp_path)
    check_one_error(proc, "tune.storage")
    assert not (tmp_path / "runs").exists()  # so resume=auto cannot pick a half-made sweep


def test_every_space_problem_is_reported_at_once_and_nothing_is_written(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(["tune", *TINY, f"tune.dir={sweep}", "tune.space.optimizer.lr=loguniform(0,1)",
                    "tune.space.trainer.batch_size=int(8,4)", "tune.space.model.hiden_size=int(4,8)",
                    "tune.space.model.dropout=uniform(0,2)", "tune.space.scheduler.name=choice(linear,bogus)",
                    "tune.space.model=choice(bag,nosuch)"])
    err = check_one_error(proc, "tune.space.optimizer.lr", "tune.space.trainer.batch_size",
                          "did you mean 'model.hidden_size'", "tune.space.model.dropout", "2.0", "'bogus'",
                          "unknown model 'nosuch'")
    assert "6 config error(s)" in err  # each problem once, whichever corners showed it
    assert not sweep.exists()


def test_resumed_sweep_draws_new_parameters_with_new_seeds(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    first = run_cli(["tune", *TINY, "tune.n_trials=3", f"tune.dir={sweep}"])
    assert first.returncode == 0, first.stdout + first.stderr
    more = run_cli(["tune", *TINY, "tune.n_trials=6", f"tune.dir={sweep}", "resume=auto"])
    assert more.returncode == 0, more.stdout + more.stderr
    trials = journal_study(sweep).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 6
    # continuous dimensions: an equal parameter set can only be a replayed draw
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == 6, params
    seeds = [t.user_attrs["sampler_seed"] for t in trials]
    assert len(set(seeds[:3])) == 1 and len(set(seeds[3:])) == 1 and seeds[0] != seeds[3]
    # trials keep their model, metrics and config, not their checkpoints (tune.keep_trial_checkpoints=false)
    for number in range(6):
        run_dir = sweep / "trials" / f"trial-{number:04d}"
        assert (run_dir / "best").is_dir() and (run_dir / "metrics.json").is_file()
        assert (run_dir / "config.yaml").is_file() and not (run_dir / "checkpoints").exists()


def test_trial_checkpoints_are_kept_when_asked(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(["tune", *TINY, "tune.n_trials=1", f"tune.dir={sweep}", "tune.keep_trial_checkpoints=true"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checkpoints = sweep / "trials" / "trial-0000" / "checkpoints"
    assert checkpoints.is_dir() and any(checkpoints.iterdir())
    assert json.loads((sweep / "sweep.json").read_text())["tune"]["keep_trial_checkpoints"] is True


def test_single_evaluation_trials_warn_that_pruning_saves_nothing(run_cli, tmp_path):
    one_epoch = [o for o in TINY if not o.startswith(("trainer.max_steps", "tune.pruner"))]
    proc = run_cli(["tune", *one_epoch, "trainer.max_epochs=1", "tune.pruner=asha", "tune.n_trials=1",
                    f"tune.dir={tmp_path / 'sweep'}"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr
    assert output.count("each trial evaluates once") == 1  # once at the start, not per trial
    assert "tune.pruner=asha" in output and "trainer.eval_every=" in output


def test_eval_every_removes_the_single_evaluation_warning(run_cli, tmp_path):
    one_epoch = [o for o in TINY if not o.startswith(("trainer.max_steps", "tune.pruner"))]
    proc = run_cli(["tune", *one_epoch, "trainer.max_epochs=1", "trainer.batch_size=16", "trainer.eval_every=2",
                    "tune.pruner=asha", "tune.n_trials=1", f"tune.dir={tmp_path / 'sweep'}"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "evaluates once" not in proc.stdout + proc.stderr
