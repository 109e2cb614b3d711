"""Bad input is refused before training, by the real CLI (`nlptune.cli.main`, run in-process to stay fast):
exit code 2, one message naming the file, split, line and column (or the config key) and the fix, no traceback,
and no run directory left behind (nothing is written before the data and config are checked).

The data files are small made-up ones written per test; nothing is copied from ../shared/data.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlptune.cli import main

WORDS = ["good film", "bad film", "great story", "dull plot", "fine acting", "awful script", "nice music",
         "boring ending"]


def rows(n: int = 8, label=lambda i: i % 2) -> list[dict]:
    return [{"text": WORDS[i % len(WORDS)], "label": label(i)} for i in range(n)]


def jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def nlptune(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(["--quiet", *map(str, args)])
    return done.value.code, capsys.readouterr().err


def train_args(train: Path, validation: Path, out: Path, *extra: str, task: str = "text_classification") -> list:
    return ["train", f"task={task}", f"task.train_file={train}", f"task.validation_file={validation}",
            "model.embedding_dim=16", "model.hidden_size=16", "trainer.max_epochs=1", f"output_dir={out}", *extra]


def refused(capsys, out: Path, args: list, *expected: str) -> str:
    code, err = nlptune(args, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert not out.exists(), f"{out} was created: {sorted(p.name for p in out.rglob('*'))}"
    return err


@pytest.fixture
def good(tmp_path) -> tuple[Path, Path]:
    return jsonl(tmp_path / "train.jsonl", rows()), jsonl(tmp_path / "validation.jsonl", rows(4))


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_missing_text_column_lists_the_columns(tmp_path, good, capsys):
    train, validation = good
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out", "task.text_fields=[review]"),
            f"file {train}", "split train", "column review", "text column 'review' not found",
            "columns present: text, label")


def test_missing_label_column_in_validation(tmp_path, good, capsys):
    train, _ = good
    validation = jsonl(tmp_path / "v.jsonl", [{"text": "good film", "stars": 1}])
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out"),
            f"file {validation}", "split validation", "column label", "columns present: text, stars")


def test_validation_label_that_train_does_not_have(tmp_path, capsys):
    train = jsonl(tmp_path / "t.jsonl", rows(label=lambda i: ["pos", "neg"][i % 2]))
    validation = jsonl(tmp_path / "v.jsonl", rows(3, label=lambda i: ["pos", "neg", "meh"][i]))
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out"),
            f"file {validation}", "split validation", "line 3", "column label", "'meh'", "does not occur in train")


def test_label_out_of_range_for_the_declared_label_set(tmp_path, capsys):
    train = jsonl(tmp_path / "t.jsonl", rows(label=lambda i: 2 if i == 5 else i % 2))
    validation = jsonl(tmp_path / "v.jsonl", rows(4))
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out", "task.label_names=[neg,pos]"),
            f"file {train}", "line 6", "column label", "label 2 is not one of the task's labels")


def test_float_label_for_classification(tmp_path, good, capsys):
    _, validation = good
    train = jsonl(tmp_path / "t.jsonl", rows(label=lambda i: 0.5 if i == 3 else i % 2))
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out"),
            f"file {train}", "line 4", "column label", "label 0.5 is a fractional number, not a class",
            "task.kind=regression")


def test_string_label_for_regression(tmp_path, capsys):
    train = jsonl(tmp_path / "t.jsonl", rows(label=lambda i: "high" if i == 2 else i / 10))
    validation = jsonl(tmp_path / "v.jsonl", rows(4, label=lambda i: i / 10))
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out", task="text_regression"),
            f"file {train}", "line 3", "column label", "'high' is not a number")


@pytest.mark.parametrize("bad", ["null", "NaN"])
def test_null_or_nan_label(tmp_path, good, capsys, bad):
    _, validation = good
    lines = [json.dumps(r) for r in rows()]
    lines[4] = '{"text": "good film", "label": %s}' % bad
    train = write(tmp_path / "t.jsonl", "\n".join(lines) + "\n")
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out"),
            f"file {train}", "line 5", "column label", "label is empty (null/NaN)")


@pytest.mark.parametrize("name,content", [("empty.jsonl", ""), ("blank.jsonl", "\n\n"),
                                          ("header_only.csv", "text,label\n"), ("header_only.tsv", "text\tlabel\n")])
def test_empty_or_header_only_file(tmp_path, good, capsys, name, content):
    _, validation = good
    train = write(tmp_path / name, content)
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out"), f"file {train}",
            "split train", "no data rows")


def test_every_text_empty(tmp_path, good, capsys):
    _, validation = good
    train = jsonl(tmp_path / "t.jsonl", [{"text": "  " if i % 2 else "", "label": i % 2} for i in range(8)])
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out"), f"file {train}",
            "column text", "every text is empty")


def test_every_text_empty_after_tokenization(tmp_path, good, capsys, tiny_pretrained):
    """Texts of characters a BERT normalizer drops (zero-width space, soft hyphen): empty once preprocessed."""
    _, validation = good
    train = jsonl(tmp_path / "t.jsonl", [{"text": "\u200b\u00ad" * (i + 1), "label": i % 2} for i in range(8)])
    args = train_args(train, validation, tmp_path / "out")[:4] + [
        "model=pretrained", f"model.name_or_path={tiny_pretrained}", f"output_dir={tmp_path / 'out'}"]
    refused(capsys, tmp_path / "out", args, f"file {train}", "split train", "column text",
            "empty after preprocessing")


def test_undecodable_bytes_name_the_line(tmp_path, good, capsys):
    _, validation = good
    lines = [json.dumps(r).encode() for r in rows()]
    lines[2] = b'{"text": "caf\xe9 film", "label": 0}'  # latin-1, not UTF-8
    train = write(tmp_path / "t.jsonl", b"\n".join(lines) + b"\n")
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out"), f"file {train}", "line 3",
            "not UTF-8", "re-encode the file as UTF-8")


def test_malformed_json_line(tmp_path, good, capsys):
    _, validation = good
    lines = [json.dumps(r) for r in rows()]
    lines[6] = '{"text": "good film", "label": 1'
    train = write(tmp_path / "t.jsonl", "\n".join(lines) + "\n")
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out"), f"file {train}", "line 7",
            "malformed JSON line")


def test_malformed_csv_row(tmp_path, good, capsys):
    _, validation = good
    body = "".join(f"{r['text']},{r['label']}\n" for r in rows())
    train = write(tmp_path / "t.csv", "text,label\n" + body + "good, fine film,1\n")
    refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out"), f"file {train}",
            "line 10", "row has 3 fields but the header has 2")


@pytest.mark.parametrize("override,key", [
    ("optimizer.lr=0", "optimizer.lr"), ("optimizer.lr=-1e-3", "optimizer.lr"),
    ("model.dropout=1.0", "model.dropout"), ("model.dropout=-0.1", "model.dropout"),
    ("scheduler.warmup_ratio=1.5", "scheduler.warmup_ratio"), ("scheduler.warmup_ratio=-0.1", "scheduler.warmup_ratio"),
    ("trainer.batch_size=0", "trainer.batch_size"), ("trainer.batch_size=-4", "trainer.batch_size"),
    ("optimizer.name=adamm", "optimizer.name"), ("optimizer=adamm", "optimizer"), ("model=lstmm", "model"),
    ("trainer.save_every=-1", "trainer.save_every"), ("trainer.keep_last=-1", "trainer.keep_last"),
    ("trainer.dist_timeout_s=0", "trainer.dist_timeout_s")])
def test_out_of_range_or_unknown_config_value(tmp_path, good, capsys, override, key):
    train, validation = good
    err = refused(capsys, tmp_path / "out", train_args(train, validation, tmp_path / "out", override),
                  "config error", f"{key}:")
    assert "did you mean" in err or "range" in err or "choose one of" in err


def test_utf8_with_bom_is_accepted(tmp_path, capsys):
    train = write(tmp_path / "t.csv", "\ufefftext,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows()))
    validation = write(tmp_path / "v.jsonl", "\ufeff" + "".join(json.dumps(r) + "\n" for r in rows(4)))
    code, err = nlptune(train_args(train, validation, tmp_path / "out", "trainer.keep_last=0",
                                   "trainer.report_to=[]"), capsys)
    assert code == 0, err
    assert (tmp_path / "out" / "metrics.json").is_file()
