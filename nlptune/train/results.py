"""What a finished run leaves for its users (rank 0): best/ with the task description, metrics.json, the model
card, the plots (the problem kind's among them) and the final table."""
from __future__ import annotations

import json
from pathlib import Path

from nlptune.config.names import is_pretrained
from nlptune.config.schema import RunConfig
from nlptune.data import PreparedData
from nlptune.kinds import get_kind
from nlptune.train import cost, plots, report
from nlptune.train.model_card import write_model_card
from nlptune.train.rundir import RunDir, save_best_model
from nlptune.utils.files import atomic_write_text


def task_info(run: RunConfig, data: PreparedData) -> dict:
    """best/nlptune_task.json: what `nlptune eval / predict / export` need to use the model (runs written before
    task.kind hold ``problem_type`` instead of ``kind``: `nlptune.config.schema.kind_of` reads both)."""
    return {"task": run.task.name, "kind": run.task.kind, "text_fields": list(run.task.text_fields),
            "label_field": run.task.label_field, "label_names": data.label_names, "metrics": list(run.task.metrics),
            "main_metric": run.task.main_metric, "max_length": run.task.max_length, "model": run.model.name,
            "joint_pairs": data.joint_pairs, "char_features": data.char_features, "tag_scheme": run.task.tag_scheme,
            "constrained_decoding": run.task.constrained_decoding}


def write_results(rundir: RunDir, best_model, run: RunConfig, data: PreparedData, summary: dict, *,
                  best_step: int | None, best_outputs: dict | None, history: list[dict], decision=None,
                  decoding=None, accelerator=None, eval_collate=None) -> dict:
    """best/ (``best_model``: the unwrapped model holding the best weights, and the kind's files from its
    validation outputs: multi_label's thresholds.json), metrics.json, best/README.md, the plots and the final
    table, in that order (the card is written from the files before it). With the run's ``accelerator`` and
    validation ``eval_collate``, and trainer.measure_cost, the summary gets the best model's inference cost
    (`nlptune.train.cost`), timed with the run's ``decoding`` (`Kind.decoding`, as its evaluation decoded).
    Returns the summary as written to metrics.json."""
    output_dir = Path(rundir.path)
    kind = get_kind(run.task.kind)
    save_best_model(best_model, data.tokenizer, rundir.best_dir, pretrained=is_pretrained(run.model.name),
                    task_info=task_info(run, data))
    measure = cost.probe(accelerator, run.trainer, data.validation, eval_collate, kind, decoding) \
        if accelerator is not None and eval_collate is not None else None
    if measure is not None:  # after best/ is written: its size on disk is one of the figures
        summary = {**summary, "cost": measure(best_model, weights_dir=rundir.best_dir)}
    # a pure function of the checkpointed best outputs: a resumed run writes the same files
    extra = kind.best_files(best_outputs, data.label_names, decision) if best_outputs is not None else {}
    for name, content in extra.items():
        atomic_write_text(Path(rundir.best_dir) / name, json.dumps(content, indent=2) + "\n")
        summary = {**summary, name.removesuffix(".json"): content}
    if data.teacher:  # distillation: what the student learnt from, beside the teacher's own validation score
        summary = {**summary, "distillation": distillation_summary(run, data.teacher)}
    rundir.write_summary(summary)
    write_model_card(output_dir)
    rundir.close()
    plots.write_run_plots(output_dir, best_step=best_step, outputs=best_outputs, label_names=data.label_names,
                          kind_plots=kind.plots)
    report.print_end(summary, history, output_dir)
    return summary


def distillation_summary(run: RunConfig, teacher: dict) -> dict:
    """metrics.json's record of a distilled run: the settings, the teacher (run, sha256, its best score on its
    main metric) and the rows it labelled. Nothing about where its outputs came from (the manifest says): a
    resumed run writes the same summary."""
    return {**{key: getattr(run.distill, key) for key in ("alpha", "loss", "temperature", "augment_copies",
                                                          "mask_prob", "replace_prob", "ngram_prob")},
            **{f"teacher_{key}": teacher.get(key) for key in ("run_dir", "sha256", "task", "model", "main_metric",
                                                               "best")},
            "train_rows": teacher.get("train_rows"), "transfer_rows": teacher.get("transfer_rows")}
