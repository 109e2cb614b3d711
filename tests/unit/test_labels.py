"""Label typing (issue 12, "never train on the wrong text silently"): labels keep their type and spelling, every
label problem of a pass is reported together with its file and line, a training split with one class is refused
and declared classes without a training example are warned about."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nlptune.config.schema import TaskConfig
from nlptune.data.errors import DataError, DataProblems
from nlptune.data.labels import split_examples
from nlptune.data.loading import read_file


def task(**fields) -> TaskConfig:
    base = dict(name="t", kind="single_label", text_fields=("text",), label_field="label", label_names=None,
                metrics=("accuracy",), main_metric="accuracy")
    return TaskConfig(**{**base, **fields})


def jsonl(path: Path, labels) -> Path:
    path.write_text("".join(json.dumps({"text": f"text {i}", "label": v}) + "\n" for i, v in enumerate(labels)))
    return path


def csv(path: Path, labels) -> Path:
    path.write_text("text,label\n" + "".join(f"text {i},{v}\n" for i, v in enumerate(labels)))
    return path


def examples(t: TaskConfig, train: Path, validation: Path | None = None):
    raw = {"train": read_file(train, "train"), "validation": read_file(validation or train, "validation")}
    return split_examples(t, raw)


def test_json_booleans_stay_the_classes_true_and_false(tmp_path):
    train, _, names = examples(task(), jsonl(tmp_path / "train.jsonl", [True, False, True]))
    assert names == ["false", "true"] and train.labels == [1, 0, 1]
    # the same classes when a text file spells them
    _, validation, _ = examples(task(), jsonl(tmp_path / "a.jsonl", [True, False]), csv(tmp_path / "v.csv", ["true"]))
    assert validation.labels == [1]


def test_booleans_never_map_onto_declared_names_by_position(tmp_path):
    with pytest.raises(DataProblems) as info:
        examples(task(label_names=("negative", "positive")), jsonl(tmp_path / "train.jsonl", [True, False]),
                 jsonl(tmp_path / "validation.jsonl", [0, 1]))
    assert [p.line for p in info.value.problems] == [None, 1, 2]  # what the rows share, then each row
    assert "label 'true' is not one of the task's labels ['negative', 'positive']" in str(info.value)


def test_training_labels_the_declared_names_lack_are_summed_up_first_with_the_fix(tmp_path):
    # the common cause: a file with labels of its own on a task whose config declares others (the demo task's)
    train = jsonl(tmp_path / "train.jsonl", ["4", 5, "2", 5, "positive"] * 6)
    with pytest.raises(DataProblems) as info:
        examples(task(label_names=("negative", "positive")), train, jsonl(tmp_path / "validation.jsonl", ["x"]))
    first = info.value.problems[0]
    assert (first.file, first.split, first.line, first.column) == (str(train), "train", None, "label")
    assert "3 label(s) that task.label_names ['negative', 'positive'] does not: 2, 4, 5 (24 refusal(s)" in \
        str(first)
    assert "set task.label_names=null" in str(first)
    assert len(info.value.problems) == 20 and "and 6 more" in str(info.value)  # shown though the rows fill the list
    # a label only validation lacks, or a typo in one training row, is a row's own problem: nothing to sum up (the
    # validation file, the first one here, has its own summary, after the training row)
    with pytest.raises(DataError) as info:
        examples(task(label_names=("negative", "positive")),
                 jsonl(tmp_path / "t.jsonl", ["negative", "positive", "postive"] + ["negative"] * 9), train)
    assert "label_names=null" not in str(info.value) and info.value.line == 3
    assert "the validation file holds 3 label(s)" in str(info.value.problems[1])
    with pytest.raises(DataError) as info:
        examples(task(label_names=("negative", "positive")), jsonl(tmp_path / "t.jsonl", ["negative", "positive"]),
                 jsonl(tmp_path / "v.jsonl", ["neutral"]))
    assert "label_names=null" not in str(info.value) and info.value.line == 1


def test_validation_labels_the_training_labels_lack_are_summed_up_first(tmp_path):
    """A validation file labelled with other names than the training file (0/1 against neg/pos): one problem leads
    with both sets and the fix, before the rows; with declared names it names them (and keeps them)."""
    train = jsonl(tmp_path / "train.jsonl", [0, 1] * 5)
    validation = jsonl(tmp_path / "validation.jsonl", ["neg", "pos", "pos", 1])
    with pytest.raises(DataProblems) as info:
        examples(task(), train, validation)
    first = info.value.problems[0]
    assert (first.file, first.split, first.line) == (str(validation), "validation", None)
    assert "the validation file holds 2 label(s) that the training file does not: 'neg', 'pos' (the training " \
        "labels: '0', '1'; 3 refusal(s)" in str(first)
    assert "label both files with the same names" in str(first) and len(info.value.problems) == 4
    with pytest.raises(DataProblems) as info:
        examples(task(label_names=("neg", "pos")), jsonl(tmp_path / "t.jsonl", ["neg", "pos"] * 3),
                 jsonl(tmp_path / "v.jsonl", ["negative", "positive", "pos"]))
    first = str(info.value.problems[0])
    assert "the validation file holds 2 label(s) that task.label_names ['neg', 'pos'] does not" in first
    assert "label_names=null" not in first  # the declared names stay: the validation file is the one to change
    # training rows refused: the training labels are not all known, so validation's are not summed up against them
    with pytest.raises(DataProblems) as info:
        examples(task(), jsonl(tmp_path / "t2.jsonl", [0, 1, 0.5, 0.5, 0.5]), validation)
    assert not any("the validation file holds" in str(p) for p in info.value.problems)


def test_any_string_is_a_class_name_and_fractional_text_stays_a_name(tmp_path):
    train, _, names = examples(task(), csv(tmp_path / "train.csv", ["0.5", "1.5", "0.5", "n/a", "1e3"]))
    assert names == ["0.5", "1.5", "1e3", "n/a"] and train.labels == [0, 1, 0, 3, 2]


def test_a_fractional_json_number_is_refused_with_its_place(tmp_path):
    path = jsonl(tmp_path / "train.jsonl", [0, 1, 0.5])
    with pytest.raises(DataError) as info:
        examples(task(), path, jsonl(tmp_path / "validation.jsonl", [0, 1]))
    assert (info.value.file, info.value.split, info.value.line, info.value.column) == (str(path), "train", 3, "label")
    assert "0.5 is a fractional number" in str(info.value) and "task.kind=regression" in str(info.value)


def test_integer_and_string_spellings_of_one_class_do_not_collide(tmp_path):
    train, validation, names = examples(task(), jsonl(tmp_path / "train.jsonl", [1, "1", "a", 1.0, "b"]),
                                        csv(tmp_path / "validation.csv", ["1", "b"]))
    assert names == ["1", "a", "b"] and train.labels == [0, 0, 1, 0, 2] and validation.labels == [0, 2]


def test_every_label_problem_of_both_splits_is_reported_together(tmp_path):
    train = jsonl(tmp_path / "train.jsonl", ["a", None, "b", 0.25, "a", [1]])
    validation = jsonl(tmp_path / "validation.jsonl", ["a", "c"])
    with pytest.raises(DataProblems) as info:
        examples(task(), train, validation)
    found = [(p.split, p.line) for p in info.value.problems]
    assert found == [("train", 2), ("train", 4), ("train", 6), ("validation", 2)]
    message = str(info.value)
    assert message.startswith("4 data problems") and "unsupported type list" in message
    assert "label 'c' is not one of the task's labels ['a', 'b'] (it does not occur in train)" in message


def test_regression_problems_are_reported_together(tmp_path):
    t = task(kind="regression", metrics=("pearson",), main_metric="pearson")
    with pytest.raises(DataProblems) as info:
        examples(t, csv(tmp_path / "train.csv", ["1.5", "high", "2", "", "nan"]), csv(tmp_path / "v.csv", [1, 2]))
    assert [p.line for p in info.value.problems] == [3, 5, 6]


def test_constant_regression_scores_are_refused_where_nothing_can_be_learnt_or_correlated(tmp_path):
    correlated = task(kind="regression", metrics=("pearson", "spearman", "mse"), main_metric="pearson")
    varied, constant = jsonl(tmp_path / "v.jsonl", [1.0, 2.5]), jsonl(tmp_path / "c.jsonl", [1.0, 1.0, 1])
    with pytest.raises(DataProblems) as info:  # both splits' problems at once
        examples(correlated, constant, constant)
    train, validation = info.value.problems
    assert train.split == "train" and "training scores are all 1.0: there is nothing to learn" in str(train)
    assert validation.split == "validation" and validation.file == str(constant)
    assert "pearson and spearman are undefined" in str(validation) and "task.main_metric=mse" in str(validation)
    examples(task(kind="regression", metrics=("mse",), main_metric="mse"), varied, constant)  # an error is defined


@pytest.mark.parametrize("declared", [None, ("negative", "positive"), ("0", "1")])
def test_a_single_training_class_is_refused_whatever_is_declared(tmp_path, declared):
    with pytest.raises(DataError, match="only one class") as info:
        examples(task(label_names=declared), jsonl(tmp_path / "train.jsonl", [1, 1, 1]))
    assert info.value.split == "train" and "at least two classes" in str(info.value)


def test_only_the_training_rows_used_count(tmp_path):
    path = jsonl(tmp_path / "train.jsonl", ["a", "a", "b"])
    with pytest.raises(DataError, match=r"only one class \('a'\)"):  # task.max_train_samples=2 keeps two 'a'
        examples(task(max_train_samples=2), path)


def test_declared_names_without_training_examples_are_warned_about(tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr("nlptune.utils.console.warn", warnings.append)
    train, _, names = examples(task(label_names=("neg", "neutral", "pos")), jsonl(tmp_path / "t.jsonl", [0, 2, 2]))
    assert names == ["neg", "neutral", "pos"] and train.labels == [0, 2, 2]
    (warning,) = warnings
    assert "'neutral'" in warning and "no example in the training rows" in warning and "t.jsonl" in warning


# ---- a class name holding a character nobody can see is refused, never a class of its own ---------------------
HIDDEN = [("pos\x00", r"'pos\x00'", "U+0000 (a control character) at character 4"),
          ("pos\x07", r"'pos\x07'", "U+0007"),
          ("p\x7fos", r"'p\x7fos'", "U+007F"),
          ("pos\u200b", r"'pos\u200b'", "U+200B ZERO WIDTH SPACE"),
          ("\ufeffpos", r"'\ufeffpos'", "U+FEFF"),
          ("po\u00ads", r"'po\xads'", "U+00AD SOFT HYPHEN"),
          ("pos\u202e", r"'pos\u202e'", "U+202E RIGHT-TO-LEFT OVERRIDE"),
          ("very\u00a0pos", r"'very\xa0pos'", "U+00A0 NO-BREAK SPACE"),
          ("pos\x1f", r"'pos\x1f'", "U+001F"),  # a control character str.strip would silently drop
          ("pos\ufe0f", "U+FE0F VARIATION SELECTOR-16 at character 4", "U+FE0F"),  # repr shows it as is
          ("pos\ufffd", "U+FFFD REPLACEMENT CHARACTER", "U+FFFD REPLACEMENT CHARACTER"),
          ("pos\ud800", r"'pos\ud800'", "U+D800 (a lone surrogate)")]


@pytest.mark.parametrize("label, shown, named", HIDDEN)
def test_a_hidden_character_in_a_jsonl_class_name_is_refused_with_its_place(tmp_path, label, shown, named):
    path = jsonl(tmp_path / "train.jsonl", ["pos", "neg", label])
    with pytest.raises(DataError) as info:
        examples(task(), path)
    err = info.value
    assert (err.file, err.split, err.line, err.column) == (str(path), "train", 3, "label")
    assert shown in str(err) and named in str(err) and "delete those characters from the label" in str(err)


@pytest.mark.parametrize("suffix", ["csv", "tsv"])
def test_hidden_characters_in_csv_and_tsv_class_names_are_all_reported_together(tmp_path, suffix):
    separator = "," if suffix == "csv" else "\t"
    path = tmp_path / f"train.{suffix}"
    path.write_text(f"text{separator}label\n" + "".join(f"t{i}{separator}{label}\n" for i, label in
                                                        enumerate(["pos", "pos\x00", "neg", "neg\u200b\u200b"])))
    with pytest.raises(DataProblems) as info:
        examples(task(), path)
    assert [(p.split, p.line) for p in info.value.problems] == [("train", 3), ("train", 5), ("validation", 3),
                                                                ("validation", 5)]
    assert "holds 2 invisible or control character(s)" in str(info.value.problems[1])


def test_visible_names_are_kept_as_written(tmp_path):
    """Emoji with their joiners and selectors, Persian with its zero-width non-joiner, accents, and whitespace at
    the ends (stripped) are names like any other."""
    labels = ["\u2764\ufe0f", "\U0001f469\u200d\U0001f4bb", "\u0645\u06cc\u200c\u0634", "caf\u00e9", "\tneg\u00a0 ",
              "neg", "a b"]
    train, _, names = examples(task(), jsonl(tmp_path / "train.jsonl", labels))
    assert names == sorted(set(label.strip() for label in labels)) and train.labels[4] == train.labels[5]


def test_two_spellings_of_one_name_are_one_class(tmp_path):
    """"café" with a precomposed é and with e + a combining accent look alike: one class, written in NFC, in the
    training rows, in validation and in the declared names alike."""
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    train, validation, names = examples(task(label_names=(decomposed, "tea")),
                                        jsonl(tmp_path / "train.jsonl", [composed, decomposed, "tea"]),
                                        jsonl(tmp_path / "validation.jsonl", [decomposed, "tea"]))
    assert names == [composed, "tea"] and train.labels == [0, 0, 1] and validation.labels == [0, 1]


def test_a_declared_class_name_with_a_hidden_character_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"task.label_names entry 'pos\\u200b'.*U\+200B"):
        examples(task(label_names=("neg", "pos\u200b")), jsonl(tmp_path / "train.jsonl", ["neg", "pos"]))


def test_duplicate_declared_names_are_refused(tmp_path):
    with pytest.raises(DataError, match="task.label_names lists '1' more than once"):
        examples(task(label_names=("1", "2", "1")), jsonl(tmp_path / "train.jsonl", [1, 2]))


def test_cli_reports_label_problems_at_once_and_writes_nothing(tmp_path):
    train = csv(tmp_path / "train.csv", ["pos", "neg", "", "pos", "neg\x00"])
    validation = jsonl(tmp_path / "validation.jsonl", ["pos", 0.5])
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "nlptune", "train", "task=text_classification", f"task.train_file={train}",
         f"task.validation_file={validation}", f"output_dir={out}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "3 data problems" in output and "line 4" in output and "line 2" in output
    assert "line 6" in output and r"'neg\x00'" in output and "U+0000" in output
    assert "Traceback" not in output and not out.exists()


def test_an_unknown_label_lists_a_dozen_of_many_names():
    from nlptune.kinds import get_kind

    encode = get_kind("single_label").encoder([f"class{i}" for i in range(30)], False)
    with pytest.raises(ValueError) as info:
        encode("a whole sentence from the text column")
    assert "'class11' and 18 more] (it does not occur in train)" in str(info.value)
    assert "class12" not in str(info.value)


def test_a_fix_shared_by_problems_in_a_row_is_given_once_after_them():
    from nlptune.data.errors import DataProblems

    problems = [DataError(f"label {i} is unknown", fix="fix the label", file="f.csv", line=i) for i in (2, 3, 4)]
    problems.insert(1, DataError("the text is a list", fix="write it as a string", file="f.csv", line=2))
    lines = str(DataProblems(problems)).splitlines()
    assert lines == ["4 data problems:",
                     "data error (file f.csv, line 2): label 2 is unknown", "  fix: fix the label",
                     "data error (file f.csv, line 2): the text is a list", "  fix: write it as a string",
                     "data error (file f.csv, line 3): label 3 is unknown",
                     "data error (file f.csv, line 4): label 4 is unknown",
                     "  fix: fix the label (for each of the 2 above)"]


def test_every_missing_column_is_named_at_once_and_a_headerless_file_is_recognised(tmp_path):
    t = task(text_fields=("review",), label_field="stars")
    headerless = tmp_path / "train.csv"
    headerless.write_text("a fine film with a great cast,4\nutterly dull,1\n", encoding="utf-8")
    with pytest.raises(DataProblems) as info:
        examples(t, headerless)
    assert [p.column for p in info.value.problems] == ["review", "stars"]
    message = str(info.value)
    assert "the first line looks like a row of data, not a header" in message
    assert "give the file a first line naming its columns in their order (e.g. review,stars)" in message
    # a header of other names: both named, no guess about a header
    named = csv(tmp_path / "other.csv", ["a", "b"])
    with pytest.raises(DataProblems) as info:
        examples(task(text_fields=("sentence",), label_field="gold"), named)
    assert [p.column for p in info.value.problems] == ["sentence", "gold"]
    assert "looks like a row of data" not in str(info.value) and "columns present: text, label" in str(info.value)


def test_validation_rows_that_are_training_rows_are_warned_about(tmp_path, monkeypatch):
    from nlptune.data.labels import warn_if_validation_in_train

    said = []
    monkeypatch.setattr("nlptune.utils.console.warn", said.append)
    train = jsonl(tmp_path / "train.jsonl", ["a", "b"] * 20)  # texts "text 0" .. "text 39"
    same = examples(task(), train, train)
    assert warn_if_validation_in_train(same[0], same[1]) == 40 and "every validation row is also in" in said[-1]
    # 2 of 40 rows (5 %): said; 1 of 40: a public split's few shared rows, not said
    for shared, warned in ((2, True), (1, False)):
        path = tmp_path / f"v{shared}.jsonl"
        path.write_text("".join(json.dumps({"text": f"text {i}" if i < shared else f"new {i}", "label": "a"}) + "\n"
                                for i in range(40)))
        said.clear()
        got = examples(task(), train, path)
        assert warn_if_validation_in_train(got[0], got[1]) == shared and bool(said) == warned
        assert not said or "2 of the 40 validation rows are also in the training data" in said[0]


def test_classes_that_differ_only_in_case_are_warned_about(tmp_path, capsys):
    """'pos' and 'Pos' trained silently as two classes."""
    labels = ["pos", "Pos", "neg", "NEG", "other"]
    _, _, names = examples(task(), jsonl(tmp_path / "train.jsonl", labels))
    assert sorted(names) == sorted(labels)  # as written: the warning changes nothing
    said = " ".join(capsys.readouterr().err.split())
    assert "differ only in case or spaces" in said and "'Pos', 'pos'" in said and "'NEG', 'neg'" in said
    examples(task(label_names=("pos", "Pos")), jsonl(tmp_path / "train.jsonl", ["pos", "Pos"]))
    assert "differ only" not in capsys.readouterr().err  # declared names are as meant


def test_classes_that_join_other_classes_are_warned_about(tmp_path, capsys):
    """A row labelled 'pos|neg' (two labels written as one) trained a third class without a word."""
    labels = ["pos", "neg"] * 10 + ["pos|neg", "n/a"]
    _, _, names = examples(task(), jsonl(tmp_path / "train.jsonl", labels))
    assert "pos|neg" in names  # as written: the warning changes nothing
    said = " ".join(capsys.readouterr().err.split())
    assert "classes that join other classes ('pos|neg' = 'pos' + 'neg')" in said and "n/a" not in said


def test_labels_written_both_as_ids_and_as_names_are_warned_about(tmp_path, capsys):
    """A file whose rows say "pos"/"neg" but a few say 1 trained a third class named "1" without a word."""
    labels = ["pos", "neg"] * 10 + [1, 1.0]
    _, _, names = examples(task(), jsonl(tmp_path / "train.jsonl", labels))
    assert names == ["1", "neg", "pos"]  # as written: the warning changes nothing
    said = " ".join(capsys.readouterr().err.split())
    assert "mix integer ids and class names: 2 row(s) with ids (1), 20 with names ('neg', 'pos')" in said
    assert "the ids are on line(s) 21, 22" in said and "task.label_names" in said
    multi = task(kind="multi_label", metrics=("macro_f1",), main_metric="macro_f1")
    examples(multi, jsonl(tmp_path / "m.jsonl", [["joy"], [2, "joy"], []] * 3))
    assert "3 row(s) with ids (2), 6 with names ('joy')" in " ".join(capsys.readouterr().err.split())
    for ok, declared in (([0, 1, "1"] * 4, None), ([0, 1, "positive"], ("negative", "positive"))):
        examples(task(label_names=declared), jsonl(tmp_path / "ok.jsonl", ok))  # "1" is the id 1; names declared
        assert "mix integer" not in capsys.readouterr().err
