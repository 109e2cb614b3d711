"""The Trainer contender of `vs_trainer.py` on a per-word task, set up as transformers' run_ner.py does:
words tokenized with is_split_into_words, the first sub-token of each word labelled (label_all_tokens=False),
the rest -100, DataCollatorForTokenClassification, seqeval on the labelled positions."""
from __future__ import annotations

import time

from _common import DATA_DIR


def _read(task: str, split: str) -> tuple[list[list[str]], list[list[str]]]:
    """Words and tags of one split of a shared task, read as nlptune reads them (jsonl or CoNLL columns)."""
    from nlptune.data.loading import load_raw_splits
    from nlptune.config.compose import load_run_config

    # any model that tags words: only the task part of the config is used
    task_config = load_run_config([f"task={task}", "model=lstm", f"task.data_dir={DATA_DIR}"]).task
    raw = load_raw_splits(task_config)[split]
    return raw.columns[task_config.text_fields[0]], raw.columns[task_config.label_field]


def child_trainer_tokens(args, grouped: bool, bf16: bool) -> dict:
    import datasets
    import numpy as np
    import torch
    from seqeval.metrics import f1_score
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                              Trainer, TrainingArguments, set_seed)

    splits = {split: _read(args.task, split) for split in ("train", "validation")}
    names = sorted({tag for tags in splits["train"][1] for tag in tags}, key=lambda t: (t != "O", t[2:], t))
    index = {name: i for i, name in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)

    def encode(words, tags):
        out = tokenizer(words, truncation=True, is_split_into_words=True)
        labels = []
        for row, row_tags in enumerate(tags):
            previous, row_labels = None, []
            for word in out.word_ids(row):
                row_labels.append(-100 if word is None or word == previous else index[row_tags[word]])
                previous = word
            labels.append(row_labels)
        out["labels"] = labels
        return out

    data = {}
    for split, (words, tags) in splits.items():
        limit = args.limit or len(words)
        data[split] = datasets.Dataset.from_dict(dict(encode(words[:limit], tags[:limit])))
    set_seed(args.seed)  # as run_ner.py: before the model, so the new head is the same each run
    model = AutoModelForTokenClassification.from_pretrained(
        args.model_dir, num_labels=len(names), id2label=dict(enumerate(names)), label2id=index)
    targs = TrainingArguments(
        output_dir=f"{args.output_dir}/trainer", use_cpu=not torch.cuda.is_available(),
        bf16=bf16 or args.precision == "bf16", per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=128, learning_rate=args.lr, warmup_steps=args.warmup_ratio,  # < 1: a ratio
        weight_decay=args.weight_decay, max_steps=args.steps or -1, num_train_epochs=args.epochs, seed=args.seed,
        eval_strategy="no", save_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True,
        train_sampling_strategy="group_by_length" if grouped else "random")
    trainer = Trainer(model=model, args=targs, train_dataset=data["train"],
                      data_collator=DataCollatorForTokenClassification(tokenizer))
    started = time.perf_counter()
    out = trainer.train()
    wall = time.perf_counter() - started
    pred = trainer.predict(data["validation"])
    ids = np.argmax(pred.predictions, axis=-1)
    gold = [[names[g] for g in row if g != -100] for row in pred.label_ids]
    guess = [[names[p] for p, g in zip(prow, grow) if g != -100] for prow, grow in zip(ids, pred.label_ids)]
    name = "trainer_" + ("grouped" if grouped else "random") + ("_bf16" if bf16 else "")
    return {"name": name, "precision": "bf16" if targs.bf16 else "fp32",
            "samples_per_s": out.global_step * args.batch_size / wall, "train_wall_s": wall,
            "steps": out.global_step, "metric": float(f1_score(gold, guess))}
