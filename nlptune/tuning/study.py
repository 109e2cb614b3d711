"""The Optuna side of a sweep: storage (journal file or RDB with heartbeats), sampler, pruner, the study,
and the bookkeeping that keeps `n_trials` exact across workers, crashes and retries.

Counting rule: a trial takes one of the `n_trials` slots unless it failed and was retried (a retry is a
new trial with the same parameters, made by Optuna's retry callback), so a killed trial is
replaced rather than lost, and a trial that failed on its own (raised, NaN, out of memory) still counts.
"""
from __future__ import annotations

import fcntl
import inspect
import os
import warnings
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileSymlinkLock
from optuna.trial import TrialState

from nlptune.config.errors import NlptuneError
from nlptune.tuning.goals import sampler_options
from nlptune.tuning.plan import SweepPlan
from nlptune.tuning.space import grid_space
from nlptune.utils.files import refuse_link, write_new_bytes
from nlptune.utils.processes import alive as _alive

try:  # optuna >= 4.9 (the older name is deprecated there)
    from optuna.storages import RetryHeartbeatStaleTrialCallback as RetryCallback
except ImportError:  # pragma: no cover - optuna 4.0 - 4.8
    from optuna.storages import RetryFailedTrialCallback as RetryCallback

LOCK_FILE = ".ask.lock"


def open_storage(plan: SweepPlan):
    """The plan's storage: a journal file (no server, no heartbeat) or an RDB URL with heartbeat and retry."""
    tune = plan.tune_config
    if plan.journal:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        try:  # replays the journal: a damaged one fails here
            return JournalStorage(JournalFileBackend(plan.journal, lock_obj=SealingLock(plan.journal)))
        except ValueError as err:  # a record that is not JSON, or a cut-short one with records after it
            raise NlptuneError(f"{plan.journal} (the sweep's study journal) is damaged ({err}) -> restore it from a "
                               "copy of the sweep, or start the sweep again in another tune.dir") from None
    with warnings.catch_warnings():  # "experimental" since optuna 2.8
        warnings.simplefilter("ignore")
        callback = RetryCallback(max_retry=tune.max_retry)
    # optuna >= 4.9 renamed failed_trial_callback (older names still accepted, with a warning)
    name = ("heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback"
            in inspect.signature(optuna.storages.RDBStorage).parameters else "failed_trial_callback")
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" too
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(plan.storage, heartbeat_interval=tune.heartbeat_interval,
                                              grace_period=tune.grace_period, **{name: callback},
                                              engine_kwargs={"pool_pre_ping": True})
    except Exception as err:  # driver missing, host unreachable, bad URL: the user fixes the storage
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise NlptuneError(f"tune.storage={plan.storage_shown}: cannot open it ({type(err).__name__}: {first}) -> "
                           f"{storage_fix(plan.storage, err)}") from None


class SealingLock(JournalFileSymlinkLock):
    """Optuna's lock of a journal file (a symlink lock, which a writer that died holding it loses after 30 s),
    which on each acquire first seals the journal (`seal_journal`): with several workers appending, one killed
    mid-record would otherwise have the next worker's record joined to its partial one, a line no reader parses."""

    def __init__(self, journal: str):
        super().__init__(journal)
        self.journal = journal

    def acquire(self) -> bool:
        acquired = super().acquire()
        if acquired:  # every writer appends under this lock: no one else writes while we look
            try:
                seal_journal(self.journal)
            except BaseException:  # never leave the others waiting on a lock no one will release
                self.release()
                raise
        return acquired


def seal_journal(path: str | Path) -> Path | None:
    """Set aside a cut-short last record of a journal file (a worker killed, or a disk that filled, while writing
    it): Optuna skips such a record when reading, but the next record appended would join it into one line that
    no reader can parse, and the whole study would be lost. The partial bytes move to ``<journal>.cut-<n>`` and the
    journal ends at its last complete record. Call it only while no worker can write (the journal's lock or the
    sweep's held). Returns the file the bytes went to, or None when the journal was whole."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return None
    refuse_link(path, "(the sweep's study journal)")
    with path.open("rb") as journal:
        journal.seek(-1, os.SEEK_END)
        if journal.read(1) == b"\n":  # the usual case, at every append: one byte read
            return None
        journal.seek(0)
        data = journal.read()
    keep = data.rfind(b"\n") + 1  # 0 when not even the first record is whole
    number = 1
    while path.with_name(f"{path.name}.cut-{number}").exists():  # earlier ones are kept, whichever were removed
        number += 1
    aside = write_new_bytes(path.with_name(f"{path.name}.cut-{number}"), data[keep:])
    os.truncate(path, keep)
    return aside


def storage_fix(url: str, err: BaseException) -> str:
    """What to do about a storage URL that could not be opened (the fix part of the error message)."""
    scheme = url.partition(":")[0].partition("+")[0].lower()
    if scheme == "sqlite":
        path = url.partition(":///")[2]
        folder = Path(path).parent if path else None
        if folder is not None and not folder.is_dir():
            return (f"the folder {folder} does not exist: create it, or give a path in an existing folder "
                    "(or leave tune.storage unset for a journal file in the sweep directory)")
        return "check that the file's folder is writable (or leave tune.storage unset for a journal file)"
    if isinstance(err, ImportError):
        driver = {"postgresql": "psycopg2-binary", "mysql": "pymysql"}.get(scheme, "the database's driver")
        return f"install its Python driver (pip install {driver})"
    return ("check the URL (dialect://user:password@host/database), that the server is up and reachable, and "
            "its Python driver (psycopg2-binary for postgresql://, pymysql for mysql://); or leave "
            "tune.storage unset for a journal file in the sweep directory")


SEED_STRIDE = 1_000_003  # above any worker index + 1000 * machine: seeds of different starts never meet


def worker_seed(plan: SweepPlan, index: int, trials_before: int = 0) -> int:
    """Worker ``index`` of machine m (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, NLPTUNE_MACHINE) samples
    with seed + index + 1000 m: reproducible, and no two workers propose the same random trials. A worker
    started when the study already holds ``trials_before`` trials (a resumed sweep, a restarted worker) adds
    ``trials_before`` strides, so its sampler does not replay the draws of the workers before it."""
    machine = next((os.environ[v] for v in ("NLPTUNE_MACHINE", "SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX")
                    if os.environ.get(v, "").isdigit()), "0")
    return (plan.seed + index + 1000 * int(machine) + SEED_STRIDE * trials_before) % 2**32


def build_sampler(plan: SweepPlan, seed: int) -> optuna.samplers.BaseSampler:
    """The plan's sampler; every worker builds the same one (seeded per worker, see `worker_seed`)."""
    tune, startup = plan.tune_config, plan.tune_config.sampler_startup_trials
    if tune.sampler == "grid":  # the grid's order is shuffled by the seed: every worker must share it
        return optuna.samplers.GridSampler(grid_space(plan.dimensions), seed=plan.seed)
    if tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if tune.sampler == "cmaes":  # optuna's CMA-ES needs the cmaes package: a dependency of nlptune (pyproject)
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=startup, warn_independent_sampling=False)
    samplers = {"gp": optuna.samplers.GPSampler, "nsga2": optuna.samplers.NSGAIISampler,
                "tpe": optuna.samplers.TPESampler}
    sampler = samplers[tune.sampler]
    options = sampler_options(plan, sampler)  # bounds: a constraints_func where Optuna needs one (goals.py)
    if tune.sampler == "gp":
        return sampler(seed=seed, n_startup_trials=startup, **options)
    if tune.sampler == "nsga2":  # each generation is `sampler_startup_trials` trials; the first is random
        return sampler(seed=seed, population_size=max(2, startup), **options)
    # constant_liar: running trials count as (bad) results, so parallel workers spread out
    return sampler(seed=seed, n_startup_trials=startup, constant_liar=True, **options)


def build_pruner(plan: SweepPlan) -> optuna.pruners.BasePruner:
    """The plan's pruner; its steps are training samples (comparable across batch sizes and processes). A
    multi-objective study has none (Optuna cannot prune it)."""
    tune = plan.tune_config
    if plan.multi_objective:
        return optuna.pruners.NopPruner()
    budget, factor = max(plan.budget_samples, 1), tune.prune_reduction_factor
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=tune.prune_startup_trials,
                                           n_warmup_steps=tune.prune_warmup_samples)
    if tune.pruner == "asha":
        first = tune.prune_min_samples or max(1, budget // factor ** 2)
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=factor)
    if tune.pruner == "hyperband":
        first = tune.prune_min_samples or max(1, budget // factor ** 4)
        return optuna.pruners.HyperbandPruner(min_resource=first, max_resource=budget, reduction_factor=factor)
    return optuna.pruners.NopPruner()


def create_study(plan: SweepPlan) -> optuna.Study:
    """Create the study (or join the existing one of that name): done once, before any worker starts."""
    study = optuna.create_study(storage=open_storage(plan), study_name=plan.study_name,
                                directions=plan.all_directions, load_if_exists=True)
    found = [d.name.lower() for d in study.directions]
    if found != plan.all_directions:
        wanted = ", ".join(f"{name} {d}d" for name, d in zip(plan.objectives or [plan.metric], plan.all_directions))
        raise NlptuneError(f"study '{plan.study_name}' in {plan.storage_shown} has objectives "
                           f"{', '.join(d + 'd' for d in found)}, but this sweep wants {wanted} -> set "
                           "tune.study_name to a new name")
    study.set_user_attr("metric", plan.metric)
    study.set_user_attr("space", plan.space)
    if plan.objectives:
        study.set_user_attr("objectives", plan.objectives)
    if plan.constraints:
        study.set_user_attr("constraints", plan.constraints)
    return study


def load_study(plan: SweepPlan, seed: int, storage=None) -> optuna.Study:
    """The plan's study with this worker's sampler and the pruner."""
    return optuna.load_study(study_name=plan.study_name, storage=storage or open_storage(plan),
                             sampler=build_sampler(plan, seed), pruner=build_pruner(plan))


def retried_numbers(trials: list) -> set[int]:
    """Numbers of failed trials that a later trial retries."""
    numbers: set[int] = set()
    with warnings.catch_warnings():  # "experimental" since optuna 2.8
        warnings.simplefilter("ignore")
        for trial in trials:
            numbers.update(RetryCallback.retry_history(trial))
    return numbers


def taken_slots(trials: list) -> int:
    """How many of the `n_trials` slots are used (running, waiting, finished; not a retried failure)."""
    retried = retried_numbers(trials)
    return sum(1 for t in trials if not (t.state == TrialState.FAIL and t.number in retried))


def work_left(trials: list, n_trials: int) -> bool:
    """Whether a worker should ask for another trial: a retry is waiting, or slots are free."""
    return any(t.state == TrialState.WAITING for t in trials) or taken_slots(trials) < n_trials


class SweepLock:
    """An exclusive lock (flock on a file in the sweep directory) for the workers of one machine."""

    def __init__(self, sweep_dir: str | Path):
        self.path, self._handle = Path(sweep_dir) / LOCK_FILE, None

    def acquire(self) -> None:
        self._handle = self.path.open("a")
        fcntl.flock(self._handle, fcntl.LOCK_EX)

    def release(self) -> None:
        """Release it (a no-op when not held)."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def fail_orphans(study: optuna.Study, max_retry: int) -> list[int]:
    """Fail the running trials whose worker on this machine is gone (a killed sweep on a journal file,
    which has no heartbeat) and queue a retry of each, as the heartbeat does for RDB storage."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _alive(trial.user_attrs.get("worker")):
            continue
        optuna.trial.Trial(study, trial._trial_id).set_user_attr(
            "fail_reason", f"interrupted: worker {trial.user_attrs.get('worker', {}).get('pid')} stopped mid-trial")
        study.tell(trial.number, state=TrialState.FAIL)
        retry(study, trial.number, max_retry)
        failed.append(trial.number)
    return failed


def retry(study: optuna.Study, number: int, max_retry: int) -> None:
    """Queue a copy of failed trial ``number`` (same parameters), as the RDB heartbeat does for a stale one."""
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        RetryCallback(max_retry=max_retry)(study, frozen)
