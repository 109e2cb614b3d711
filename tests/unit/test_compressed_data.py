"""Compressed data files (.gz, .bz2, .xz) read as the file inside them: every format, streamed or read whole, in a
data folder too; their identity is the digest of the compressed bytes; damaged data is one clear error."""
from __future__ import annotations

import bz2
import gzip
import json
import lzma

import pytest

from nlptune.config.schema import TaskConfig
from nlptune.data.errors import DataError
from nlptune.data.loading import load_raw_splits, read_file
from nlptune.utils.files import sha256_file

COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
ROWS = [{"text": "a fine film", "label": "pos"}, {"text": "dull, long", "label": "neg"},
        {"text": "line\nbreak", "label": "pos"}]


def as_csv(rows) -> bytes:
    quoted = ['"' + r["text"].replace('"', '""') + '"' for r in rows]
    return ("text,label\n" + "".join(f"{q},{r['label']}\n" for q, r in zip(quoted, rows))).encode()


FORMATS = {".jsonl": lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode(),
           ".json": lambda rows: json.dumps(rows).encode(),  # one array: read whole
           ".csv": as_csv,
           ".tsv": lambda rows: ("text\tlabel\n" + "".join(f"{r['text'].replace(chr(10), ' ')}\t{r['label']}\n"
                                                          for r in rows)).encode()}


def task(**fields) -> TaskConfig:
    base = dict(name="t", kind="single_label", text_fields=("text",), label_field="label", label_names=None,
                metrics=("accuracy",), main_metric="accuracy")
    return TaskConfig(**{**base, **fields})


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("compressed", sorted(COMPRESS))
def test_a_compressed_file_reads_as_the_file_inside_it(tmp_path, fmt, compressed):
    plain = tmp_path / f"data{fmt}"
    plain.write_bytes(FORMATS[fmt](ROWS))
    packed = tmp_path / f"data{fmt}{compressed}"
    packed.write_bytes(COMPRESS[compressed](plain.read_bytes()))
    inside, read = read_file(plain, "train"), read_file(packed, "train")
    assert read.columns == inside.columns and read.lines == inside.lines  # the lines are the inner file's
    assert read.sha256 == sha256_file(packed) != inside.sha256  # the identity: the file's own bytes


def test_parquet_and_conll_compressed(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    plain = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), plain)
    (tmp_path / "data.parquet.gz").write_bytes(gzip.compress(plain.read_bytes()))
    assert read_file(tmp_path / "data.parquet.gz", "train").columns == read_file(plain, "train").columns
    conll = tmp_path / "words.conll.xz"
    conll.write_bytes(lzma.compress(b"John B-PER\nruns O\n\nParis B-LOC\n"))
    tags = task(kind="tokens", text_fields=("tokens",), label_field="tags", metrics=("f1",), main_metric="f1")
    read = read_file(conll, "train", task=tags)
    assert list(read.columns["tokens"]) == [["John", "runs"], ["Paris"]] and read.lines == [1, 4]


def test_a_data_folder_finds_compressed_split_files(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "train.jsonl.gz").write_bytes(gzip.compress(FORMATS[".jsonl"](ROWS)))
    (folder / "dev.csv.bz2").write_bytes(bz2.compress(as_csv(ROWS)))
    with pytest.raises(DataError, match="task.validation_split=dev"):  # the compressed file's name is offered
        load_raw_splits(task(data_dir=str(tmp_path)))
    splits = load_raw_splits(task(data_dir=str(tmp_path), validation_split="dev"))
    assert splits["train"].source == str(folder / "train.jsonl.gz")
    assert splits["validation"].columns["label"] == ["pos", "neg", "pos"]


# ids, and mtime=0: the test's name must not hold the gzip header's time, or parallel workers that collect in
# different seconds see different tests (pytest-xdist then refuses to run)
@pytest.mark.parametrize("content, said", [
    (gzip.compress(FORMATS[".jsonl"](ROWS), mtime=0)[:30], "the gzip data is cut short"),
    (b"not gzip at all", "the gzip data is damaged"),
], ids=["cut-short", "not-gzip"])
def test_damaged_compressed_data_is_one_clear_error(tmp_path, content, said):
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=said) as info:
        read_file(path, "train")
    assert "compress the file again" in str(info.value) and str(path) in str(info.value)


def test_text_inside_that_is_not_utf8_is_reported_by_line(tmp_path):
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress("text,label\ncafé,pos\nnaïve,neg\n".encode("latin-1")))
    with pytest.raises(DataError) as info:
        read_file(path, "train")
    assert "UTF-8" in str(info.value) and "line 2" in str(info.value)


def test_an_unknown_format_inside_is_named_with_both_suffixes(tmp_path):
    path = tmp_path / "train.txt.gz"
    path.write_bytes(gzip.compress(b"hello\n"))
    with pytest.raises(DataError, match=r"unsupported file type '\.txt\.gz'") as info:
        read_file(path, "train")
    assert "each may be compressed: .gz, .bz2, .xz" in str(info.value)


def test_a_file_that_decompresses_past_the_memory_budget_is_refused_before_it_is_held(tmp_path, monkeypatch):
    from nlptune.data.compression import TooLarge, decompress

    inside = FORMATS[".json"](ROWS * 400)  # a JSON array: read whole, not streamed
    path = tmp_path / "train.json.gz"
    path.write_bytes(gzip.compress(inside))
    assert decompress(path.read_bytes(), path, limit=len(inside)) == inside
    with pytest.raises(TooLarge):
        decompress(path.read_bytes(), path, limit=len(inside) - 1)
    monkeypatch.setattr("nlptune.data.compression.memory_budget", lambda: 1000)
    with pytest.raises(DataError, match="the data inside the file is more than 0 MB uncompressed") as info:
        read_file(path, "train")
    assert "those are read as they decompress" in str(info.value)
