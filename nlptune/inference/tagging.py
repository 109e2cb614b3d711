"""Predictions of a per-word model (task.kind=tokens): words in, a tag per word and the entities out.

A text is split into words with their character spans (letters and digits stay together with inner hyphens,
apostrophes and dots: "e-mail", "don't", "3.5"; every other non-space character is a word of its own, as in
CoNLL data, and so is each character of a script written without spaces: Han, kana, Thai...).
A list of words is taken as it is. The sentences go through the same windows as training
(nlptune/data/words.py), so a sentence of any length gets a tag for every word.
"""
from __future__ import annotations

import re

import numpy as np
import torch

from nlptune.data import encode_split
from nlptune.data.batching import ROW_FIELDS, EncodedDataset, eval_order
from nlptune.data.tokenization import UNSPACED_SCRIPTS
from nlptune.inference import PREDICT_BATCH_SIZE
from nlptune.kinds.entities import has_entities, spans, word_outputs
from nlptune.train.evaluation import forward

# a letter or digit outside the scripts written without spaces, whose every character is a word of its own (as
# their characters are tokens of the scratch tokenizers, and words of a character-level tagger's data)
_SPACED = rf"(?:(?!{UNSPACED_SCRIPTS})\w)"
_WORD = re.compile(rf"{UNSPACED_SCRIPTS}|{_SPACED}+(?:[-'’.]{_SPACED}+)*|[^\w\s]")


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The words of ``text`` and the (start, end) character span of each."""
    matches = list(_WORD.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]


def _sentence(value) -> tuple[list[str], list[tuple[int, int]], str]:
    """Words, spans and the text the spans index, from a text (split here) or a list of words (joined by spaces)."""
    if isinstance(value, str):
        words, spans = split_words(value)
        return words, spans, value
    words = ["" if w is None else str(w) for w in value]
    spans, start = [], 0
    for word in words:
        spans.append((start, start + len(word)))
        start += len(word) + 1
    return words, spans, " ".join(words)


@torch.inference_mode()
def _tag_ids(loaded, sentences: list[list[str]], batch_size: int, precision: str | None) -> dict[str, np.ndarray]:
    """Per-word predicted tag ids and their probabilities, concatenated over ``sentences`` (none empty), from
    batches of windows of similar length (`word_outputs` puts the windows back in their sentences' order)."""
    info = loaded.info
    # any tag marks the first sub-token of each word, which is where the word's prediction is read
    placeholder = [[0] * len(words) for words in sentences]
    columns = encode_split(loaded.tokenizer, [sentences], placeholder, words=True, max_length=info["max_length"],
                           joint_pairs=info["joint_pairs"], char_features=info.get("char_features", False))
    windows = EncodedDataset(columns)
    model = loaded.model_at(precision)
    parts = []
    for batch in torch.utils.data.DataLoader(torch.utils.data.Subset(windows, eval_order(windows.lengths)),
                                             batch_size=batch_size, collate_fn=loaded.collator()):
        logits, extras = forward(model, batch)
        predicted = loaded.kind.predictions(logits, mask=batch.get("attention_mask"), labels=batch["labels"],
                                            decoding=loaded.decoding, **extras)
        probability = logits.float().softmax(-1).gather(-1, predicted.unsqueeze(-1)).squeeze(-1)
        parts.append({"predictions": predicted.numpy(), "scores": probability.numpy(),
                      "references": batch["labels"].numpy(), **{k: batch[k].numpy() for k in ROW_FIELDS}})
    return word_outputs(parts)


def predict_tags(loaded, values: list, batch_size: int = PREDICT_BATCH_SIZE,
                 precision: str | None = None) -> list[dict]:
    """For each text (or list of words) of ``values``: its ``tokens``, their ``tags`` and the ``entities`` (type,
    text, character ``start``/``end``, mean word probability ``score``); ``precision``: as `LoadedRun.model_at`."""
    sentences = [_sentence(value) for value in values]
    present = [words for words, _, _ in sentences if words]
    outputs = _tag_ids(loaded, present, batch_size, precision) if present else {}
    names = loaded.info["label_names"]
    results, position = [], 0
    for words, offsets, text in sentences:
        ids = outputs["predictions"][position: position + len(words)] if words else []
        scores = outputs["scores"][position: position + len(words)] if words else []
        position += len(words)
        tags = [names[int(i)] for i in ids]
        entities = [{"type": kind, "text": text[offsets[start][0]: offsets[end - 1][1]], "start": offsets[start][0],
                     "end": offsets[end - 1][1], "score": round(float(np.mean(scores[start:end])), 4)}
                    for kind, start, end in spans(tags)] if has_entities(names) else []
        results.append({"tokens": words, "tags": tags, "entities": entities})
    return results
