"""Use a finished run: evaluate its best model on a split or file, and predict new texts."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from nlptune.config.errors import NlptuneError
from nlptune.config.schema import build_run_config
from nlptune.data import encode_split
from nlptune.data.batching import ROW_FIELDS, Collator, EncodedDataset, eval_order
from nlptune.data.compression import data_suffix
from nlptune.data.errors import ProblemCollector
from nlptune.data.labels import raise_problems, to_examples
from nlptune.data.loading import load_raw_splits, read_file, read_lines, read_task_file, split_lines
from nlptune.inference import PREDICT_BATCH_SIZE
from nlptune.kinds.thresholds import Decision
from nlptune.train.evaluation import evaluate, forward
from nlptune.train.precision import at_precision, cpu_precision, say_if_bf16_is_emulated
from nlptune.train.rundir import read_task_info
from nlptune.train.run_reading import (as_given, is_saved_model, load_best_model, read_run_config,
                                       saved_task, task_kind)
from nlptune.utils.plain import parse_json


class LoadedRun:
    """A finished run's best model, tokenizer, task description and evaluation settings; or those of a saved model
    folder on its own (an `export --format hf` copy, a copy of a run's best/), which holds no run config: its task
    is what its nlptune_task.json records (`saved_task`), it computes in fp32 and scores in batches of
    `PREDICT_BATCH_SIZE`, and it has no data of its own (`saved_only`)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = as_given(run_dir)  # a run's best/ is read as its run
        self.saved_only = is_saved_model(self.run_dir)
        best = self.run_dir if self.saved_only else self.run_dir / "best"
        if not (best / "nlptune_task.json").is_file():
            raise NlptuneError(f"{self.run_dir} is not a finished nlptune run (no best/nlptune_task.json); "
                               "pass the run directory that `nlptune train` printed")
        self.info = read_task_info(best)
        self.kind = task_kind(best, self.info)
        # the run's whole config (None for a folder alone), and the parts eval and predict use
        self.config = None if self.saved_only else build_run_config(read_run_config(self.run_dir))
        if self.config is None:  # nothing says how it was trained: exact fp32 arithmetic, the inference batch size
            self.task, mixed_precision, self.eval_batch_size = saved_task(self.info, self.kind), "no", \
                PREDICT_BATCH_SIZE
        else:
            self.task, mixed_precision = self.config.task, self.config.trainer.mixed_precision
            self.eval_batch_size = self.config.trainer.eval_batch_size
        self.model, self.tokenizer = load_best_model(best, self.info, self.kind)
        self.thresholds = self._thresholds(best)
        # eval and predict compute in the run's precision by default, as a CPU runs it (bf16 autocast, or fp32):
        # what its evaluation during training computed in
        self.precision = cpu_precision(mixed_precision)
        self.decode_tags()

    def described(self) -> str:
        """How messages name this model: "the model of the run R", or "the saved model M" (a folder alone)."""
        return f"the saved model {self.run_dir}" if self.saved_only else f"the model of the run {self.run_dir}"

    def decode_tags(self, constrained: bool | None = None) -> None:
        """How a tagger without a CRF decodes from here on: under its tag scheme (True), each word alone (False), or
        as its training evaluated (None; a run from before task.constrained_decoding: each word alone)."""
        if constrained is None:
            constrained = self.info.get("constrained_decoding", False)
        self.decoding = self.kind.decoding(self.info["label_names"], self.info.get("tag_scheme", "iob2"), constrained)

    def _thresholds(self, best: Path) -> tuple[float, ...] | None:
        """The decision thresholds saved with a multi-label model (best/thresholds.json), one per label."""
        path = best / "thresholds.json"
        if not path.is_file():
            return None
        saved = parse_json(path.read_text())
        saved = saved.get("thresholds") if isinstance(saved, dict) else None
        names = self.info["label_names"] or []
        if not isinstance(saved, dict) or sorted(saved) != sorted(map(str, names)) or not all(
                isinstance(value, (int, float)) and not isinstance(value, bool) for value in saved.values()):
            raise NlptuneError(f"{path} does not hold a number per label of {best / 'nlptune_task.json'} "
                               "(\"thresholds\": {label: threshold}); the run directory is damaged: train it again")
        return tuple(float(saved[name]) for name in names)

    def encoded(self, texts: list[list], labels: list) -> EncodedDataset:
        """``texts`` (one list per text field) encoded as the run's training encoded them, with their lengths;
        per-word tasks: sentences cut into windows, ``labels`` (one per word) laid out with them."""
        words = self.kind.words_in_text_column  # per-word labels: sentences become windows, labels go in columns
        columns = encode_split(self.tokenizer, texts, labels if words else None, words=words,
                               max_length=self.info["max_length"], joint_pairs=self.info["joint_pairs"],
                               char_features=self.info.get("char_features", False))
        return EncodedDataset(columns, None if words else labels)

    def collator(self) -> Collator:
        """What pads the encoded rows of this model's inputs into a batch."""
        return Collator(self.tokenizer.pad_token_id, self.kind.label_dtype)

    def _loader(self, texts: list[list], labels: list, batch_size: int, by_length: bool = False):
        dataset = self.encoded(texts, labels)
        if by_length:  # longest first, as the run's evaluation batched them: little padding
            dataset = torch.utils.data.Subset(dataset, eval_order(dataset.lengths))
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=self.collator())

    def model_at(self, precision: str | None = None) -> torch.nn.Module:
        """The best model computing in ``precision`` ("bf16": autocast, "fp32"; None: the run's, `precision`)."""
        asked, precision = precision, precision or self.precision
        if asked and asked != self.precision:  # the caller's choice, not the run's: no reason to keep it
            what, fix = f"--precision {asked}", (f"leave --precision out (the run's own precision, {self.precision}) "
                                                 "or pass --precision fp32")
        else:
            what, fix = f"the run {self.run_dir}", ("pass --precision fp32 to eval and predict (precision='fp32' "
                                                    "from Python); scores may then differ from the run's own "
                                                    "evaluation in the last digits")
        say_if_bf16_is_emulated(precision, what, fix)
        return at_precision(self.model, precision)

    def evaluate(self, split: str = "validation", file: str | None = None, batch_size: int | None = None,
                 precision: str | None = None) -> dict:
        """Metrics of the best model on a split of the run's task, or on a labelled file. By default computed as the
        run's evaluation during training was: batches of trainer.eval_batch_size texts sorted by length, in the
        run's precision; ``batch_size`` and ``precision`` ("fp32", "bf16") change that."""
        task = self.task
        if file:
            split = "eval"  # a problem in the file is named as the file's, not as the task's validation split's
        problems = ProblemCollector()  # the texts' problems and the labels' are reported in one message
        raw = read_task_file(file, split, task, "--file", problems=problems) if file else self._split(split, problems)
        examples = to_examples(self._task_of(raw), raw, split, self.info["label_names"], None, problems,
                               trained_model=self.described())
        raise_problems(problems)
        loader = self._loader(examples.texts, examples.labels, batch_size or self.eval_batch_size,
                              by_length=True)
        # a multi-label model is scored at its saved thresholds: never tuned again on the data it is scored on
        decision = None if self.thresholds is None else Decision(fixed=self.thresholds)
        try:
            with torch.inference_mode():
                return evaluate(self.model_at(precision), loader, kind=self.kind, metrics=self.info["metrics"],
                                label_names=self.info["label_names"], decision=decision, decoding=self.decoding)
        finally:
            self.model.eval()  # evaluate() hands a model back in training mode, as the training loop needs it

    def _task_of(self, raw):
        """The task ``raw``'s labels are read with. A folder alone does not record whether its multi-label run read a
        list of labels or one 0/1 column per label (task.label_fields): a file with a column per label and no list
        column is read the second way."""
        import dataclasses

        names = self.info["label_names"] or []
        if self.saved_only and self.kind.name == "multi_label" and self.task.label_field not in raw.columns and \
                names and all(name in raw.columns for name in names):
            return dataclasses.replace(self.task, label_fields=tuple(names), label_names=None)
        return self.task

    def _split(self, split: str, problems: ProblemCollector):
        """The run's own ``split`` (only its file is read: label names come from the saved model), said so when its
        recorded file is gone or is not the one the run read; its text problems go to ``problems``."""
        from nlptune.inference.run_reading import check_split_file, refuse_split_of_saved_model, warn_if_data_changed

        refuse_split_of_saved_model(self.run_dir, split)
        check_split_file(self.run_dir, self.task, split)
        raw = load_raw_splits(self.task, only=(split,), problems=problems)[split]
        warn_if_data_changed(self.run_dir, self.task, raw, split)
        return raw

    def batches(self, texts: list[list], batch_size: int = 128):
        """The model's input batches (padded tensors, no labels) for ``texts`` (one list per text field), in order."""
        # any label: it is dropped (per word: one per word, so that the windows are laid out as for training)
        dummy = [[0] * len(words) for words in texts[0]] if self.kind.words_in_text_column else [0] * len(texts[0])
        for batch in self._loader(texts, dummy, batch_size):
            for name in ("labels", *ROW_FIELDS):
                batch.pop(name, None)
            yield batch

    def predict(self, texts: list[list[str]], batch_size: int | None = None,
                precision: str | None = None) -> list[dict]:
        """One prediction per example, in the order of ``texts``, as the task's kind describes it (single_label:
        ``{"label", "score", "probabilities"}``; multi_label: ``{"labels", "scores"}`` at best/thresholds.json;
        regression: ``{"score"}``). Batches of ``batch_size`` texts of similar length (default
        `PREDICT_BATCH_SIZE`) in inference mode, in ``precision`` ("fp32", "bf16"; default: the run's)."""
        batch_size = batch_size or PREDICT_BATCH_SIZE
        if self.kind.words_in_text_column:  # a tag per word, and the entities they mark
            from nlptune.inference.tagging import predict_tags

            return predict_tags(self, texts[0], batch_size, precision)
        if not texts[0]:
            return []
        dataset = self.encoded(texts, [0] * len(texts[0]))  # any label: the model never sees it
        logits = predict_logits(self.model_at(precision), dataset, self.collator(), batch_size)
        return self.kind.describe(logits, self.info["label_names"], thresholds_in_force=self.thresholds)


@torch.inference_mode()
def predict_logits(model, dataset: EncodedDataset, collate, batch_size: int) -> torch.Tensor:
    """The float32 logits of every row of ``dataset`` (at least one), in its order. The rows are run in batches of
    ``batch_size`` sorted by length, longest first, so a batch is padded to little more than its own texts' length
    (and the largest batch comes first: too little memory shows at once)."""
    order = eval_order(dataset.lengths)
    parts = [forward(model, collate([dataset[i] for i in order[start: start + batch_size]]))[0].float()
             for start in range(0, len(order), batch_size)]
    ordered = torch.cat(parts)
    logits = torch.empty_like(ordered)
    logits[torch.tensor(order)] = ordered  # each row back in its input position
    return logits


STDIN = "-"  # --input - : standard input, one text per line


def read_inputs(path: str, text_fields: list[str], words: bool = False, task=None) -> list[list]:
    """Texts to predict from a jsonl/csv/tsv/parquet file with the task's text columns (labels optional), or a
    .txt file or standard input (``path`` "-") with one text per line (a model that reads one text); with
    ``words`` (a per-word task) a row holds a list of words, or a text that is split into words, and ``task`` (the
    run's TaskConfig) says how to read CoNLL columns (the words only: a tag column may be there or not)."""
    import dataclasses

    if data_suffix(path) == ".txt" or path == STDIN:  # texts.txt, or texts.txt.gz
        if len(text_fields) != 1:
            raise NlptuneError(f"{path}: a .txt file or standard input holds one text per line, but this model "
                               f"reads {len(text_fields)} texts a row ({', '.join(text_fields)}); use a "
                               f"jsonl/csv/tsv file with those columns")
        if path == STDIN:
            return [split_lines(sys.stdin.buffer.read(), Path("standard input"), "input")]
        return [read_lines(path, "input", origin="--input")]
    # every row's text checked (a row without the column, a word that is not a string), all problems together
    raw = read_file(path, "input", [] if words else text_fields, origin="--input") if task is None else \
        read_task_file(path, "input", dataclasses.replace(task, label_field=None), "--input", text_fields)
    missing = [f for f in text_fields if f not in raw.columns]
    if missing:
        raise NlptuneError(f"{path}: column(s) {missing} not found; columns present: {', '.join(raw.columns)}. "
                           f"The model expects {text_fields}")
    if words:  # a list of words, or a text that is split into words
        return [[list(value) if isinstance(value, (list, tuple)) else value or ""
                 for value in raw.columns[text_fields[0]]]]
    return [["" if t is None else str(t) for t in raw.columns[f]] for f in text_fields]

