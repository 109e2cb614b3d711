"""Bad data files through the real command line (`python -m nlptune train`, a subprocess): exit 2, one message
naming every problem of both splits (file, line, fix), no traceback and no run directory; a TSV with quotes
trains on its text as written; a task left without local data fails at once when the hub cannot be reached."""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

WORDS = ["good film", "bad film", "great story", "dull plot", "fine acting", "awful script", "nice music",
         "boring ending"]


def train(run_cli, train_file: Path, validation_file: Path, out: Path, *extra: str):
    return run_cli(["--quiet", "train", "task=text_classification", f"task.train_file={train_file}",
                    f"task.validation_file={validation_file}", "model.embedding_dim=16", "model.hidden_size=16",
                    "trainer.max_steps=1", f"output_dir={out}", *extra], timeout=120)


def refused(result, out: Path, *expected: str) -> str:
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert not out.exists()
    return result.stderr


def test_problems_of_both_splits_in_one_message(run_cli, tmp_path):
    bad_train = tmp_path / "train.tsv"
    bad_train.write_text("text\tlabel\ttext\ngood film\t1\tagain\n")
    validation = tmp_path / "validation.jsonl"
    validation.write_text("".join(json.dumps(r) + "\n" for r in
                                  [{"text": "fine", "label": 1}, {"text": ["a", "list"], "label": 0}]))
    out = tmp_path / "out"
    refused(train(run_cli, bad_train, validation, out), out, "2 data problems",
            f"file {bad_train}, split train, line 1", "repeats column name(s): 'text'",
            f"file {validation}, split validation, line 2, column text", "holds a list")


def test_missing_file_and_folder_checked_before_reading(run_cli, tmp_path):
    missing, folder = tmp_path / "train.csv", tmp_path / "data"
    folder.mkdir()
    out = tmp_path / "out"
    refused(train(run_cli, missing, folder, out), out, f"file {missing}, split train", "file not found",
            f"file {folder}, split validation", "this is a folder")


@pytest.fixture(scope="module")
def tsv_run(run_cli, tmp_path_factory) -> Path:
    """A run trained for one step on a TSV whose first row starts with a quote."""
    folder = tmp_path_factory.mktemp("tsv")
    # CSV quoting would make the first row's quote swallow every line after it into one field
    rows = [f'"{WORDS[0]}\t0'] + [f"{WORDS[i % 8]}\t{i % 2}" for i in range(1, 16)]
    train_file, validation = folder / "train.tsv", folder / "validation.tsv"
    train_file.write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    validation.write_text("text\tlabel\n" + "\n".join(rows[:6]) + "\n")
    out = folder / "out"
    result = train(run_cli, train_file, validation, out, "model.min_frequency=1")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_tsv_with_quotes_trains_on_the_text_as_written(tsv_run):
    vocab = json.loads((tsv_run / "best" / "tokenizer.json").read_text())["model"]["vocab"]
    assert '"' in vocab  # the quote is a character of the text, not CSV syntax


def test_predict_refuses_an_input_whose_text_is_a_list(run_cli, tsv_run, tmp_path):
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"text": "good film"}\n{"text": ["good", "film"]}\n')
    output = tmp_path / "predictions.jsonl"
    result = run_cli(["predict", str(tsv_run), "--input", str(inputs), "--output", str(output)], timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"file {inputs}, split input, line 2, column text" in result.stderr and "holds a list" in result.stderr
    assert not output.exists()


def test_forgotten_data_dir_without_network_fails_at_once(run_cli, tmp_path):
    with socket.socket() as sock:  # a local port nobody listens on: the hub endpoint is unreachable
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"NLPTUNE_DATA_DIR": "", "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0",
           "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HTTP_PROXY": "", "http_proxy": ""}
    out = tmp_path / "out"
    start = time.monotonic()
    result = run_cli(["train", "task=sst2", "trainer.max_steps=1", f"output_dir={out}"], env=env, timeout=120)
    elapsed = time.monotonic() - start
    refused(result, out, "task 'sst2' has no local data configured", f"127.0.0.1:{port} is unreachable",
            "NLPTUNE_DATA_DIR=/path/to/data", "sst2/train.jsonl")
    assert elapsed < 60, f"took {elapsed:.0f} s"  # start-up included; hub retries alone took over 30 s
