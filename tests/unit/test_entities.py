"""Scoring a tag per word (nlptune/kinds/entities.py): the metrics equal seqeval's on fixed cases, windows are put
back into whole sentences whatever their order, and the tokens kind's loss and predictions."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

from nlptune.kinds import get_kind
from nlptune.kinds.entities import has_entities, spans, tag_scores, word_outputs

TOKENS = get_kind("tokens")
CASES = {  # name -> (tag names, gold sentences, predicted sentences)
    "iob2": (["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
             [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-LOC", "I-LOC"], ["B-PER"]],
             [["B-PER", "I-PER", "O", "B-PER"], ["O", "I-LOC", "I-LOC"], ["O"]]),  # I-LOC after O: an entity
    "bioes": (["O", "B-ORG", "I-ORG", "E-ORG", "S-ORG", "S-PER"],
              [["B-ORG", "I-ORG", "E-ORG", "O", "S-PER"], ["S-ORG", "O"]],
              [["B-ORG", "E-ORG", "O", "O", "S-PER"], ["S-ORG", "S-PER"]]),
    "iob1": (["O", "I-MISC", "B-MISC", "I-PER"],
             [["I-MISC", "I-MISC", "B-MISC", "O", "I-PER"]],
             [["I-MISC", "I-MISC", "I-MISC", "O", "I-PER"]]),
}


def outputs_of(names, gold, pred) -> dict:
    index = {name: i for i, name in enumerate(names)}
    flat = lambda rows: np.array([index[t] for row in rows for t in row])  # noqa: E731
    return {"predictions": flat(pred), "references": flat(gold), "lengths": np.array([len(r) for r in gold])}


@pytest.mark.parametrize("case", sorted(CASES))
def test_metrics_equal_seqeval(case):
    names, gold, pred = CASES[case]
    scores = tag_scores(["f1", "precision", "recall", "accuracy"], outputs_of(names, gold, pred), names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert scores["f1"] == pytest.approx(f1_score(gold, pred))
        assert scores["precision"] == pytest.approx(precision_score(gold, pred))
        assert scores["recall"] == pytest.approx(recall_score(gold, pred))
        assert scores["accuracy"] == pytest.approx(accuracy_score(gold, pred))
        report = classification_report(gold, pred, output_dict=True, zero_division=0)
    for kind, row in report.items():
        if not kind.endswith(" avg"):
            assert scores[f"f1_{kind}"] == pytest.approx(row["f1-score"])


def test_tags_without_entities_are_scored_per_word():
    names = ["DET", "NOUN", "VERB"]
    assert not has_entities(names) and has_entities(["O", "B-X"]) and not has_entities(["O"])
    out = outputs_of(names, [["DET", "NOUN", "VERB"]], [["DET", "VERB", "VERB"]])
    scores = tag_scores(["f1", "accuracy"], out, names)
    assert scores["f1"] == scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["f1_DET"] == 1.0 and scores["f1_NOUN"] == 0.0 and scores["f1_VERB"] == pytest.approx(2 / 3)


def test_spans_read_entities_as_the_metrics_do():
    assert spans(["O", "I-PER", "I-PER", "B-LOC", "S-ORG"]) == [("PER", 1, 3), ("LOC", 3, 4), ("ORG", 4, 5)]


def test_windows_are_put_back_into_sentences_whatever_their_order():
    """Sentence 0 has 5 words in two windows ([CLS] w0 w1 w2 [SEP], owning w0-w1; then w1 w2 w3 w4, owning
    w2-w4, w1 as left context); sentence 1 is one window. Batches arrive shuffled, padded differently."""
    ignored = -100
    window_a = {"references": [ignored, 10, 11, 12, ignored], "predictions": [0, 20, 21, 22, 0],
                "row_id": 0, "word_offset": 0, "owned_from": 0, "owned_to": 2}
    window_b = {"references": [ignored, 11, 12, 13, 14, ignored], "predictions": [0, 31, 32, 33, 34, 0],
                "row_id": 0, "word_offset": 1, "owned_from": 1, "owned_to": 4}
    window_c = {"references": [ignored, 15, ignored], "predictions": [0, 25, 0],
                "row_id": 1, "word_offset": 0, "owned_from": 0, "owned_to": 1}

    def batch(*windows):
        width = max(len(w["references"]) for w in windows) + 1
        pad = lambda key: np.array([w[key] + [ignored] * (width - len(w[key])) for w in windows])  # noqa: E731
        return {"references": pad("references"), "predictions": pad("predictions"),
                **{k: np.array([w[k] for w in windows]) for k in ("row_id", "word_offset", "owned_from", "owned_to")}}

    out = word_outputs([batch(window_c, window_b), batch(window_a)])
    assert out["references"].tolist() == [10, 11, 12, 13, 14, 15]
    assert out["predictions"].tolist() == [20, 21, 32, 33, 34, 25]  # each word from the window that owns it
    assert out["lengths"].tolist() == [5, 1]


def test_loss_ignores_unlabelled_positions_and_the_crf_loss_allows_a_window_to_start_inside_an_entity():
    from nlptune.kinds.crf import allowed_transitions

    names = ["O", "B-PER", "I-PER"]
    logits = torch.randn(2, 4, 3)
    labels = torch.tensor([[0, 1, 2, -100], [2, 2, 0, -100]])  # row 1: a later window, starting inside PER
    plain = TOKENS.loss(logits, labels)
    assert plain == pytest.approx(torch.nn.functional.cross_entropy(logits[:, :3].reshape(-1, 3),
                                                                    labels[:, :3].reshape(-1)).item())
    allowed = torch.tensor(allowed_transitions(names, "iob2"))
    transitions = torch.zeros(5, 5).masked_fill(~allowed, -1e4)
    loss = TOKENS.loss(logits, labels, transitions=transitions)
    assert 0 < loss.item() < 20  # not the -1e4 ban of START -> I-PER
    decoded = TOKENS.predictions(logits, mask=torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0]]), transitions=transitions)
    for row in decoded[:, :3].tolist():  # decoding keeps every constraint: no I-PER first or after O
        assert row[0] != 2 and all(not (a == 0 and b == 2) for a, b in zip(row, row[1:]))


def test_the_last_batch_of_several_processes_scores_each_row_and_a_window_with_nothing_to_score_adds_nothing():
    """The loss of the last evaluation batch under several processes is taken per row (`_loss_sum`): a window whose
    words are all scored in another window (every label -100) gave a NaN row, which made the validation loss NaN."""
    from types import SimpleNamespace

    from nlptune.train.evaluation import _loss_sum

    gathered = []
    accelerator = SimpleNamespace(num_processes=2, gradient_state=SimpleNamespace(end_of_dataloader=True),
                                  gather_for_metrics=lambda rows: gathered.append(rows) or rows[:2])  # 1 repeated
    logits = torch.randn(3, 4, 3)
    labels = torch.tensor([[0, 1, 2, -100], [-100, -100, -100, -100], [0, 0, 0, -100]])
    total = _loss_sum(TOKENS, logits, labels, {}, accelerator)
    assert torch.isfinite(total) and gathered[0][1] == 0
    assert total.item() == pytest.approx(TOKENS.loss(logits[:1], labels[:1]).item())  # row 3 dropped as a repeat
    diverged = torch.full((3, 4, 3), float("nan"))
    assert torch.isnan(_loss_sum(TOKENS, diverged, labels, {}, accelerator))  # a diverged model stays NaN
