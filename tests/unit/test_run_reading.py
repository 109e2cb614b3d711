"""A RUN_DIR edited or mixed up by hand (config.yaml emptied or turned into a list, best/nlptune_task.json with
keys of the wrong type or labels the saved model does not have) is refused by the checks eval, predict, export,
compare, freeze and a distillation teacher share: one message naming the file, never a Python error or
predictions named after the wrong labels."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlptune.config.errors import NlptuneError
from nlptune.train.run_reading import check_run, read_run_config

TASK = {"task": "demo", "kind": "single_label", "text_fields": ["text"], "label_field": "label",
        "label_names": ["negative", "neutral", "positive"], "metrics": ["accuracy"], "main_metric": "accuracy",
        "max_length": 48, "model": "bag", "joint_pairs": False, "char_features": False, "tag_scheme": "iob2",
        "constrained_decoding": False}


def make_run(root: Path, task: dict = TASK, outputs: int = 3, pretrained: bool = False) -> Path:
    """A finished run's files as check_run reads them: config.yaml, best/ with readable weights, the model's
    output width recorded where nlptune (scratch) or transformers (pretrained) records it."""
    from safetensors.numpy import save_file

    best = root / "best"
    best.mkdir(parents=True)
    (root / "config.yaml").write_text("task: {name: demo}\n")
    save_file({"head.weight": np.zeros((outputs, 2), dtype=np.float32)}, str(best / "model.safetensors"))
    if pretrained:
        (best / "config.json").write_text(json.dumps({"model_type": "bert", "id2label": {
            str(i): f"LABEL_{i}" for i in range(outputs)}}))
    else:
        (best / "nlptune_model.json").write_text(json.dumps({"name": task.get("model"), "num_labels": outputs}))
    (best / "nlptune_task.json").write_text(json.dumps(task))
    return root


@pytest.mark.parametrize("text, what", [("", "nothing"), ("- task\n- model\n", "a list"), ("3\n", "a int")])
def test_a_config_yaml_that_is_not_a_mapping_is_one_message(tmp_path, text, what):
    from nlptune.recipes.format import recipe_from_run

    run = make_run(tmp_path / "run")
    (run / "config.yaml").write_text(text)
    for check in (lambda: check_run(run, finished=False), lambda: read_run_config(run),
                  lambda: recipe_from_run(run, "frozen")):
        with pytest.raises(NlptuneError, match=rf"config.yaml holds {what}, not the run's config"):
            check()


@pytest.mark.parametrize("task, outputs, pretrained", [
    (TASK, 3, False),
    (TASK | {"model": "pretrained", "joint_pairs": True}, 3, True),
    (TASK | {"kind": "regression", "label_names": None, "metrics": ["pearson", "spearman"],
             "main_metric": "pearson", "text_fields": ["a", "b"]}, 1, False),
    (TASK | {"kind": "multi_label", "label_names": ["joy", "anger"], "metrics": ["macro_f1"]}, 2, False),
    (TASK | {"kind": "tokens", "label_names": ["O", "B-PER", "I-PER"], "metrics": ["f1", "accuracy"],
             "char_features": True, "constrained_decoding": True, "tag_scheme": "bioes"}, 3, False),
    # a run from before task.kind and the later keys
    ({k: v for k, v in TASK.items() if k not in ("kind", "char_features", "tag_scheme", "constrained_decoding")}
     | {"problem_type": "classification"}, 3, False),
])
def test_the_task_files_nlptune_writes_pass(tmp_path, task, outputs, pretrained):
    run = make_run(tmp_path / "run", task, outputs, pretrained)
    assert check_run(run, finished=True) == run


@pytest.mark.parametrize("change, words", [
    ({"label_names": ["negative", "positive"]}, "2 output(s) for the single_label kind, but the saved model has 3"),
    ({"label_names": ["a", "b", "c", "d"]}, "4 output(s) for the single_label kind, but the saved model has 3"),
    ({"label_names": []}, "label_names=[]: expected a list of distinct label names"),
    ({"label_names": "abc"}, "label_names='abc': expected a list"),
    ({"label_names": ["a", "a", "b"]}, "expected a list of distinct label names"),
    ({"label_names": [0, 1, 2]}, "expected a list of distinct label names (strings)"),
    ({"max_length": -5}, "max_length=-5: expected an integer >= 1"),
    ({"max_length": "128"}, "max_length='128': expected an integer >= 1"),
    ({"max_length": True}, "max_length=True: expected an integer >= 1"),
    ({"text_fields": "text"}, "text_fields='text': expected a list of one or two column names"),
    ({"text_fields": []}, "text_fields=[]"),
    ({"metrics": ["nosuch"]}, "metrics=['nosuch']: expected a list of single_label metrics"),
    ({"metrics": "accuracy"}, "metrics='accuracy'"),
    ({"joint_pairs": "no"}, "joint_pairs='no': expected true or false"),
    ({"char_features": 1}, "char_features=1: expected true or false"),
    ({"tag_scheme": "zzz"}, "tag_scheme='zzz': expected one of iob2"),
    ({"kind": "regression"}, "label_names=['negative', 'neutral', 'positive']: expected null"),
])
def test_an_edited_task_file_is_refused_naming_the_key(tmp_path, change, words):
    run = make_run(tmp_path / "run", TASK | change)
    with pytest.raises(NlptuneError, match="nlptune_task.json does not describe the saved model") as caught:
        check_run(run, finished=True)
    assert words in str(caught.value)


def test_labels_that_do_not_match_a_pretrained_head_are_refused(tmp_path):
    run = make_run(tmp_path / "run", TASK | {"model": "pretrained", "joint_pairs": True}, outputs=2, pretrained=True)
    with pytest.raises(NlptuneError, match="3 output.s. for the single_label kind, but the saved model has 2"):
        check_run(run, finished=True)


def test_every_problem_is_in_one_message(tmp_path):
    run = make_run(tmp_path / "run", TASK | {"max_length": 0, "text_fields": None, "metrics": ["x"]})
    with pytest.raises(NlptuneError) as caught:
        check_run(run, finished=True)
    assert all(key in str(caught.value) for key in ("max_length=0", "text_fields=None", "metrics=['x']"))
