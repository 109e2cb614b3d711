"""Reading tokens data: CoNLL columns, .conll data folders, JSON word lists, and every bad row named by line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlptune.config.schema import TaskConfig
from nlptune.data.errors import DataError, ProblemCollector
from nlptune.data.labels import split_examples
from nlptune.data.loading import load_raw_splits, read_file
from nlptune.data.conll import read_conll

TRAIN = "-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\n\n\nPeter NNP B-PER\nBlackburn NNP I-PER\n\n"


def task(tmp_path: Path | None = None, **fields) -> TaskConfig:
    base = dict(name="ner", kind="tokens", text_fields=("tokens",), label_field="ner_tags", label_names=None,
                metrics=("f1",), main_metric="f1", data_dir=str(tmp_path) if tmp_path else None)
    return TaskConfig(**{**base, **fields})


def conll(text: str, **options):
    problems = ProblemCollector()
    rows, lines = read_conll(text, Path("x.conll"), "train", problems, **options)
    return rows, lines, problems.problems


def test_sentences_docstart_and_blank_lines():
    rows, lines, problems = conll("\n\n" + TRAIN + "\n\n")
    assert not problems and lines == [5, 9]
    assert rows == [{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]},
                    {"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"]}]


def test_carriage_return_line_ends_alone_are_line_ends():
    rows, lines, problems = conll(TRAIN.replace("\n", "\r"))
    assert not problems and lines == [3, 7]
    assert rows[1] == {"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"]}


def test_a_line_of_invisible_characters_is_blank():
    """WNUT-17's validation file ends a sentence with a line of two byte-order marks: a blank line, not a word."""
    rows, _, problems = conll("Channel\tI-corporation\n!\tO\n\ufeff\t\ufeff\n\nThis\tO\n\u200b \n")
    assert not problems
    assert rows == [{"tokens": ["Channel", "!"], "tags": ["I-corporation", "O"]}, {"tokens": ["This"], "tags": ["O"]}]


def test_tabs_keep_spaces_in_a_word_and_crlf_is_a_line_end():
    rows, _, problems = conll("New York\tNNP\tB-LOC\r\nis\tVBZ\tO\r\n\r\n", tag_column=2, words_field="w",
                              tags_field="t")
    assert not problems and rows == [{"w": ["New York", "is"], "t": ["B-LOC", "O"]}]
    rows, _, _ = conll("a  x   B-X\nb x O", token_column=0, tag_column=-1)
    assert rows == [{"tokens": ["a", "b"], "tags": ["B-X", "O"]}]
    assert conll("a x\n", tags_field=None)[0] == [{"tokens": ["a"]}]


def test_too_few_columns_named_by_line():
    _, _, problems = conll("a O\nb\n\nc\td\ne O\n", tag_column=2)
    assert [p.line for p in problems] == [1, 2, 4, 5] and "too few" in str(problems[0])
    _, _, problems = conll("a O\nb\n")  # one column: the tag column -1 would be the word itself
    assert [p.line for p in problems] == [2]


CONLLU = ("# sent_id = 1\n# text = Bob went\n1\tBob\tPROPN\t_\tB-PER\n2\twent\tVERB\t_\tO\n\n"
          "# sent_id = 2\n1\tAnn\tPROPN\t_\tB-PER\n")


def test_conllu_comment_lines_are_skipped_and_its_id_column_is_not_taken_for_the_words():
    """A CoNLL-U file's "# sent_id = 1" was read as a word "#" tagged "1", and its ID column as the words."""
    rows, lines, problems = conll(CONLLU, token_column=1)
    assert not problems and lines == [3, 7]
    assert rows == [{"tokens": ["Bob", "went"], "tags": ["B-PER", "O"]}, {"tokens": ["Ann"], "tags": ["B-PER"]}]
    _, _, problems = conll(CONLLU)  # the default token column 0: CoNLL-U's word numbers
    assert len(problems) == 1 and "holds each word's number" in str(problems[0]) and "token_column=1" in str(
        problems[0])
    # a word "#" stays a word: inside a sentence, or in a file whose columns are not tab-separated
    rows, _, problems = conll("a\tO\n#\tO\n\n#\tO\n")
    assert not problems and rows == [{"tokens": ["a", "#"], "tags": ["O", "O"]}, {"tokens": ["#"], "tags": ["O"]}]
    rows, _, problems = conll("# NN O\nb NN O\n")
    assert not problems and rows == [{"tokens": ["#", "b"], "tags": ["O", "O"]}]
    assert not conll("1\tO\n\n1\tO\n2\tO\nx\tO\n")[2]  # numbers that are words: not every sentence 1..n


def write_conll_dir(tmp_path: Path, train: str, validation: str) -> None:
    (tmp_path / "ner").mkdir()
    (tmp_path / "ner" / "train.conll").write_text(train)
    (tmp_path / "ner" / "validation.conll").write_text(validation)


def test_a_conll_data_folder_loads_and_encodes(tmp_path):
    write_conll_dir(tmp_path, TRAIN, "Peter B-PER\nsays O\n")
    train, validation, names = split_examples(task(tmp_path), load_raw_splits(task(tmp_path)))
    assert names == ["O", "B-ORG", "B-PER", "I-PER"]
    assert train.texts == [[["EU", "rejects"], ["Peter", "Blackburn"]]] and train.labels == [(1, 0), (2, 3)]
    assert validation.labels == [(2, 0)]


def test_format_conll_reads_any_extension(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(TRAIN)
    raw = read_file(path, "train", task=task(format="conll"))
    assert raw.columns["ner_tags"][1] == ["B-PER", "I-PER"] and raw.lines == [3, 7]
    # JSON says what it is: a sweep's jsonl fold files of such a task are read as JSON
    rows = jsonl(tmp_path / "fold.jsonl", [{"tokens": ["EU"], "ner_tags": ["B-ORG"]}])
    assert read_file(rows, "train", task=task(format="conll")).columns["ner_tags"] == [["B-ORG"]]


def jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_int_tags_index_label_names(tmp_path):
    path = jsonl(tmp_path / "train.jsonl", [{"tokens": ["EU", "rejects"], "ner_tags": [1, 0]},
                                           {"tokens": ["Peter"], "ner_tags": [2]}])
    t = task(train_file=str(path), validation_file=str(path), label_names=("O", "B-ORG", "I-ORG"))
    train, _, names = split_examples(t, load_raw_splits(t))
    # the lone I-ORG is read as the start of an entity (conlleval) and repaired into B-ORG
    assert names == ["O", "B-ORG", "I-ORG"] and train.labels == [(1, 0), (1,)]


def test_integer_tags_without_names_are_one_problem_of_the_file_not_one_per_row(tmp_path):
    rows = [{"tokens": ["a", "b"], "ner_tags": [i % 3, 0]} for i in range(30)]
    error = bad(tmp_path, [GOOD] + rows + [{"tokens": ["a"], "ner_tags": ["B-Y", "O"]}])
    lines = [p for p in problems_of(error) if "is an integer" in p.headline and p.split == "train"]
    assert len(lines) == 1 and lines[0].line == 2 and "(30 of the split's 32 rows alike: the first is" in str(error)
    assert "1 tokens but 2 tags" in str(error)  # a row's own problem is still named by its line


def test_repairs_are_one_warning_per_split(tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr("nlptune.utils.console.warn", warnings.append)
    write_conll_dir(tmp_path, "a I-X\nb O\n\nc I-X\n", "a I-X\n")
    split_examples(task(tmp_path), load_raw_splits(task(tmp_path)))
    assert len(warnings) == 2 and warnings[0].startswith("train split: 2 tag(s)")
    assert "train.conll:4 (word 1 ('c'): I-X -> B-X)" in warnings[0] and "validation.conll:1" in warnings[1]


def bad(tmp_path: Path, rows, validation=None) -> DataError:
    train = jsonl(tmp_path / "train.jsonl", rows)
    valid = jsonl(tmp_path / "validation.jsonl", validation) if validation else train
    t = task(train_file=str(train), validation_file=str(valid))
    with pytest.raises(DataError) as info:
        split_examples(t, load_raw_splits(t))
    return info.value


GOOD = {"tokens": ["a", "b"], "ner_tags": ["B-X", "O"]}


@pytest.mark.parametrize("row, text, column", [
    ({"tokens": ["a", "b", "c"], "ner_tags": ["O", "B-X"]}, "3 tokens but 2 tags", "ner_tags"),
    ({"tokens": [], "ner_tags": []}, "empty sentence: the row has no tags", "ner_tags"),
    ({"tokens": [], "ner_tags": ["O"]}, "empty sentence: the row has no words", "tokens"),
    ({"tokens": ["a", 3], "ner_tags": ["O", "O"]}, "word 2 of the row is a number", "tokens"),
    ({"tokens": "a b", "ner_tags": ["O", "O"]}, "not a list of words", "tokens"),
    ({"tokens": ["a"], "ner_tags": ["E-X"]}, "E-X", "ner_tags"),
])
def test_bad_rows_name_file_line_and_column(tmp_path, row, text, column):
    error = bad(tmp_path, [GOOD, row])
    assert text in str(error) and error.line == 2 and error.file.endswith("train.jsonl")
    assert error.column == column


def test_unknown_tag_in_validation(tmp_path):
    error = bad(tmp_path, [GOOD], [GOOD, {"tokens": ["a"], "ner_tags": ["B-Y"]}])
    assert "'B-Y' is not one of the task's tags" in str(error) and error.line == 2 and error.split == "validation"


def test_too_few_columns_in_a_data_folder(tmp_path):
    write_conll_dir(tmp_path, TRAIN, "Peter B-PER\nsays\n")
    with pytest.raises(DataError) as info:
        load_raw_splits(task(tmp_path))
    assert info.value.line == 2 and info.value.file.endswith("validation.conll")


def test_hub_tag_ids_of_a_classlabel_sequence_are_named_as_the_features_say():
    """conll2003 on the hub holds ner_tags as ClassLabel ids: they read as the tag names, like a jsonl file."""
    import datasets

    from nlptune.data.hub import _named_tags

    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"]))})
    split = datasets.Dataset.from_dict({"tokens": [["Peter", "Blackburn", "said"]], "ner_tags": [[1, 2, 0]]},
                                       features=features)
    assert _named_tags(split, "ner_tags") == {"tokens": [["Peter", "Blackburn", "said"]],
                                              "ner_tags": [["B-PER", "I-PER", "O"]]}


# ---- a bad tag is named by its own line, not the line its sentence starts on --------------------------------
def conll_error(tmp_path: Path, train: str, validation: str, **fields) -> DataError:
    write_conll_dir(tmp_path, train, validation)
    with pytest.raises(DataError) as info:
        split_examples(task(tmp_path, **fields), load_raw_splits(task(tmp_path, **fields)))
    return info.value


def problems_of(error: DataError) -> list[DataError]:
    return getattr(error, "problems", [error])


@pytest.mark.parametrize("validation, line, text", [
    ("Peter B-PER\nsays O\nhi B-Y\n", 3, "word 3: tag 'B-Y' is not one of the task's tags"),  # not in the tag set
    ("a O\n\n\nx O\ny O\nz O\nw E-PER\n", 7, "word 4 ('w'): tag 'E-PER'"),  # no iob2 tag, in a later sentence
    ("a O\nb B-PER\nc 7\n", 3, "tag 7 (word 3) is an integer"),  # an integer tag without tag names
])
def test_a_bad_tag_is_named_by_its_own_line(tmp_path, validation, line, text):
    error = conll_error(tmp_path, TRAIN, validation)
    assert (error.line, error.split) == (line, "validation") and error.file.endswith("validation.conll")
    assert text in str(error) and f"line {line}," in str(error)


def test_every_bad_tag_of_a_file_is_named_by_its_line_at_once(tmp_path):
    validation = "-DOCSTART- O\n\nPeter B-PER\nsays O\nhi B-Y\n\nEU B-ORG\nrejects O\nit\tX-ORG\n"
    error = conll_error(tmp_path, TRAIN, validation)
    assert sorted((p.split, p.line) for p in problems_of(error)) == [("validation", 5), ("validation", 9)]


def test_a_jsonl_row_keeps_its_own_line_and_names_the_word(tmp_path):
    error = bad(tmp_path, [GOOD], [GOOD, {"tokens": ["a", "b", "c"], "ner_tags": ["O", "O", "B-Y"]}])
    assert error.line == 2 and "word 3: tag 'B-Y'" in str(error)


def test_repairs_name_the_line_of_each_repaired_word(tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr("nlptune.utils.console.warn", warnings.append)
    write_conll_dir(tmp_path, "a O\nb O\nc I-X\n\nd O\ne I-X\n", "a O\n")
    split_examples(task(tmp_path), load_raw_splits(task(tmp_path)))
    assert "train.conll:3 (word 3 ('c'): I-X -> B-X); " in warnings[0] and "train.conll:6 (word 2" in warnings[0]


def test_only_conll_files_hold_a_word_per_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(TRAIN)
    raw = read_file(path, "train", task=task(format="conll"))
    assert raw.word_lines and raw.line_of(1) == 7 and raw.line_of(1, 1) == 8
    rows = jsonl(tmp_path / "t.jsonl", [GOOD, GOOD])
    raw = read_file(rows, "train", task=task())
    assert not raw.word_lines and raw.line_of(1, 1) == 2


# ---- a tag holding a character nobody can see is refused, never a tag of its own ----------------------------
@pytest.mark.parametrize("tag, shown, named", [
    ("B-PER\x00", r"'B-PER\x00'", "U+0000 (a control character) at character 6"),
    ("B-PER\x07", r"'B-PER\x07'", "U+0007"),
    ("B-\u200bPER", r"'B-\u200bPER'", "U+200B ZERO WIDTH SPACE at character 3"),
    ("\ufeffO", r"'\ufeffO'", "U+FEFF"),
    ("B-\u00a0PER", r"'B-\xa0PER'", "U+00A0 NO-BREAK SPACE"),
    ("B-\u2028PER", r"'B-\u2028PER'", "U+2028 LINE SEPARATOR"),
    ("B-PER\u3164", "U+3164 HANGUL FILLER", "U+3164 HANGUL FILLER"),
])
def test_a_hidden_character_in_a_conll_tag_is_refused_with_its_line(tmp_path, tag, shown, named):
    error = conll_error(tmp_path, TRAIN + f"Mary NNP B-PER\nsaid VBD O\nPaul NNP {tag}\n", "Peter B-PER\n")
    assert (error.line, error.split) == (12, "train") and error.file.endswith("train.conll")
    assert shown in str(error) and named in str(error) and "invisible or control character" in str(error)
    assert "delete those characters from the tag" in str(error)


def test_hidden_characters_in_jsonl_tags_and_declared_tag_names_are_refused(tmp_path):
    error = bad(tmp_path, [GOOD, {"tokens": ["a", "b"], "ner_tags": ["O", "B-X\ud800"]}])
    assert error.line == 2 and r"tag 2 of the row: tag 'B-X\ud800'" in str(error) and "lone surrogate" in str(error)
    path = jsonl(tmp_path / "train.jsonl", [GOOD])
    t = task(train_file=str(path), validation_file=str(path), label_names=("O", "B-X\x00"))
    with pytest.raises(DataError, match=r"task.label_names entry 'B-X\\x00'.*U\+0000"):
        split_examples(t, load_raw_splits(t))


def test_predict_input_rows_of_words_are_checked_together(tmp_path):
    """A row without the words column was predicted as an empty sentence, and only the first bad row was named."""
    from nlptune.inference.predict import read_inputs

    path = tmp_path / "in.jsonl"
    rows = [{"tokens": ["Paris", "is"]}, {"tokens": ["a", 3]}, {"words": ["x"]}, {"tokens": "Berlin too"},
            {"tokens": 7}, {"tokens": []}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(DataError) as raised:
        read_inputs(str(path), ["tokens"], words=True, task=task())
    message = str(raised.value)
    assert "line 2" in message and "word 2 of the row is a number" in message
    assert "line 3" in message and "no 'tokens' key" in message
    assert "line 5" in message and "holds a number (7)" in message
    path.write_text("".join(json.dumps(row) + "\n" for row in rows[:1] + rows[3:4] + rows[5:]))
    assert read_inputs(str(path), ["tokens"], words=True, task=task()) == [[["Paris", "is"], "Berlin too", []]]
