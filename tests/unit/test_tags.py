"""Tag schemes (nlptune/kinds/tags.py) and the label side of the tokens kind (nlptune/kinds/tokens.py)."""
from __future__ import annotations

import random

import pytest
from seqeval.metrics.sequence_labeling import get_entities

from nlptune.kinds import LabelProblem, get_kind
from nlptune.kinds.tags import entity_spans, ordered_names, parse_tag, repair, tag_problem

IOB = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BIOES = IOB + ["E-PER", "S-PER", "E-LOC", "S-LOC"]


def seqeval_spans(tags):
    return [(t, start, end + 1) for t, start, end in get_entities(list(tags))]


def test_parse_tag():
    assert parse_tag("B-PER") == ("B", "PER") and parse_tag("O") == ("O", "")
    assert parse_tag("I-ORG-X") == ("I", "ORG-X")
    with pytest.raises(ValueError):
        parse_tag("PER")


def test_tag_problem_per_scheme():
    assert tag_problem("E-PER", "iob2") and tag_problem("PER", "bioes") and tag_problem("B-", "iob1")
    assert tag_problem("E-PER", "bioes") is None and tag_problem("NN", "plain") is None


@pytest.mark.parametrize("scheme, alphabet", [("iob2", IOB), ("iob1", IOB), ("bioes", BIOES)])
def test_spans_equal_seqeval_and_repair_keeps_them_on_random_sequences(scheme, alphabet):
    rng = random.Random(scheme)
    for _ in range(3000):
        tags = [rng.choice(alphabet) for _ in range(rng.randint(0, 9))]
        spans = entity_spans(tags, scheme)
        assert spans == seqeval_spans(tags), tags
        fixed, changed = repair(tags, scheme)
        assert entity_spans(fixed, scheme) == spans and seqeval_spans(fixed) == spans
        assert changed == [i for i, (a, b) in enumerate(zip(tags, fixed)) if a != b]
        assert repair(fixed, scheme) == (fixed, [])  # canonical: a repaired sequence needs nothing more


def test_repairs_named_in_the_doc():
    assert repair(["O", "I-PER", "I-PER"], "iob2") == (["O", "B-PER", "I-PER"], [1])
    assert repair(["B-PER", "I-LOC"], "iob2") == (["B-PER", "B-LOC"], [1])
    assert repair(["B-PER", "O", "B-PER", "B-PER"], "iob1") == (["I-PER", "O", "I-PER", "B-PER"], [0, 2])
    assert repair(["B-PER", "O", "I-LOC", "I-LOC", "E-PER"], "bioes") == (
        ["S-PER", "O", "B-LOC", "E-LOC", "S-PER"], [0, 2, 3, 4])
    assert repair(["NN", "O"], "plain") == (["NN", "O"], [])
    assert entity_spans(["NN", "O", "NN"], "plain") == [("NN", 0, 1), ("NN", 2, 3)]


def test_ordered_names():
    assert ordered_names(["S-PER", "I-LOC", "O", "B-PER", "E-PER", "B-LOC", "I-PER", "O"]) == \
        ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]
    assert ordered_names(["VB", "NN", "DT"]) == ["DT", "NN", "VB"]


kind = get_kind("tokens")


def test_label_key_types_tags_and_refuses_what_is_no_tag_list():
    assert kind.label_key(["B-PER", "O"]) == ("B-PER", "O") and kind.label_key([3, "1", 0.0]) == (3, 1, 0)
    for value, text in (("B-PER O", "not a list"), ([], "empty sentence"), (["O", None], "tag 2"), (None, "not")):
        with pytest.raises(LabelProblem, match=text):
            kind.label_key(value)


def test_check_example_counts_and_repairs():
    assert kind.check_example([["a", "b"]], ("O", "I-PER"), "iob2") == (("O", "B-PER"), ["word 2 ('b'): I-PER -> B-PER"])
    assert kind.check_example([["a"]], (1,), "iob2", ("O", "B-PER")) == ((1,), [])
    with pytest.raises(LabelProblem, match="3 tokens but 2 tags"):
        kind.check_example([["a", "b", "c"]], ("O", "O"), "iob2")
    with pytest.raises(LabelProblem, match="not a list of words"):
        kind.check_example(["a b"], ("O", "O"), "iob2")
    with pytest.raises(LabelProblem, match="empty sentence"):
        kind.check_example([[]], ("O",), "iob2")
    with pytest.raises(LabelProblem, match="E-PER"):
        kind.check_example([["a"]], ("E-PER",), "iob2")
    with pytest.raises(LabelProblem, match="no tag names"):
        kind.check_example([["a"]], (1,), "iob2")


def test_names_encoder_and_training_checks():
    assert kind.label_names([("O", "I-PER"), ("B-PER",)], None) == ["O", "B-PER", "I-PER"]
    assert kind.label_names([], ["O", "B-X"]) == ["O", "B-X"]
    with pytest.raises(LabelProblem, match="more than once"):
        kind.label_names([], ["O", "O"])
    encode = kind.encoder(["O", "B-PER"], declared=True)
    assert encode(("B-PER", 0, 1)) == (1, 0, 1)
    with pytest.raises(LabelProblem, match="'I-PER' is not one of the task's tags 'O', 'B-PER'"):
        encode(("I-PER",))
    assert kind.check_training([(0, 1)], ["O", "B-PER", "I-PER"]) and not kind.check_training([(0, 1)], ["O", "B"])
    with pytest.raises(LabelProblem, match="only one tag"):
        kind.check_training([(0, 0)], ["O", "B-PER"])
    assert kind.stratify_keys([("O",)]) is None and kind.num_outputs(["O", "B-X"]) == 2
    assert kind.hf_auto_model == "AutoModelForTokenClassification" and kind.words_in_text_column
