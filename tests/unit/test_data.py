"""Unit tests for nlptune.data: demo generator, file reading and its errors, labels, tokenizers, batching, cache."""
from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
import torch

from nlptune.config.compose import load_run_config
from nlptune.config.schema import TaskConfig, TokenizerConfig
from nlptune.data import DataError, _encode_cached, prepare_data
from nlptune.data.batching import Collator, EncodedDataset, LengthGroupedBatchSampler, eval_order
from nlptune.data.demo import SIZES, generate
from nlptune.data.labels import infer_label_names, split_examples, to_examples
from nlptune.data.loading import load_raw_splits, read_file
from nlptune.data.tokenization import CLS, SEP, encode, load_tokenizer, train_tokenizer

ROWS = [{"text": "a lovely little film", "label": 1}, {"text": "dull and far too long", "label": 0},
        {"text": "the cast is great", "label": 1}, {"text": "i want my evening back", "label": 0}]


def task(**overrides) -> TaskConfig:
    fields = dict(name="t", kind="single_label", text_fields=("text",), label_field="label",
                  label_names=None, metrics=("accuracy",), main_metric="accuracy")
    fields.update(overrides)
    return TaskConfig(**fields)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_delimited(path: Path, rows, delimiter: str = ",") -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def examples_from(path: Path, t: TaskConfig | None = None, split: str = "train", names=None):
    t = t or task()
    raw = read_file(path, split)
    names = names if names is not None else infer_label_names(t, raw)
    return to_examples(t, raw, split, names, None)


# ---------------------------------------------------------------------------------------------
# the demo generator
# ---------------------------------------------------------------------------------------------
def test_demo_is_deterministic_and_balanced():
    train, validation = generate("train"), generate("validation")
    assert train == generate("train")
    assert len(train["text"]) == len(train["label"]) == SIZES["train"]
    assert len(validation["text"]) == SIZES["validation"]
    assert set(train["label"]) == {0, 1}
    for split in (train, validation):
        assert 0.35 <= sum(split["label"]) / len(split["label"]) <= 0.65
    assert all(t.strip() for t in train["text"])
    assert train["text"][:50] != validation["text"][:50]


def test_demo_task_loads_through_the_generator():
    splits = load_raw_splits(task(name="demo", generator="demo", label_names=("negative", "positive")))
    assert splits["train"].source == "generator:demo"
    assert splits["train"].columns["text"] == generate("train")["text"]


# ---------------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["jsonl", "csv", "tsv", "parquet"])
def test_read_every_format(tmp_path, suffix):
    path = tmp_path / f"train.{suffix}"
    {"jsonl": write_jsonl, "parquet": write_parquet}.get(suffix, lambda p, r: write_delimited(
        p, r, "\t" if suffix == "tsv" else ","))(path, ROWS)
    raw = read_file(path, "train")
    assert raw.columns["text"] == [r["text"] for r in ROWS]
    assert raw.source == str(path) and len(raw.sha256) == 64
    examples = examples_from(path)
    assert examples.texts == [[r["text"] for r in ROWS]]
    assert examples.labels == [1, 0, 1, 0]  # csv/tsv strings "1"/"0" become the same ids


def test_json_array_file(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(ROWS))
    assert read_file(path, "train").columns["label"] == [1, 0, 1, 0]


def test_a_json_object_holding_its_rows_under_a_key(tmp_path):
    """{"version": 2, "data": [...]}, as many datasets ship, was one row with a column "data"."""
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"version": 2, "data": ROWS}, indent=2))
    assert read_file(path, "train").columns["label"] == [1, 0, 1, 0]
    path.write_text(json.dumps({"train": ROWS, "test": ROWS}))
    with pytest.raises(DataError, match="keys 'train', 'test' each hold a list of rows"):
        read_file(path, "train")
    path.write_text(json.dumps(ROWS[0]))  # one row, as a .json file
    assert read_file(path, "train").columns["label"] == [ROWS[0]["label"]]


def test_sha256_identifies_the_bytes(tmp_path):
    a = read_file(write_jsonl(tmp_path / "a.jsonl", ROWS), "train")
    b = read_file(write_jsonl(tmp_path / "b.jsonl", ROWS[:3]), "train")
    assert a.sha256 != b.sha256
    assert a.sha256 == read_file(tmp_path / "a.jsonl", "train").sha256


def test_utf8_bom_is_accepted(tmp_path):
    csv_path = tmp_path / "bom.csv"
    csv_path.write_bytes("\ufefftext,label\ncafé crème,1\nnot good,0\n".encode("utf-8"))
    raw = read_file(csv_path, "train")
    assert list(raw.columns) == ["text", "label"]  # not "\ufefftext"
    assert raw.columns["text"][0] == "café crème"
    jsonl_path = tmp_path / "bom.jsonl"
    jsonl_path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in ROWS).encode())
    assert read_file(jsonl_path, "train").columns["label"] == [1, 0, 1, 0]


def test_unicode_line_separators_inside_text_are_kept(tmp_path):
    # U+2028, NEL and FS are legal inside a JSON string and a CSV field; they do not end a row
    texts = ["one\u2028two", "three\x85four", "five\x1csix", "plain"]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": i % 2}, ensure_ascii=False) + "\n"
                            for i, t in enumerate(texts)), encoding="utf-8")
    assert read_file(path, "train").columns["text"] == texts
    csv_path = write_delimited(tmp_path / "train.csv", [{"text": t, "label": i % 2} for i, t in enumerate(texts)])
    assert read_file(csv_path, "train").columns["text"] == texts


def test_csv_quoted_field_with_newline(tmp_path):
    path = write_delimited(tmp_path / "train.csv", [{"text": "first line\nsecond line", "label": 1},
                                                    {"text": "plain", "label": 0}])
    assert read_file(path, "train").columns["text"] == ["first line\nsecond line", "plain"]


def test_crlf_line_endings(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\r\ngood,1\r\nbad,0\r\n")
    assert read_file(path, "train").columns == {"text": ["good", "bad"], "label": ["1", "0"]}
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_bytes(b'{"text": "good", "label": 1}\r\n{"text": "bad", "label": 0}\r\n')
    assert read_file(jsonl, "train").columns["label"] == [1, 0]


@pytest.mark.parametrize("delimiter", [";", "|"])
def test_a_csv_whose_header_has_no_comma_is_read_with_its_own_delimiter(tmp_path, delimiter):
    """A spreadsheet's semicolon CSV was one column named 'text;label' ("text column 'text' not found")."""
    path = tmp_path / "train.csv"
    path.write_text(f'text{delimiter}label\n"good{delimiter} really"{delimiter}pos\nbad, film{delimiter}neg\n')
    columns = read_file(path, "train").columns
    assert columns == {"text": [f"good{delimiter} really", "bad, film"], "label": ["pos", "neg"]}
    path.write_text(f"text{delimiter}label\na{delimiter}b{delimiter}c\n")
    name = "semicolon" if delimiter == ";" else "vertical bar"
    with pytest.raises(DataError, match=f"(?s)line 2.*quote fields that contain a {name}"):
        read_file(path, "train")
    path.write_text("text,label\nsemi; colon,pos\n")  # a comma in the header: commas, whatever the rows hold
    assert read_file(path, "train").columns == {"text": ["semi; colon"], "label": ["pos"]}


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_a_csv_that_names_its_delimiter_on_a_sep_line_is_read_with_it(tmp_path, bom):
    """Excel's "sep=;" first line was taken for the header: one column named 'sep=;'."""
    path = tmp_path / "train.csv"
    path.write_bytes(bom + b"sep=;\r\ntext;label\r\n\"a; b\";pos\r\nc, d;neg\r\n")
    assert read_file(path, "train").columns == {"text": ["a; b", "c, d"], "label": ["pos", "neg"]}
    path.write_bytes(b"sep=\t\ntext\tlabel\na\tpos\nb\tc\tneg\n")
    with pytest.raises(DataError, match="(?s)line 4.*row has 3 fields") as info:  # the file's own line numbers
        read_file(path, "train")
    assert "'\\t'" in str(info.value)
    path.write_bytes(b"sep=;\ntext;text\na;b\n")
    with pytest.raises(DataError, match="(?s)line 2.*repeats column"):
        read_file(path, "train")


def test_a_csv_written_with_a_space_after_each_comma(tmp_path):
    """`text, label` was read as the columns 'text' and ' label' (not found), and its classes as ' pos', ' neg'."""
    path = tmp_path / "train.csv"
    path.write_text('text, label\ngood film, pos\n"bad, film", neg\n')
    assert read_file(path, "train").columns == {"text": ["good film", "bad, film"], "label": ["pos", "neg"]}
    path.write_text("text,label\n a text, pos\n")  # no space in the header: the values are kept as written
    assert read_file(path, "train").columns == {"text": [" a text"], "label": [" pos"]}


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n   \n" + json.dumps(ROWS[1]) + "\n")
    assert len(read_file(path, "train").columns["text"]) == 2


# ---------------------------------------------------------------------------------------------
# data errors: clear, located
# ---------------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match="file not found") as info:
        read_file(path, "train")
    assert info.value.file == str(path) and str(path) in str(info.value)


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("hello\n")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        read_file(path, "train")
    sheet = tmp_path / "train.XLSX"
    sheet.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match="(?s)'.XLSX'.*save the sheet as CSV"):
        read_file(sheet, "train")


@pytest.mark.parametrize("name, content", [("empty.jsonl", ""), ("empty.csv", ""), ("header.csv", "text,label\n"),
                                           ("blank.jsonl", "\n\n")])
def test_empty_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match="no data rows") as info:
        read_file(path, "train")
    assert info.value.file == str(path)


def test_missing_text_column_lists_columns_present(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", ROWS)
    with pytest.raises(DataError) as info:
        examples_from(path, task(text_fields=("sentence",)))
    message = str(info.value)
    assert "text column 'sentence' not found" in message
    assert "columns present: text, label" in message
    assert info.value.column == "sentence" and info.value.file == str(path)
    assert "task.text_fields" in message  # the fix


def test_missing_label_column(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", ROWS)
    with pytest.raises(DataError) as info:
        examples_from(path, task(label_field="stars"))
    assert "label column 'stars' not found" in str(info.value)
    assert "columns present: text, label" in str(info.value)
    assert "task.label_field" in str(info.value)


def test_missing_label_column_with_declared_names(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", ROWS)
    with pytest.raises(DataError, match="label column 'stars' not found"):
        examples_from(path, task(label_field="stars", label_names=("neg", "pos")))


def test_non_numeric_regression_label(tmp_path):
    rows = [{"text": "a", "label": 1.5}, {"text": "b", "label": 2}, {"text": "c", "label": "high"}]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    t = task(kind="regression", metrics=("pearson",), main_metric="pearson")
    with pytest.raises(DataError, match="'high' is not a number") as info:
        examples_from(path, t)
    assert (info.value.line, info.value.column) == (3, "label")


def test_a_regression_label_too_large_for_float32_training_is_refused(tmp_path):
    """A score of 1e30 trained until its first loss was infinite and stopped at a NaN."""
    rows = [{"text": "a", "label": 1e30}, {"text": "b", "label": "-2e17"}, {"text": "c", "label": 1e16}]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    t = task(kind="regression", metrics=("pearson",), main_metric="pearson")
    with pytest.raises(DataError) as info:
        examples_from(path, t)
    said = str(info.value)
    assert "line 1" in said and "1e+30 is too large to train on" in said and "-2e+17" in said and "line 3" not in said
    assert "rescale the scores" in said


def test_regression_labels_from_csv_strings(tmp_path):
    path = write_delimited(tmp_path / "train.csv", [{"text": "a", "label": "1.5"}, {"text": "b", "label": "4"}])
    t = task(kind="regression", metrics=("pearson",), main_metric="pearson")
    assert examples_from(path, t).labels == [1.5, 4.0]


def test_regression_scores_written_with_a_decimal_comma(tmp_path):
    """A spreadsheet's semicolon CSV (read since its delimiter is detected) writes 4,91: every score was refused."""
    path = tmp_path / "train.csv"
    path.write_text("text;score\na;4,91\nb; -0,5 \nc;0,500\nd;2.25\ne;3\n")
    t = task(kind="regression", metrics=("pearson",), main_metric="pearson", label_field="score")
    assert examples_from(path, t).labels == [4.91, -0.5, 0.5, 2.25, 3.0]
    path.write_text("text;score\na;1,000\nb;1,2,3\n")  # a thousands separator or a decimal comma: not guessed
    with pytest.raises(DataError) as info:  # both rows' problems, together
        examples_from(path, t)
    said = str(info.value)
    assert "'1,000' is ambiguous: 1.000 with a decimal comma, or 1000 with a thousands separator" in said
    assert "'1,2,3' is not a number" in said


@pytest.mark.parametrize("bad", [float("nan"), None])
def test_regression_label_must_be_finite(tmp_path, bad):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "label": 1.0}\n' + json.dumps({"text": "b", "label": bad}) + "\n")
    t = task(kind="regression", metrics=("pearson",), main_metric="pearson")
    with pytest.raises(DataError) as info:
        examples_from(path, t)
    assert info.value.line == 2


def test_float_label_for_classification(tmp_path):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 0.5}, {"text": "c", "label": 0}]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match="label 0.5 is a fractional number, not a class") as info:
        examples_from(path)
    assert (info.value.line, info.value.column) == (2, "label")
    assert "task.kind=regression" in str(info.value)


def test_integral_float_labels_are_classes(tmp_path):
    rows = [{"text": "a", "label": 1.0}, {"text": "b", "label": 0.0}]
    assert examples_from(write_jsonl(tmp_path / "train.jsonl", rows)).labels == [1, 0]


def test_null_label(tmp_path):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 0}, {"text": "c", "label": None}]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match="label is empty") as info:
        examples_from(path)
    assert info.value.line == 3


def test_missing_label_key_in_jsonl_row(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n{"text": "c"}\n')
    with pytest.raises(DataError, match="label is empty") as info:
        examples_from(path)
    assert info.value.line == 3


def test_empty_csv_label_cell_is_not_a_class(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\ngood,pos\nbad,neg\nmeh,\n")
    with pytest.raises(DataError, match="label is empty") as info:
        examples_from(path)
    assert info.value.line == 4


def test_error_lines_are_file_lines(tmp_path):
    # the header, a quoted field spanning two lines and blank lines all count
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"two\nlines",1\n\ngood,0\nhalf,\n')
    with pytest.raises(DataError, match="label is empty") as info:
        examples_from(path)
    assert info.value.line == 6
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n{"text": "c", "label": null}\n')
    with pytest.raises(DataError, match="label is empty") as info:
        examples_from(jsonl)
    assert info.value.line == 4
    broken = tmp_path / "broken.csv"
    broken.write_text('text,label\n"two\nlines",1\ngood,1,extra\n')
    with pytest.raises(DataError, match="3 fields") as info:
        read_file(broken, "train")
    assert info.value.line == 4


@pytest.mark.parametrize("train_labels, bad", [(["pos", "neg"], "neutral"), ([0, 1], 2), ([1, 2], 0),
                                               ([1, 2], 3), (["pos", "neg"], 0)])
def test_validation_label_not_seen_in_train(tmp_path, train_labels, bad):
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": f"t{i}", "label": v} for i, v in
                                                   enumerate(train_labels * 2)])
    validation = write_jsonl(tmp_path / "validation.jsonl", [{"text": "x", "label": train_labels[0]},
                                                             {"text": "y", "label": bad}])
    t = task()
    names = infer_label_names(t, read_file(train, "train"))
    with pytest.raises(DataError, match="does not occur in train") as info:
        to_examples(t, read_file(validation, "validation"), "validation", names, None)
    assert (info.value.split, info.value.line, info.value.file) == ("validation", 2, str(validation))


def test_malformed_json_line_number(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n" + '{"text": "oops", "label": \n')
    with pytest.raises(DataError, match="malformed JSON") as info:
        read_file(path, "train")
    assert info.value.line == 3 and info.value.file == str(path)
    assert "line 3" in str(info.value)


def test_json_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n[1, 2]\n")
    with pytest.raises(DataError, match="expected a JSON object") as info:
        read_file(path, "train")
    assert info.value.line == 2


def test_csv_row_with_wrong_field_count(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\ngood,1\ngood, really good,1\nbad,0\n")
    with pytest.raises(DataError, match="row has 3 fields but the header has 2") as info:
        read_file(path, "train")
    assert info.value.line == 3 and info.value.file == str(path)


def test_non_utf8_bytes(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\ngood,1\ncaf\xe9,0\n")
    with pytest.raises(DataError, match="not UTF-8") as info:
        read_file(path, "validation")
    assert (info.value.line, info.value.split, info.value.file) == (3, "validation", str(path))
    assert "re-encode" in str(info.value)


@pytest.mark.parametrize("encoding, named", [("utf-16", "UTF-16 (little-endian)"), ("utf-16-be", None),
                                             ("utf-32", "UTF-32 (little-endian)")])
def test_a_utf16_or_utf32_file_is_named_as_such_once(tmp_path, encoding, named):
    """Every line of a UTF-16 file fails to decode as UTF-8: one problem naming the encoding, not one a line."""
    path = tmp_path / "train.jsonl"
    text = "".join(f'{{"text": "row {i}", "label": {i % 2}}}\n' for i in range(50))
    path.write_bytes(("\ufeff" + text).encode(encoding) if named is None else text.encode(encoding))
    with pytest.raises(DataError) as info:
        read_file(path, "train")
    message = str(info.value)
    assert f"the file is {named or 'UTF-16 (big-endian)'} text" in message and "save it as UTF-8" in message
    assert message.count("not UTF-8") == 1 and info.value.line == 1


def test_every_text_empty(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "", "label": 0}, {"text": "  ", "label": 1}])
    with pytest.raises(DataError, match="every text is empty"):
        examples_from(path)


@pytest.mark.parametrize("declared", [None, ("0", "1")])
def test_single_class_training_labels(tmp_path, declared):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 1}])
    raw = {"train": read_file(path, "train"), "validation": read_file(path, "validation")}
    with pytest.raises(DataError, match=r"only one class \('1'\)"):  # whatever the config declares
        split_examples(task(label_names=declared), raw)


# ---------------------------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------------------------
def _raw(tmp_path, labels):
    return read_file(write_jsonl(tmp_path / "train.jsonl", [{"text": f"t{i}", "label": v}
                                                            for i, v in enumerate(labels)]), "train")


def test_label_names_inferred_from_ints_sorted_numerically(tmp_path):
    raw = _raw(tmp_path, [10, 2, 1, 2, 10])
    names = infer_label_names(task(), raw)
    assert names == ["1", "2", "10"]
    assert to_examples(task(), raw, "train", names, None).labels == [2, 1, 0, 1, 2]


def test_label_names_inferred_from_strings(tmp_path):
    raw = _raw(tmp_path, ["pos", "neg", "neutral", "pos"])
    names = infer_label_names(task(), raw)
    assert names == ["neg", "neutral", "pos"]
    assert to_examples(task(), raw, "train", names, None).labels == [2, 0, 1, 2]


def test_declared_label_names_with_int_and_string_labels(tmp_path):
    t = task(label_names=("negative", "positive"))
    raw = _raw(tmp_path, [0, 1, "positive", "negative"])
    names = infer_label_names(t, raw)
    assert names == ["negative", "positive"]
    assert to_examples(t, raw, "train", names, None).labels == [0, 1, 1, 0]


def test_regression_has_no_label_names(tmp_path):
    t = task(kind="regression", metrics=("pearson",), main_metric="pearson")
    assert infer_label_names(t, _raw(tmp_path, [0.5, 1.5])) is None


def test_limit_keeps_first_rows(tmp_path):
    raw = _raw(tmp_path, [0, 1, 0, 1, 1])
    examples = to_examples(task(), raw, "train", ["0", "1"], 3)
    assert examples.texts == [["t0", "t1", "t2"]] and examples.labels == [0, 1, 0]


# ---------------------------------------------------------------------------------------------
# sources: explicit files, data_dir, column_map
# ---------------------------------------------------------------------------------------------
def test_explicit_files_and_column_map(tmp_path):
    rows = [{"review": r["text"], "stars": r["label"]} for r in ROWS]
    train = write_delimited(tmp_path / "a.csv", rows)
    validation = write_delimited(tmp_path / "b.csv", rows[:2])
    t = task(train_file=str(train), validation_file=str(validation), column_map={"review": "text"},
             label_field="stars")
    splits = load_raw_splits(t)
    assert set(splits) == {"train", "validation"}
    assert splits["train"].columns["text"] == [r["text"] for r in ROWS]
    assert "review" not in splits["train"].columns
    assert splits["validation"].source == str(validation)


def test_only_one_explicit_file(tmp_path):
    train = write_jsonl(tmp_path / "a.jsonl", ROWS)
    with pytest.raises(DataError, match="task.validation_file is not set"):
        load_raw_splits(task(train_file=str(train)))


def test_data_dir_lookup(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", ROWS)
    write_delimited(folder / "validation.csv", ROWS)
    splits = load_raw_splits(task(data_dir=str(tmp_path)))
    assert splits["validation"].source == str(folder / "validation.csv")
    (folder / "validation.csv").unlink()
    with pytest.raises(DataError, match="no validation file") as info:
        load_raw_splits(task(data_dir=str(tmp_path)))
    assert str(folder / "validation.jsonl") in str(info.value)
    assert "(or name another file: task.validation_split=NAME)" in str(info.value)


def test_a_data_folders_files_are_named_by_the_split_names(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", ROWS)
    write_delimited(folder / "dev.csv", ROWS)  # a common name for the validation split
    with pytest.raises(DataError, match="no validation file") as info:
        load_raw_splits(task(data_dir=str(tmp_path)))
    assert "or name the file it has: task.validation_split=dev" in str(info.value)  # the file that is there
    splits = load_raw_splits(task(data_dir=str(tmp_path), validation_split="dev"))
    assert splits["validation"].source == str(folder / "dev.csv")
    (folder / "train.jsonl").rename(folder / "all.jsonl")
    assert load_raw_splits(task(data_dir=str(tmp_path), train_split="all", validation_split="dev"))["train"].source \
        == str(folder / "all.jsonl")


def test_no_data_source():
    with pytest.raises(DataError, match="has no data source"):
        load_raw_splits(task())


# ---------------------------------------------------------------------------------------------
# tokenizers
# ---------------------------------------------------------------------------------------------
CORPUS = [t for t in generate("train")["text"][:400]] + ["The ﬁne FILM", "ＡＢＣ film"]


def tokenizer_config(**changes) -> TokenizerConfig:
    """A scratch tokenizer config: wordlevel, 30k words, every word kept, lowercased, NFKC; ``changes`` on top."""
    return TokenizerConfig(**{"kind": "wordlevel", "vocab_size": 30000, "min_frequency": 1, "lowercase": True,
                              "normalization": "nfkc", **changes})


@pytest.fixture(scope="module", params=["wordlevel", "wordpiece"])
def trained(request):
    return train_tokenizer(iter(CORPUS), tokenizer_config(kind=request.param, vocab_size=120), max_length=16)


def test_tokenizer_template_cls_sep(trained):
    ids = trained("the film was good")["input_ids"]
    assert ids[0] == trained.cls_token_id and ids[-1] == trained.sep_token_id
    assert trained.convert_ids_to_tokens([ids[0], ids[-1]]) == [CLS, SEP]
    pair = trained("the film", "was good", return_token_type_ids=True)
    tokens = trained.convert_ids_to_tokens(pair["input_ids"])
    assert tokens[0] == CLS and tokens.count(SEP) == 2 and tokens[-1] == SEP
    second = tokens.index(SEP) + 1
    assert pair["token_type_ids"] == [0] * second + [1] * (len(tokens) - second)


def test_tokenizer_without_markers_encodes_only_the_text():
    tok = train_tokenizer(iter(CORPUS), tokenizer_config(vocab_size=120), max_length=16, markers=False)
    assert tok.convert_ids_to_tokens(tok("the film")["input_ids"]) == ["the", "film"]
    assert tok("")["input_ids"] == []


def test_tokenizer_special_tokens(trained):
    assert trained.convert_ids_to_tokens(list(range(5))) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert trained.pad_token_id == 0


def test_tokenizer_lowercases_and_normalises(trained):
    assert trained("ＴＨＥ ＦＩＬＭ")["input_ids"] == trained("the film")["input_ids"]  # NFKC + lowercase
    assert trained("ﬁne")["input_ids"] == trained("fine")["input_ids"]


def test_tokenizer_without_lowercase_or_normalisation():
    tok = train_tokenizer(iter(CORPUS + ["Film FILM"]), tokenizer_config(lowercase=False, normalization="none",
                                                                        vocab_size=500), max_length=16)
    assert tok("Film")["input_ids"] != tok("film")["input_ids"]
    assert tok("ﬁne")["input_ids"] != tok("fine")["input_ids"]  # the ligature is not folded


@pytest.mark.parametrize("kind", ["wordlevel", "wordpiece"])
def test_vocab_size_is_respected(kind):
    # 300 distinct made-up words over a small alphabet (WordPiece always keeps the whole alphabet)
    rng = random.Random(0)
    words = sorted({"".join(rng.choice("abcdefgh") for _ in range(rng.randint(4, 7))) for _ in range(300)})
    corpus = [" ".join(words[i: i + 10]) for i in range(0, len(words), 5)]
    large = train_tokenizer(iter(corpus), tokenizer_config(kind=kind, vocab_size=10_000), max_length=16)
    small = train_tokenizer(iter(corpus), tokenizer_config(kind=kind, vocab_size=60), max_length=16)
    assert len(large) > 60
    assert len(small) == 60


@pytest.mark.parametrize("kind", ["wordlevel", "wordpiece"])
def test_scripts_written_without_spaces_are_split_into_characters(kind):
    """A whitespace pre-tokenizer made a Chinese sentence one word: validation text was all [UNK] and a bag of
    words scored chance. Han, kana, Thai (...) characters are each a token; spaced scripts keep their words."""
    corpus = ["我喜欢这部电影。", "これはペンです", "ภาษาไทย", "𠀀𠀁", "the film, again"]
    tok = train_tokenizer(iter(corpus), tokenizer_config(kind=kind), max_length=32, markers=False)
    assert tok.tokenize("电影我喜欢 the film") == ["电", "影", "我", "喜", "欢", "the", "film"]
    assert tok.tokenize("ペンこれ ไทย 𠀁") == ["ペ", "ン", "こ", "れ", "ไ", "ท", "ย", "𠀁"]
    assert tok.tokenize("again, the film") == ["again", ",", "the", "film"]


def test_a_validation_split_mostly_unknown_to_the_tokenizer_is_warned_about(capsys):
    from nlptune.data.tokenization import unknown_share, warn_if_mostly_unknown

    tok = train_tokenizer(iter(["the film was good", "a bad film"]), tokenizer_config(), max_length=16)
    known, foreign = (encode(tok, [texts], max_length=16, joint_pairs=False)
                      for texts in (["the good film", "a bad film was"], ["ein guter Film", "the Film war schlecht"]))
    assert unknown_share(tok, known) == 0 and unknown_share(tok, foreign) == pytest.approx(4 / 7)  # "film" is known
    warn_if_mostly_unknown(tok, known, "dev.csv", None)
    assert capsys.readouterr().err == ""
    warn_if_mostly_unknown(tok, foreign, "dev.csv", None)
    said = " ".join(capsys.readouterr().err.split())
    assert "57% of the validation tokens (dev.csv) are unknown to the vocabulary learnt from the training" in said
    warn_if_mostly_unknown(tok, foreign, "dev.csv", "some/model")
    assert "unknown to the tokenizer of some/model ([UNK])" in " ".join(capsys.readouterr().err.split())


def test_texts_cut_to_max_length_are_warned_about(capsys):
    """Texts longer than task.max_length were cut silently: a long-document task trained on its beginnings."""
    from nlptune.data.tokenization import warn_if_cut

    tok = train_tokenizer(iter(["a b c d e f g h"]), tokenizer_config(), max_length=4, markers=False)
    short, long = ["a b"] * 29, ["a b c d e f"]
    warn_if_cut(encode(tok, [short + long], max_length=4, joint_pairs=False), 4, "train", "t.csv")
    assert capsys.readouterr().err == ""  # 1 of 30: under 5 %
    warn_if_cut(encode(tok, [short[:9] + long, long * 10], max_length=4, joint_pairs=False), 4, "train", "t.csv")
    said = " ".join(capsys.readouterr().err.split())
    assert "10 of the 10 train texts (100%, t.csv) reach task.max_length=4 tokens and are cut" in said


def test_min_frequency_drops_rare_words():
    corpus = ["common word"] * 3 + ["rare"]
    tok = train_tokenizer(iter(corpus), tokenizer_config(min_frequency=2), max_length=8)
    assert "common" in tok.get_vocab() and "rare" not in tok.get_vocab()


def test_truncation_keeps_sep(trained):
    ids = trained(" ".join(["film"] * 50), truncation=True, max_length=10)["input_ids"]
    assert len(ids) == 10 and ids[-1] == trained.sep_token_id


def test_tokenizer_save_load_round_trip(trained, tmp_path):
    from transformers import AutoTokenizer

    trained.save_pretrained(tmp_path)
    texts = ["the cast was really great", "ＡＢＣ unseenword", "the film", "was bad"]
    for loaded in (AutoTokenizer.from_pretrained(tmp_path), load_tokenizer(str(tmp_path), max_length=16)):
        assert loaded(texts)["input_ids"] == trained(texts)["input_ids"]
        assert loaded("a", "b", return_token_type_ids=True)["token_type_ids"] == \
            trained("a", "b", return_token_type_ids=True)["token_type_ids"]
        assert loaded.pad_token_id == trained.pad_token_id
    assert load_tokenizer(str(tmp_path), max_length=7).model_max_length == 7


def test_pretrained_tokenizer_loads(tiny_pretrained):
    tok = load_tokenizer(str(tiny_pretrained), max_length=32)
    ids = tok("the film was good")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "the", "film", "was", "good", "[SEP]"]


def test_a_max_length_beyond_the_models_positions_is_refused(tiny_pretrained):
    """The tiny BERT has 128 position embeddings: 128 tokens load, 129 are refused naming the limit (a longer
    batch would fail inside the model's forward pass)."""
    from nlptune.config.errors import NlptuneError

    assert load_tokenizer(str(tiny_pretrained), max_length=128).model_max_length == 128
    with pytest.raises(NlptuneError, match="task.max_length=129 is more than .* can read: 128 tokens"):
        load_tokenizer(str(tiny_pretrained), max_length=129)


def test_a_max_length_the_special_tokens_fill_is_refused(tiny_pretrained):
    """task.max_length=2 cut every text to [CLS] [SEP] and called them "empty after preprocessing"; a pair was not
    cut at all."""
    from types import SimpleNamespace

    from nlptune.config.errors import ConfigError
    from nlptune.data.tokenization import refuse_a_length_without_room

    tok = load_tokenizer(str(tiny_pretrained), max_length=32)
    for fields, length, needed in ((["sentence"], 2, 3), (["a", "b"], 4, 5)):
        with pytest.raises(ConfigError, match=rf"task.max_length: {length} leaves no room for a word.* set "
                                              rf"task.max_length to {needed} or more"):
            refuse_a_length_without_room(tok, SimpleNamespace(text_fields=fields, max_length=length), joint_pairs=True)
        refuse_a_length_without_room(tok, SimpleNamespace(text_fields=fields, max_length=needed), joint_pairs=True)


# ---------------------------------------------------------------------------------------------
# encode
# ---------------------------------------------------------------------------------------------
def test_encode_single(trained):
    columns = encode(trained, [["the film", "the cast was great"]], max_length=16, joint_pairs=False)
    assert set(columns) == {"input_ids", "length"}
    assert columns["length"].tolist() == [len(ids) for ids in columns["input_ids"]]


def test_encode_pair_separately(trained):
    a, b = ["the film", "good"], ["was good", "the cast was bad"]
    columns = encode(trained, [a, b], max_length=16, joint_pairs=False)
    assert set(columns) == {"input_ids", "input_ids_b", "length"}
    assert columns["input_ids"].tolist() == trained(a)["input_ids"]
    assert columns["input_ids_b"].tolist() == trained(b)["input_ids"]
    assert columns["length"].tolist() == [len(x) + len(y) for x, y in zip(columns["input_ids"], columns["input_ids_b"])]


def test_encode_pair_jointly(tiny_pretrained):
    tok = load_tokenizer(str(tiny_pretrained))
    a, b = ["the film", "a dog"], ["was good", "runs"]
    columns = encode(tok, [a, b], max_length=16, joint_pairs=True)
    assert set(columns) == {"input_ids", "token_type_ids", "length"}
    first = tok.convert_ids_to_tokens(columns["input_ids"][0])
    assert first == ["[CLS]", "the", "film", "[SEP]", "was", "good", "[SEP]"]
    assert columns["token_type_ids"][0] == [0, 0, 0, 0, 1, 1, 1]
    assert columns["length"].tolist() == [7, 6]


def test_encode_truncates(trained):
    columns = encode(trained, [[" ".join(["film"] * 40)], [" ".join(["good"] * 40)]], max_length=12,
                     joint_pairs=True)
    assert len(columns["input_ids"][0]) == 12


# ---------------------------------------------------------------------------------------------
# collator and sampler
# ---------------------------------------------------------------------------------------------
def test_collator_pads_and_masks():
    items = [{"input_ids": [2, 5, 6, 3], "input_ids_b": [2, 3], "labels": 1},
             {"input_ids": [2, 3], "input_ids_b": [2, 7, 8, 9, 3], "labels": 0}]
    batch = Collator(pad_token_id=0, label_dtype=torch.long)(items)
    assert batch["input_ids"].tolist() == [[2, 5, 6, 3], [2, 3, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["input_ids_b"].tolist() == [[2, 3, 0, 0, 0], [2, 7, 8, 9, 3]]
    assert batch["attention_mask_b"].tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 0]
    assert batch["input_ids"].dtype == torch.long


def test_collator_regression_multiple_and_token_types():
    items = [{"input_ids": [2, 5, 3, 6, 3], "token_type_ids": [0, 0, 0, 1, 1], "labels": 2.5},
             {"input_ids": [2, 5, 3], "token_type_ids": [0, 0, 0], "labels": 0.0}]
    batch = Collator(pad_token_id=9, label_dtype=torch.float32, pad_to_multiple_of=8)(items)
    assert batch["input_ids"].shape == (2, 8)
    assert batch["input_ids"][1].tolist() == [2, 5, 3] + [9] * 5
    assert batch["token_type_ids"][0].tolist() == [0, 0, 0, 1, 1, 0, 0, 0]
    assert batch["attention_mask"].sum(1).tolist() == [5, 3]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [2.5, 0.0]


def test_encoded_dataset_items():
    dataset = EncodedDataset({"input_ids": [[1, 2], [3]], "length": [2, 1]}, [0, 1])
    assert len(dataset) == 2 and dataset.lengths.tolist() == [2, 1]
    assert dataset[1] == {"input_ids": [3], "labels": 1}


LENGTHS = [(i * 37) % 23 + 1 for i in range(203)]


def test_sampler_covers_every_index_once():
    sampler = LengthGroupedBatchSampler(LENGTHS, batch_size=8, seed=1, group=4)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 26
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(LENGTHS)))
        assert all(len(b) == 8 for b in batches if len(b) != 203 % 8)


def test_sampler_short_batch_last_for_split_batches():
    plain = list(LengthGroupedBatchSampler(LENGTHS, batch_size=8, seed=1, group=4))
    moved = list(LengthGroupedBatchSampler(LENGTHS, batch_size=8, seed=1, group=4, short_batch_last=True))
    assert len(moved[-1]) == 203 % 8 and all(len(b) == 8 for b in moved[:-1])
    assert [b for b in plain if len(b) == 8] == moved[:-1]  # otherwise the same order


def test_sampler_deterministic_per_seed_and_epoch():
    def order(seed, epoch):
        sampler = LengthGroupedBatchSampler(LENGTHS, batch_size=8, seed=seed, group=4)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(1, 0) == order(1, 0)
    assert order(1, 2) == order(1, 2)
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)


def test_sampler_set_epoch_changes_the_order():
    sampler = LengthGroupedBatchSampler(LENGTHS, batch_size=8, seed=3)
    first = list(sampler)
    assert list(sampler) == first  # same epoch, same order
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_sampler_groups_by_length():
    # one mega-batch holds everything: batches are contiguous runs of the sorted lengths
    sampler = LengthGroupedBatchSampler(LENGTHS, batch_size=8, seed=0, group=100)
    spans = [(min(LENGTHS[i] for i in b), max(LENGTHS[i] for i in b)) for b in sampler]
    spans.sort()
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))

    def padding(batches):
        return sum(max(LENGTHS[i] for i in b) * len(b) - sum(LENGTHS[i] for i in b) for b in batches)

    grouped = LengthGroupedBatchSampler(LENGTHS, batch_size=8, seed=0, group=4)
    plain = LengthGroupedBatchSampler(LENGTHS, batch_size=8, seed=0, group_by_length=False)
    assert padding(list(grouped)) < padding(list(plain)) / 2
    assert Counter(i for b in plain for i in b) == Counter(range(len(LENGTHS)))


@pytest.mark.parametrize("grouped", [True, False])
def test_sampler_longest_first_starts_every_epoch_with_the_longest_row(grouped):
    """trainer.longest_first: the batch holding the longest row trades places with the first one; the batches
    themselves, and the orders of later epochs, stay what they were without it."""
    lengths = [(i * 37) % 23 + 1 for i in range(203)]
    lengths[150] = 99  # one row longer than every other
    for epoch in range(3):
        plain = LengthGroupedBatchSampler(lengths, batch_size=8, seed=1, group=4, group_by_length=grouped)
        first = LengthGroupedBatchSampler(lengths, batch_size=8, seed=1, group=4, group_by_length=grouped,
                                          longest_first=True)
        plain.set_epoch(epoch)
        first.set_epoch(epoch)
        before, after = list(plain), list(first)
        assert 150 in after[0]
        assert sorted(map(sorted, before)) == sorted(map(sorted, after))
        moved = before.index(after[0])
        assert after[moved] == before[0] and all(a == b for i, (a, b) in enumerate(zip(before, after))
                                                 if i not in (0, moved))
        assert list(first) == after  # the same order again for the same epoch (a resumed run's)
    split = list(LengthGroupedBatchSampler(lengths, batch_size=8, seed=1, group=4, short_batch_last=True,
                                           longest_first=True))
    assert 150 in split[0] and len(split[-1]) == 203 % 8  # several processes: the short batch still comes last


def test_sampler_longest_first_is_on_by_default_and_off_for_configs_from_before_the_key():
    from nlptune.config import build_run_config
    from nlptune.config.compose import compose, load_run_config, to_plain

    assert load_run_config([]).trainer.longest_first is True
    plain = to_plain(compose([]))
    del plain["trainer"]["longest_first"]  # a run directory, checkpoint or recipe written before the key
    assert build_run_config(plain).trainer.longest_first is False


def test_eval_order_longest_first():
    assert eval_order([3, 9, 1, 5]) == [1, 3, 0, 2]


# ---------------------------------------------------------------------------------------------
# tokenization cache and the whole preparation
# ---------------------------------------------------------------------------------------------
def _plain(columns: dict) -> dict:
    return {name: list(values) if name == "length" else values.tolist() for name, values in columns.items()}


def _cached(tokenizer, texts, max_length: int, key: list) -> dict:
    from nlptune.data import tokenization

    return _encode_cached(tokenizer, lambda: tokenization.encode(tokenizer, texts, max_length=max_length,
                                                                 joint_pairs=False), key_parts=key + [max_length])


def test_tokenization_cache_hit_returns_identical_columns(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path))
    texts = [["the film was good", "dull", "the cast"], ["a", "b c", "the film"]]
    first = _cached(trained, texts, 16, ["sha", 3, ["a", "b"]])
    entries = list((tmp_path / "tokenized").iterdir())
    assert len(entries) == 1 and (entries[0] / "dataset_info.json").is_file()

    def no_encoding(*args, **kwargs):
        raise AssertionError("a cache hit must not tokenize again")

    monkeypatch.setattr("nlptune.data.tokenization.encode", no_encoding)
    second = _cached(trained, texts, 16, ["sha", 3, ["a", "b"]])
    assert _plain(second) == _plain(first)
    assert _plain(second) == _plain(encode(trained, texts, max_length=16, joint_pairs=False))
    # another max_length is another cache entry
    with pytest.raises(AssertionError, match="cache hit"):
        _cached(trained, texts, 8, ["sha", 3, ["a", "b"]])


def test_a_cache_hit_of_many_chunks_reads_every_id_while_giving_pages_back(trained, tmp_path, monkeypatch):
    # thousands of rows: the cache file holds many record batches, and each batch's mapped pages are given back
    # once copied (nlptune.utils.memory.MappedPages) while later batches, some on the same pages, are still read
    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path))
    words = ["the", "film", "was", "good", "dull", "cast", "a", "b", "c"]
    texts = [[" ".join(words[(i + j) % len(words)] for j in range(1 + i % 13)) for i in range(6000)]]
    first = _cached(trained, texts, 16, ["many"])
    released = []
    real = __import__("nlptune.utils.memory", fromlist=["MappedPages"]).MappedPages.release
    monkeypatch.setattr("nlptune.utils.memory.MappedPages.release",
                        lambda self, address, size: released.append(size) or real(self, address, size))
    second = _cached(trained, texts, 16, ["many"])
    assert _plain(second) == _plain(first) == _plain(encode(trained, texts, max_length=16, joint_pairs=False))
    assert len(released) > 6  # every chunk's buffers (offsets and ids) of several chunks


def test_corrupt_cache_entry_is_rebuilt(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path))
    texts = [["the film was good", "dull"]]
    first = _cached(trained, texts, 16, ["k"])
    (entry,) = (tmp_path / "tokenized").iterdir()
    for item in entry.glob("*.arrow"):
        item.write_bytes(b"garbage")
    assert _plain(_cached(trained, texts, 16, ["k"])) == _plain(first)


def test_a_batch_of_empty_texts_gets_one_padding_step():
    from nlptune.data.batching import Collator

    batch = Collator(pad_token_id=0, label_dtype=torch.long)([{"input_ids": [], "labels": 1}, {"input_ids": [], "labels": 0}])
    assert batch["input_ids"].shape == (2, 1) and not batch["attention_mask"].any()


def test_ragged_ids_round_trip_through_rows_and_arrow():
    import pyarrow as pa

    from nlptune.data.batching import RaggedIds

    rows = [[101, 7, 102], [], [101, 30000, 5, 102]]
    ragged = RaggedIds.from_rows(rows)
    assert len(ragged) == 3 and ragged.tolist() == rows and ragged.values.dtype.name == "int32"
    sliced = pa.chunked_array([pa.array([[9, 9], *rows])]).chunk(0).slice(1)  # a sliced array keeps its offsets
    assert RaggedIds.from_arrow(pa.chunked_array([sliced])).tolist() == rows


def _user_task_overrides(tmp_path, label="label"):
    rows = [{"review": t, "stars": l} for t, l in zip(generate("train")["text"][:40], generate("train")["label"])]
    write_delimited(tmp_path / "a.csv", rows)
    write_delimited(tmp_path / "b.csv", rows[:10])
    return ["task=text_classification", f"task.train_file={tmp_path / 'a.csv'}",
            f"task.validation_file={tmp_path / 'b.csv'}", "task.text_fields=[review]", f"task.label_field={label}"]


def test_prepare_data_reports_text_and_label_problems_together(tmp_path, monkeypatch):
    """A text a row cannot be trained on and a bad label further down are one message, not two passes."""
    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path / "cache"))
    rows = [{"text": "fine", "label": "pos"}, {"text": {"a": 1}, "label": "neg"}, {"text": "x", "label": None},
            {"text": "y", "label": "typo"}]
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = load_run_config(["task=text_classification", f"task.train_file={tmp_path / 'a.jsonl'}",
                           f"task.validation_file={tmp_path / 'b.jsonl'}", "task.label_names=[pos,neg]"])
    with pytest.raises(DataError) as err:
        prepare_data(run, pretrained=False)
    found = [(p.split, p.line, p.column) for p in err.value.problems]  # in file order, though found in two passes
    assert found == [(s, line, column) for s in ("train", "validation")
                     for line, column in ((2, "text"), (3, "label"), (4, "label"))], found


def test_files_named_on_the_command_line_win_over_the_demo_generator(tmp_path, monkeypatch):
    """`nlptune train task.train_file=... task.validation_file=...` without `task=`: the files, not the demo."""
    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path / "cache"))
    rows = [{"text": f"word{i} good", "label": "positive"} for i in range(6)] + \
           [{"text": f"word{i} bad", "label": "negative"} for i in range(5)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = load_run_config([f"task.train_file={tmp_path / 'a.jsonl'}", f"task.validation_file={tmp_path / 'a.jsonl'}"])
    assert run.task.generator == "demo"  # the demo task, its generator still configured
    data = prepare_data(run, pretrained=False)
    assert len(data.train) == len(data.validation) == 11 and data.sources["train"].endswith("a.jsonl")


def test_a_learnt_vocabulary_without_a_word_is_refused(tmp_path, monkeypatch):
    """Every word rarer than model.min_frequency: the model trained on [UNK] alone (a warning only), and its
    predict then said the tokenizer files were missing."""
    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path / "cache"))
    rows = [{"text": f"unique{i} words{i}", "label": "positive" if i % 2 else "negative"} for i in range(6)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = [f"task.train_file={tmp_path / 'a.jsonl'}", f"task.validation_file={tmp_path / 'a.jsonl'}"]
    with pytest.raises(DataError, match=r"(?s)holds no word: each occurs fewer than model.min_frequency=2.*"
                                        r"set model.min_frequency=1"):
        prepare_data(load_run_config(files), pretrained=False)
    assert len(prepare_data(load_run_config([*files, "model.min_frequency=1"]), pretrained=False).train) == 6


def test_prepare_data_scratch(tmp_path, monkeypatch):
    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path / "cache"))
    run = load_run_config(_user_task_overrides(tmp_path, "stars") + ["model.min_frequency=1"])
    data = prepare_data(run, pretrained=False)
    assert data.label_names == ["0", "1"]
    assert len(data.train) == 40 and len(data.validation) == 10
    assert set(data.data_sha256) == {"train", "validation"} and not data.joint_pairs
    item = data.train[0]
    assert item["labels"] in (0, 1)
    # bag/cnn/lstm/gru read no [CLS]/[SEP]: the encodings are the text's tokens only
    assert data.tokenizer.cls_token_id not in item["input_ids"] and data.tokenizer.sep_token_id not in item["input_ids"]
    assert data.train.lengths.tolist() == [len(ids) for ids in data.train.columns["input_ids"].tolist()]
    marked = prepare_data(load_run_config(_user_task_overrides(tmp_path, "stars") + ["model=transformer"]),
                          pretrained=False)
    ids = marked.train[0]["input_ids"]  # the transformer pools [CLS] at position 0
    assert ids[0] == marked.tokenizer.cls_token_id and ids[-1] == marked.tokenizer.sep_token_id


def test_prepare_data_missing_label_column(tmp_path, monkeypatch):
    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path / "cache"))
    run = load_run_config(_user_task_overrides(tmp_path, "label"))
    with pytest.raises(DataError, match="label column 'label' not found; columns present: review, stars"):
        prepare_data(run, pretrained=False)


def test_prepare_data_pretrained_pairs(tmp_path, monkeypatch, tiny_pretrained):
    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path / "cache"))
    rows = [{"sentence1": "the film", "sentence2": "a movie", "label": float(i % 5)} for i in range(12)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows[:4])
    run = load_run_config(["task=text_regression", "task.text_fields=[sentence1,sentence2]",
                           f"task.train_file={tmp_path / 'train.jsonl'}",
                           f"task.validation_file={tmp_path / 'validation.jsonl'}", "model=pretrained",
                           f"model.name_or_path={tiny_pretrained}"])
    data = prepare_data(run, pretrained=True)
    assert data.label_names is None and data.joint_pairs
    assert "input_ids_b" not in data.train.columns and "token_type_ids" in data.train.columns
    assert data.train.labels[:3] == [0.0, 1.0, 2.0]
