"""Evaluation: predictions gathered across processes and scored with the task's metrics; the forward pass and
loss every phase shares (training, evaluation, lr-find)."""
from __future__ import annotations

import torch

from nlptune.kinds import Kind
from nlptune.metrics import compute_metrics


def logits_and_loss(model, batch: dict, kind: Kind) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits for ``batch`` and the kind's loss against its ``labels`` (the model sees the inputs
    only: what the outputs mean and how they are scored belongs to the problem kind)."""
    logits = model(**{k: v for k, v in batch.items() if k != "labels"})["logits"]
    return logits, kind.loss(logits, batch["labels"])


@torch.no_grad()
def evaluate(model, loader, *, kind: Kind, metrics: list[str], accelerator=None,
             collect: dict | None = None) -> dict[str, float]:
    """Score ``model`` on every batch of ``loader``; with an Accelerator, over all processes' shards.

    When ``collect`` (a dict) is given, it receives the gathered ``predictions`` and ``references`` (numpy
    arrays, in loader order), e.g. for the confusion matrix / scatter plot of the best model.
    """
    model.eval()
    predictions, references, loss_sum, count = [], [], 0.0, 0
    for batch in loader:
        logits, loss = logits_and_loss(model, batch, kind)
        pred, gold = kind.predictions(logits), batch["labels"]
        loss = loss.detach().float() * gold.shape[0]
        if accelerator is not None:
            pred, gold = accelerator.gather_for_metrics((pred, gold))
            loss = accelerator.reduce(loss, reduction="sum")
        predictions.append(pred.cpu())
        references.append(gold.cpu())
        loss_sum += loss
        count += gold.shape[0]
    model.train()
    predictions, references = torch.cat(predictions).numpy(), torch.cat(references).numpy()
    if collect is not None:
        collect.update(predictions=predictions, references=references)
    scores = compute_metrics(metrics, predictions, references)
    scores["loss"] = float(loss_sum / max(count, 1))
    return scores
