"""Sweep hardening without training: evaluations per trial (the single-evaluation warning), worker seeds of a
resumed sweep, the clean-up of a new sweep that fails before its first trial, storage fixes and the search
space's problems reported once each, all together."""
from __future__ import annotations

import os
from types import SimpleNamespace

import optuna
import pytest

from nlptune.config.errors import ConfigError, NlptuneError
from nlptune.tuning.plan import SweepPlan, check_space
from nlptune.tuning.space import parse_space_lenient
from nlptune.tuning.study import storage_fix, worker_seed
from nlptune.tuning.sweep import _undone_on_failure, evaluations_per_trial


def trainer(**kw):
    values = dict(batch_size=32, gradient_accumulation_steps=1, max_steps=0, max_epochs=1, eval_every=0)
    return SimpleNamespace(**{**values, **kw})


@pytest.mark.parametrize("settings, rows, expected", [
    ({}, 64, (1, 2)),  # one epoch, evaluated at its end
    ({"max_epochs": 3}, 64, (3, 6)),
    ({"max_steps": 4}, 64, (2, 4)),  # two epochs of two steps
    ({"max_steps": 5}, 64, (3, 5)),  # ends of epochs 1, 2 and the last step
    ({"max_epochs": 3, "eval_every": 5}, 640, (12, 60)),  # every 5 steps; epoch ends (20, 40, 60) coincide
    ({"max_steps": 1, "max_epochs": 3}, 640, (1, 1)),
    ({"gradient_accumulation_steps": 2}, 128, (1, 2)),
])
def test_evaluations_per_trial(settings, rows, expected):
    assert evaluations_per_trial(trainer(**settings), rows, processes=1) == expected


def plan(seed: int = 7) -> SweepPlan:
    return SweepPlan(sweep_dir="/nonexistent", storage="journal:/nonexistent/j", study_name="s", overrides=[],
                     space={}, tune={}, n_trials=4, metric="accuracy", direction="maximize", budget_samples=1,
                     seed=seed, run_seed=seed)


def test_worker_seeds_of_a_fresh_sweep_are_unchanged_and_a_resume_draws_new_ones(monkeypatch):
    for name in ("NLPTUNE_MACHINE", "SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"):
        monkeypatch.delenv(name, raising=False)
    assert [worker_seed(plan(), i) for i in range(3)] == [7, 8, 9]  # fresh sweeps reproduce as before
    seeds = {worker_seed(plan(), i, n) for i in range(8) for n in (0, 3, 4, 20)}
    assert len(seeds) == 8 * 4  # no two starts of any worker share a seed
    monkeypatch.setenv("NLPTUNE_MACHINE", "2")
    assert worker_seed(plan(), 1) == 7 + 1 + 2000 and worker_seed(plan(), 1, 3) != worker_seed(plan(), 1)
    assert 0 <= worker_seed(plan(2**32 - 1), 5, 10**6) < 2**32  # numpy's seed range


def test_a_failed_new_sweep_removes_the_folders_it_made(tmp_path):
    sweep = tmp_path / "runs" / "sweeps" / "demo-bag" / "20260101-000000"
    with pytest.raises(RuntimeError), _undone_on_failure(sweep):
        sweep.mkdir(parents=True)
        (sweep / "sweep.json").write_text("{}")
        raise RuntimeError("storage unreachable")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_new_sweep_in_an_existing_folder_removes_only_its_own_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "old").mkdir()
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    with pytest.raises(KeyboardInterrupt), _undone_on_failure(tmp_path):
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "fold-0.jsonl").write_text("{}\n")
        (tmp_path / "study.journal").write_text("")
        (tmp_path / "link").symlink_to(outside)  # a link it made is removed, never followed
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "old"]
    assert (outside / "keep.txt").read_text() == "keep"


def test_a_sweep_that_starts_keeps_everything(tmp_path):
    sweep = tmp_path / "sweep"
    with _undone_on_failure(sweep):
        sweep.mkdir()
        (sweep / "sweep.json").write_text("{}")
    assert (sweep / "sweep.json").is_file()


def test_storage_fix_names_the_missing_folder_or_the_driver(tmp_path):
    assert "does not exist" in storage_fix("sqlite:////nonexistent/dir/x.db", OSError())
    assert "/nonexistent/dir" in storage_fix("sqlite:////nonexistent/dir/x.db", OSError())
    assert "writable" in storage_fix(f"sqlite:///{tmp_path}/x.db", OSError())
    assert "pip install psycopg2-binary" in storage_fix("postgresql+psycopg2://h/db", ImportError("psycopg2"))
    assert "server is up" in storage_fix("postgresql://nohost/x", RuntimeError("could not resolve"))


def test_a_storage_urls_password_is_never_shown(tmp_path):
    """tune.storage=postgresql://user:secret@host/db printed the password in its error and in summary.md."""
    import dataclasses

    from nlptune.tuning.study import open_storage

    shown = {url: dataclasses.replace(plan(), storage=url).storage_shown for url in (
        "postgresql://user:s3cr:et@db.example/sweeps", "mysql+pymysql://u:p@h:3306/x", "postgresql://h/db",
        "sqlite:////tmp/x.db", "journal:/tmp/a:b@c/j")}
    assert list(shown.values()) == ["postgresql://user:***@db.example/sweeps", "mysql+pymysql://u:***@h:3306/x",
                                    "postgresql://h/db", "sqlite:////tmp/x.db", "journal:/tmp/a:b@c/j"]
    secret = dataclasses.replace(plan(), sweep_dir=str(tmp_path), storage="postgresql://u:pw@h/db")
    secret.save()  # the workers read the URL from sweep.json: it keeps the password, for its owner's eyes only
    assert (tmp_path / "sweep.json").stat().st_mode & 0o777 == 0o600
    dataclasses.replace(secret, storage="journal:/j").save()
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "sweep.json").stat().st_mode & 0o777 == 0o644 & ~umask  # as any other file
    with pytest.raises(NlptuneError) as info:  # no such server: the message names the URL, masked
        open_storage(dataclasses.replace(plan(), storage="postgresql://u:hunter2@nohost.invalid/db"))
    assert "u:***@nohost.invalid" in str(info.value) and "hunter2" not in str(info.value)


def test_every_space_problem_once_each():
    from nlptune.config.compose import GROUPS

    space = {"optimizer.lr": "loguniform(0,1)", "model.hiden_size": "int(4,8)", "model.dropout": "uniform(0,2)",
             "scheduler.name": "choice(linear,cosine,bogus)", "model": "choice(bag,nosuch)"}
    dims, issues = parse_space_lenient(space)
    assert [i.key for i in issues] == ["tune.space.optimizer.lr"] and len(dims) == 4
    with pytest.raises(ConfigError) as caught:
        check_space(dims, ["task=demo"], GROUPS)
    keys = [i.key for i in caught.value.issues]
    # the unknown key and the unknown model stop composition; the value problems behind them are found too
    assert sorted(keys) == sorted(["tune.space.model.hiden_size", "tune.space.model", "tune.space.model.dropout",
                                   "tune.space.scheduler.name"]), keys


@pytest.mark.parametrize("text, expected", [
    ('{"sweep_dir": ', "Expecting value"),
    ("[" * 100_000 + "]" * 100_000, "nested deeper"),
    ("[1, 2]", "holds list, not a JSON object"),
    ('{"sweep_dir": "x"}', "missing keys ['storage'"),
])
def test_a_damaged_plan_is_one_message(tmp_path, text, expected):
    from nlptune.config.errors import NlptuneError

    (tmp_path / "sweep.json").write_text(text)
    with pytest.raises(NlptuneError, match="is not the plan of an nlptune sweep") as caught:
        SweepPlan.load(tmp_path)
    assert expected in str(caught.value) and "another tune.dir" in str(caught.value)


def test_a_plan_round_trips_and_a_wrong_type_or_key_is_named(tmp_path):
    import dataclasses
    import json
    import re

    from nlptune.config.errors import NlptuneError

    saved = dataclasses.replace(plan(), sweep_dir=str(tmp_path))
    saved.save()
    assert SweepPlan.load(tmp_path) == saved
    record = json.loads((tmp_path / "sweep.json").read_text())
    for change, expected in (({"n_trials": "10"}, "n_trials is str, not int"), ({"space": []}, "space is list"),
                             ({"colour": 1}, "unknown keys ['colour']")):
        (tmp_path / "sweep.json").write_text(json.dumps({**record, **change}))
        with pytest.raises(NlptuneError, match=re.escape(expected)):
            SweepPlan.load(tmp_path)
    del record["conditions"]  # an older sweep's plan lacks the fields added since, which have defaults
    (tmp_path / "sweep.json").write_text(json.dumps(record))
    assert SweepPlan.load(tmp_path).conditions == {}


def test_a_damaged_confirmation_result_is_run_again_not_trusted(tmp_path):
    """A confirmation run's saved result (resumed sweeps read it instead of training again) counts only when it
    is a JSON object with the keys a result has; anything else (cut short, another shape) means: train it again."""
    from nlptune.tuning.confirm import _saved_result

    path, keys = tmp_path / "confirm_result.json", ("seed", "value")
    assert _saved_result(path, keys) is None  # none yet
    for damaged in ('{"seed": 43, "val', "[43, 0.9]", '{"seed": 43}', "[" * 100_000):
        path.write_text(damaged)
        assert _saved_result(path, keys) is None
    path.write_text('{"seed": 43, "value": 0.9, "train_samples": 10}')
    assert _saved_result(path, keys) == {"seed": 43, "value": 0.9, "train_samples": 10}


def test_a_cut_short_journal_record_is_set_aside_and_the_rest_kept(tmp_path):
    """Appending after a cut-short record would join the two into a line no reader parses: the partial bytes
    move aside (nothing lost), the journal ends at its last whole record, and a whole journal is left alone."""
    from nlptune.tuning.study import seal_journal

    journal = tmp_path / "study.journal"
    whole = b'{"op_code": 0}\n{"op_code": 4}\n'
    journal.write_bytes(whole)
    assert seal_journal(journal) is None and journal.read_bytes() == whole
    for number in (1, 2):
        journal.write_bytes(whole + b'{"op_code": 5, "tri')
        aside = seal_journal(journal)
        assert aside == tmp_path / f"study.journal.cut-{number}" and aside.read_bytes() == b'{"op_code": 5, "tri'
        assert journal.read_bytes() == whole
    assert seal_journal(tmp_path / "missing.journal") is None


def test_a_worker_killed_mid_record_never_joins_the_next_workers_record(tmp_path):
    """Workers append to one journal: one killed while writing leaves a partial record; the next worker's append
    (under the journal's lock) sets it aside first, so the study stays readable with every whole record."""
    import dataclasses

    from nlptune.tuning.study import open_storage

    journal = tmp_path / "study.journal"
    sweep = dataclasses.replace(plan(), storage=f"journal:{journal}")
    study = optuna.create_study(storage=open_storage(sweep), study_name="s", direction="maximize")
    study.enqueue_trial({"x": 1.0})
    with journal.open("ab") as dying:  # the killed worker's half-written record, after its lock went stale
        dying.write(b'{"op_code": 5, "trial_id": 0, "par')
    other = optuna.load_study(storage=open_storage(sweep), study_name="s")  # another worker, still alive
    trial = other.ask()
    other.tell(trial, 0.5)
    assert (tmp_path / "study.journal.cut-1").read_bytes() == b'{"op_code": 5, "trial_id": 0, "par'
    assert journal.read_bytes().endswith(b"\n")
    reread = optuna.load_study(storage=open_storage(sweep), study_name="s")  # a fresh reader replays it whole
    assert [t.value for t in reread.trials if t.state == optuna.trial.TrialState.COMPLETE] == [0.5]


def test_a_damaged_journal_is_one_message(tmp_path):
    import dataclasses

    from nlptune.config.errors import NlptuneError
    from nlptune.tuning.study import open_storage

    journal = tmp_path / "study.journal"
    journal.write_bytes(b'{"op_code": 0, broken\n{"op_code": 4}\n')
    with pytest.raises(NlptuneError, match="study journal\\) is damaged .*another tune.dir"):
        open_storage(dataclasses.replace(plan(), storage=f"journal:{journal}"))


def test_no_more_workers_start_than_trials_are_left_and_more_than_the_cores_is_said(monkeypatch, capsys):
    """tune.workers=64 for 2 trials started 64 processes, each importing torch: the machine's memory for nothing."""
    from optuna.trial import TrialState, create_trial

    from nlptune.config.tune import build_tune_config
    from nlptune.tuning import sweep
    from nlptune.tuning.plan import tune_fields

    monkeypatch.setattr(sweep, "usable_cores", lambda: 2)
    monkeypatch.setattr(sweep, "_gpus", lambda: [])
    many = SweepPlan(sweep_dir="/nonexistent", storage="journal:/nonexistent/j", study_name="s", overrides=[],
                     space={}, tune=tune_fields(build_tune_config({"workers": 64})), n_trials=5, metric="accuracy",
                     direction="maximize", budget_samples=1, seed=7, run_seed=7)
    assert sweep._worker_count(many, []) == 5
    assert "tune.workers=64: 5 workers on 2 CPU cores" in " ".join(capsys.readouterr().err.split())
    done = [create_trial(state=TrialState.COMPLETE, value=0.5) for _ in range(4)]
    assert sweep._worker_count(many, done) == 1  # one trial left
    assert sweep._worker_count(many, done + [create_trial(state=TrialState.COMPLETE, value=0.5)]) == 1  # at least one
