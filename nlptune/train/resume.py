"""Resuming a run: pick the checkpoint, refuse config changes that alter the result, restore the state.

The promise: a run killed at any point and resumed with ``resume=auto`` ends with the same parameters and
metrics as if it had never stopped (bit for bit on CPU). That needs the same config, the same data and the
same number of processes; anything else is refused with a key-by-key diff unless
``resume_allow_changes=true``, which records the diff in ``<run>/resume_changes.json``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from nlptune.config.schema import RunConfig, kind_of, with_later_sections
from nlptune.data.sources import is_teacher
from nlptune.train import checkpoint
from nlptune.train.checkpoint import CheckpointError
from nlptune.train.rundir import SWEEP_PLAN_FILE, is_sweep_dir, refuse_foreign_contents
from nlptune.utils.files import atomic_write_bytes, atomic_write_text, ensure_dir, remove_tree
from nlptune.utils.plain import flatten, parse_json, plain_data

CHANGES_FILE = "resume_changes.json"
# Keys that cannot change the trained parameters or the evaluation metrics: where files are, how often
# to log or save, timeouts and threads, whether the cost is measured at the end. Everything else must match the
# checkpoint.
NEUTRAL_KEYS = {"output_dir", "resume", "resume_allow_changes", "trainer.log_every", "trainer.save_every",
                "trainer.keep_last", "trainer.dist_timeout_s", "trainer.num_workers", "trainer.threads",
                "trainer.measure_cost",
                "task.data_dir", "task.train_file", "task.validation_file"}  # the data's sha256 is compared instead
# Keys that decide the optimizer's parameter groups (lr multipliers): a checkpoint's optimizer state only loads into
# the same groups, so they never change on a resume, even with resume_allow_changes.
GROUPING_KEYS = {"optimizer.head_lr_scale", "optimizer.layer_decay"}


class ResumeError(CheckpointError):
    """A resume that would not continue the checkpoint's run as it was."""


@dataclass
class ResumePlan:
    """Where a run starts: fresh (``checkpoint`` None) or from a verified checkpoint."""

    run_dir: Path
    checkpoint: Path | None = None
    manifest: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)  # the checkpoint's train_state.json
    changes: list[dict] = field(default_factory=list)
    resuming: bool = False  # resume was asked for: the run directory's metrics are cut back to the checkpoint

    @property
    def finished(self) -> bool:
        """The checkpoint is the end of a run whose results were all written."""
        return bool(self.state.get("finished")) and (self.run_dir / "metrics.json").is_file()


def plain_config(config: RunConfig) -> dict:
    """The resolved config as JSON data (what a checkpoint records and a resume compares against)."""
    return json.loads(json.dumps(plain_data(config.plain), default=str))


def _comparable(config: dict) -> dict:
    """``config`` with its task's kind spelled one way: checkpoints written before ``task.kind`` existed hold
    the legacy ``task.problem_type``, which names the same kind (classification = single_label); and with the
    sections it predates as they behaved then (`schema.LATER_SECTIONS`: no distillation)."""
    config = with_later_sections(config)
    task = config.get("task")
    if not isinstance(task, dict):
        return config
    task = {k: v for k, v in task.items() if k != "problem_type"}
    task["kind"] = kind_of(config["task"])
    return {**config, "task": task}


def config_diff(saved: dict, current: dict) -> list[dict]:
    """Keys whose values differ between the checkpoint's config and the current one (neutral keys skipped)."""
    old, new = flatten(_comparable(saved)), flatten(_comparable(current))
    missing = object()
    changes = []
    for key in sorted(set(old) | set(new)):
        if key in NEUTRAL_KEYS:
            continue
        before, after = old.get(key, missing), new.get(key, missing)
        if before != after:
            changes.append({"key": key, "checkpoint": None if before is missing else before,
                            "now": None if after is missing else after})
    return changes


def _format_changes(changes: list[dict]) -> str:
    return "\n".join(f"  {c['key']}: {c['checkpoint']!r} (checkpoint) -> {c['now']!r} (now)" for c in changes)


def _refuse(plan: ResumePlan, changes: list[dict]) -> None:
    raise ResumeError(
        f"cannot resume from {plan.checkpoint}: {len(changes)} setting(s) differ from the checkpoint's run and "
        f"would change the result:\n{_format_changes(changes)}\n  fix: resume with the checkpoint's values "
        f"(its config is in {plan.checkpoint / checkpoint.TRAIN_STATE}), or add resume_allow_changes=true to "
        f"continue anyway (the differences are then recorded in {plan.run_dir / CHANGES_FILE} and the result "
        "will not equal an uninterrupted run)")


def _is_checkpoint_dir(path: Path) -> bool:
    """``path`` (given as resume=PATH) is one checkpoint folder rather than a run directory. A run directory has
    a manifest.json of its own (the run's: versions, command line) beside its checkpoints/ and config.yaml, so the
    manifest alone does not tell them apart: taken for a checkpoint, a run directory was refused as incomplete."""
    if (path / checkpoint.CHECKPOINTS).is_dir() or (path / "config.yaml").is_file():
        return False
    return path.name.startswith(checkpoint.PREFIX) or (path / checkpoint.MANIFEST).exists() or \
        (path / checkpoint.TRAIN_STATE).exists()


def target_dir(config: RunConfig) -> Path | None:
    """The run directory a resumed run continues in: ``output_dir``, else the run of ``resume=PATH``."""
    if config.output_dir:
        return Path(config.output_dir)
    if config.resume and config.resume != "auto":
        path = Path(config.resume)
        return path.parent.parent if _is_checkpoint_dir(path) else path
    return None


def _locate(config: RunConfig, output_dir: Path) -> Path | None:
    """The checkpoint ``config.resume`` points at (None: resume=auto found none, start fresh)."""
    if config.resume == "auto":
        return checkpoint.find_latest(output_dir)
    path = Path(config.resume)
    if _is_checkpoint_dir(path):
        return path
    if (path / checkpoint.CHECKPOINTS).is_dir():
        found = checkpoint.find_latest(path)
        if found is None:
            raise ResumeError(f"resume={path}: the run directory has no complete checkpoint; "
                              "use resume=auto to start fresh when there is none")
        return found
    raise ResumeError(f"resume={path}: not a checkpoint folder nor a run directory with checkpoints/; "
                      "give <run>/checkpoints/step-XXXXXXXX or <run>")


def refuse_earlier_run(output_dir: Path) -> None:
    """A fresh run never overwrites an earlier one: refuse a directory holding its results or checkpoints."""
    found = [name for name in ("metrics.json", "best/") if (output_dir / name.rstrip("/")).exists()]
    checkpoints = any(checkpoint.by_step(output_dir / checkpoint.CHECKPOINTS))
    if not found and not checkpoints:
        return
    what = f"a finished run ({', '.join(found)})" if found else "checkpoints of an earlier run"
    if is_sweep_dir(output_dir):
        what = f"a sweep ({SWEEP_PLAN_FILE}, {', '.join(found) or 'trials/'})"
    resume_hint = ("add resume=auto to continue it (a finished run is reported, not trained again)"
                   if checkpoints else "its results stay where they are")
    raise ResumeError(f"{output_dir} already holds {what}; a fresh run would overwrite it -> choose another "
                      f"output_dir (or leave it unset for a new timestamped folder); {resume_hint}")


def _finished_without_checkpoint(output_dir: Path) -> None:
    """resume=auto found no checkpoint: starting fresh is right unless a finished run is there (keep_last=0), or
    a sweep."""
    if is_sweep_dir(output_dir):
        raise ResumeError(f"resume=auto: {output_dir} is a sweep directory (`nlptune tune`), not a run -> to "
                          f"continue the sweep: nlptune tune resume={output_dir}; to train a run, choose another "
                          "output_dir")
    if (output_dir / "metrics.json").exists() or (output_dir / "best").exists():
        raise ResumeError(f"resume=auto: {output_dir} holds a finished run (metrics.json, best/) without "
                          "checkpoints (trainer.keep_last=0), so there is nothing to continue and a fresh run "
                          f"would overwrite it -> its results are in {output_dir / 'metrics.json'}; to train "
                          "again choose another output_dir")


def plan(config: RunConfig, output_dir: Path, num_processes: int) -> ResumePlan:
    """Decide where the run starts; verify the checkpoint and refuse config changes (before any data work)."""
    if config.resume is None:
        refuse_earlier_run(Path(output_dir))
        refuse_foreign_contents(output_dir)
        return ResumePlan(run_dir=Path(output_dir))
    found = _locate(config, Path(output_dir))
    result = ResumePlan(run_dir=Path(output_dir), resuming=True)
    if found is None:
        _finished_without_checkpoint(Path(output_dir))
        refuse_foreign_contents(output_dir)  # a fresh start: someone else's files must not be written over
        checkpoint.note(f"resume=auto: no complete checkpoint in {output_dir}; starting a fresh run")
        return result
    if found.parent.parent.resolve() != Path(output_dir).resolve():  # continued in another folder: not over a run
        refuse_earlier_run(Path(output_dir))
        refuse_foreign_contents(output_dir)
    result.checkpoint, result.manifest = found, checkpoint.verify(found)
    result.state = checkpoint.read_train_state(found)
    changes = config_diff(result.state.get("config", {}), plain_config(config))
    if result.state.get("num_processes") != num_processes:
        changes.append({"key": "num_processes", "checkpoint": result.state.get("num_processes"),
                        "now": num_processes})
    if changes and not config.resume_allow_changes:
        _refuse(result, changes)
    regrouped = [c for c in changes if c["key"] in GROUPING_KEYS]
    if regrouped:  # even when changes are allowed: the saved optimizer state cannot follow new groups
        raise ResumeError(f"cannot resume from {result.checkpoint}: {_format_changes(regrouped).strip()} changes "
                          "how the optimizer groups the parameters, so its saved state no longer fits\n  fix: "
                          "resume with the checkpoint's value, or start a new run (another output_dir)")
    result.changes = changes
    return result


def check_data(plan_: ResumePlan, data_sha256: dict, allow_changes: bool, teacher: dict | None = None) -> None:
    """Refuse (or record) a resume whose data files differ from the checkpoint's, or whose distillation teacher's
    best/ model differs from the one its run started with (``teacher``: `PreparedData.teacher`)."""
    if plan_.checkpoint is None:
        return
    saved = plan_.state.get("data_sha256", {})
    changes = [{"key": f"data.sha256.{split}", "checkpoint": saved.get(split), "now": data_sha256.get(split)}
               for split in sorted(set(saved) | set(data_sha256)) if saved.get(split) != data_sha256.get(split)]
    before = _teacher_sha256(plan_.checkpoint.parent.parent) if teacher else None
    if before and not is_teacher(teacher["run_dir"], before, teacher.get("sha256")):
        changes.append({"key": "teacher.sha256", "checkpoint": before, "now": teacher.get("sha256")})
    if changes and not allow_changes:
        _refuse(plan_, changes)
    plan_.changes += changes


def _teacher_sha256(run_dir: Path) -> str | None:
    """The teacher sha256 the run's manifest recorded (written by the attempt that saved its checkpoints)."""
    try:
        return (parse_json((run_dir / "manifest.json").read_text()).get("teacher") or {}).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None


def prepare_run_dir(plan_: ResumePlan) -> None:
    """Rank 0, before the run directory is opened: cut metrics.jsonl back to what the checkpoint had logged
    (lines written after it are recomputed) and record allowed config changes."""
    if not plan_.resuming:
        return
    run_dir = ensure_dir(plan_.run_dir, "(the run directory)")
    metrics, keep = run_dir / "metrics.jsonl", int(plan_.state.get("metrics_bytes", 0))
    source = plan_.checkpoint.parent.parent / "metrics.jsonl" if plan_.checkpoint else metrics
    data = source.read_bytes()[:keep] if source.is_file() else b""
    if len(data) < keep:
        checkpoint.note(f"warning: {source} is shorter than when the checkpoint was written; "
                        "earlier metrics lines are missing")
    if metrics.exists() or data:
        atomic_write_bytes(metrics, data)
    if plan_.checkpoint is not None:  # later checkpoints belong to the timeline being replaced, like the metrics
        step = checkpoint.step_of(plan_.checkpoint)
        for later in checkpoint.by_step(run_dir / checkpoint.CHECKPOINTS):
            if checkpoint.step_of(later) > step:
                checkpoint.note(f"removing {later}: it is later than the checkpoint this run resumes from")
                remove_tree(later)
    if plan_.changes:
        path = run_dir / CHANGES_FILE
        history = parse_json(path.read_text()) if path.is_file() else []
        history.append({"checkpoint": str(plan_.checkpoint), "step": plan_.state.get("step"),
                        "changes": plan_.changes})
        atomic_write_text(path, json.dumps(history, indent=2, default=str) + "\n")
        checkpoint.note(f"resuming with {len(plan_.changes)} changed setting(s), recorded in {path}:\n"
                        f"{_format_changes(plan_.changes)}")


def restore(plan_: ResumePlan, accelerator, *, optimizer, scheduler) -> dict:
    """Load optimizer, scheduler and grad-scaler state; return this process's rank state (RNG, running loss).

    With allowed changes the current config's learning rates and optimizer settings win over the saved ones.
    """
    fresh = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    rank_state = checkpoint.load_states(plan_.checkpoint, plan_.manifest, accelerator, optimizer=optimizer,
                                        scheduler=scheduler)
    if plan_.changes:
        _apply_current_hyperparameters(optimizer, scheduler, fresh)
    elif not rank_state:
        raise ResumeError(f"{plan_.checkpoint} has no state for process {accelerator.process_index}")
    return rank_state


def _apply_current_hyperparameters(optimizer, scheduler, fresh: list[dict]) -> None:
    for group, settings in zip(optimizer.param_groups, fresh):
        group.update({k: v for k, v in settings.items() if k not in ("lr", "initial_lr")})
        group["initial_lr"] = settings.get("initial_lr", settings["lr"])
    scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def restore_rng(rank_state: dict, collate, batches_before: int) -> None:
    """Put this process's RNGs back where the checkpoint left them (the last thing before the first batch).

    A seeded collate function that counts its batches (augmentation) is set to ``batches_before``, the
    number of batches it had collated at that data position in an uninterrupted run.
    """
    checkpoint.set_rng_state(rank_state["rng"])
    if hasattr(collate, "batches"):
        collate.batches = batches_before


def epoch_loader(train_loader, sampler, epoch: int, skip: int):
    """The train loader for ``epoch``, past its first ``skip`` batches (those a resumed checkpoint consumed).

    The epoch is set explicitly on both the prepared loader and the sampler: a resumed run's loader has not
    counted the earlier epochs, and the (seed, epoch) pair alone fixes the batch order.
    """
    from accelerate import skip_first_batches

    loader = skip_first_batches(train_loader, skip) if skip else train_loader
    loader.set_epoch(epoch)
    sampler.set_epoch(epoch)
    return loader


def start_position(plan_: ResumePlan, batches_per_epoch: int, batch_size: int, num_processes: int) -> tuple[int, int]:
    """(epoch, batches of it already consumed by each process) at which training continues."""
    if plan_.checkpoint is None:
        return 0, 0
    state = plan_.state
    epoch, done = int(state["epoch"]), int(state["batches_done"])
    if plan_.changes:  # another batch size or process count: continue after the same number of samples
        done = int(state["epoch_samples"]) // (batch_size * num_processes)
    if done >= batches_per_epoch:
        return epoch + 1, 0
    return epoch, done


@dataclass
class TrainState:
    """The loop's counters: what a checkpoint must hold besides tensors to continue exactly."""

    step: int = 0
    epoch: int = 0
    batches_done: int = 0  # batches of ``epoch`` this process has consumed
    epoch_samples: int = 0  # samples of ``epoch`` consumed by all processes
    samples: int = 0
    best: dict | None = None
    best_step: int = 0
    stale: int = 0  # evaluations without improvement (early stopping)
    stop: bool = False
    stopped_by_hook: bool = False
    history: list = field(default_factory=list)
    train_time_s: float = 0.0
    eval_time_s: float = 0.0

    @classmethod
    def from_plan(cls, plan_: ResumePlan) -> "TrainState":
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in plan_.state.items() if k in names})

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}
