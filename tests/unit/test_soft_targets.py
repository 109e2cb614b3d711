"""Distillation's data (nlptune/data/soft_targets.py) with a stand-in teacher: the training rows carry its outputs,
the transfer set follows them labelled by it only, validation is untouched, and its outputs are computed once per
(teacher, texts, transfer settings + seed); the loss mixes the gold and the teacher's losses as documented."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nlptune.config.compose import load_run_config
from nlptune.data import prepare_data
from nlptune.data.batching import Collator
from nlptune.kinds import get_kind
from nlptune.train.evaluation import distillation_loss, forward

WORDS = "a good film the bad movie plot was dull great cast and acting very fine".split()


class StandInTeacher:
    """The interface soft_targets.py asks of a teacher; its "logits" are each text's length and mask count."""

    def __init__(self, sha: str = "teacher-1"):
        self.identity = {"sha256": sha}
        self.mask_token, self.unk_token = "<mask>", "<unk>"
        self.calls, self.checked, self.seen = 0, None, None

    def check(self, label_names):
        self.checked = label_names

    def logits(self, texts):
        self.calls += 1
        self.seen = texts
        return np.array([[len(t), t.split().count(self.mask_token)] for t in texts[0]], dtype=np.float32)

    def describe(self):
        return {"run_dir": "/runs/teacher", "sha256": self.identity["sha256"]}


@pytest.fixture
def files(tmp_path, monkeypatch) -> list[str]:
    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for split, rows in (("train", 40), ("validation", 12)):
        lines = [json.dumps({"text": " ".join(rng.choice(WORDS, size=8)), "label": ["neg", "pos"][i % 2]})
                 for i in range(rows)]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return ["task=text_classification", f"task.train_file={tmp_path / 'train.jsonl'}",
            f"task.validation_file={tmp_path / 'validation.jsonl'}", "model=lstm", "model.min_frequency=1"]


def prepared(overrides: list[str], teacher=None):
    run = load_run_config(overrides)
    return prepare_data(run, pretrained=False, teacher=teacher)


def test_rows_carry_the_teachers_outputs_and_the_transfer_set_follows(files):
    teacher = StandInTeacher()
    data = prepared([*files, "distill.teacher=/runs/teacher", "distill.augment_copies=2"], teacher)
    plain = prepared(files)
    assert teacher.checked == ["neg", "pos"] and teacher.calls == 1
    texts = teacher.seen[0]
    assert len(texts) == 40 * 3 and "[MASK]" not in " ".join(texts)  # the copies in the teacher's own tokens
    assert any("<mask>" in t for t in texts[40:]) and not any("<mask>" in t for t in texts[:40])
    assert np.array_equal(data.train.targets["teacher_logits"][:, 0], [len(t) for t in texts[:40]])
    assert data.train.targets["gold"].all() and not data.transfer.targets["gold"].any()
    assert np.array_equal(data.transfer.targets["teacher_logits"][:, 0], [len(t) for t in texts[40:]])
    # the student reads the same copies with its own mask token
    mask_id = data.tokenizer.mask_token_id
    masked = sum(ids.count(mask_id) for ids in data.transfer.columns["input_ids"].tolist())
    assert masked == sum(t.split().count("<mask>") for t in texts[40:]) > 0
    # validation is never noised nor labelled by the teacher
    assert data.validation.targets == {} and data.validation.columns["input_ids"].tolist() == \
        plain.validation.columns["input_ids"].tolist() and data.validation.labels == plain.validation.labels
    assert data.train.columns["input_ids"].tolist() == plain.train.columns["input_ids"].tolist()
    assert len(data.training_rows()) == 120 and len(plain.training_rows()) == 40
    assert data.teacher["transfer_rows"] == 80 and data.teacher["logits_from_cache"] is False


def test_outputs_are_computed_once_per_teacher_texts_and_transfer_settings(files):
    teacher = StandInTeacher()
    args = [*files, "distill.teacher=/runs/teacher", "distill.augment_copies=1"]
    first = prepared(args, teacher)
    again = prepared(args, teacher)
    assert teacher.calls == 1 and again.teacher["logits_from_cache"] is True
    assert np.array_equal(first.transfer.targets["teacher_logits"], again.transfer.targets["teacher_logits"])
    assert first.transfer.columns["input_ids"].tolist() == again.transfer.columns["input_ids"].tolist()
    other_seed = prepared([*args, "seed=7"], teacher)
    assert teacher.calls == 2  # another seed is another transfer set
    assert other_seed.transfer.columns["input_ids"].tolist() != first.transfer.columns["input_ids"].tolist()
    prepared([*args, "distill.mask_prob=0.3"], teacher)
    assert teacher.calls == 3
    retrained = StandInTeacher(sha="teacher-2")  # other weights
    prepared(args, retrained)
    assert retrained.calls == 1
    prepared([*args, "distill.alpha=0.9", "distill.loss=kl"], teacher)  # the loss does not change the outputs
    assert teacher.calls == 3


def test_a_damaged_cache_file_is_computed_again(files):
    teacher = StandInTeacher()
    args = [*files, "distill.teacher=/runs/teacher"]
    path = Path(prepared(args, teacher).teacher["logits_cache"])
    path.write_bytes(b"not an array")
    assert prepared(args, teacher).teacher["logits_from_cache"] is False and teacher.calls == 2


def test_batches_carry_the_targets_to_the_loss_never_to_the_model(files):
    data = prepared([*files, "distill.teacher=/runs/teacher", "distill.augment_copies=1"], StandInTeacher())
    rows = data.training_rows()
    batch = Collator(data.tokenizer.pad_token_id)([rows[0], rows[45]])
    assert batch["teacher_logits"].dtype == torch.float32 and batch["teacher_logits"].shape == (2, 2)
    assert batch["gold"].tolist() == [True, False]

    class InputsOnly(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            return {"logits": torch.zeros(input_ids.shape[0], 2)}

    assert forward(InputsOnly(), batch)[0].shape == (2, 2)


def test_the_loss_mixes_gold_rows_and_every_rows_teacher_loss():
    kind, distill = get_kind("single_label"), load_run_config(["distill.teacher=/t", "distill.alpha=0.3"]).distill
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    batch = {"labels": torch.tensor([1, 0, 1]), "teacher_logits": torch.tensor([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0]]),
             "gold": torch.tensor([True, False, True])}
    gold = torch.nn.functional.cross_entropy(logits[[0, 2]], torch.tensor([1, 1]))
    soft = ((logits - batch["teacher_logits"]) ** 2).mean()
    assert distillation_loss(logits, batch, kind, distill, {}).item() == pytest.approx(0.7 * gold + 0.3 * soft)
    batch["gold"] = torch.tensor([False, False, False])  # no gold row in the batch: the teacher's loss alone
    assert distillation_loss(logits, batch, kind, distill, {}).item() == pytest.approx(0.3 * soft)
    del batch["gold"]  # without a transfer set every row is gold
    every = torch.nn.functional.cross_entropy(logits, batch["labels"])
    assert distillation_loss(logits, batch, kind, distill, {}).item() == pytest.approx(0.7 * every + 0.3 * soft)
