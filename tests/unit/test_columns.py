"""Compact columns of a data file (nlptune/data/columns.py) and files parsed as they are read: they read back
exactly what rows of Python values held, and report the same problems at the same lines."""
from __future__ import annotations

import pytest

from nlptune.data import DataError, _encode_cached, columns
from nlptune.data.columns import Column, ColumnsBuilder
from nlptune.data.errors import ProblemCollector
from nlptune.data.loading import _read_whole, read_file


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(columns, "CHUNK_ROWS", 3)  # every test crosses chunk boundaries


def _built(rows: list[dict]) -> tuple[dict, Column, dict]:
    builder = ColumnsBuilder()
    for line, row in enumerate(rows, start=1):
        builder.add(row, line)
    return builder.finish()


VALUES = ["a", None, "b", "c", 7, "d", None, None, None, True, 1.0, 2 ** 70, "\ud800", ["x", 1], {"k": 1}, ""]


def test_a_column_reads_like_the_list_it_packs():
    values, _, _ = _built([{"v": v} for v in VALUES])
    column = values["v"]
    assert len(column) == len(VALUES) and column == VALUES and VALUES == column and list(column) == VALUES
    assert [type(v) for v in column] == [type(v) for v in VALUES]  # True stays a bool, 1.0 a float
    assert [column[i] for i in range(-len(VALUES), len(VALUES))] == VALUES + VALUES
    for start, stop in [(0, 16), (1, 5), (2, 9), (5, 5), (7, 100), (-4, -1)]:
        assert column[start:stop] == VALUES[start:stop] and isinstance(column[start:stop], Column)
    assert column[::3] == VALUES[::3]
    with pytest.raises(IndexError):
        column[len(VALUES)]
    assert not column.all_text() and Column([]) == [] and column != VALUES[:-1]


def test_a_text_column_reads_none_as_an_empty_text_and_gives_up_its_leading_rows():
    texts = ["a", None, "b", None, None, None, "c"]
    column = _built([{"t": t} for t in texts])[0]["t"]
    assert column.all_text() and column.texts() == ["a", "", "b", "", "", "", "c"] and column == texts
    with pytest.raises(TypeError, match="leading rows"):
        del column[1:]
    del column[:2]
    assert column == texts[2:]
    del column[:4]
    assert column == ["c"]
    del column[:]
    assert column == [] and len(column) == 0


def test_keys_a_row_lacks_or_first_has_late_are_none_and_recorded_as_absent():
    rows = [{"a": 1}, {"a": 2, "b": "x"}, {"a": 3}, {"b": "y"}, {"a": 5}, {"c": None}, {"a": 7, "b": "z"}]
    built, lines, absent = _built(rows)
    names = list(dict.fromkeys(key for row in rows for key in row))
    assert list(built) == names == ["a", "b", "c"]
    assert {name: list(built[name]) for name in names} == {name: [row.get(name) for row in rows] for name in names}
    assert absent == {name: [i for i, row in enumerate(rows) if name not in row] for name in names}
    assert lines == [1, 2, 3, 4, 5, 6, 7]


CLEAN_JSONL = ('\ufeff{"text": "café", "label": 1}\n\n{"text": null, "label": 0}\r\n{"label": 0}\n'
               '{"text": "x\u2028y", "label": true}\n{"text": "z", "label": 1, "extra": 2}\n'
               '{"text": "last", "label": 0}')
FILES = {
    "clean.jsonl": CLEAN_JSONL,
    "bad.jsonl": CLEAN_JSONL + '\n{bad json\n[1, 2]\n{"text": 5, "label": 1}\n{"a": 1, "a": 2}\n',
    "clean.csv": '\ufefftext,label,\r\n"quoted, with comma",1,a\r\n"two\nlines",0,b\r\nplain,1,\n,1,e',
    "bad.csv": 'text,label\n"a",1\nthree,fields,here\n"open quote,1\nafter,0\n',
    "bad-header.csv": 'text,text\na,1\n',
    "clean.tsv": 'text\tlabel\n"raw" quotes\t1\nback\\slash\t0\n\nlast\t1',
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_file_parsed_as_read_gives_what_it_gave_read_whole(tmp_path, name):
    from nlptune.data.loading import _read_streamed

    path = tmp_path / name
    path.write_bytes(FILES[name].encode())
    whole, streamed = ProblemCollector(), ProblemCollector()
    expected, got = _read_whole(path, "train", None, whole), _read_streamed(path, "train", streamed)
    assert [str(p) for p in streamed.problems] == [str(p) for p in whole.problems] and streamed.extra == whole.extra
    assert got[0] == expected[0] and list(got[1] or []) == list(expected[1] or []) and got[2:] == expected[2:]
    assert ("bad" in name) == bool(whole.problems)  # the files test what they are named for


def test_a_file_that_is_not_utf8_reports_every_bad_line_and_nothing_else(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "ok", "label": 1}\n{oops\n{"text": "\xff", "label": 0}\n{"text": "\xfe"}\n')
    with pytest.raises(DataError) as info:
        read_file(path, "train", ["text"])
    found = [str(p) for p in getattr(info.value, "problems", [info.value])]
    assert len(found) == 2 and all("not UTF-8" in p for p in found)
    assert "line 3" in found[0] and "line 4" in found[1]


def test_consumed_columns_are_empty_after_encoding(tmp_path):
    from nlptune.config.schema import TokenizerConfig
    from nlptune.data.demo import generate
    from nlptune.data.tokenization import encode, train_tokenizer

    cfg = TokenizerConfig(kind="wordlevel", vocab_size=100, min_frequency=1, lowercase=True, normalization="nfkc")
    tokenizer = train_tokenizer(iter(generate("train")["text"]), cfg, max_length=16)
    texts = generate("validation")["text"][:11]
    column = _built([{"t": t} for t in texts])[0]["t"]
    kept = encode(tokenizer, [texts], max_length=16, joint_pairs=False)
    consumed = encode(tokenizer, [column], max_length=16, joint_pairs=False, consume=True)
    assert consumed["input_ids"].tolist() == kept["input_ids"].tolist() and len(column) == 0


def test_a_cache_hit_releases_the_texts_before_reading_the_ids(tmp_path, monkeypatch):
    from nlptune.config.schema import TokenizerConfig
    from nlptune.data.tokenization import encode, train_tokenizer

    monkeypatch.setenv("NLPTUNE_CACHE_DIR", str(tmp_path))
    cfg = TokenizerConfig(kind="wordlevel", vocab_size=100, min_frequency=1, lowercase=True, normalization="nfkc")
    tokenizer = train_tokenizer(iter(["a b c", "b c d"]), cfg, max_length=8)
    released = []
    build = lambda: encode(tokenizer, [["a b", "c d e"]], max_length=8, joint_pairs=False)  # noqa: E731
    first = _encode_cached(tokenizer, build, ["k"], release=lambda: released.append("miss"))
    second = _encode_cached(tokenizer, build, ["k"], release=lambda: released.append("hit"))
    assert released == ["hit"] and second["input_ids"].tolist() == first["input_ids"].tolist()
    assert second["length"].tolist() == first["length"].tolist()
