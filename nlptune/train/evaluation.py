"""Evaluation: predictions gathered across processes and scored with the task's metrics; the forward pass and
loss every phase shares (training, evaluation, lr-find)."""
from __future__ import annotations

import torch

from nlptune.data.batching import ROW_FIELDS, TARGET_FIELDS
from nlptune.kinds import Kind
from nlptune.metrics import compute_metrics

# model outputs besides the logits that a kind's loss and predictions take (a CRF tagger's "transitions")
MODEL_EXTRAS = ("transitions",)


def forward(model, batch: dict) -> tuple[torch.Tensor, dict]:
    """The model's logits for ``batch`` and the extra outputs its kind reads (`MODEL_EXTRAS`). The model sees the
    inputs only: the labels, the rows' bookkeeping (`ROW_FIELDS`: which sentence a window belongs to) and what
    only the loss reads (`TARGET_FIELDS`: a teacher's logits) stay out."""
    inputs = {k: v for k, v in batch.items() if k != "labels" and k not in ROW_FIELDS and k not in TARGET_FIELDS}
    output = model(**inputs)
    extras = {name: output[name] for name in MODEL_EXTRAS if name in output and output[name] is not None}
    return output["logits"], extras


def _loss_extras(extras: dict, loss_settings) -> dict:
    return extras if loss_settings is None else {**extras, "loss_settings": loss_settings}


def logits_and_loss(model, batch: dict, kind: Kind, loss_settings=None,
                    distill=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits for ``batch`` and the kind's loss against its ``labels`` (what the outputs mean and how
    they are scored belongs to the problem kind); ``loss_settings``: the run's class weights, focal loss and
    label smoothing (`nlptune.train.setup.loss_settings`; None: the plain loss). ``distill`` (the run's
    DistillConfig): a batch that carries a teacher's logits is scored against them too (`distillation_loss`)."""
    logits, extras = forward(model, batch)
    if distill is None or "teacher_logits" not in batch:
        return logits, kind.loss(logits, batch["labels"], **_loss_extras(extras, loss_settings))
    return logits, distillation_loss(logits, batch, kind, distill, _loss_extras(extras, loss_settings))


def distillation_loss(logits: torch.Tensor, batch: dict, kind: Kind, distill, extras: dict) -> torch.Tensor:
    """(1 - alpha) x the kind's loss against the gold labels, over the rows that have one (a transfer-set row,
    ``gold`` False, has none) + alpha x the kind's loss against the teacher's logits, over every row."""
    soft = kind.soft_loss(logits, batch["teacher_logits"], mode=distill.loss, temperature=distill.temperature)
    if distill.alpha >= 1:
        return soft
    scored, labels = logits, batch["labels"]
    if "gold" in batch:  # only with a transfer set: a batch of gold rows alone needs no selection (no sync)
        gold = batch["gold"]
        if not bool(gold.any()):
            return distill.alpha * soft
        scored, labels = logits[gold], labels[gold]
    return (1 - distill.alpha) * kind.loss(scored, labels, **extras) + distill.alpha * soft


def _gather(accelerator, pred: torch.Tensor, gold: torch.Tensor, rows: dict) -> tuple:
    """Every process's rows of this batch; per-position outputs are padded to one width first (-100: no label)."""
    if pred.ndim > 1:
        pred = accelerator.pad_across_processes(pred, dim=1, pad_index=-100)
        gold = accelerator.pad_across_processes(gold, dim=1, pad_index=-100)
    return accelerator.gather_for_metrics((pred, gold, rows))


def _loss_sum(kind: Kind, logits: torch.Tensor, gold: torch.Tensor, extras: dict, accelerator) -> torch.Tensor:
    """The loss of a batch summed over its rows, over all processes. Several processes' last batches are made
    even with rows repeated from the start of the split, which `gather_for_metrics` drops from the predictions: that
    batch's loss is taken row by row so that the repeated rows are dropped from it too (a 1-row validation split
    on 2 processes read 256 times its loss)."""
    batch_loss = kind.loss(logits, gold, **extras).detach().float()
    if accelerator is None or accelerator.num_processes == 1:
        return batch_loss * gold.shape[0]
    if not accelerator.gradient_state.end_of_dataloader:
        return accelerator.reduce(batch_loss * gold.shape[0], reduction="sum")
    per_row = torch.stack([kind.loss(logits[i:i + 1], gold[i:i + 1], **extras).detach().float()
                           for i in range(gold.shape[0])])
    if torch.isfinite(batch_loss):  # a row with nothing to score (a tagger's window of words scored elsewhere)
        per_row = torch.nan_to_num(per_row, nan=0.0)
    return accelerator.gather_for_metrics(per_row).sum()


@torch.no_grad()
def evaluate(model, loader, *, kind: Kind, metrics: list[str], label_names: list[str] | None = None,
             accelerator=None, collect: dict | None = None, loss_settings=None,
             decision=None, decoding=None) -> dict[str, float]:
    """Score ``model`` on every batch of ``loader``; with an Accelerator, over all processes' shards. The loss
    is the training loss (``loss_settings``); ``decision``: how a multi_label kind turns probabilities into labels
    (`nlptune.kinds.thresholds.Decision`: fixed or tuned thresholds); ``decoding``: what the kind's predictions
    decode under (`Kind.decoding`: a tagger's allowed tag transitions).

    When ``collect`` (a dict) is given, it receives the kind's validation outputs (numpy arrays:
    ``predictions`` and ``references``, per row or per word), e.g. for the best model's plots.
    """
    model.eval()
    parts, loss_sum = [], 0.0
    for batch in loader:
        logits, extras = forward(model, batch)
        gold = batch["labels"]
        loss = _loss_sum(kind, logits, gold, _loss_extras(extras, loss_settings), accelerator)
        pred = kind.predictions(logits, mask=batch.get("attention_mask"), labels=gold, decoding=decoding, **extras)
        rows = {name: batch[name] for name in ROW_FIELDS if name in batch}
        if accelerator is not None:
            pred, gold, rows = _gather(accelerator, pred, gold, rows)
        parts.append({"predictions": pred.cpu().numpy(), "references": gold.cpu().numpy(),
                      **{name: value.cpu().numpy() for name, value in rows.items()}})
        loss_sum += float(loss)
    model.train()
    outputs = kind.outputs(parts)
    if collect is not None:
        collect.update(outputs)
    scores = kind.scores(metrics, outputs, label_names, decision=decision)
    if scores is None:  # the kind's outputs are rows of predictions and labels: the shared metric functions
        scores = compute_metrics(metrics, outputs["predictions"], outputs["references"])
    scores["loss"] = loss_sum / max(sum(len(p["references"]) for p in parts), 1)
    return scores

