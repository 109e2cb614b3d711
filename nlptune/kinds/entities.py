"""Scoring a tag per word: windows put back into sentences, then entity-level metrics as conlleval counts them.

Evaluation sees windows (nlptune/data/words.py): each holds the tag ids of its words at their first sub-token
(every other position holds -100) and says which of its words it owns. `word_outputs` puts the owned words back
into their sentences, so every word is scored exactly once whatever the windowing; `tag_scores` computes the
metrics on whole sentences with seqeval (the library Hugging Face's own seqeval metric wraps): entity-level micro
precision/recall/F1 and the F1 of each entity type. Tags without an entity scheme (part of speech: "NN", "VB")
have no entities: each word is then scored on its own, per tag.
"""
from __future__ import annotations

import re
import warnings
from typing import Sequence

import numpy as np

IGNORED = -100
# a tag of an entity scheme (IOB1, IOB2, BIOES): O, or a prefix and the entity type
_ENTITY_TAG = re.compile(r"O|[BIES]-.+")


def word_outputs(parts: list[dict]) -> dict[str, np.ndarray]:
    """Per-word values of whole sentences (in sentence order, concatenated) and the sentences' ``lengths``, from
    batches of windows: ``references`` (a tag id at the first sub-token of every word, -100 elsewhere), the
    ROW_FIELDS that say where each window sits, and any other per-position arrays (``predictions``, scores...)."""
    pieces: dict[int, list] = {}
    for part in parts:
        values = [name for name, array in part.items() if np.ndim(array) == 2]  # references among them
        for i, gold in enumerate(part["references"]):
            words = gold != IGNORED  # the first sub-token of every word of the window
            start, end = int(part["owned_from"][i]), int(part["owned_to"][i])
            offset = int(part["word_offset"][i]) + start
            pieces.setdefault(int(part["row_id"][i]), []).append(
                (offset, {name: part[name][i][words][start:end] for name in values}))
    rows = [sorted(pieces[row], key=lambda piece: piece[0]) for row in sorted(pieces)]
    names = list(rows[0][0][1]) if rows else ["predictions", "references"]
    out = {name: np.concatenate([piece[1][name] for row in rows for piece in row]) if rows else np.zeros(0)
           for name in names}
    out["lengths"] = np.asarray([sum(len(piece[1]["references"]) for piece in row) for row in rows], dtype=np.int64)
    return out


def sentences(values: np.ndarray, lengths: np.ndarray, names: Sequence[str]) -> list[list[str]]:
    """Flat per-word tag ids -> one list of tag names per sentence."""
    ends = np.cumsum(lengths)
    return [[names[int(v)] for v in values[end - length: end]] for end, length in zip(ends, lengths)]


def spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities of one sentence's tags as (type, first word, end word exclusive), read exactly as the metrics
    read them (seqeval's default, conlleval-compatible mode: an I-X after O starts an entity)."""
    from seqeval.metrics.sequence_labeling import get_entities

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [(kind, start, end + 1) for kind, start, end in get_entities(list(tags))]


def has_entities(names: Sequence[str]) -> bool:
    """Whether ``names`` are the tags of an entity scheme (O, B-X, I-X, E-X, S-X) and name at least one type."""
    return all(_ENTITY_TAG.fullmatch(name) for name in names) and any(name != "O" for name in names)


def tag_scores(metrics: Sequence[str], outputs: dict, names: Sequence[str]) -> dict[str, float]:
    """``metrics`` (f1, precision, recall: entity-level micro averages; accuracy: per word) and ``f1_<TYPE>``
    for every entity type (every tag, for tags without a scheme) of the validation outputs."""
    gold, pred = outputs["references"], outputs["predictions"]
    accuracy = float(np.mean(gold == pred)) if len(gold) else 0.0
    if has_entities(names):
        report = _entity_report(sentences(gold, outputs["lengths"], names),
                                sentences(pred, outputs["lengths"], names))
    else:
        report = _tag_report(gold, pred, names)
    micro = report.pop("micro", {"precision": 0.0, "recall": 0.0, "f1": 0.0})
    values = {"f1": micro["f1"], "precision": micro["precision"], "recall": micro["recall"], "accuracy": accuracy}
    scores = {name: values[name] for name in metrics}
    scores.update({f"f1_{label}": row["f1"] for label, row in sorted(report.items())})
    return scores


def _entity_report(gold: list[list[str]], pred: list[list[str]]) -> dict[str, dict]:
    from seqeval.metrics import classification_report

    if not any(gold) and not any(pred):
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns about ill-formed tags, which conlleval counts as it does
        report = classification_report(gold, pred, output_dict=True, zero_division=0)
    out = {label: {"precision": float(row["precision"]), "recall": float(row["recall"]),
                   "f1": float(row["f1-score"])} for label, row in report.items() if not label.endswith(" avg")}
    micro = report.get("micro avg")
    if micro is not None:
        out["micro"] = {"precision": float(micro["precision"]), "recall": float(micro["recall"]),
                        "f1": float(micro["f1-score"])}
    return out


def _tag_report(gold: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> dict[str, dict]:
    """Tags without entities: every word is scored on its own (micro P = R = F1 = accuracy), and per tag."""
    from sklearn.metrics import precision_recall_fscore_support

    present = sorted(set(gold.tolist()) | set(pred.tolist()))
    if not present:
        return {}
    p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=present, zero_division=0)
    out = {names[t]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i])}
           for i, t in enumerate(present)}
    accuracy = float(np.mean(gold == pred))
    out["micro"] = {"precision": accuracy, "recall": accuracy, "f1": accuracy}
    return out
