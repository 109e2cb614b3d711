"""tokens: a tag per word (named entities, part of speech, chunks).

A row's label is its list of tags, one per word of the words column (task.text_fields[0]). Each tag is typed
like a single_label class (`class_key`): a string is a tag name, an integer indexes task.label_names by position
(when no declared name is itself an integer). task.tag_scheme (nlptune/kinds/tags.py) says how tags mark
entities: a row whose transitions are invalid for it is repaired the way conlleval reads it, with a note.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, ClassVar, Sequence

from nlptune.config.registry import register
from nlptune.kinds import tags as tagging
from nlptune.kinds.base import Kind, LabelProblem, Note
from nlptune.kinds.entities import IGNORED, has_entities, tag_scores, word_outputs
from nlptune.kinds.single_label import checked_names, class_key
from nlptune.utils.text import listed

_INTEGER = re.compile(r"[+-]?\d+")
_SHOWN = 12  # tag names listed in a message
_listed = functools.partial(listed, shown=_SHOWN, quote=True)  # names as a message lists them
# a transition score at or below this is a ban of the tag scheme (models/crf.py writes -1e4), not a learnt value
_BANNED = -1e3


def _positional(names: Sequence[str]) -> bool:
    """Whether integer tags index ``names`` by position: only when no name is itself an integer."""
    return not any(_INTEGER.fullmatch(str(name)) for name in names)


@register("kind", "tokens")
class Tokens(Kind):
    name = "tokens"
    hf_auto_model = "AutoModelForTokenClassification"
    # token classification heads read no problem_type (transformers uses it for sequence classification only)
    hf_problem_type = None
    pipeline_task = "token-classification"
    pipeline_arguments = ', aggregation_strategy="simple"'
    plots = ("entity_f1", "entity_confusion")
    words_in_text_column: ClassVar[bool] = True

    # ---- labels -------------------------------------------------------------------------------------------
    def label_key(self, value: Any) -> tuple:
        """The row's tags as a tuple of tag keys (str names; int ids stay int); raises `LabelProblem`."""
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise LabelProblem(f"the tags are {type(value).__name__} {_short(value)}, not a list of tags",
                               "give one tag per word as a list (JSON [\"B-PER\", \"O\"]), or read a .conll file")
        if not value:
            raise LabelProblem("empty sentence: the row has no tags", "drop the row, or give its words and tags")
        keys = []
        for position, tag in enumerate(value):
            try:
                keys.append(class_key(tag, "tag", fix="give every word a tag (O outside entities)"))
            except LabelProblem as err:
                raise LabelProblem(f"tag {position + 1} of the row: {err.problem}", err.fix,
                                   position=position) from None
        return tuple(keys)

    def check_example(self, texts: list, key: tuple, scheme: str,
                      declared: Sequence | None = None) -> tuple[tuple, list[str]]:
        """Refuse words that are not a list of strings, a word/tag count mismatch, tags the scheme does not
        have; repair invalid transitions (conlleval's reading, kinds/tags.py), one note per changed tag."""
        words = texts[0]
        if isinstance(words, str) or not isinstance(words, (list, tuple)):
            raise LabelProblem(f"the words are {type(words).__name__} {_short(words)}, not a list of words",
                               "give the words of a sentence as a list of strings, or read a .conll file",
                               in_text=True)
        if not words:
            raise LabelProblem("empty sentence: the row has no words", "drop the row, or give its words and tags",
                               in_text=True)
        not_text = [w for w in words if not isinstance(w, str)]
        if not_text:
            raise LabelProblem(f"a word is {type(not_text[0]).__name__} {_short(not_text[0])}, not a string",
                               "write every word as a string", in_text=True)
        if len(words) != len(key):
            raise LabelProblem(f"{len(words)} tokens but {len(key)} tags", "give exactly one tag per word")
        if scheme == "plain":
            return key, []
        tags = [self._tag_name(tag, declared, position) for position, tag in enumerate(key)]
        invalid = tagging.invalid_tags(tags, scheme)
        if invalid:
            first = tags.index(invalid[0])  # the first word at fault: the one whose line is named
            raise LabelProblem(f"word {first + 1} ({words[first]!r}): {tagging.tag_problem(invalid[0], scheme)}" +
                               (f" (also {_listed(invalid[1:])})" if invalid[1:] else ""),
                               f"fix the tags, or set task.tag_scheme to the scheme they follow "
                               f"({', '.join(tagging.PREFIXES)}, or plain for tags without entities)", position=first)
        fixed, changed = tagging.repair(tags, scheme)
        notes = [Note(f"word {i + 1} ({words[i]!r}): {tags[i]} -> {fixed[i]}", i) for i in changed]
        return (tuple(fixed) if changed else key), notes

    @staticmethod
    def _tag_name(tag, declared: Sequence | None, position: int) -> str:
        """A tag key (of word ``position``) as a tag name: integers index the declared names (when those are not
        integers)."""
        if isinstance(tag, int) and declared and _positional(declared) and 0 <= tag < len(declared):
            return str(declared[tag])
        if isinstance(tag, int):
            raise LabelProblem(f"tag {tag} (word {position + 1}) is an integer, but there are no tag names for it "
                               "to index", "declare the tag names in task.label_names (integer tags index them), or "
                               "set task.tag_scheme=plain", position=position, of_column=True)
        return tag

    def label_names(self, train_keys: Sequence, declared: Sequence | None) -> list[str]:
        """task.label_names (each once), else every training tag in `tags.ordered_names` order."""
        if declared:
            return checked_names(declared, "tag")
        return tagging.ordered_names(str(tag) for key in train_keys for tag in key)

    def encoder(self, names: list[str], declared: bool) -> Callable[[tuple], tuple[int, ...]]:
        """Tag keys -> tag ids: by name; an integer also by position when the declared names are no integers."""
        index = {name: i for i, name in enumerate(names)}
        positional = declared and _positional(names)
        unseen = "" if declared else " (it does not occur in train)"

        def encode_one(tag, position: int) -> int:
            if str(tag) in index:
                return index[str(tag)]
            if positional and isinstance(tag, int) and 0 <= tag < len(names):
                return tag
            raise LabelProblem(f"word {position + 1}: tag {tag!r} is not one of the task's tags "
                               f"{_listed(names)}{unseen}", "fix the tag, or declare the full set with "
                               "task.label_names", position=position, undeclared=tag)

        return lambda key: tuple(encode_one(tag, position) for position, tag in enumerate(key))

    def check_training(self, targets: Sequence[tuple[int, ...]], names: list[str]) -> list[str]:
        present = {tag for target in targets for tag in target}
        if len(present) < 2:
            found = ", ".join(repr(names[i]) for i in sorted(present)) or "none"
            raise LabelProblem(f"the training tags have only one tag ({found})",
                               "a tagger needs examples of at least two tags: check task.label_field and the "
                               "training rows (task.max_train_samples keeps only the first ones)")
        missing = [name for i, name in enumerate(names) if i not in present]
        if not missing:
            return []
        return [f"tag(s) {_listed(missing)} have no example in the training rows: the model can never learn to "
                "predict them (check task.label_names, task.max_train_samples and the training file)"]

    def class_counts(self, targets, names: list[str]) -> list[int]:
        """Words per tag in the training targets: per sentence tag ids, or the encoded windows' per-position
        labels (`RaggedIds`; -100 marks positions without a tag, and a long sentence's context words count in
        each window that holds them)."""
        import numpy as np

        values = np.asarray(targets.values) if hasattr(targets, "values") else \
            np.fromiter((tag for target in targets for tag in target), dtype=np.int64)
        return np.bincount(values[values >= 0].astype(np.int64), minlength=len(names)).tolist()

    def stratify_keys(self, values: Sequence, folds: int = 2) -> None:
        return None  # a sentence has many tags: cross-validation folds are plain k-fold

    # ---- model --------------------------------------------------------------------------------------------
    def num_outputs(self, names: list[str]) -> int:
        return len(names)

    @property
    def label_dtype(self):
        import torch

        return torch.long

    def start_model(self, model, train_targets: Sequence, names: list[str], scheme: str) -> None:
        """A CRF tagger may only decode the transitions the tag scheme allows (no I-PER after O in IOB2)."""
        crf = getattr(model, "crf", None)
        if crf is not None:
            from nlptune.kinds.crf import allowed_transitions

            crf.constrain(allowed_transitions(names, scheme))

    def loss(self, logits, labels, transitions=None, loss_settings=None, **extras):
        """Cross-entropy over the positions with a tag (class weights, focal loss, label smoothing from
        ``loss_settings``); with a CRF's ``transitions``, the negative log-likelihood of the gold tag sequence (the
        tagged positions of a scratch tagger are its words; config validation refuses loss settings with a CRF)."""
        from nlptune.kinds.losses import cross_entropy

        if transitions is not None:
            from nlptune.kinds.crf import crf_nll

            return crf_nll(logits, labels, labels != IGNORED, _open_edges(transitions, logits.shape[-1]))
        return cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), loss_settings,
                             ignore_index=IGNORED)

    def decoding(self, names: list[str], scheme: str, constrained: bool):
        """With ``constrained`` (task.constrained_decoding) and a scheme that marks entities: the transitions a
        tagger without a CRF decodes under (0 where the scheme allows one, `BANNED` where it does not: no I-PER
        after O); None: every word's most probable tag."""
        if not constrained or scheme == "plain" or not names or not has_entities(names):
            return None
        import torch

        from nlptune.kinds.crf import BANNED, allowed_transitions

        return torch.where(torch.tensor(allowed_transitions(names, scheme)), 0.0, BANNED)

    def predictions(self, logits, mask=None, transitions=None, labels=None, decoding=None, **extras):
        """The tag id of every position: with a CRF the best tag sequence under its ``transitions`` (Viterbi);
        without one, with ``decoding`` (`decoding`) and the batch's ``labels`` (which mark each word's first
        sub-token; -100 elsewhere), the best sequence of the words' tags the scheme allows, read off the logits
        (a word's log-probabilities differ from its logits by one constant, so the path is the same); otherwise
        the best-scoring tag of each position."""
        if transitions is not None:
            from nlptune.kinds.crf import viterbi

            mask = (logits[..., 0] == logits[..., 0]) if mask is None else mask.bool()
            return viterbi(logits, mask, transitions)
        if decoding is None or labels is None:
            return logits.argmax(dim=-1)
        from nlptune.kinds.crf import viterbi_at

        return viterbi_at(logits, labels != IGNORED, decoding)

    def outputs(self, parts: list[dict]) -> dict:
        """Per-word predictions and references of whole sentences, from the windows (see kinds/entities.py)."""
        return word_outputs(parts)

    def scores(self, metrics, outputs: dict, names: list[str], decision=None) -> dict[str, float]:
        return tag_scores(metrics, outputs, names)


def _open_edges(transitions, num_labels: int):
    """``transitions`` without the scheme's ban on how a sequence starts and ends, for the loss: a later window of
    a long sentence may start inside an entity (I-PER first) or end inside one. Decoding keeps every constraint
    (its edge words are context, scored by the neighbouring window)."""
    import torch

    edges = torch.zeros_like(transitions, dtype=torch.bool)
    edges[num_labels, :] = True
    edges[:, num_labels + 1] = True
    return torch.where(edges & (transitions <= _BANNED), torch.zeros_like(transitions), transitions)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
