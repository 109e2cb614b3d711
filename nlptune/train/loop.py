"""The training loop: one Accelerate loop for every model, on CPU, one GPU, or many processes.

Read top to bottom: set up -> data -> model -> optimizer/schedule -> prepare -> train/evaluate/early stop
-> save best -> summary. Hooks (`on_evaluate`) let the tuner report and prune.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from nlptune.config.errors import NlptuneError
from nlptune.config.schema import RunConfig
from nlptune.data import PreparedData, prepare_data
from nlptune.data.batching import Collator, LengthGroupedBatchSampler, eval_order
from nlptune.metrics import is_improvement
from nlptune.models import build_model, is_pretrained, parameter_report
from nlptune.train import report
from nlptune.train.evaluation import evaluate
from nlptune.train.optim import build_optimizer, build_scheduler
from nlptune.train.rundir import RunDir, default_output_dir, save_best_model
from nlptune.utils.environment import describe
from nlptune.utils.console import quiet_libraries
from nlptune.utils.seeding import seed_everything

# on_evaluate(step, samples_seen, metrics) -> True to stop the run (the tuner prunes through it)
EvaluateHook = Callable[[int, int, dict], bool]


@dataclass
class RunResult:
    output_dir: Path
    best: dict
    best_step: int
    summary: dict = field(default_factory=dict)
    stopped_by_hook: bool = False


def make_accelerator(trainer) -> Accelerator:
    """An Accelerator for ``trainer``; refuses to run when the launcher and Accelerate disagree on processes."""
    cpu = trainer.device == "cpu" or (trainer.device == "auto" and not torch.cuda.is_available())
    accelerator = Accelerator(cpu=cpu, mixed_precision=trainer.mixed_precision,
                              gradient_accumulation_steps=trainer.gradient_accumulation_steps,
                              dynamo_backend="inductor" if trainer.compile else None)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:
        raise NlptuneError(
            f"the launcher started {launched} processes but Accelerate runs {accelerator.num_processes}; "
            "on CPU launch with `torchrun --nproc_per_node N -m nlptune train ...` or "
            "`accelerate launch --multi_gpu --cpu --num_processes N -m nlptune train ...`")
    if trainer.threads:
        torch.set_num_threads(trainer.threads)
    return accelerator


def _loaders(data: PreparedData, run: RunConfig, pad_token_id: int):
    trainer = run.trainer
    collate = Collator(pad_token_id, run.task.is_regression,
                       pad_to_multiple_of=8 if torch.cuda.is_available() else 1)
    sampler = LengthGroupedBatchSampler(data.train.lengths, trainer.batch_size, run.seed, trainer.group_by_length)
    train_loader = torch.utils.data.DataLoader(data.train, batch_sampler=sampler, collate_fn=collate,
                                               num_workers=trainer.num_workers)
    # evaluation batches sorted by length: the order does not change the metrics, only the padding
    validation = torch.utils.data.Subset(data.validation, eval_order(data.validation.lengths))
    eval_loader = torch.utils.data.DataLoader(validation, batch_size=trainer.eval_batch_size, collate_fn=collate,
                                              num_workers=trainer.num_workers)
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
    """Train ``config`` to the end (or early stop / hook stop) and write its run directory."""
    quiet_libraries()
    accelerator = make_accelerator(config.trainer)
    trainer, task = config.trainer, config.task
    seed_everything(config.seed)
    with accelerator.main_process_first():  # rank 0 fills the tokenization cache, the others read it
        data = prepare_data(config, pretrained=is_pretrained(config.model.name))
    seed_everything(config.seed)  # same initial weights whatever data preparation consumed
    model = _build(config, data)
    parameters = parameter_report(model)
    output_dir = Path(config.output_dir) if config.output_dir else default_output_dir(config)
    rundir = RunDir(output_dir) if accelerator.is_main_process else None
    train_loader, eval_loader, sampler = _loaders(data, config, data.tokenizer.pad_token_id)
    optimizer = build_optimizer(model, config.optimizer, accelerator.device)
    batches_per_process = math.ceil(len(sampler) / accelerator.num_processes)
    steps_per_epoch = math.ceil(batches_per_process / trainer.gradient_accumulation_steps)
    total_steps = trainer.max_steps or steps_per_epoch * trainer.max_epochs
    max_epochs = math.ceil(total_steps / steps_per_epoch)
    scheduler = build_scheduler(optimizer, config.scheduler, total_steps)
    # the scheduler is stepped by hand once per optimizer step, so it is not prepared
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)
    if rundir:
        rundir.write_config(config)
        manifest = {"environment": describe(), "seed": config.seed, "num_processes": accelerator.num_processes,
                    "device": str(accelerator.device), "data": {"sha256": data.data_sha256, "sources": data.sources},
                    "train_rows": len(data.train), "validation_rows": len(data.validation)}
        rundir.write_manifest(manifest)
        report.print_start(config, parameters, output_dir, accelerator.num_processes, total_steps)

    best, best_step, best_state, stale, step, samples = None, 0, None, 0, 0, 0
    main = task.main_metric
    stop, stopped_by_hook, history = False, False, []
    loss_sum = torch.zeros((), device=accelerator.device)
    loss_count, eval_time = 0, 0.0
    started = time.perf_counter()
    progress = report.Progress(total_steps, enabled=accelerator.is_main_process)

    def evaluate_now(epoch: int) -> None:
        nonlocal best, best_step, best_state, stale, stop, stopped_by_hook, eval_time
        eval_started = time.perf_counter()
        scores = evaluate(model, eval_loader, metrics=list(task.metrics), regression=task.is_regression,
                          accelerator=accelerator)
        eval_time += time.perf_counter() - eval_started
        record = {"step": step, "epoch": epoch, "samples": samples, **{f"eval_{k}": v for k, v in scores.items()}}
        history.append(record)
        if is_improvement(main, scores[main], None if best is None else best[main]):
            best, best_step, stale = dict(scores), step, 0
            if accelerator.is_main_process:  # a CPU copy: the best weights survive later, worse steps
                state = accelerator.unwrap_model(model).state_dict()
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
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

    model.train()
    for epoch in range(max_epochs):
        sampler.set_epoch(epoch)
        for batch in train_loader:
            with accelerator.accumulate(model):
                loss = model(**batch)["loss"]
                accelerator.backward(loss)
                if accelerator.sync_gradients and trainer.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), trainer.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
            loss_count += 1
            samples += batch["labels"].shape[0] * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            if not accelerator.optimizer_step_was_skipped:
                scheduler.step()
            step += 1
            progress.advance(epoch, step, samples)
            if step % trainer.log_every == 0:  # the only host-device sync of the train step
                mean_loss = accelerator.reduce(loss_sum, reduction="mean").item() / loss_count
                if rundir:
                    rundir.log({"step": step, "epoch": epoch, "samples": samples, "loss": mean_loss,
                                "lr": scheduler.get_last_lr()[0]})
                progress.note_loss(mean_loss, scheduler.get_last_lr()[0])
                loss_sum.zero_()
                loss_count = 0
            if trainer.eval_every and step % trainer.eval_every == 0:
                evaluate_now(epoch)
            if stop or step >= total_steps:
                break
        if not trainer.eval_every or (step % trainer.eval_every != 0):
            if not stop:
                evaluate_now(epoch)
        if stop or step >= total_steps:
            break
    runtime = time.perf_counter() - started
    progress.close()
    accelerator.wait_for_everyone()

    summary = {"best": best, "best_step": best_step, "main_metric": main, "train_runtime_s": round(runtime, 3),
               "eval_runtime_s": round(eval_time, 3),
               "train_samples_per_second": round(samples / max(runtime - eval_time, 1e-9), 3),
               "train_samples": samples, "steps": step, "epochs": epoch + 1, "stopped_early": stop,
               "num_processes": accelerator.num_processes, "parameters": parameters,
               "hyperparameters": report.hyperparameters(config)}
    if rundir:
        unwrapped = accelerator.unwrap_model(model)
        if best_state is not None:
            unwrapped.load_state_dict(best_state)
        save_best_model(unwrapped, data.tokenizer, rundir.best_dir, pretrained=is_pretrained(config.model.name),
                        task_info=_task_info(config, data))
        rundir.write_summary(summary)
        rundir.close()
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
