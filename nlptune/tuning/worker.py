"""A sweep worker: ask the study for a trial, run it, tell the result, until the sweep's `n_trials` slots
are used. `nlptune tune` runs one in its own process (tune.workers=1) or starts N of them as
`python -m nlptune.tuning.worker SWEEP_DIR INDEX [DEADLINE [TRIALS_BEFORE]]`; any machine can run more on
the same RDB storage.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from typing import Callable

import optuna

from nlptune.tuning.objective import objective
from nlptune.tuning.plan import SweepPlan
from nlptune.tuning.study import (SweepLock, build_sampler, fail_orphans, load_study, retry, work_left,
                                  worker_seed)


def quiet_optuna(level: int = logging.WARNING) -> None:
    """Optuna's per-trial log lines repeat what the sweep table shows; experimental-API notices are noise."""
    optuna.logging.set_verbosity(level)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _next_step(study: optuna.Study, plan: SweepPlan) -> str:
    """"run" a trial, "wait" (RDB: other workers' trials are running, and one may yet go stale and need a
    retry), or "done"."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)  # RDB: a silent worker's trial fails and is queued again
    if plan.journal:
        fail_orphans(study, plan.tune_config.max_retry)
    trials = study.get_trials(deepcopy=False)
    if work_left(trials, plan.n_trials):
        return "run"
    running = any(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    return "wait" if running and not plan.journal else "done"


def run_worker(plan: SweepPlan, index: int = 0, deadline: float | None = None,
               on_change: Callable[[optuna.Study], None] | None = None, trials_before: int | None = None) -> int:
    """Run trials until the sweep is complete (or ``deadline``, a time.time()); returns how many ran here.
    ``on_change(study)`` is called when a trial starts and when it ends (the live table). ``trials_before``:
    the study's trial count when this start of the sweep began (it picks the sampler's seed, see
    `worker_seed`); None counts them now."""
    study = load_study(plan, plan.seed)
    if trials_before is None:
        trials_before = len(study.get_trials(deepcopy=False))
    seed = worker_seed(plan, index, trials_before)
    study.sampler = build_sampler(plan, seed)
    # held from "is there a free slot?" until the trial exists (inside the objective), so the workers of one
    # machine never start more than n_trials trials between them
    gate, current, ran = SweepLock(plan.sweep_dir), {}, 0

    def run_one(trial: optuna.Trial) -> float:
        gate.release()
        current["number"] = trial.number
        trial.set_user_attr("sampler_seed", seed)  # which draw proposed it (a resumed sweep draws anew)
        if on_change:
            on_change(study)
        return objective(trial, plan)

    while deadline is None or time.time() < deadline:
        gate.acquire()
        try:
            step = _next_step(study, plan)
            if step == "done":
                break
            if step == "wait":
                gate.release()
                time.sleep(min(2.0, plan.tune_config.heartbeat_interval))
                continue
            study.optimize(run_one, n_trials=1, catch=(Exception,), gc_after_trial=True)
            ran += 1
        except KeyboardInterrupt:
            if "number" in current:  # queue the interrupted trial again so that resume=auto re-runs it
                frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == current["number"])
                if frozen.state == optuna.trial.TrialState.FAIL:
                    retry(study, frozen.number, plan.tune_config.max_retry)
            raise
        finally:
            gate.release()
            current.clear()
        if on_change:
            on_change(study)
    return ran


def _set_threads() -> None:
    threads = int(os.environ.get("NLPTUNE_WORKER_THREADS", "0"))
    if threads:
        import torch

        torch.set_num_threads(threads)


def main(argv: list[str]) -> int:
    """Entry point of a local worker process started by `nlptune tune`."""
    from nlptune.utils.console import set_quiet

    sweep_dir, index = argv[0], int(argv[1])
    deadline = float(argv[2]) if len(argv) > 2 and argv[2] != "none" else None
    trials_before = int(argv[3]) if len(argv) > 3 else None
    quiet_optuna()
    set_quiet(True)
    _set_threads()
    plan = SweepPlan.load(sweep_dir)
    with contextlib.suppress(KeyboardInterrupt):
        ran = run_worker(plan, index, deadline, trials_before=trials_before)
        print(f"worker {index}: {ran} trial(s)", flush=True)
        return 0
    return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
