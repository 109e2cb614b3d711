"""A trial that spans several processes (several GPUs, or CPU processes over gloo), started by torchrun:
`python -m torch.distributed.run --nproc_per_node N -m nlptune.tuning.distributed SPEC.json`.

Every rank composes the same config and runs the same loop; only rank 0 opens the study, reports to
the pruner and writes the result file. The loop broadcasts rank 0's stop decision, so a pruned trial
stops on every rank at the same step.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from nlptune.utils.files import atomic_write_text
from nlptune.utils.plain import parse_json


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for torchrun's rendezvous)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(processes: int, spec_path: Path) -> list[str]:
    """The torchrun command line of a trial (a free rendezvous port on this machine)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "nlptune.tuning.distributed",
            str(spec_path)]


def _trial(plan, trial_id: int | None):
    """Rank 0's handle on the running trial (None for confirmation runs, which nothing prunes)."""
    if trial_id is None:
        return None
    import optuna

    from nlptune.tuning.study import load_study

    study = load_study(plan, seed=plan.seed)
    return optuna.trial.Trial(study, trial_id)


def _write(path: Path, result: dict) -> None:
    atomic_write_text(path, json.dumps(result))


def main(spec_path: str) -> int:
    """Run one trial's training on this rank; rank 0 writes ``trial_result.json`` next to the spec."""
    from nlptune.recipes.run import load_run_config
    from nlptune.tuning.objective import RESULT_FILE, MetricHook, cost_figures, describe_error, planned_samples
    from nlptune.tuning.plan import SweepPlan
    from nlptune.utils.console import set_quiet

    spec = parse_json(Path(spec_path).read_text())
    plan = SweepPlan.load(spec["sweep_dir"])
    rank = int(os.environ.get("RANK", "0"))
    set_quiet(True)
    result_path = Path(spec["run_dir"]) / RESULT_FILE
    try:
        from nlptune.train.loop import run, shutdown

        # a multi-objective study takes no intermediate values: there the hook only checks the metric
        reports = rank == 0 and not plan.multi_objective
        hook = MetricHook(plan.metric, _trial(plan, spec["trial_id"]) if reports else None, spec["offset"])
        result = run(load_run_config(spec["overrides"]), hooks=[hook])
        value = (result.best or {}).get(plan.metric, float("nan"))
        outcome = {"value": value, "samples": result.summary.get("train_samples", 0),
                   "planned_samples": planned_samples(result.summary),
                   "runtime_s": result.summary.get("train_runtime_s", 0.0), "pruned_at": hook.pruned_at,
                   "nonfinite": hook.nonfinite, "stopped_by_hook": result.stopped_by_hook, "rank": rank,
                   "cost": cost_figures(result.summary), "metrics": dict(result.best or {})}
        del result
        shutdown()
    except Exception as err:  # noqa: BLE001 - reported to the worker, which fails the trial with it
        if rank == 0:
            _write(result_path, {"error": describe_error(err)})
        raise
    if rank == 0:
        _write(result_path, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
