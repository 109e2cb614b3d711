"""Hardening of data loading: the right text or a clear refusal (file, line, fix), every problem of a pass at
once, bounded parsing, both split files checked before either is read, an offline hub that fails at once, and
recipe pins that identify a split exactly as the loader does."""
from __future__ import annotations

import csv
import json
import os
import socket
import time
from pathlib import Path

import pytest

from nlptune.config.schema import TaskConfig
from nlptune.data.errors import DataError, DataProblems
from nlptune.data.loading import load_raw_splits, read_file, read_lines
from nlptune.data.sources import split_identity
from nlptune.recipes.pins import data_pins, drift
from nlptune.utils import network

ROWS = [{"text": "a lovely little film", "label": 1}, {"text": "dull and far too long", "label": 0}]


def task(**overrides) -> TaskConfig:
    fields = dict(name="t", problem_type="classification", text_fields=("text",), label_field="label",
                  label_names=None, metrics=("accuracy",), main_metric="accuracy")
    fields.update(overrides)
    return TaskConfig(**fields)


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def jsonl(path: Path, rows) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


def problems_of(error: DataError) -> list[DataError]:
    return error.problems if isinstance(error, DataProblems) else [error]


# --------------------------------------------------------------------------------------------- TSV is TSV
@pytest.mark.parametrize("name, content", [
    ("rows.jsonl", '{"text": "a lovely film", "label": 1}\r{"text": "dull", "label": 0}\r'),
    ("rows.jsonl.gz", '{"text": "a lovely film", "label": 1}\r{"text": "dull", "label": 0}'),
    ("rows.json", '{"text": "a lovely film", "label": 1}\r{"text": "dull", "label": 0}\r'),
    ("rows.csv", "text,label\ra lovely film,1\rdull,0\r"),
    ("rows.tsv", "text\tlabel\ra lovely film\t1\rdull\t0"),
])
def test_a_file_of_carriage_return_line_ends_reads_a_row_a_line(tmp_path, name, content):
    """Classic Mac OS line ends (Excel for Mac's text exports): a JSON lines file was one malformed line."""
    import gzip

    data = content.encode()
    path = write(tmp_path / name, gzip.compress(data) if name.endswith(".gz") else data)
    raw = read_file(path, "train", ["text"])
    assert list(raw.columns["text"]) == ["a lovely film", "dull"]
    header = 1 if name.endswith((".csv", ".tsv")) else 0
    assert [raw.line_of(i) for i in (0, 1)] == [1 + header, 2 + header]


def test_text_lines_split_at_a_lone_carriage_return_only_without_newlines(tmp_path):
    from nlptune.data.readers import text_lines

    assert text_lines("a\rb\r") == ["a", "b", ""] and text_lines("a\r\nb\u2028c\n") == ["a\r", "b\u2028c", ""]
    assert read_lines(write(tmp_path / "in.txt", b"good\rbad\r"), "input", "--input") == ["good", "bad"]
    assert read_lines(write(tmp_path / "in2.txt", b"good\r\nbad\n"), "input", "--input") == ["good", "bad"]


def test_tsv_quotes_are_characters_and_rows_are_lines(tmp_path):
    path = write(tmp_path / "train.tsv", 'text\tlabel\n"unbalanced quote\t1\nplain\t0\nsay "hi" there\t1\n'
                                         'back\\slash \\t kept\t0\n')
    raw = read_file(path, "train")
    assert raw.columns["text"] == ['"unbalanced quote', "plain", 'say "hi" there', "back\\slash \\t kept"]
    assert raw.columns["label"] == ["1", "0", "1", "0"]
    assert raw.lines == [2, 3, 4, 5]


def test_tsv_row_with_a_tab_in_the_text_is_located(tmp_path):
    path = write(tmp_path / "train.tsv", 'text\tlabel\n"quoted\ttab"\t1\nfine\t0\n')
    with pytest.raises(DataError, match="row has 3 fields but the header has 2") as info:
        read_file(path, "train")
    assert info.value.line == 2 and "TSV field cannot hold a tab" in str(info.value)


# --------------------------------------------------------------------------------------------- CSV syntax
def test_csv_quote_never_closed_is_refused_not_swallowed(tmp_path):
    path = write(tmp_path / "train.csv", 'text,label\ngood,1\n"never closed,0\nbad,0\nfine,1\n')
    with pytest.raises(DataError, match="never closed") as info:
        read_file(path, "train")
    assert "line 3" in str(info.value) and str(path) in str(info.value)


def test_every_csv_problem_of_a_file_is_reported(tmp_path):
    path = write(tmp_path / "train.csv", 'text,label\ngood,1\n"a"b,0\nx,1,extra\nfine,1\nc,0,d\n')
    with pytest.raises(DataProblems) as info:
        read_file(path, "train")
    lines = [p.line for p in info.value.problems]
    assert lines == [3, 4, 6], str(info.value)
    assert "text follows a closing quote" in str(info.value) and "3 data problems" in str(info.value)


def test_blank_line_before_the_header_is_named(tmp_path):
    path = write(tmp_path / "train.csv", "\ntext,label\ngood,1\n")
    with pytest.raises(DataError, match="the first line is empty, but it must be the header") as info:
        read_file(path, "train")
    assert info.value.line == 1


def test_json_array_element_that_is_not_an_object_is_named_by_row(tmp_path):
    path = write(tmp_path / "train.json", json.dumps([ROWS[0], "just text", ROWS[1]]))
    with pytest.raises(DataError, match="the array holds a str, not an object") as info:
        read_file(path, "train")
    assert info.value.row == 2 and "row 2" in str(info.value)


# --------------------------------------------------------------------------------------------- duplicate names
@pytest.mark.parametrize("name, header", [("train.csv", "text,label,text\n"), ("train.tsv", "text\tlabel\ttext\n")])
def test_header_with_duplicate_columns_is_refused(tmp_path, name, header):
    delimiter = "\t" if name.endswith(".tsv") else ","
    path = write(tmp_path / name, header + delimiter.join(["real text", "1", "other text"]) + "\n")
    with pytest.raises(DataError, match="repeats column name") as info:
        read_file(path, "train")
    message = str(info.value)
    assert info.value.line == 1 and f"file {path}" in message and "'text' in columns 1, 3" in message


def test_unnamed_columns_are_ignored(tmp_path):
    path = write(tmp_path / "train.csv", ",text,label\n0,good,1\n1,bad,0\n")  # pandas' index column
    assert read_file(path, "train").columns == {"text": ["good", "bad"], "label": ["1", "0"]}


def test_jsonl_object_with_duplicate_keys_is_refused(tmp_path):
    path = write(tmp_path / "train.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 0, "text": "c"}\n')
    with pytest.raises(DataError, match="repeats the key") as info:
        read_file(path, "train")
    assert info.value.line == 2 and "'text'" in str(info.value)


def test_parquet_with_duplicate_columns_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["a", "b"]), pa.array([1, 0]), pa.array(["c", "d"])],
                                        names=["text", "label", "text"]), path)
    with pytest.raises(DataError, match="repeats column name.*'text'"):
        read_file(path, "train")


# --------------------------------------------------------------------------------------------- text columns
def test_text_column_holding_lists_objects_numbers_is_refused_per_row(tmp_path):
    rows = [{"text": "fine", "label": 1}, {"text": ["a", "b"], "label": 0}, {"text": None, "label": 1},
            {"text": {"t": "x"}, "label": 0}, {"text": 42, "label": 1}, {"text": True, "label": 0}]
    train = jsonl(tmp_path / "train.jsonl", rows)
    validation = jsonl(tmp_path / "validation.jsonl", ROWS)
    with pytest.raises(DataProblems) as info:
        load_raw_splits(task(train_file=str(train), validation_file=str(validation)))
    found = [(p.line, p.column, p.split) for p in info.value.problems]
    assert found == [(2, "text", "train"), (4, "text", "train"), (5, "text", "train"), (6, "text", "train")]
    message = str(info.value)
    for kind in ("a list", "an object", "a number", "a boolean"):
        assert kind in message
    assert "task.text_fields" in message


def test_json_row_lacking_the_text_key_is_refused_not_trained_as_empty(tmp_path):
    train = write(tmp_path / "train.jsonl", '{"text": "a", "label": 1}\n{"txet": "b", "label": 0}\n'
                                            '{"text": null, "label": 0}\n')
    with pytest.raises(DataError, match="the row has no 'text' key, though other rows have it") as info:
        load_raw_splits(task(train_file=str(train), validation_file=str(jsonl(tmp_path / "v.jsonl", ROWS))))
    assert [p.line for p in problems_of(info.value)] == [2]  # the explicit null on line 3 is an empty text


def test_parquet_list_column_used_as_text_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    train = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": [["a", "b"], ["c"]], "label": [1, 0]}), train)
    with pytest.raises(DataError, match="text column holds a list") as info:
        load_raw_splits(task(train_file=str(train), validation_file=str(jsonl(tmp_path / "v.jsonl", ROWS))))
    # one problem for the column's lists, at the first, not one per row
    assert [p.row for p in problems_of(info.value)] == [1] and "row 1, column text" in str(info.value)
    assert "(2 of the split's 2 rows alike: the first is named)" in str(info.value)


def test_many_problems_are_capped_with_a_count(tmp_path):
    train = jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 0}] + [{"label": i % 2} for i in range(30)])
    with pytest.raises(DataProblems) as info:
        read_file(train, "train", text_fields=["text"])
    assert len(info.value.problems) == 20 and info.value.extra == 10
    assert "30 data problems" in str(info.value) and "and 10 more" in str(info.value)


def test_column_map_never_replaces_an_existing_column(tmp_path):
    rows = [{"sentence": "s", "text": "t", "label": i} for i in (0, 1)]
    train, validation = jsonl(tmp_path / "train.jsonl", rows), jsonl(tmp_path / "validation.jsonl", rows)
    with pytest.raises(DataError, match="renames 'sentence' to 'text', but there is a column 'text'"):
        load_raw_splits(task(train_file=str(train), validation_file=str(validation),
                             column_map={"sentence": "text"}))


# --------------------------------------------------------------------------------------------- bounded parsing
@pytest.mark.parametrize("name", ["train.csv", "train.tsv"])
def test_field_larger_than_the_csv_default_limit_is_read(tmp_path, name):
    long_text = "word " * 60_000  # 300,000 characters, over csv's 131,072 default
    delimiter = "\t" if name.endswith(".tsv") else ","
    path = write(tmp_path / name, f"text{delimiter}label\n{long_text}{delimiter}1\nshort{delimiter}0\n")
    before = csv.field_size_limit()
    raw = read_file(path, "train")
    assert raw.columns["text"] == [long_text, "short"] and raw.lines == [2, 3]
    assert csv.field_size_limit() == before  # the process-wide limit is restored


def test_deeply_nested_json_line_is_a_data_error(tmp_path):
    path = write(tmp_path / "train.jsonl", json.dumps(ROWS[0]) + "\n" + "[" * 200_000 + "\n")
    with pytest.raises(DataError, match="malformed JSON line") as info:
        read_file(path, "train")
    assert info.value.line == 2


@pytest.mark.parametrize("content", [b"this is not parquet at all", b"PAR1" + b"\0" * 64])
def test_corrupt_parquet_is_a_data_error_naming_the_file(tmp_path, content):
    path = write(tmp_path / "train.parquet", content)
    with pytest.raises(DataError, match="not a readable parquet file") as info:
        read_file(path, "train")
    assert info.value.file == str(path) and "Traceback" not in str(info.value)


def test_truncated_parquet_is_a_data_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": ["a"] * 100, "label": [1] * 100}), path)
    write(path, path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="not a readable parquet file"):
        read_file(path, "train")


# --------------------------------------------------------------------------------------------- every problem
def test_non_utf8_lines_are_all_reported(tmp_path):
    path = write(tmp_path / "train.csv", b"text,label\ncaf\xe9,1\ngood,0\nna\xefve,1\n")
    with pytest.raises(DataProblems) as info:
        read_file(path, "train")
    assert [p.line for p in info.value.problems] == [2, 4] and "re-encode the file as UTF-8" in str(info.value)


def test_problems_of_both_splits_are_reported_together(tmp_path):
    train = write(tmp_path / "train.jsonl", '{"text": "a", "label": 1}\n{"text": \n{"text": "b", "label": 0}\n')
    validation = write(tmp_path / "validation.csv", "text,label\ngood,1\nbad,0,extra\n")
    with pytest.raises(DataProblems) as info:
        load_raw_splits(task(train_file=str(train), validation_file=str(validation)))
    assert [(p.split, p.line) for p in info.value.problems] == [("train", 2), ("validation", 3)]


def test_one_value_is_reported_once_when_two_checks_refuse_it():
    """The text pass and a tagger's label pass both look at a row's words: the user reads one problem per value."""
    from nlptune.data.errors import ProblemCollector

    problems = ProblemCollector()
    problems.add(DataError("word 2 is a number", fix="f", file="t.jsonl", split="train", line=2, column="tokens"))
    problems.add(DataError("a word is int", fix="f", file="t.jsonl", split="train", line=2, column="tokens"))
    problems.add(DataError("bad tag", fix="f", file="t.jsonl", split="train", line=2, column="tags"))
    problems.add(DataError("no file", fix="f", split="train"))
    problems.add(DataError("no file", fix="f", split="train"))  # unlocated problems are never merged
    assert len(problems) == 4 and "word 2 is a number" in str(problems.problems[0])
    assert [p.column for p in problems.problems] == ["tokens", "tags", None, None]


# --------------------------------------------------------------------------------------------- file checks
def test_both_files_are_checked_before_either_is_read(tmp_path):
    train = write(tmp_path / "train.jsonl", "{not json\n")  # would be a parse error if it were read
    folder = tmp_path / "validation.jsonl"
    folder.mkdir()
    with pytest.raises(DataError) as info:
        load_raw_splits(task(train_file=str(train), validation_file=str(folder)))
    assert [p.split for p in problems_of(info.value)] == ["validation"]
    assert "this is a folder, but a data file is expected" in str(info.value)
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataProblems) as info:
        load_raw_splits(task(train_file=str(missing), validation_file=str(folder)))
    message = str(info.value)
    assert f"file {missing}" in message and "file not found" in message and f"file {folder}" in message


def test_one_explicit_file_missing_and_the_other_unset(tmp_path):
    with pytest.raises(DataProblems) as info:
        load_raw_splits(task(train_file=str(tmp_path / "gone.jsonl")))
    message = str(info.value)
    assert "file not found" in message and "task.validation_file is not set" in message


def test_unreadable_file_is_reported_before_reading(tmp_path, monkeypatch):
    train, validation = jsonl(tmp_path / "train.jsonl", ROWS), jsonl(tmp_path / "validation.jsonl", ROWS)
    real_open = Path.open

    def deny(self, *args, **kwargs):  # running as root, chmod cannot take read permission away
        if self == validation:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    with pytest.raises(DataError, match="permission denied") as info:
        load_raw_splits(task(train_file=str(train), validation_file=str(validation)))
    assert info.value.file == str(validation) and "chmod" in str(info.value)


def test_os_error_while_reading_becomes_a_data_error(tmp_path, monkeypatch):
    path = jsonl(tmp_path / "train.jsonl", ROWS)

    def vanish(self, *args):
        raise FileNotFoundError(2, "No such file or directory", str(self))

    monkeypatch.setattr(Path, "read_bytes", vanish)  # a file read whole
    monkeypatch.setattr("nlptune.data.readers.HashingReader.readinto", vanish)  # a file parsed as it is read
    with pytest.raises(DataError, match="cannot read the file: No such file or directory") as info:
        read_file(path, "train")
    assert info.value.file == str(path)


def test_missing_task_folder_names_it_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("NLPTUNE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as info:
        load_raw_splits(task(name="sst2", data_dir=str(tmp_path), hub_id="nyu-mll/glue"))
    message = str(info.value)
    assert len(problems_of(info.value)) == 1
    assert f"file {tmp_path / 'sst2'}" in message and f"NLPTUNE_DATA_DIR={tmp_path}" in message
    assert "train.jsonl and validation.jsonl" in message and "unset NLPTUNE_DATA_DIR" in message


@pytest.mark.parametrize("make", ["missing", "file"])
def test_data_dir_that_is_missing_or_a_file(tmp_path, make):
    data_dir = tmp_path / "data"
    if make == "file":
        write(data_dir, "not a folder")
    with pytest.raises(DataError) as info:
        load_raw_splits(task(data_dir=str(data_dir)))
    message = str(info.value)
    assert f"task.data_dir={data_dir}" in message
    assert ("is a file, but a folder is expected" if make == "file" else "not found") in message


def test_data_dir_split_problems_are_reported_together(tmp_path):
    folder = tmp_path / "t"
    (folder / "train.jsonl").mkdir(parents=True)
    write(folder / "dev.jsonl", "")
    with pytest.raises(DataProblems) as info:
        load_raw_splits(task(data_dir=str(tmp_path)))
    message = str(info.value)
    assert "this is a folder" in message and "no validation file" in message and "dev.jsonl" in message


def test_tilde_in_a_configured_path_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    jsonl(tmp_path / "train.jsonl", ROWS)
    jsonl(tmp_path / "validation.jsonl", ROWS)
    splits = load_raw_splits(task(train_file="~/train.jsonl", validation_file="~/validation.jsonl"))
    assert splits["train"].source == str(tmp_path / "train.jsonl")


# --------------------------------------------------------------------------------------------- pins
def test_pins_identify_splits_as_the_loader_does(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    jsonl(folder / "train.jsonl", ROWS)
    write(folder / "validation.csv", "text,label\ngood,1\nbad,0\n")
    t = task(data_dir=str(tmp_path))
    loaded = load_raw_splits(t)
    plain = {"name": "t", "data_dir": str(tmp_path)}
    assert data_pins(plain) == {s: loaded[s].sha256 for s in ("train", "validation")}
    assert data_pins(plain) == {s: split_identity(t, s) for s in ("train", "validation")}
    demo = load_raw_splits(task(generator="demo"))
    assert data_pins({"generator": "demo"}) == {s: demo[s].sha256 for s in ("train", "validation")}


def test_a_data_folder_with_two_files_for_a_split_is_refused_not_guessed(tmp_path):
    """train.jsonl beside train.csv (a converted or edited copy) read the .jsonl without a word."""
    folder = tmp_path / "t"
    folder.mkdir()
    jsonl(folder / "train.jsonl", ROWS)
    write(folder / "train.csv", "text,label\ngood,1\n")
    jsonl(folder / "validation.jsonl", ROWS)
    write(folder / "validation.jsonl.gz", b"")
    with pytest.raises(DataError) as info:
        load_raw_splits(task(data_dir=str(tmp_path)))
    text = str(info.value)
    assert "2 files for the train split: train.jsonl, train.csv" in text
    assert "2 files for the validation split: validation.jsonl, validation.jsonl.gz" in text
    assert "task.train_file=PATH task.validation_file=PATH" in text


def test_hub_pin_taken_after_loading_matches_before_loading():
    plain = {"task": {"hub_id": "nyu-mll/glue", "hub_config": "sst2", "hub_revision": "abc"}}
    pins = {"data": {"train": "hub:nyu-mll/glue:sst2:abc:fingerprint123"}}
    assert drift(pins, plain) == []
    pins = {"data": {"train": "hub:nyu-mll/glue:sst2:other:fingerprint123"}}
    assert [d["pin"] for d in drift(pins, plain)] == ["pins.data.train"]


# --------------------------------------------------------------------------------------------- offline hub
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def fresh_probe():
    network.forget_hub_probe()
    yield
    network.forget_hub_probe()


@pytest.fixture
def online(monkeypatch, fresh_probe):
    """No offline switch and no proxy: whether the hub is reachable is up to the network probe."""
    from huggingface_hub import constants

    for name in network.OFFLINE_VARIABLES + PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return constants


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_variable_makes_the_hub_unreachable(monkeypatch, fresh_probe):
    for name in network.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    status = network.hub_status()
    assert not status.reachable and "HF_DATASETS_OFFLINE=1" in status.reason


def test_unreachable_endpoint_and_proxy_are_detected_quickly(monkeypatch, online):
    port = refused_port()
    monkeypatch.setattr(online, "ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    status = network.hub_status()
    assert not status.reachable and f"127.0.0.1:{port}" in status.reason
    assert time.monotonic() - start < 3
    monkeypatch.setattr(online, "ENDPOINT", "https://huggingface.co")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "")
    assert f"127.0.0.1:{port}" in network.hub_status().reason  # the proxy is what a request would reach


def test_the_hub_is_probed_once_per_process(monkeypatch, online):
    monkeypatch.setattr(online, "ENDPOINT", f"http://127.0.0.1:{refused_port()}")
    calls = []
    real = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert [network.hub_reachable(), network.hub_reachable(), network.hub_reachable()] == [False] * 3
    assert len(calls) == 1


def test_offline_hub_restores_the_libraries_settings():
    import datasets  # noqa: F401  (imported before the block, so its settings are patched and restored)
    from huggingface_hub import constants

    before = (constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE"))
    with network.offline_hub():
        assert constants.HF_HUB_OFFLINE and datasets.config.HF_HUB_OFFLINE and os.environ["HF_HUB_OFFLINE"] == "1"
    assert (constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE")) == before


def test_hub_task_without_local_data_fails_at_once_with_the_fix(monkeypatch, fresh_probe):
    import datasets  # noqa: F401  (its import time is not what is measured)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_raw_splits(task(name="sst2", hub_id="nlptune-tests/not-a-dataset", hub_config="sst2"))
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "task 'sst2' has no local data configured" in message and "offline mode is on (HF_HUB_OFFLINE=1)" in message
    assert "NLPTUNE_DATA_DIR=/path/to/data" in message and "sst2/train.jsonl" in message
    assert "task.train_file=PATH task.validation_file=PATH" in message
    assert "'nlptune-tests/not-a-dataset' (config sst2) is not in the local datasets cache" in message
    with pytest.raises(DataError) as info:  # a dataset without configs is named alone, not "(None)"
        load_raw_splits(task(name="sst2", hub_id="nlptune-tests/not-a-dataset", hub_config=None))
    assert "'nlptune-tests/not-a-dataset' is not in the local datasets cache" in str(info.value)


def test_a_hub_model_with_the_hub_unreachable_fails_at_once_naming_why(monkeypatch, online):
    """The sibling of a hub dataset: a pretrained hub id that is not cached, with no network, is refused in
    seconds (the cache is asked, not the hub, half a minute of retries)."""
    from nlptune.config.errors import NlptuneError
    from nlptune.data.tokenization import load_tokenizer

    monkeypatch.setattr(online, "ENDPOINT", f"http://127.0.0.1:{refused_port()}")
    start = time.monotonic()
    with pytest.raises(NlptuneError, match="not in the Hugging Face cache") as info:
        load_tokenizer("nlptune-tests/not-a-model")
    assert "unreachable" in str(info.value) and time.monotonic() - start < 10


# ------------------------------------------------------------------ plain text lines (inputs to predict)


def test_text_lines_are_split_at_newlines_only(tmp_path):
    path = write(tmp_path / "in.txt", "\ufefffirst text\r\nsecond\u2028still second\x0c too\n\nfourth\n")
    assert read_lines(path, "input", "--input") == ["first text", "second\u2028still second\x0c too", "", "fourth"]
    assert read_lines(write(tmp_path / "last.txt", "no newline at the end"), "input", "--input") == \
        ["no newline at the end"]


def test_text_lines_that_are_not_utf8_are_all_located(tmp_path):
    path = write(tmp_path / "in.txt", b"fine\nbad \xff here\nfine\nalso \xe9 bad\n")
    with pytest.raises(DataProblems) as raised:
        read_lines(path, "input", "--input")
    assert [p.line for p in raised.value.problems] == [2, 4]


@pytest.mark.parametrize("content, message", [("", "no lines of text"), (None, "file not found")])
def test_an_empty_or_missing_text_file_is_refused(tmp_path, content, message):
    path = tmp_path / "in.txt"
    if content is not None:
        write(path, content)
    with pytest.raises(DataError, match=message):
        read_lines(path, "input", "--input")


def test_a_file_given_outside_the_splits_reads_as_the_split_files_do_column_map_included(tmp_path):
    """`eval --file` / `predict --input` on a file with the source's column names: the run's task.column_map
    renames them as it did for training (the file was refused as missing its text column before)."""
    from nlptune.data.loading import read_task_file

    mapped = task(column_map={"review": "text", "stars": "label"})
    rows = write(tmp_path / "more.jsonl", '{"review": "good", "stars": "pos"}\n{"review": "bad", "stars": "neg"}\n')
    raw = read_task_file(rows, "eval", mapped, origin="--file")
    assert raw.columns == {"text": ["good", "bad"], "label": ["pos", "neg"]}
    clash = write(tmp_path / "clash.jsonl", '{"review": "good", "text": "other", "stars": "pos"}\n')
    with pytest.raises((DataError, DataProblems)) as info:  # a rename never replaces a column the file has
        read_task_file(clash, "eval", mapped, origin="--file")
    assert "renames 'review' to 'text', but there is a column 'text' already" in str(info.value)
