"""A whole sweep, as `nlptune tune` runs it: plan (validated before any trial) -> study (created once)
-> workers (this process, or N local processes) -> seed confirmation / retraining -> reports.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from nlptune.config.errors import ConfigError, NlptuneError
from nlptune.config.tune import TuneArgs, TuneConfig, build_tune_config, split_tune_args
from nlptune.tuning import results
from nlptune.tuning.live import SweepTable
from nlptune.tuning.plan import (DEFAULT_TRIALS, JOURNAL_FILE, SweepPlan, check_space, find_sweep_dir,
                                 grid_dimensions, grid_size, tune_fields)
from nlptune.utils.console import warn
from nlptune.utils.environment import usable_cores
from nlptune.utils.lock import claim_folder


@dataclass
class SweepOutcome:
    sweep_dir: Path
    plan: SweepPlan
    best: results.Best | None
    counts: dict = field(default_factory=dict)
    confirmed: list = field(default_factory=list)
    full: dict | None = None


def _gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [d for d in visible.split(",") if d.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def _home_expanded(storage: str | None) -> str | None:
    """tune.storage with a leading ``~`` of its file expanded (``sqlite:///~/study.db``, ``journal:~/s.journal``):
    SQLite and the journal would otherwise look for a folder named "~" in the current one."""
    for prefix in ("sqlite:///", "journal:"):
        if storage and storage.startswith(prefix + "~"):
            return prefix + os.path.expanduser(storage[len(prefix):])
    return storage


def _budget(base, folds: list[list[str]], processes: int) -> int:
    """Training samples of one unpruned trial (all folds), from the base config: the unit of the pruners'
    rungs and of the compute report (where each trial's own plan replaces it once known). A space over epochs,
    batch sizes or transfer-set copies makes it an estimate."""
    from nlptune.tuning.folds import train_rows

    trainer = base.trainer
    runs = max(len(folds), 1)
    if trainer.max_steps:
        return trainer.max_steps * trainer.batch_size * trainer.gradient_accumulation_steps * processes * runs
    rows = [len(Path(f[0]).read_text(encoding="utf-8").splitlines()) for f in folds] or [train_rows(base.task)]
    copies = base.distill.augment_copies if base.distill.active else 0  # the transfer set trains with train
    return sum(r * (1 + copies) * trainer.max_epochs for r in rows)


# the trainer keys that decide how often a trial evaluates: a space over one of them makes a count from the
# base config meaningless
_EVAL_KEYS = ("trainer.max_steps", "trainer.max_epochs", "trainer.eval_every", "trainer.batch_size",
              "trainer.gradient_accumulation_steps")


def evaluations_per_trial(trainer, rows: int, processes: int) -> tuple[int, int]:
    """(evaluations, optimizer steps) of one trial as the loop runs it: every `eval_every` steps, at the end
    of every epoch, and at the last step."""
    batches = math.ceil(rows / max(trainer.batch_size * processes, 1))
    per_epoch = max(1, math.ceil(batches / trainer.gradient_accumulation_steps))
    total = trainer.max_steps or per_epoch * trainer.max_epochs
    every = trainer.eval_every or per_epoch
    both = math.lcm(every, per_epoch)
    count = total // every + total // per_epoch - total // both
    return count + (1 if total % every and total % per_epoch else 0), total


def _warn_single_evaluation(tune: TuneConfig, base, dims, folds: list[list[str]], processes: int) -> None:
    """Pruning decides at evaluations: a trial that evaluates once cannot be stopped early, so say so."""
    from nlptune.tuning.folds import train_rows

    trainer = base.trainer
    if tune.pruner == "none" or any(d.config_key in _EVAL_KEYS for d in dims):
        return
    if (trainer.max_steps == 0 and trainer.max_epochs > 1) or (trainer.eval_every and trainer.max_steps
                                                                 >= 2 * trainer.eval_every):
        return  # several evaluations whatever the data: no need to count its rows
    rows = len(Path(folds[0][0]).read_text(encoding="utf-8").splitlines()) if folds else train_rows(base.task)
    count, steps = evaluations_per_trial(trainer, rows, processes)
    if count <= 1:
        warn(f"each trial evaluates once ({steps} optimizer steps, trainer.eval_every={trainer.eval_every}, "
             f"trainer.max_epochs={trainer.max_epochs}): tune.pruner={tune.pruner} decides at evaluations, "
             f"so it cannot stop a trial early and saves nothing -> evaluate more often, e.g. "
             f"trainer.eval_every={max(1, steps // 4)}, or set tune.pruner=none")


def _n_trials(tune: TuneConfig, dims) -> int:
    if tune.sampler != "grid":
        return tune.n_trials or DEFAULT_TRIALS
    size = grid_size(dims)
    if tune.n_trials and tune.n_trials > size:
        warn(f"tune.n_trials={tune.n_trials} but the grid has {size} points: running {size}")
    return min(tune.n_trials or size, size)


def make_plan(tune: TuneConfig, args: TuneArgs, base, sweep_dir: Path) -> SweepPlan:
    """Validate the sweep and decide everything its workers need (nothing has run yet)."""
    from nlptune.config.compose import GROUPS
    from nlptune.tuning.conditional import conditional_space
    from nlptune.tuning.folds import write_folds
    from nlptune.tuning.goals import goals, without_pruner

    # syntax, conditions (a model choice), objectives, then what composing each corner finds: all at once
    dims, conditions, issues, broken = conditional_space(tune, base.model.name, args.trial_overrides, GROUPS)
    if not dims and not issues:
        raise NlptuneError("the search space is empty -> add a dimension, e.g. tune.space.optimizer.lr="
                           "'loguniform(1e-4,1e-2)', or keep tune.default_space")
    goal_fields, goal_issues = goals(tune, base)
    issues += goal_issues + broken
    if not broken:  # (an override a group option lacks would fail every corner of that option)
        try:
            check_space(dims, args.trial_overrides, GROUPS)
        except ConfigError as err:
            issues += err.issues
    if issues:
        raise ConfigError(issues)
    tune = without_pruner(tune, asked=any(o.lstrip("+").startswith("tune.pruner=") for o in args.tune_overrides))
    if tune.sampler == "grid":
        dims = grid_dimensions(dims)
    gpus = _gpus()
    processes = tune.processes_per_trial or (tune.gpus_per_trial if gpus else 1)
    if gpus and tune.workers * tune.gpus_per_trial > len(gpus):
        raise NlptuneError(f"tune.workers={tune.workers} x tune.gpus_per_trial={tune.gpus_per_trial} needs "
                           f"{tune.workers * tune.gpus_per_trial} GPUs, {len(gpus)} are visible -> use fewer workers")
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise NlptuneError(f"tune.dir={sweep_dir} is a file, not a folder -> choose another tune.dir")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    seed = base.seed if tune.seed is None else tune.seed
    folds = write_folds(base.task, tune.cv_folds, seed, sweep_dir / "data") if tune.cv_folds else []
    return SweepPlan(
        sweep_dir=str(sweep_dir.resolve()),
        storage=_home_expanded(tune.storage) or f"journal:{(sweep_dir / JOURNAL_FILE).resolve()}",
        study_name=tune.study_name or f"{base.task.name}-{base.model.name}",
        overrides=args.trial_overrides, space={d.key: d.spec for d in dims}, tune=tune_fields(tune),
        n_trials=_n_trials(tune, dims), budget_samples=_budget(base, folds, processes), seed=seed,
        run_seed=base.seed, processes_per_trial=processes, folds=folds, groups=list(GROUPS),
        created=time.strftime("%Y-%m-%d %H:%M:%S"), conditions={d.key: conditions[d.key] for d in dims
                                                                 if d.key in conditions}, **goal_fields)


def _resumed_plan(sweep_dir: Path, tune: TuneConfig, args: TuneArgs) -> SweepPlan:
    """The plan of the sweep being continued; this command may change how many trials and workers."""
    plan = SweepPlan.load(sweep_dir)
    if args.trial_overrides != plan.overrides:
        warn(f"resuming {sweep_dir} with its own overrides ({' '.join(plan.overrides)}); this command's differ")
    if tune.n_trials:
        plan.n_trials = tune.n_trials
    for key in ("workers", "timeout_s"):
        plan.tune[key] = getattr(tune, key)
    return plan


def _configs(args: TuneArgs) -> tuple[TuneConfig, object]:
    """The sweep's tune section and the trials' base config (as `nlptune train` would make it, a recipe=
    included); the problems of both in one `ConfigError`."""
    from nlptune.config.compose import compose, issues_of_the_rest, to_plain
    from nlptune.recipes.run import load_run_config

    def build(plain: dict) -> TuneConfig:
        return build_tune_config(plain.get("tune"), args.space)

    issues, tune, base = [], None, None
    try:
        tune = build(to_plain(compose(args.tune_overrides)))
    except ConfigError as err:
        issues += err.issues + issues_of_the_rest(args.tune_overrides, err.issues, build)
    try:
        base = load_run_config(args.trial_overrides)
    except ConfigError as err:
        issues += [issue for issue in err.issues if issue not in issues]
    if issues:
        raise ConfigError(issues)
    return tune, base


def prepare(overrides: Sequence[str], hold: Callable[[Path], object] | None = None) -> tuple[SweepPlan, bool]:
    """Compose and check everything; return the plan (saved) and whether it continues an earlier sweep.
    ``hold(sweep_dir)`` is called before anything is written there (run_sweep: take its lock)."""
    args = split_tune_args(overrides)
    tune, base = _configs(args)
    if base.output_dir:
        raise NlptuneError("output_dir is set per trial in a sweep -> use tune.dir=PATH for the sweep directory")
    sweep_dir, resumed = find_sweep_dir(tune, args, base.task.name, base.model.name)
    held = hold is not None and not tune.storage  # RDB storage: every machine may run the same command on it
    if held:
        hold(sweep_dir)
    if resumed:
        plan = _resumed_plan(sweep_dir, tune, args)
        if plan.journal and held:  # this command holds the sweep: no worker writes to the journal now
            from nlptune.tuning.study import seal_journal

            aside = seal_journal(plan.journal)
            if aside:
                warn(f"{plan.journal} ended in a cut-short record (a worker stopped while writing it); its bytes "
                     f"are kept in {aside} and the sweep goes on from the last complete record")
        plan.save()
        return plan, True
    from nlptune.tuning.study import create_study
    from nlptune.tuning.worker import quiet_optuna

    quiet_optuna(logging.ERROR)  # "a new study created": the sweep's own lines say so
    with _undone_on_failure(sweep_dir):
        plan = make_plan(tune, args, base, sweep_dir)
        create_study(plan)  # the storage opens (URL, server, driver) before the plan says a sweep is here
        plan.save()
    _warn_single_evaluation(plan.tune_config, base, plan.dimensions, plan.folds, plan.processes_per_trial)
    return plan, False


@contextlib.contextmanager
def _undone_on_failure(sweep_dir: Path):
    """A new sweep that fails before its first trial (storage unreachable, bad data) leaves nothing behind,
    so the corrected command runs in the same directory: what this command created there is removed
    (the directory itself, and its parents, when they did not exist), never what was there before."""
    created = next((p for p in reversed([sweep_dir, *sweep_dir.parents]) if not p.exists()), None)
    before = set(os.listdir(sweep_dir)) if created is None and sweep_dir.is_dir() else set()
    try:
        yield
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        elif sweep_dir.is_dir() and not sweep_dir.is_symlink():
            for name in set(os.listdir(sweep_dir)) - before:
                path = sweep_dir / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise


def _spawn(plan: SweepPlan, index: int, count: int, deadline: float | None, trials_before: int) -> subprocess.Popen:
    """Start local worker ``index`` of ``count``: its share of the CPU threads, or its slice of the GPUs;
    ``trials_before`` (the study's trial count) picks its sampler's seed."""
    env = dict(os.environ)
    gpus = _gpus()
    if gpus:
        per = plan.tune_config.gpus_per_trial
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[index * per:(index + 1) * per])
    else:
        threads = str(max(1, usable_cores() // count))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, NLPTUNE_WORKER_THREADS=threads)
    logs = Path(plan.sweep_dir) / "logs"
    logs.mkdir(exist_ok=True)
    log = (logs / f"worker-{index}.log").open("a")
    command = [sys.executable, "-m", "nlptune.tuning.worker", plan.sweep_dir, str(index),
               "none" if deadline is None else repr(deadline), str(trials_before)]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def _worker_count(plan: SweepPlan, trials: list) -> int:
    """tune.workers, but no more than the trials left to run, ``trials`` being the study's (each worker holds its
    own copy of torch and the data: tune.workers=64 for 2 trials took the machine's memory for nothing); more
    workers than CPU cores is said."""
    from optuna.trial import TrialState

    from nlptune.tuning.study import taken_slots

    workers = plan.tune_config.workers
    left = plan.n_trials - taken_slots(trials) + sum(t.state == TrialState.WAITING for t in trials)
    count = max(1, min(workers, left))
    cores = usable_cores()
    if not _gpus() and count > cores:
        warn(f"tune.workers={workers}: {count} workers on {cores} CPU cores share them (one thread each), no faster "
             f"than {cores} -> set tune.workers={cores} or fewer")
    return count


def _run_workers(plan: SweepPlan, study, table: SweepTable, deadline: float | None, trials_before: int) -> None:
    """N local worker processes; a worker that dies is replaced while trials are left (at most N times)."""
    from nlptune.tuning.study import work_left

    count = _worker_count(plan, study.get_trials(deepcopy=False))
    procs = {i: _spawn(plan, i, count, deadline, trials_before) for i in range(count)}
    restarts = 0
    try:
        while procs:
            time.sleep(1.0)
            table.update(study.get_trials(deepcopy=False))
            for index, proc in list(procs.items()):
                if proc.poll() is None:
                    continue
                del procs[index]
                if proc.returncode not in (0, 130) and restarts < count and work_left(
                        study.get_trials(deepcopy=False), plan.n_trials):
                    warn(f"worker {index} exited with code {proc.returncode} (logs/worker-{index}.log); restarting it")
                    restarts += 1
                    # a new seed: the replacement must not replay the proposals of the worker it replaces
                    procs[index] = _spawn(plan, index, count, deadline, len(study.get_trials(deepcopy=False)))
    except KeyboardInterrupt:  # the workers got the same Ctrl-C: let them record their trials
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.terminate()
        raise


def search(plan: SweepPlan, table: SweepTable) -> None:
    """Run the search phase until `n_trials` trials are done (or the time limit)."""
    from nlptune.tuning.study import create_study, fail_orphans
    from nlptune.tuning.worker import quiet_optuna, run_worker

    # in this process the table shows failures; worker processes keep Optuna's warnings in their logs
    quiet_optuna(logging.WARNING if plan.tune_config.workers > 1 else logging.ERROR)
    study = create_study(plan)  # once, before any worker starts
    if plan.journal:
        fail_orphans(study, plan.tune_config.max_retry)
    trials_before = len(study.get_trials(deepcopy=False))  # > 0 when resumed: the samplers take new seeds
    table.update(study.get_trials(deepcopy=False))
    timeout = plan.tune_config.timeout_s
    deadline = time.time() + timeout if timeout else None
    if plan.tune_config.workers > 1:
        _run_workers(plan, study, table, deadline, trials_before)
    else:
        from nlptune.utils.console import console, set_quiet

        was_quiet = console().quiet
        set_quiet(True)  # the trials' own tables and bars would tear the sweep table
        try:
            run_worker(plan, 0, deadline, on_change=lambda s: table.update(s.get_trials(deepcopy=False)),
                       trials_before=trials_before)
        finally:
            set_quiet(was_quiet)
    table.update(study.get_trials(deepcopy=False))


def finish(plan: SweepPlan, table: SweepTable | None = None, train: bool = True) -> SweepOutcome:
    """After the search: confirmation and retraining (unless not ``train``: an interrupted sweep only reports),
    best/ and best_recipe.yaml, plots, leaderboard, summary."""
    from nlptune.tuning.confirm import confirm, retrain_full
    from nlptune.tuning.pareto import write_pareto
    from nlptune.tuning.recipe import write_best_recipe
    from nlptune.tuning.study import load_study
    from nlptune.tuning.summary import write_summary

    from nlptune.utils.console import console, set_quiet

    sweep_dir, tune = Path(plan.sweep_dir), plan.tune_config
    study = load_study(plan, plan.seed)
    say = table.console.print if table and not table.quiet else (lambda *_: None)
    was_quiet = console().quiet
    set_quiet(True)  # the confirmation and retraining runs report through `say`
    try:
        confirmed = confirm(plan, study, on_progress=say) if tune.confirm_seeds and train else []
        best = results.pick_best(study, plan, confirmed)
        full = retrain_full(plan, best.params) if tune.retrain_full and best and train else None
    finally:
        set_quiet(was_quiet)
    if full:
        say(f"retrained on all the data: {plan.metric} {full.get('value')} ({full['run_dir']})")
    if best:
        results.copy_best_model(best, sweep_dir)
        write_best_recipe(plan, best, full)
    trials = study.get_trials(deepcopy=False)
    front = write_pareto(plan, trials) if plan.multi_objective else None
    skipped = results.write_plots(study, sweep_dir / "plots", plan) if tune.plots else {}
    results.write_leaderboard(sweep_dir / "leaderboard.csv", trials, plan, confirmed)
    write_summary(sweep_dir / "summary.md", plan, trials, best, confirmed, full, skipped, front)
    return SweepOutcome(sweep_dir, plan, best, results.counts(trials), confirmed, full)


def run_sweep(overrides: Sequence[str], quiet: bool = False) -> SweepOutcome:
    """`nlptune tune OVERRIDES...`: the whole sweep; returns where it is and what it found."""
    with contextlib.ExitStack() as held:  # the sweep directory's lock: one command per sweep (workers share it)
        plan, resumed = prepare(overrides, hold=lambda folder: held.enter_context(claim_folder(folder, "sweep")))
        table = SweepTable(plan, quiet=quiet)
        if resumed:
            table.console.print(f"resuming the sweep in {plan.sweep_dir}")
        try:
            search(plan, table)
        except KeyboardInterrupt:
            table.close()
            finish(plan, train=False)  # reports of what is done; resume=auto continues
            raise
        finally:
            table.close()
        return finish(plan, table)
