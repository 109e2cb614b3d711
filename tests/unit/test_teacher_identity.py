"""A distillation teacher's identity (`teacher_sha256`) follows what fixes its outputs for given texts, and nothing
else: a teacher trained again to the same weights by a later nlptune, or saved by a later transformers, keeps its
pin and its cached outputs; any change to its weights, tokenizer or the way texts reach it changes both."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlptune.data.sources import teacher_sha256

TASK = {"task": "sst2", "kind": "single_label", "text_fields": ["sentence"], "label_field": "label",
        "label_names": ["negative", "positive"], "metrics": ["accuracy"], "main_metric": "accuracy",
        "max_length": 128, "model": "pretrained", "joint_pairs": True, "char_features": False,
        "tag_scheme": "iob2"}


def make_run(root: Path, *, task: dict = TASK, config: dict | None = None, weights: bytes = b"w" * 64) -> Path:
    best = root / "best"
    best.mkdir(parents=True)
    (best / "model.safetensors").write_bytes(weights)
    (best / "config.json").write_text(json.dumps(config or {"hidden_size": 8, "transformers_version": "5.24.0"}))
    (best / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}')
    (best / "nlptune_task.json").write_text(json.dumps(task))
    (best / "README.md").write_text("model card")
    return root


@pytest.fixture
def base(tmp_path) -> str:
    return teacher_sha256(make_run(tmp_path / "base"))


@pytest.mark.parametrize("change", [
    {"task": TASK | {"constrained_decoding": False, "a_later_key": 1}},  # a later nlptune's task file
    {"task": TASK | {"task": "renamed", "metrics": ["f1"], "main_metric": "f1", "tag_scheme": "bioes"}},
    {"task": {k: v for k, v in TASK.items() if k != "kind"} | {"problem_type": "classification"}},  # legacy file
    {"config": {"hidden_size": 8, "transformers_version": "6.0.0", "_name_or_path": "/elsewhere"}},
])
def test_what_does_not_change_the_outputs_keeps_the_identity(tmp_path, base, change):
    assert teacher_sha256(make_run(tmp_path / "other", **change)) == base


def test_the_model_card_thresholds_and_json_layout_are_not_part_of_it(tmp_path, base):
    run = make_run(tmp_path / "other")
    config = run / "best" / "config.json"
    config.write_text(json.dumps(json.loads(config.read_text()), indent=2) + "\n")
    (run / "best" / "README.md").write_text("rewritten card")
    (run / "best" / "thresholds.json").write_text('{"thresholds": [0.3]}')
    assert teacher_sha256(run) == base


@pytest.mark.parametrize("change", [
    {"weights": b"x" * 64},
    {"config": {"hidden_size": 16, "transformers_version": "5.24.0"}},
    {"task": TASK | {"max_length": 64}},
    {"task": TASK | {"label_names": ["positive", "negative"]}},
    {"task": TASK | {"kind": "multi_label"}},
    {"task": TASK | {"joint_pairs": False, "model": "lstm"}},
    {"task": TASK | {"char_features": True}},
])
def test_what_changes_the_outputs_changes_the_identity(tmp_path, base, change):
    assert teacher_sha256(make_run(tmp_path / "other", **change)) != base


def test_a_tokenizer_file_or_a_new_file_changes_it(tmp_path, base):
    run = make_run(tmp_path / "tok")
    (run / "best" / "tokenizer.json").write_text('{"model": {"vocab": {"b": 0}}}')
    assert teacher_sha256(run) != base
    run = make_run(tmp_path / "extra")
    (run / "best" / "vocab.txt").write_text("a\n")
    assert teacher_sha256(run) != base


def test_a_json_file_that_is_not_an_object_is_hashed_by_its_bytes(tmp_path):
    runs = [make_run(tmp_path / name) for name in ("a", "b")]
    (runs[0] / "best" / "config.json").write_text("[1, 2]")
    (runs[1] / "best" / "config.json").write_text("[1,2]")
    (runs[1] / "best" / "tokenizer.json").write_text("{not json")
    (runs[1] / "best" / "vocab.json").write_text("[" * 100_000 + "]" * 100_000)  # deeper than the parser goes
    assert teacher_sha256(runs[0]) != teacher_sha256(runs[1])


def test_a_record_of_an_earlier_version_still_names_an_unchanged_teacher(tmp_path):
    """Recipes pinned and runs recorded before the identity left the task file's other keys out hold the sha256
    of all of best/ but the card: `is_teacher` accepts it for the same files, and nothing else."""
    from nlptune.data.sources import is_teacher
    from nlptune.utils.files import folder_sha256

    run = make_run(tmp_path / "run")
    legacy = folder_sha256(run / "best", skip=("README.md",))
    assert legacy != teacher_sha256(run)
    assert is_teacher(run, legacy) and is_teacher(run, teacher_sha256(run))
    assert not is_teacher(run, "0" * 64) and not is_teacher(run, None)
    assert not is_teacher(tmp_path / "missing", legacy)
    (run / "best" / "model.safetensors").write_bytes(b"changed")
    assert not is_teacher(run, legacy)
