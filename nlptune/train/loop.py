"""The training loop: one Accelerate loop for every model, on CPU, one GPU, or many processes.

Read top to bottom: set up -> data -> model -> optimizer/schedule -> prepare -> train/evaluate/early stop
-> save best -> summary. Hooks (`on_evaluate`) let the tuner report and prune.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration
from accelerate.utils import broadcast_object_list

from nlptune.config.errors import NlptuneError
from nlptune.config.schema import RunConfig
from nlptune.data import PreparedData, prepare_data
from nlptune.data.augment import training_collate
from nlptune.data.batching import Collator, LengthGroupedBatchSampler, eval_order
from nlptune.metrics import is_improvement
from nlptune.models import build_model, is_pretrained, parameter_report
from nlptune.train import checkpoint, faults, plots, report, resume, tracking
from nlptune.train.evaluation import evaluate
from nlptune.train.optim import build_optimizer, build_scheduler
from nlptune.train.rundir import RunDir, default_output_dir, save_best_model
from nlptune.utils.environment import describe
from nlptune.utils.console import quiet_libraries
from nlptune.utils.memory import limit_heap_fragmentation, limit_onednn_cache
from nlptune.utils.seeding import seed_everything
from nlptune.utils.seeding import set_deterministic
from nlptune.train.model_card import write_model_card

# on_evaluate(step, samples_seen, metrics) -> True to stop the run (the tuner prunes through it)
EvaluateHook = Callable[[int, int, dict], bool]


@dataclass
class RunResult:
    output_dir: Path
    best: dict
    best_step: int
    summary: dict = field(default_factory=dict)
    stopped_by_hook: bool = False


def make_accelerator(trainer, **tracking_kwargs) -> Accelerator:
    """An Accelerator for ``trainer``; refuses to run when the launcher and Accelerate disagree on processes."""
    cpu = trainer.device == "cpu" or (trainer.device == "auto" and not torch.cuda.is_available())
    # one process may train several times (tuning trials, lr-find, tests) with other precisions; Accelerate keeps
    # the first one's settings in a process-wide singleton and refuses a change, so each run starts from a fresh
    # one (the process group lives in PartialState, which is kept)
    AcceleratorState._reset_state()
    # split_batches: the sampler yields global batches (trainer.batch_size x processes) that are cut into one
    # shard per process, so N processes see exactly the batches one process would with the same global batch
    accelerator = Accelerator(cpu=cpu, mixed_precision=resolve_precision(trainer.mixed_precision, cpu),
                              dataloader_config=DataLoaderConfiguration(split_batches=True),
                              gradient_accumulation_steps=trainer.gradient_accumulation_steps,
                              dynamo_backend="inductor" if trainer.compile else None,
                              kwargs_handlers=faults.process_group_kwargs(trainer.dist_timeout_s), **tracking_kwargs)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:
        raise NlptuneError(
            f"the launcher started {launched} processes but Accelerate runs {accelerator.num_processes}; "
            "on CPU launch with `torchrun --nproc_per_node N -m nlptune train ...` or "
            "`accelerate launch --multi_gpu --cpu --num_processes N -m nlptune train ...`")
    if trainer.threads:
        torch.set_num_threads(trainer.threads)
    return accelerator


def resolve_precision(requested: str, cpu: bool) -> str:
    """``trainer.mixed_precision`` as Accelerate takes it. ``auto`` is bf16 autocast on CPUs with AMX bf16 tiles
    (MiniLM: 1.4x the fp32 samples/s at the same accuracy, benchmarks/RESULTS.md) and fp32 elsewhere: on GPUs,
    fine-tuning batches are launch-bound and bf16 autocast measured slower there."""
    if requested != "auto":
        return requested
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private, so probed: absent means no
    return "bf16" if cpu and amx is not None and amx() else "no"


def _loaders(data: PreparedData, run: RunConfig, pad_token_id: int, num_processes: int = 1):
    """Train and validation loaders of global batches (per-process size x ``num_processes``; Accelerate splits
    them), and the train batch sampler."""
    trainer = run.trainer
    collate = Collator(pad_token_id, run.task.is_regression,
                       pad_to_multiple_of=8 if torch.cuda.is_available() else 1)
    sampler = LengthGroupedBatchSampler(data.train.lengths, trainer.batch_size * num_processes, run.seed,
                                        trainer.group_by_length, short_batch_last=num_processes > 1)
    train_collate = training_collate(collate, run.augment, run.seed, data.tokenizer)  # augmentation: train only
    # each loader draws its worker seed from its own generator, not the global one: creating an iterator
    # (each epoch, each evaluation, a resumed epoch) then never shifts the dropout masks that follow
    train_loader = torch.utils.data.DataLoader(data.train, batch_sampler=sampler, collate_fn=train_collate,
                                               num_workers=trainer.num_workers,
                                               generator=torch.Generator().manual_seed(run.seed))
    # evaluation batches sorted by length: the order does not change the metrics, only the padding
    validation = torch.utils.data.Subset(data.validation, eval_order(data.validation.lengths))
    eval_loader = torch.utils.data.DataLoader(validation, batch_size=trainer.eval_batch_size * num_processes,
                                              collate_fn=collate,
                                              num_workers=trainer.num_workers,
                                              generator=torch.Generator().manual_seed(run.seed))
    return train_loader, eval_loader, sampler


def _build(run: RunConfig, data: PreparedData):
    tokenizer = data.tokenizer
    num_labels = 1 if run.task.is_regression else len(data.label_names)
    if is_pretrained(run.model.name):
        id2label = None if data.label_names is None else dict(enumerate(data.label_names))
        return build_model(run.model.name, **dict(run.model.args), num_labels=num_labels, id2label=id2label)
    return build_model(run.model.name, **dict(run.model.args), vocab_size=len(tokenizer),
                       pad_token_id=tokenizer.pad_token_id, num_labels=num_labels, pair=run.task.is_pair,
                       vocab=tokenizer.get_vocab())


def _task_info(run: RunConfig, data: PreparedData) -> dict:
    return {"task": run.task.name, "problem_type": run.task.problem_type, "text_fields": list(run.task.text_fields),
            "label_field": run.task.label_field, "label_names": data.label_names, "metrics": list(run.task.metrics),
            "main_metric": run.task.main_metric, "max_length": run.task.max_length, "model": run.model.name,
            "joint_pairs": data.joint_pairs}


def run(config: RunConfig, hooks: Sequence[EvaluateHook] = ()) -> RunResult:
    """Train ``config`` to the end (or early stop / hook stop) and write its run directory; with
    ``config.resume``, continue from a checkpoint exactly where it stopped."""
    quiet_libraries()
    limit_heap_fragmentation()
    limit_onednn_cache()
    output_dir = resume.target_dir(config) or default_output_dir(config)
    set_deterministic(config.trainer.deterministic)  # before any CUDA work: cuBLAS reads its workspace setting once
    accelerator = make_accelerator(config.trainer, **tracking.accelerator_kwargs(config.trainer, output_dir))
    with faults.Guard(accelerator, config.trainer.dist_timeout_s) as guard:  # names a failed rank and its phase
        return _train(config, hooks, accelerator, guard, output_dir)


def _cpu_copy(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _already_finished(plan: resume.ResumePlan) -> RunResult:
    state = plan.state
    checkpoint.note(f"the run in {plan.run_dir} already finished at step {state['step']}; nothing to do "
                    f"(results: {plan.run_dir / 'metrics.json'})")
    summary = json.loads((plan.run_dir / "metrics.json").read_text())
    return RunResult(output_dir=plan.run_dir, best=state["best"], best_step=state["best_step"], summary=summary,
                     stopped_by_hook=state["stopped_by_hook"])


def _train(config: RunConfig, hooks: Sequence[EvaluateHook], accelerator: Accelerator, guard: faults.Guard,
           output_dir: Path) -> RunResult:
    trainer, task = config.trainer, config.task
    if accelerator.num_processes > 1:  # one run directory for every rank (a default one is timestamped)
        shared = [str(output_dir)]
        broadcast_object_list(shared)
        output_dir = Path(shared[0])
    # a fresh start, or a verified checkpoint whose config matches (refused with a diff otherwise)
    plan = resume.plan(config, output_dir, accelerator.num_processes)
    if plan.finished and not plan.changes:
        return _already_finished(plan)
    guard.set_phase("data")
    seed_everything(config.seed)
    with accelerator.main_process_first():  # rank 0 fills the tokenization cache, the others read it
        data = prepare_data(config, pretrained=is_pretrained(config.model.name))
    resume.check_data(plan, data.data_sha256, config.resume_allow_changes)
    guard.set_phase("setup")
    seed_everything(config.seed)  # same initial weights whatever data preparation consumed
    model = _build(config, data)
    if plan.checkpoint:
        checkpoint.load_weights(plan.checkpoint, model)
    parameters = parameter_report(model)
    train_loader, eval_loader, sampler = _loaders(data, config, data.tokenizer.pad_token_id,
                                                  accelerator.num_processes)
    train_collate = train_loader.collate_fn
    optimizer = build_optimizer(model, config.optimizer, accelerator.device)
    steps_per_epoch = math.ceil(len(sampler) / trainer.gradient_accumulation_steps)  # every process: every batch
    total_steps = trainer.max_steps or steps_per_epoch * trainer.max_epochs
    max_epochs = math.ceil(total_steps / steps_per_epoch)
    scheduler = build_scheduler(optimizer, config.scheduler, total_steps)
    # the scheduler is stepped by hand once per optimizer step, so it is not prepared
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)
    rank_state = resume.restore(plan, accelerator, optimizer=optimizer, scheduler=scheduler) if plan.checkpoint \
        else {}
    start = resume.TrainState.from_plan(plan)  # step, samples, best, early-stopping counter (zeros when fresh)
    rundir = None
    if accelerator.is_main_process:  # only now, with data and checkpoint checked, is the run directory touched
        resume.prepare_run_dir(plan)  # a resumed run's metrics.jsonl is cut back to its checkpoint
        rundir = RunDir(output_dir)
        rundir.write_config(config)
        manifest = {"environment": describe(), "seed": config.seed, "num_processes": accelerator.num_processes,
                    "device": str(accelerator.device), "mixed_precision": accelerator.mixed_precision,
                    "data": {"sha256": data.data_sha256, "sources": data.sources},
                    "train_rows": len(data.train), "validation_rows": len(data.validation),
                    "resumed_from": str(plan.checkpoint) if plan.checkpoint else None}
        manifest.update(config.provenance)  # the recipe it came from, with pins drift; the trust flag
        rundir.write_manifest(manifest)
        report.print_start(config, parameters, output_dir, accelerator.num_processes, total_steps)
        rundir.tracker = tracking.start(accelerator, config, parameters, output_dir)  # fed by rundir.log

    best, best_step, best_state, stale, step, samples = start.best, start.best_step, None, start.stale, \
        start.step, start.samples
    best_outputs = None  # the best model's validation predictions, for the confusion matrix / scatter plot
    if accelerator.is_main_process and best is not None:  # the best weights and predictions of the checkpoint
        best_state = checkpoint.load_tensors(plan.checkpoint, plan.manifest, checkpoint.BEST_MODEL) \
            or _cpu_copy(accelerator.unwrap_model(model))
        saved = checkpoint.load_tensors(plan.checkpoint, plan.manifest, checkpoint.BEST_OUTPUTS)
        best_outputs = {k: v.numpy() for k, v in saved.items()} if saved else None
    main = task.main_metric
    stop, stopped_by_hook, history = start.stop, start.stopped_by_hook, start.history
    loss_sum = rank_state.get("loss_sum", torch.zeros(())).to(accelerator.device)
    loss_count, eval_time = rank_state.get("loss_count", 0), start.eval_time_s
    watch = faults.NonFiniteWatch(accelerator.device)  # the first NaN/inf loss, without a sync per step
    started = time.perf_counter()
    progress = report.Progress(total_steps, enabled=accelerator.is_main_process)

    def evaluate_now(epoch: int) -> None:
        nonlocal best, best_step, best_state, stale, stop, stopped_by_hook, eval_time, best_outputs
        watch.check(accelerator, epoch, guard.last_checkpoint)
        guard.set_phase("evaluate", step)
        eval_started = time.perf_counter()
        outputs = {}
        scores = evaluate(model, eval_loader, metrics=list(task.metrics), regression=task.is_regression,
                          accelerator=accelerator, collect=outputs)
        eval_time += time.perf_counter() - eval_started
        record = {"step": step, "epoch": epoch, "samples": samples, **{f"eval_{k}": v for k, v in scores.items()}}
        history.append(record)
        if is_improvement(main, scores[main], None if best is None else best[main]):
            best, best_step, stale = dict(scores), step, 0
            if accelerator.is_main_process:  # a CPU copy: the best weights survive later, worse steps
                best_state = _cpu_copy(accelerator.unwrap_model(model))
                best_outputs = outputs
        else:
            stale += 1
        decision = [accelerator.is_main_process and any(hook(step, samples, scores) for hook in hooks)]
        if accelerator.num_processes > 1:
            broadcast_object_list(decision)  # every rank follows rank 0's prune/continue decision
        stopped_by_hook = stopped_by_hook or decision[0]
        stop = stop or decision[0] or (trainer.patience > 0 and stale >= trainer.patience)
        if rundir:
            rundir.log(record)
        progress.note_eval(record, main)
        guard.set_phase("train")

    def save_checkpoint(epoch: int, finished: bool = False) -> None:
        """Every rank: the complete state after this step, written atomically (see checkpoint.py)."""
        watch.check(accelerator, epoch, guard.last_checkpoint)  # never save the weights of a diverged run
        phase = guard.phase
        guard.set_phase("checkpoint", step)
        counters = resume.TrainState(
            step=step, epoch=epoch, batches_done=batches_done, epoch_samples=epoch_samples, samples=samples,
            best=best, best_step=best_step, stale=stale, stop=stop, stopped_by_hook=stopped_by_hook, history=history,
            train_time_s=start.train_time_s + time.perf_counter() - started, eval_time_s=eval_time)
        metrics_file = output_dir / "metrics.jsonl"
        train_state = {**counters.to_json(), "finished": finished, "total_steps": total_steps,
                       "batches_per_epoch": len(train_loader), "sampler_seed": config.seed,
                       "num_processes": accelerator.num_processes, "data_sha256": data.data_sha256,
                       "metrics_bytes": metrics_file.stat().st_size if rundir and metrics_file.exists() else 0,
                       "config": resume.plain_config(config)}
        rank = {"rng": checkpoint.rng_state(), "loss_sum": loss_sum.detach().to("cpu", copy=True),
                "loss_count": loss_count}
        guard.last_checkpoint = checkpoint.save(
            output_dir / checkpoint.CHECKPOINTS, step, accelerator, model=model, optimizer=optimizer,
            scheduler=scheduler, best_state=best_state if best_step != step else None, best_outputs=best_outputs,
            train_state=train_state, rank_state=rank, keep_last=trainer.keep_last)
        guard.set_phase(phase)

    # where the data stands: (epoch, batches of it this process already consumed); (0, 0) when fresh
    epoch, skip = resume.start_position(plan, len(train_loader), trainer.batch_size, accelerator.num_processes)
    current_epoch, batches_done, epoch_samples = epoch, skip, start.epoch_samples if skip else 0
    if rank_state:  # the last thing before the first batch: the resumed run draws the same dropout masks
        resume.restore_rng(rank_state, train_collate, batches_before=epoch * len(train_loader) + skip)
    guard.set_phase("train", step)
    model.train()
    for epoch in range(epoch, max_epochs):
        if stop or step >= total_steps:
            break
        loader = resume.epoch_loader(train_loader, sampler, epoch, skip)  # the same batch order as uninterrupted
        current_epoch, batches_done, epoch_samples, skip = epoch, skip, epoch_samples if skip else 0, 0
        for batch in loader:
            with accelerator.accumulate(model):
                loss = model(**batch)["loss"]
                accelerator.backward(loss)
                if accelerator.sync_gradients and trainer.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), trainer.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            watch.observe(loss, step + 1, scheduler.get_last_lr()[0])
            loss_sum += loss.detach()
            loss_count += 1
            batch_samples = batch["labels"].shape[0] * accelerator.num_processes
            samples, epoch_samples, batches_done = samples + batch_samples, epoch_samples + batch_samples, \
                batches_done + 1
            if not accelerator.sync_gradients:
                continue
            if not accelerator.optimizer_step_was_skipped:
                scheduler.step()
            step += 1
            guard.step = step
            progress.advance(epoch, step, samples)
            end_of_epoch = batches_done == len(train_loader)
            if step % trainer.log_every == 0:  # the only host-device sync of the train step
                watch.check(accelerator, epoch, guard.last_checkpoint)
                mean_loss = accelerator.reduce(loss_sum, reduction="mean").item() / loss_count
                if rundir:
                    rundir.log({"step": step, "epoch": epoch, "samples": samples, "loss": mean_loss,
                                "lr": scheduler.get_last_lr()[0]})
                progress.note_loss(mean_loss, scheduler.get_last_lr()[0])
                loss_sum.zero_()
                loss_count = 0
            if (trainer.eval_every and step % trainer.eval_every == 0) or end_of_epoch or step >= total_steps:
                evaluate_now(epoch)
            if stop or step >= total_steps:
                break  # the final checkpoint follows the loop
            if trainer.keep_last and (step % trainer.save_every == 0 if trainer.save_every else end_of_epoch):
                save_checkpoint(epoch)
        else:  # the epoch ran out; under sharding it can be a batch shorter than len(loader) promised
            if not history or history[-1]["step"] != step:
                evaluate_now(epoch)
                if trainer.keep_last and not trainer.save_every and not (stop or step >= total_steps):
                    save_checkpoint(epoch)
    runtime = start.train_time_s + time.perf_counter() - started
    progress.close()
    watch.check(accelerator, current_epoch, guard.last_checkpoint)
    guard.set_phase("save", step)
    accelerator.wait_for_everyone()

    summary = {"best": best, "best_step": best_step, "main_metric": main, "train_runtime_s": round(runtime, 3),
               "eval_runtime_s": round(eval_time, 3),
               "train_samples_per_second": round(samples / max(runtime - eval_time, 1e-9), 3),
               "train_samples": samples, "steps": step, "epochs": current_epoch + 1, "stopped_early": stop,
               "num_processes": accelerator.num_processes, "parameters": parameters,
               "hyperparameters": report.hyperparameters(config)}
    if trainer.keep_last:  # before best/: saving the best model loads its weights into `model`
        save_checkpoint(current_epoch, finished=True)
    if rundir:
        unwrapped = accelerator.unwrap_model(model)
        if best_state is not None:
            unwrapped.load_state_dict(best_state)
        save_best_model(unwrapped, data.tokenizer, rundir.best_dir, pretrained=is_pretrained(config.model.name),
                        task_info=_task_info(config, data))
        rundir.write_summary(summary)
        write_model_card(output_dir)  # best/README.md, from the files just written
        rundir.close()
        plots.write_run_plots(output_dir, best_step=best_step, outputs=best_outputs, label_names=data.label_names,
                              regression=task.is_regression)
        report.print_end(summary, history, output_dir)
    # drop every reference to the prepared (possibly DDP-wrapped) objects before the process group goes away
    del model, optimizer, train_loader, eval_loader, best_state
    accelerator.free_memory()
    return RunResult(output_dir=output_dir, best=best, best_step=best_step, summary=summary,
                     stopped_by_hook=stopped_by_hook)


def shutdown() -> None:
    """Tear down the process group at exit (call after every `run` reference is gone)."""
    import gc

    gc.collect()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
