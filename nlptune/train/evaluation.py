"""Evaluation: predictions gathered across processes and scored with the task's metrics."""
from __future__ import annotations

import torch

from nlptune.metrics import compute_metrics


def predictions_from_logits(logits: torch.Tensor, regression: bool) -> torch.Tensor:
    """Class ids (classification) or scores (regression) from a model's logits."""
    if regression:
        return logits.reshape(logits.shape[0], -1)[:, 0].float()
    return logits.argmax(dim=-1)


@torch.no_grad()
def evaluate(model, loader, *, metrics: list[str], regression: bool, accelerator=None,
             collect: dict | None = None) -> dict[str, float]:
    """Score ``model`` on every batch of ``loader``; with an Accelerator, over all processes' shards.

    When ``collect`` (a dict) is given, it receives the gathered ``predictions`` and ``references`` (numpy
    arrays, in loader order), e.g. for the confusion matrix / scatter plot of the best model.
    """
    model.eval()
    predictions, references, loss_sum, count = [], [], 0.0, 0
    for batch in loader:
        outputs = model(**batch)
        pred, gold = predictions_from_logits(outputs["logits"], regression), batch["labels"]
        loss = outputs["loss"].detach().float() * gold.shape[0]
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
