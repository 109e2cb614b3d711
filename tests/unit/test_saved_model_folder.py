"""`nlptune predict`, `nlptune eval --file` and `nlptune export` on a saved model folder without its run (an
`export --format hf` copy, a copy of best/): the task comes from its nlptune_task.json, it computes in fp32, and what
needs the run (a task split) is refused with the fix; a run's best/ is read as its run. A tiny random BERT
classifier, no training."""
from __future__ import annotations

import json
import lzma
import shutil

import pytest
import torch

from nlptune.cli import main
from nlptune.config.errors import NlptuneError
from nlptune.inference import PREDICT_BATCH_SIZE
from nlptune.inference.run_reading import load_run

from test_predict import LABELS, texts, write_run


@pytest.fixture(scope="module")
def run(tiny_pretrained, tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("saved") / "run", tiny_pretrained, precision="auto")


@pytest.fixture
def copy(run, tmp_path):
    """best/ copied away from its run, as a user ships a model."""
    return shutil.copytree(run / "best", tmp_path / "shipped")


def cli(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as done:
        code = done.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def labelled_rows(path, count: int = 11):
    rows = [{"text": text, "label": LABELS[i % 3]} for i, text in enumerate(texts(count, seed=3))]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_copy_of_best_predicts_as_its_run_does_in_fp32(run, copy, monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)  # the run: bf16 autocast
    of_run, of_copy = load_run(run), load_run(copy)
    assert (of_run.saved_only, of_run.precision, of_run.eval_batch_size) == (False, "bf16", 5)
    # nothing in the folder says how the model was trained: exact arithmetic and the inference batch size
    assert (of_copy.saved_only, of_copy.precision, of_copy.eval_batch_size) == (True, "fp32", PREDICT_BATCH_SIZE)
    assert of_copy.task.text_fields == ("text",) and of_copy.task.label_names == tuple(LABELS)
    assert of_copy.task.main_metric == "accuracy" and of_copy.task.name == "demo"
    given = [texts()]
    assert of_copy.predict(given) == of_run.predict(given, precision="fp32")


def test_eval_of_a_file_scores_the_copy_as_the_run(run, copy, tmp_path, capsys):
    rows = labelled_rows(tmp_path / "rows.jsonl")
    code, out, err = cli(capsys, "eval", copy, "--file", rows)
    assert code == 0, err
    code, expected, err = cli(capsys, "eval", run, "--file", rows, "--precision", "fp32")
    assert code == 0, err
    assert json.loads(out) == pytest.approx(json.loads(expected), abs=1e-6)


def test_a_label_or_column_the_copy_does_not_know_is_named_with_the_fix(copy, tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "fine", "label": "positive"}\n{"text": "meh", "label": "so-so"}\n', encoding="utf-8")
    code, _, err = cli(capsys, "eval", copy, "--file", rows)
    assert code == 2 and "Traceback" not in err
    assert "so-so" in err and "line 2" in err and f"the saved model {copy} knows only the labels" in err
    rows.write_text('{"sentence": "fine", "label": "positive"}\n', encoding="utf-8")
    code, _, err = cli(capsys, "eval", copy, "--file", rows)
    # the columns are the model's, not a setting `eval` could change
    assert code == 2 and f"give the file a 'text' column: the text column the saved model {copy}" in err, err


def test_a_split_of_a_copy_is_refused_before_the_model_loads(copy, capsys, monkeypatch):
    monkeypatch.setattr("nlptune.inference.run_reading.load_run", lambda *a: pytest.fail("the model was loaded"))
    for argv in (["eval", copy], ["eval", copy, "--split", "train"]):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and "holds no task data" in err and "--file PATH" in err, err
    from nlptune.inference.predict import LoadedRun

    with pytest.raises(NlptuneError, match="no validation split to score"):  # and so does the Python API
        LoadedRun(copy).evaluate()


def test_predict_on_a_copy_from_the_command_line(copy, capsys):
    code, out, err = cli(capsys, "predict", copy, "a fine film")
    assert code == 0, err
    prediction = json.loads(out)
    assert prediction["label"] in LABELS and set(prediction["probabilities"]) == set(LABELS)


def test_a_runs_best_is_read_as_its_run(run, capsys):
    from nlptune.inference.predict import LoadedRun

    for loaded in (load_run(run / "best"), LoadedRun(run / "best")):
        assert loaded.run_dir.resolve() == run.resolve() and not loaded.saved_only
        assert loaded.eval_batch_size == 5  # the run's trainer.eval_batch_size: its config was read
    code, out, err = cli(capsys, "eval", run / "best")  # the run's own validation split (the demo task's)
    assert code == 0 and "accuracy" in json.loads(out), err


def test_commands_that_need_the_run_still_name_it(copy, capsys):
    for argv in (["compare", copy, copy], ["freeze", copy, copy.parent / "r.yaml"]):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and "pass the run directory it came from" in err, (argv, err)
        assert "nlptune predict" in err  # and what does take the folder


def test_a_copy_exports_as_its_run_does(run, copy, tmp_path, capsys):
    """hf: the folder is already the layout (--output copies it); onnx needs rows to check on and a folder to write
    to, both named at once when missing, and then checks the export against the copy's PyTorch outputs."""
    code, out, err = cli(capsys, "export", copy, "--format", "hf")
    assert code == 0 and str(copy) in " ".join(out.split()), err
    code, _, err = cli(capsys, "export", copy, "--format", "hf", "--output", tmp_path / "again")
    assert code == 0 and load_run(tmp_path / "again").predict([texts()]) == load_run(copy).predict([texts()]), err
    code, _, err = cli(capsys, "export", copy)
    err = " ".join(err.split())
    assert code == 2 and "is a saved model folder on its own" in err and "--file ROWS" in err, err
    assert "--output DIR" in err and "['text']" in err and not (copy / "onnx").exists()
    rows = labelled_rows(tmp_path / "rows.jsonl")
    code, out, err = cli(capsys, "export", copy, "--file", rows, "--output", tmp_path / "onnx")
    assert code == 0 and "max abs diff" in out, err
    assert {"model.onnx", "nlptune_task.json"} <= {p.name for p in (tmp_path / "onnx").iterdir()}


def test_an_onnx_export_is_named_as_such(copy, capsys):
    for weights in copy.glob("*.safetensors"):
        weights.unlink()
    (copy / "model.onnx").write_bytes(b"\x08\x01")
    code, _, err = cli(capsys, "predict", copy, "a text")
    assert code == 2 and "is an ONNX export" in err and "onnxruntime" in err, err


def test_a_damaged_copy_names_the_folder(copy, capsys):
    weights = next(copy.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    code, _, err = cli(capsys, "predict", copy, "a text")
    assert code == 2 and "Traceback" not in err
    assert "is not a readable safetensors file" in " ".join(err.split()), err


def test_compressed_input_and_output_files(copy, tmp_path, capsys):
    import gzip

    rows = labelled_rows(tmp_path / "rows.jsonl")
    packed = tmp_path / "rows.jsonl.gz"
    packed.write_bytes(gzip.compress(rows.read_bytes()))
    code, out, err = cli(capsys, "predict", copy, "--input", packed, "--output", tmp_path / "out.jsonl.gz")
    assert code == 0, err
    written = [json.loads(line) for line in gzip.decompress((tmp_path / "out.jsonl.gz").read_bytes()).splitlines()]
    code, out, err = cli(capsys, "predict", copy, "--input", rows, "--output", tmp_path / "out.jsonl")
    assert code == 0, err
    assert written == [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(written) == 11
    code, out, err = cli(capsys, "eval", copy, "--file", packed)
    assert code == 0 and json.loads(out) == json.loads(cli(capsys, "eval", copy, "--file", rows)[1]), err
    lines = tmp_path / "texts.txt.xz"  # one text per line, compressed
    lines.write_bytes(lzma.compress("a fine film\nutterly dull\n".encode()))
    code, out, err = cli(capsys, "predict", copy, "--input", lines)
    assert code == 0 and len(out.splitlines()) == 2, err


def test_a_multi_label_folder_scores_a_label_list_or_a_column_per_label(copy, tmp_path, capsys):
    info = json.loads((copy / "nlptune_task.json").read_text())
    info.update(kind="multi_label", label_field="labels", metrics=["macro_f1", "micro_f1"], main_metric="macro_f1")
    (copy / "nlptune_task.json").write_text(json.dumps(info))
    given = texts(9, seed=4)
    chosen = [[LABELS[i % 3]] + ([LABELS[(i + 1) % 3]] if i % 2 else []) for i in range(9)]
    as_list, as_columns = tmp_path / "list.jsonl", tmp_path / "columns.jsonl"
    as_list.write_text("".join(json.dumps({"text": t, "labels": c}) + "\n" for t, c in zip(given, chosen)))
    as_columns.write_text("".join(json.dumps({"text": t, **{n: int(n in c) for n in LABELS}}) + "\n"
                                  for t, c in zip(given, chosen)))
    code, by_list, err = cli(capsys, "eval", copy, "--file", as_list)
    assert code == 0, err
    code, by_columns, err = cli(capsys, "eval", copy, "--file", as_columns)  # as a run with task.label_fields read
    assert code == 0, err
    assert json.loads(by_columns) == json.loads(by_list)
