"""Set-up shared by the training loop and lr-find: the model for a task's data, the data loaders, and the loss
settings (class weights, focal loss, label smoothing) computed from the training targets."""
from __future__ import annotations

import torch

from nlptune.config.schema import RunConfig
from nlptune.data import PreparedData
from nlptune.data.augment import training_collate
from nlptune.data.batching import Collator, LengthGroupedBatchSampler, eval_order
from nlptune.kinds import get_kind
from nlptune.models import build_model, is_pretrained


def make_loaders(data: PreparedData, run: RunConfig, pad_token_id: int, num_processes: int = 1):
    """Train and validation loaders of global batches (per-process size x ``num_processes``; Accelerate splits
    them), and the train batch sampler."""
    trainer = run.trainer
    collate = Collator(pad_token_id, get_kind(run.task.kind).label_dtype,
                       pad_to_multiple_of=8 if torch.cuda.is_available() else 1)
    rows = data.training_rows()  # train's rows, then a distilled run's transfer set
    sampler = LengthGroupedBatchSampler(rows.lengths, trainer.batch_size * num_processes, run.seed,
                                        trainer.group_by_length, short_batch_last=num_processes > 1,
                                        longest_first=trainer.longest_first)
    train_collate = training_collate(collate, run.augment, run.seed, data.tokenizer)  # augmentation: train only
    # each loader draws its worker seed from its own generator, not the global one: creating an iterator
    # (each epoch, each evaluation, a resumed epoch) then never shifts the dropout masks that follow
    train_loader = torch.utils.data.DataLoader(rows, batch_sampler=sampler, collate_fn=train_collate,
                                               num_workers=trainer.num_workers,
                                               generator=torch.Generator().manual_seed(run.seed))
    # evaluation batches sorted by length: the order does not change the metrics, only the padding
    validation = torch.utils.data.Subset(data.validation, eval_order(data.validation.lengths))
    eval_loader = torch.utils.data.DataLoader(validation, batch_size=trainer.eval_batch_size * num_processes,
                                              collate_fn=collate,
                                              num_workers=trainer.num_workers,
                                              generator=torch.Generator().manual_seed(run.seed))
    return train_loader, eval_loader, sampler


def _per_token(kind) -> dict:
    # asked only of a per-word task, so a builder that has no per_token argument still builds text models
    return {"per_token": True} if kind.words_in_text_column else {}


def build_task_model(run: RunConfig, data: PreparedData):
    """The model ``run`` names, sized for ``data`` (vocabulary, labels, pairs), with fresh weights."""
    tokenizer, kind = data.tokenizer, get_kind(run.task.kind)
    num_labels = kind.num_outputs(data.label_names)  # the kind's head width; it computes the loss too
    if is_pretrained(run.model.name):
        id2label = None if data.label_names is None else dict(enumerate(data.label_names))
        return build_model(run.model.name, **dict(run.model.args), num_labels=num_labels, id2label=id2label,
                           problem_type=kind.hf_problem_type, auto_model=kind.hf_auto_model,
                           pad_token_id=tokenizer.pad_token_id)  # for a checkpoint whose config has none
    model = build_model(run.model.name, **dict(run.model.args), vocab_size=len(tokenizer),
                        pad_token_id=tokenizer.pad_token_id, num_labels=num_labels, pair=run.task.is_pair,
                        vocab=tokenizer.get_vocab(), **_per_token(kind))
    # e.g. a regressor's output bias, a CRF's allowed tag transitions; no random draw
    kind.start_model(model, data.train.labels, data.label_names, run.task.tag_scheme)
    return model


def loss_settings(run: RunConfig, data: PreparedData):
    """The run's `LossSettings` (nlptune/kinds/losses.py) from the trainer config and the training targets, built
    once and passed to every loss as the keyword ``loss_settings``; None for a kind without classes."""
    from nlptune.config.errors import ConfigError, ConfigIssue
    from nlptune.kinds.losses import build_settings

    kind = get_kind(run.task.kind)
    counts = kind.class_counts(data.train.labels, data.label_names)
    if counts is None:
        return None
    try:
        return build_settings(run.trainer, counts, len(data.train), kind.num_outputs(data.label_names))
    except ValueError as err:  # a weight list of the wrong length: known only once the labels are
        raise ConfigError([ConfigIssue("trainer", str(err), f"give one weight per output: {data.label_names}")]) \
            from None
