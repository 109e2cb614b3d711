"""The training loop: one Accelerate loop for every model, on CPU, one GPU, or many processes.

Read top to bottom: set up -> data -> model -> optimizer/schedule -> prepare -> train/evaluate/early stop
-> save best -> summary. Hooks (`on_evaluate`) let the tuner report and prune.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from nlptune.config.schema import RunConfig
from nlptune.data import prepare_data
from nlptune.kinds import get_kind
from nlptune.kinds.thresholds import Decision
from nlptune.metrics import is_improvement
from nlptune.models import is_pretrained, parameter_report
from nlptune.models.embedding_grads import use_row_gradients
from nlptune.models.fast_dropout import use_fast_dropout
from nlptune.train import checkpoint, faults, report, resume, results, tracking
from nlptune.train.averaging import WeightAverage
from nlptune.train.clipping import clip_gradients, clips_in_optimizer
from nlptune.train.evaluation import evaluate, logits_and_loss
from nlptune.train.launch import make_accelerator, warn_if_a_step_outlasts_an_epoch
from nlptune.train.optim import base_lr, build_optimizer, build_scheduler
from nlptune.train.rundir import RunDir, claim, default_output_dir, refuse_nested_run
from nlptune.train.setup import build_task_model, loss_settings, make_loaders
from nlptune.train.teacher import open_teacher
from nlptune.utils.environment import describe
from nlptune.utils.console import process_rank, quiet_libraries
from nlptune.utils.memory import limit_heap_fragmentation, release_free_heap
from nlptune.utils.seeding import seed_everything, set_deterministic
from nlptune.utils.plain import parse_json

# on_evaluate(step, samples_seen, metrics) -> True to stop the run (the tuner prunes through it)
EvaluateHook = Callable[[int, int, dict], bool]


@dataclass
class RunResult:
    output_dir: Path
    best: dict
    best_step: int
    summary: dict = field(default_factory=dict)
    stopped_by_hook: bool = False


def run(config: RunConfig, hooks: Sequence[EvaluateHook] = ()) -> RunResult:
    """Train ``config`` to the end (or early stop / hook stop) and write its run directory; with
    ``config.resume``, continue from a checkpoint exactly where it stopped."""
    quiet_libraries()
    limit_heap_fragmentation()
    named = resume.target_dir(config)
    if named is not None:  # every rank: each must stop, before anything is made or locked there
        refuse_nested_run(named)
    # a default (timestamped) directory is made at once by the writing process, under the next free name when
    # runs launched together share the second; its trackers log there (the other ranks take rank 0's in _train)
    made = named is None and process_rank() == 0
    output_dir = named or default_output_dir(config, make=made)
    set_deterministic(config.trainer.deterministic)  # before any CUDA work: cuBLAS reads its workspace setting once
    try:
        accelerator = make_accelerator(config.trainer, **tracking.accelerator_kwargs(config.trainer, output_dir))
    except BaseException:  # e.g. a device this machine lacks: no empty run directory is left behind
        if made:
            with contextlib.suppress(OSError):
                output_dir.rmdir()
        raise
    with faults.Guard(accelerator, config.trainer.dist_timeout_s) as guard, \
            claim(output_dir, accelerator.is_main_process, made=made):  # names a failed rank; rank 0 locks it
        return _train(config, hooks, accelerator, guard, output_dir)


def _cpu_copy(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _already_finished(plan: resume.ResumePlan) -> RunResult:
    state = plan.state
    checkpoint.note(f"the run in {plan.run_dir} already finished at step {state['step']}; nothing to do "
                    f"(results: {plan.run_dir / 'metrics.json'})")
    summary = parse_json((plan.run_dir / "metrics.json").read_text())
    return RunResult(output_dir=plan.run_dir, best=state["best"], best_step=state["best_step"], summary=summary,
                     stopped_by_hook=state["stopped_by_hook"])


def _train(config: RunConfig, hooks: Sequence[EvaluateHook], accelerator: Accelerator, guard: faults.Guard,
           output_dir: Path) -> RunResult:
    if accelerator.num_processes > 1:  # one run directory for every rank (a default one is timestamped)
        shared = [str(output_dir)]
        broadcast_object_list(shared)
        output_dir = Path(shared[0])
    # a fresh start, or a verified checkpoint whose config matches (refused with a diff otherwise)
    plan = resume.plan(config, output_dir, accelerator.num_processes)
    if plan.finished and not plan.changes:
        return _already_finished(plan)
    session = _Session(config, hooks, accelerator, guard, plan)
    session.train()
    return session.finish()


class _Session:
    """One run from set-up to summary. The loop's state lives in fields so that each phase is a method:
    set up (data, model, optimizer, run directory) -> train (steps, logging) -> evaluate / checkpoint -> finish."""

    def __init__(self, config: RunConfig, hooks: Sequence[EvaluateHook], accelerator: Accelerator,
                 guard: faults.Guard, plan: resume.ResumePlan):
        self.config, self.hooks, self.accelerator, self.guard, self.plan = config, hooks, accelerator, guard, plan
        self.trainer, self.task, self.output_dir = config.trainer, config.task, plan.run_dir
        self.kind = get_kind(config.task.kind)  # what a label is: the loss and the predictions follow from it
        self._prepare()
        self.decoding = self.kind.decoding(self.data.label_names, config.task.tag_scheme,
                                           config.task.constrained_decoding)
        self.rundir = self._open_run_dir() if accelerator.is_main_process else None
        self._restore_progress()

    # ---- set-up -------------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Data, model, optimizer and schedule, prepared by Accelerate (restored from a checkpoint if resuming)."""
        config, accelerator, plan, trainer = self.config, self.accelerator, self.plan, self.trainer
        self.guard.set_phase("data")
        seed_everything(config.seed)
        with accelerator.main_process_first():  # rank 0 fills the tokenization (and teacher outputs) cache
            self.data = prepare_data(config, pretrained=is_pretrained(config.model.name),
                                     teacher=open_teacher(config, accelerator.device))  # distill.teacher
        resume.check_data(plan, self.data.data_sha256, config.resume_allow_changes, self.data.teacher)
        self.guard.set_phase("setup")
        seed_everything(config.seed)  # same initial weights whatever data preparation consumed
        model = build_task_model(config, self.data)
        if accelerator.device.type == "cpu" and not trainer.compile:
            if trainer.fast_dropout:
                use_fast_dropout(model)  # the same rate, cheaper masks (no random draw here: the weights stay the same)
            if accelerator.num_processes == 1:
                use_row_gradients(model)  # the same gradients, without zeroing whole embedding tables every step
        # class weights etc. from the training targets (deterministic: a resumed run computes the same ones)
        self.loss_settings = loss_settings(config, self.data)
        self.decision = Decision.from_task(config.task)  # multi_label: fixed or tuned decision thresholds
        if plan.checkpoint:
            checkpoint.load_weights(plan.checkpoint, model)
        self.parameters = parameter_report(model)
        train_loader, eval_loader, self.sampler = make_loaders(self.data, config, self.data.tokenizer.pad_token_id,
                                                               accelerator.num_processes)
        self.train_collate = train_loader.collate_fn
        optimizer = build_optimizer(model, config.optimizer, accelerator.device)
        warn_if_a_step_outlasts_an_epoch(trainer, len(self.sampler), len(self.data.train))
        steps_per_epoch = math.ceil(len(self.sampler) / trainer.gradient_accumulation_steps)  # every batch
        self.total_steps = trainer.max_steps or steps_per_epoch * trainer.max_epochs
        self.max_epochs = math.ceil(self.total_steps / steps_per_epoch)
        self.scheduler = build_scheduler(optimizer, config.scheduler, self.total_steps)
        # the scheduler is stepped by hand once per optimizer step, so it is not prepared
        self.model, self.optimizer, self.train_loader, self.eval_loader = accelerator.prepare(
            model, optimizer, train_loader, eval_loader)
        self.rank_state = resume.restore(plan, accelerator, optimizer=self.optimizer, scheduler=self.scheduler) \
            if plan.checkpoint else {}
        self.clip_in_optimizer = trainer.clip_in_optimizer and clips_in_optimizer(accelerator, self.optimizer)

    def _open_run_dir(self) -> RunDir:
        """Rank 0 only, and only now, with data and checkpoint checked: config, manifest, start report."""
        config, accelerator, plan, data = self.config, self.accelerator, self.plan, self.data
        resume.prepare_run_dir(plan)  # a resumed run's metrics.jsonl is cut back to its checkpoint
        rundir = RunDir(self.output_dir)
        rundir.write_config(config)
        manifest = {"environment": describe(), "seed": config.seed, "num_processes": accelerator.num_processes,
                    "device": str(accelerator.device), "mixed_precision": accelerator.mixed_precision,
                    "data": {"sha256": data.data_sha256, "sources": data.sources},
                    "train_rows": len(data.train), "validation_rows": len(data.validation),
                    "resumed_from": str(plan.checkpoint) if plan.checkpoint else None}
        manifest.update(config.provenance)  # the recipe it came from, with pins drift; the trust flag
        if data.teacher:  # distillation: the teacher's run, its weights' sha256, where its outputs came from
            manifest["teacher"] = data.teacher
        rundir.write_manifest(manifest)
        report.print_start(config, self.parameters, self.output_dir, accelerator.num_processes, self.total_steps)
        rundir.tracker = tracking.start(accelerator, config, self.parameters, self.output_dir)  # fed by rundir.log
        return rundir

    def _restore_progress(self) -> None:
        """The counters (zeros when fresh) and, on rank 0, the best weights and predictions so far."""
        plan, accelerator = self.plan, self.accelerator
        self.state = resume.TrainState.from_plan(plan)  # step, samples, best, early-stopping counter, history
        self.best_state = None  # a CPU copy of the best weights (rank 0)
        self.best_outputs = None  # the best model's validation predictions, for the confusion matrix / scatter
        self.best_is_average = False  # trainer.average_from: the mean of the weights scored best (set at the end)
        if accelerator.is_main_process and self.state.best is not None:
            self.best_state = checkpoint.load_tensors(plan.checkpoint, plan.manifest, checkpoint.BEST_MODEL) \
                or _cpu_copy(accelerator.unwrap_model(self.model))
            saved = checkpoint.load_tensors(plan.checkpoint, plan.manifest, checkpoint.BEST_OUTPUTS)
            self.best_outputs = {k: v.numpy() for k, v in saved.items()} if saved else None
        self.average = WeightAverage.for_run(self.trainer.average_from, self.total_steps)  # None when off
        if self.average is not None and plan.checkpoint:  # every rank: each scores the mean at the end
            self.average.restore(plan.state.get("average"),
                                 checkpoint.load_tensors(plan.checkpoint, plan.manifest, checkpoint.AVERAGE_SUM))
        self.loss_sum = self.rank_state.get("loss_sum", torch.zeros(())).to(accelerator.device)
        self.loss_count = self.rank_state.get("loss_count", 0)
        self.watch = faults.NonFiniteWatch(accelerator.device)  # the first NaN/inf loss, without a sync per step
        self.progress = report.Progress(self.total_steps, enabled=accelerator.is_main_process)

    # ---- training -----------------------------------------------------------------------------------------
    def _finished(self) -> bool:
        return self.state.stop or self.state.step >= self.total_steps

    def train(self) -> None:
        """Epochs of optimizer steps with logging, evaluation and checkpoints, until the end or a stop."""
        state, trainer, batches = self.state, self.trainer, len(self.train_loader)
        # where the data stands: (epoch, batches of it this process already consumed); (0, 0) when fresh
        epoch, skip = resume.start_position(self.plan, batches, trainer.batch_size, self.accelerator.num_processes)
        state.epoch, state.batches_done = epoch, skip
        state.epoch_samples = state.epoch_samples if skip else 0
        if self.rank_state:  # the last thing before the first batch: the resumed run draws the same dropout masks
            resume.restore_rng(self.rank_state, self.train_collate, batches_before=epoch * batches + skip)
        self.started = time.perf_counter()
        self.guard.set_phase("train", state.step)
        self.model.train()
        for epoch in range(epoch, self.max_epochs):
            if self._finished():
                break
            loader = resume.epoch_loader(self.train_loader, self.sampler, epoch, skip)  # same order as unbroken
            state.epoch, state.batches_done = epoch, skip
            state.epoch_samples, skip = state.epoch_samples if skip else 0, 0
            for batch in loader:
                if self._train_step(batch) and self._after_step():
                    break
            else:  # the epoch ran out; under sharding it can be a batch shorter than len(loader) promised
                if not state.history or state.history[-1]["step"] != state.step:
                    self.evaluate_now()
                    if trainer.keep_last and not trainer.save_every and not self._finished():
                        self.save_checkpoint()

    def _train_step(self, batch: dict) -> bool:
        """Forward, backward and (every ``gradient_accumulation_steps`` batches) an optimizer step; True if
        an optimizer step happened."""
        accelerator, state = self.accelerator, self.state
        with accelerator.accumulate(self.model):
            loss = logits_and_loss(self.model, batch, self.kind, self.loss_settings, self.config.distill)[1]
            accelerator.backward(loss)
            if accelerator.sync_gradients and self.trainer.max_grad_norm > 0:
                clip_gradients(accelerator, self.model, self.optimizer, self.trainer.max_grad_norm,
                               self.clip_in_optimizer)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.watch.observe(loss, state.step + 1, base_lr(self.scheduler))
        self.loss_sum += loss.detach()
        self.loss_count += 1
        batch_samples = batch["labels"].shape[0] * accelerator.num_processes
        state.samples += batch_samples
        state.epoch_samples += batch_samples
        state.batches_done += 1
        if not accelerator.sync_gradients:
            return False
        if not accelerator.optimizer_step_was_skipped:
            self.scheduler.step()
        state.step += 1
        self.guard.step = state.step
        self.progress.advance(state.epoch, state.step, state.samples)
        return True

    def _after_step(self) -> bool:
        """Log, evaluate and checkpoint as the trainer settings ask after an optimizer step; True to stop."""
        state, trainer = self.state, self.trainer
        end_of_epoch = state.batches_done == len(self.train_loader)
        if state.step % trainer.log_every == 0:
            self._log_loss()
        if (trainer.eval_every and state.step % trainer.eval_every == 0) or end_of_epoch \
                or state.step >= self.total_steps:
            self.evaluate_now()
        if self._finished():
            return True  # the final checkpoint follows the loop
        if trainer.keep_last and (state.step % trainer.save_every == 0 if trainer.save_every else end_of_epoch):
            self.save_checkpoint()
        return False

    def _log_loss(self) -> None:
        """The mean training loss since the last log: the only host-device sync of the train step."""
        state = self.state
        self.watch.check(self.accelerator, state.epoch, self.guard.last_checkpoint)
        mean_loss = self.accelerator.reduce(self.loss_sum, reduction="mean").item() / self.loss_count
        lr = base_lr(self.scheduler)
        if self.rundir:
            self.rundir.log({"step": state.step, "epoch": state.epoch, "samples": state.samples,
                             "loss": mean_loss, "lr": lr})
        self.progress.note_loss(mean_loss, lr)
        self.loss_sum.zero_()
        self.loss_count = 0

    # ---- evaluation and checkpoints ------------------------------------------------------------------------
    def _validate(self) -> tuple[dict, dict]:
        """(the validation scores, the kind's validation outputs) of the model's current weights."""
        outputs = {}
        scores = evaluate(self.model, self.eval_loader, kind=self.kind, metrics=list(self.task.metrics),
                          label_names=self.data.label_names, accelerator=self.accelerator, collect=outputs,
                          loss_settings=self.loss_settings, decision=self.decision, decoding=self.decoding)
        return scores, outputs

    def evaluate_now(self) -> None:
        """Validation metrics; keep the best weights; early stopping and the hooks' prune/continue decision."""
        state, accelerator, task = self.state, self.accelerator, self.task
        self.watch.check(accelerator, state.epoch, self.guard.last_checkpoint)
        self.guard.set_phase("evaluate", state.step)
        eval_started = time.perf_counter()
        release_free_heap()  # what training freed, before evaluation's other shapes grow the heap past it
        scores, outputs = self._validate()
        state.eval_time_s += time.perf_counter() - eval_started
        record = {"step": state.step, "epoch": state.epoch, "samples": state.samples,
                  **{f"eval_{k}": v for k, v in scores.items()}}
        state.history.append(record)
        main = task.main_metric
        if is_improvement(main, scores[main], None if state.best is None else state.best[main]):
            state.best, state.best_step, state.stale = dict(scores), state.step, 0
            if accelerator.is_main_process:  # a CPU copy: the best weights survive later, worse steps
                model = accelerator.unwrap_model(self.model)
                # no step follows the last evaluation: its weights are kept as they are (a second copy of a large
                # model would only raise the run's peak memory at its end)
                self.best_state = model.state_dict() if state.step >= self.total_steps else _cpu_copy(model)
                self.best_outputs = outputs
        else:
            state.stale += 1
        if self.average is not None:
            self.average.observe(accelerator.unwrap_model(self.model), state.step)
        decision = [accelerator.is_main_process and any(hook(state.step, state.samples, scores)
                                                          for hook in self.hooks)]
        if accelerator.num_processes > 1:
            broadcast_object_list(decision)  # every rank follows rank 0's prune/continue decision
        state.stopped_by_hook = state.stopped_by_hook or decision[0]
        state.stop = state.stop or decision[0] or (self.trainer.patience > 0 and state.stale >= self.trainer.patience)
        if self.rundir:
            self.rundir.log(record)
        self.progress.note_eval(record, main)
        self.guard.set_phase("train")

    def _elapsed(self) -> float:
        # state.train_time_s: what earlier (interrupted) attempts spent; checkpoints record copies, not it
        return self.state.train_time_s + time.perf_counter() - self.started

    def save_checkpoint(self, finished: bool = False) -> None:
        """Every rank: the complete state after this step, written atomically (see checkpoint.py)."""
        state, accelerator = self.state, self.accelerator
        self.watch.check(accelerator, state.epoch, self.guard.last_checkpoint)  # never save a diverged run
        phase = self.guard.phase
        self.guard.set_phase("checkpoint", state.step)
        counters = dataclasses.replace(state, train_time_s=self._elapsed())
        metrics_file = self.output_dir / "metrics.jsonl"
        train_state = {**counters.to_json(), "finished": finished, "total_steps": self.total_steps,
                       "batches_per_epoch": len(self.train_loader), "sampler_seed": self.config.seed,
                       "num_processes": accelerator.num_processes, "data_sha256": self.data.data_sha256,
                       "metrics_bytes": metrics_file.stat().st_size if self.rundir and metrics_file.exists() else 0,
                       "config": resume.plain_config(self.config),
                       "average": self.average.to_json() if self.average is not None else None}
        rank = {"rng": checkpoint.rng_state(), "loss_sum": self.loss_sum.detach().to("cpu", copy=True),
                "loss_count": self.loss_count}
        self.guard.last_checkpoint = checkpoint.save(
            self.output_dir / checkpoint.CHECKPOINTS, state.step, accelerator, model=self.model,
            optimizer=self.optimizer, scheduler=self.scheduler,
            # the best weights are the model's own at their step, unless they are the averaged ones
            best_state=self.best_state if state.best_step != state.step or self.best_is_average else None,
            best_outputs=self.best_outputs,
            train_state=train_state, rank_state=rank, keep_last=self.trainer.keep_last,
            average_sum=self.average.sum if self.average is not None else None)
        self.guard.set_phase(phase)

    def _score_average(self) -> dict:
        """trainer.average_from: score the mean of the averaged weights on validation; it becomes the best model
        when it beats every single evaluation. The live weights are put back (the final checkpoint holds them)."""
        state, accelerator, main = self.state, self.accelerator, self.task.main_metric
        model = accelerator.unwrap_model(self.model)
        live = _cpu_copy(model)  # also what best_state may still point at (the last step's own tensors)
        model.load_state_dict(self.average.averaged_state(model))
        scores, outputs = self._validate()
        kept = is_improvement(main, scores[main], None if state.best is None else state.best[main])
        if kept:
            state.best, state.best_step, self.best_is_average = dict(scores), state.step, True
            if accelerator.is_main_process:
                self.best_state, self.best_outputs = _cpu_copy(model), outputs
        model.load_state_dict(live)
        outcome = {"evaluations": self.average.count, "from_step": self.average.first_step, "kept": kept,
                   "scores": scores}
        if self.rundir:
            self.rundir.log({"step": state.step, "epoch": state.epoch, "samples": state.samples,
                             "averaged_evaluations": self.average.count,
                             **{f"average_{k}": v for k, v in scores.items()}})
        return outcome

    # ---- the end ------------------------------------------------------------------------------------------
    def finish(self) -> RunResult:
        """Final checkpoint, best/ model, metrics.json, model card, plots and the final table."""
        state, accelerator, config = self.state, self.accelerator, self.config
        runtime = self._elapsed()
        self.progress.close()
        self.watch.check(accelerator, state.epoch, self.guard.last_checkpoint)
        self.guard.set_phase("save", state.step)
        accelerator.wait_for_everyone()
        averaged = self._score_average() if self.average is not None and self.average.count \
            and not state.stopped_by_hook else None  # a pruned trial's value is not used
        summary = {"best": state.best, "best_step": state.best_step, "main_metric": self.task.main_metric,
                   "train_runtime_s": round(runtime, 3), "eval_runtime_s": round(state.eval_time_s, 3),
                   "train_samples_per_second": round(state.samples / max(runtime - state.eval_time_s, 1e-9), 3),
                   "train_samples": state.samples, "steps": state.step, "planned_steps": self.total_steps,
                   "epochs": state.epoch + 1,
                   "stopped_early": state.stop, "num_processes": accelerator.num_processes,
                   "parameters": self.parameters, "hyperparameters": report.hyperparameters(config)}
        if averaged is not None:
            summary["weight_average"] = averaged
        if self.loss_settings is not None:  # the class weights etc. computed on train, as trained with
            summary["loss"] = self.loss_settings.describe(self.data.label_names)
        if self.trainer.keep_last:  # before best/: saving the best model loads its weights into `model`
            self.save_checkpoint(finished=True)
        if self.rundir:  # rank 0: best/ (the best weights), metrics.json, the model card, plots, the final table
            unwrapped = self.accelerator.unwrap_model(self.model)
            if self.best_state is not None:
                unwrapped.load_state_dict(self.best_state)
            # rank 0 alone times the best model (trainer.measure_cost): no collective follows before shutdown's
            # barrier, where the other ranks wait
            summary = results.write_results(self.rundir, unwrapped, config, self.data, summary,
                                            best_step=state.best_step, best_outputs=self.best_outputs,
                                            history=state.history, decision=self.decision, decoding=self.decoding,
                                            accelerator=accelerator,
                                            eval_collate=self.eval_loader.collate_fn)
        # drop every reference to the prepared (possibly DDP-wrapped) objects before the process group goes away
        self.model = self.optimizer = self.train_loader = self.eval_loader = self.best_state = None
        accelerator.free_memory()
        return RunResult(output_dir=self.output_dir, best=state.best, best_step=state.best_step, summary=summary,
                         stopped_by_hook=state.stopped_by_hook)


def shutdown() -> None:
    """Tear down the process group at exit (call after every `run` reference is gone)."""
    import gc

    gc.collect()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
