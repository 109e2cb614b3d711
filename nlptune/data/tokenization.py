"""Tokenizers: a pretrained model's own, or one trained on the train split with `tokenizers`.

Trained tokenizers are wrapped in `PreTrainedTokenizerFast`, so both kinds encode, pad, save and
load through the same transformers API.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator

from nlptune.config.schema import TokenizerConfig

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK]
# The scratch encoders that read [CLS] ... [SEP]: the transformer pools position 0 ("cls") and learns positions.
# bag/cnn/lstm/gru gain nothing from them and pay for them: two more tokens a sentence are ~13 % more RNN
# steps on SST-2 (benchmarks/vs_plain_loop.py).
MARKED_MODELS = frozenset({"transformer"})


def _normalizer(cfg: TokenizerConfig):
    from tokenizers import normalizers

    steps = []
    if cfg.normalization != "none":
        steps.append(getattr(normalizers, cfg.normalization.upper())())
    if cfg.lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


# Scripts written without spaces between words: Han, hiragana, katakana, Thai, Lao, Myanmar, Khmer. A whitespace
# pre-tokenizer makes a whole sentence of them one "word", so a vocabulary learnt on train knows almost no
# validation text (a bag of such words scored chance on a Chinese sentiment task). Each of their characters is a
# token of its own instead, as BERT's tokenizer splits Han characters.
UNSPACED_SCRIPTS = ("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0eff\u1000-\u109f"
                    "\u1780-\u17ff\U00020000-\U0002fa1f]")


def _pre_tokenizer(kind: str):
    """Words at whitespace and punctuation (``wordpiece``: as BERT splits them), and every character of a script
    written without spaces (`UNSPACED_SCRIPTS`) on its own."""
    from tokenizers import Regex, pre_tokenizers

    words = pre_tokenizers.BertPreTokenizer() if kind == "wordpiece" else pre_tokenizers.Whitespace()
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(UNSPACED_SCRIPTS), behavior="isolated"), words])


def train_tokenizer(texts: Iterable[str], cfg: TokenizerConfig, max_length: int, markers: bool = True):
    """Train a word-level or WordPiece tokenizer on ``texts``. With ``markers`` every encoding is
    ``[CLS] a [SEP]`` (pairs ``[CLS] a [SEP] b [SEP]``); without, just the text's tokens."""
    from tokenizers import Tokenizer, decoders, models, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if cfg.kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
        trainer = trainers.WordPieceTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                            special_tokens=SPECIAL_TOKENS, show_progress=False)
        tokenizer.decoder = decoders.WordPiece()
    else:
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                            special_tokens=SPECIAL_TOKENS, show_progress=False)
    tokenizer.pre_tokenizer = _pre_tokenizer(cfg.kind)
    tokenizer.normalizer = _normalizer(cfg)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    if markers:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
            special_tokens=[(CLS, tokenizer.token_to_id(CLS)), (SEP, tokenizer.token_to_id(SEP))])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, unk_token=UNK, cls_token=CLS,
                                   sep_token=SEP, mask_token=MASK, model_max_length=max_length)


def _model_of_run(folder: str) -> str | None:
    """What to give instead when ``folder`` is an nlptune run directory (its model is in best/), or None."""
    from nlptune.data.sources import is_model_folder

    best = os.path.join(folder, "best")
    if not is_model_folder(best):
        return None
    if os.path.isfile(os.path.join(best, "config.json")):  # a transformer saved with its tokenizer
        return f"it is an nlptune run directory; its fine-tuned model is {best} (model.name_or_path={best})"
    return ("it is an nlptune run directory whose model was trained from scratch, not a transformer to fine-tune; "
            "give a pretrained model folder or hub id")


def load_tokenizer(name_or_path: str, revision: str | None = None, max_length: int | None = None, *,
                   trust_remote_code: bool = False):
    """The tokenizer saved with a pretrained model or a finished run (`AutoTokenizer`).

    ``trust_remote_code`` is passed explicitly, so transformers never asks on the terminal: a tokenizer that
    needs custom code is refused without it. Any failure is one `NlptuneError` naming the model. (The model's
    custom code is checked in full, with a warning for code that would be ignored, by
    `nlptune.models.remote_code` when the model is built.)
    """
    from transformers import AutoTokenizer

    from nlptune.config.errors import NlptuneError
    from nlptune.utils.network import hub_or_cache, hub_status

    try:
        with hub_or_cache(name_or_path):
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, revision=revision,
                                                      trust_remote_code=trust_remote_code)
    except Exception as err:  # noqa: BLE001 - OSError/ValueError from transformers, bare Exception from tokenizers
        if not isinstance(err, (OSError, ValueError, KeyError)) and type(err) is not Exception:
            raise
        text = " ".join(str(err).split()) or type(err).__name__
        if "trust_remote_code" in text and not trust_remote_code:
            raise NlptuneError(f"pretrained model {name_or_path!r}: its tokenizer needs custom code; loading it "
                               "runs Python code from the model's repository on this machine. If you trust its "
                               "authors, pass --trust-remote-code to `nlptune train` (a config file or recipe "
                               "cannot set it)") from err
        run_model = _model_of_run(name_or_path)
        if run_model is not None:
            raise NlptuneError(f"cannot load the tokenizer of {name_or_path!r}: {run_model}") from err
        hub = hub_status()
        if not hub.reachable and not os.path.isdir(name_or_path):  # a hub id, looked up in the cache only
            text = f"it is not a local folder and not in the Hugging Face cache, and {hub.reason}"
        raise NlptuneError(f"cannot load the tokenizer of {name_or_path!r}: {text[:300]}; give a model folder "
                           "(or hub id) that holds the tokenizer files saved with the model (tokenizer.json, "
                           "or vocab files with tokenizer_config.json)") from err
    if holds_no_word(tokenizer) and not os.path.isfile(os.path.join(name_or_path, "tokenizer.json")):
        # transformers builds an empty tokenizer when tokenizer.json / the vocab file is missing: every word
        # would become [UNK] and the model would train on nothing, without a word (a tokenizer.json of special
        # tokens only is a scratch vocabulary saved as it was learnt: a tagger's characters may carry it)
        raise NlptuneError(f"the tokenizer of {name_or_path!r} has no vocabulary ({len(tokenizer)} special "
                           "token(s) only): its tokenizer.json or vocab file is missing; restore the tokenizer "
                           "files saved with the model")
    if tokenizer.pad_token is None:
        _pad_with_a_special_token(tokenizer, name_or_path)
    if max_length:
        limit = _position_limit(name_or_path, revision, tokenizer, trust_remote_code)
        if limit is not None and max_length > limit:
            raise NlptuneError(f"task.max_length={max_length} is more than {name_or_path!r} can read: {limit} "
                               f"tokens (its position embeddings); set task.max_length={limit} or less (longer "
                               "texts are cut to it)")
        tokenizer.model_max_length = max_length
    return tokenizer


def _pad_with_a_special_token(tokenizer, name_or_path: str) -> None:
    """Give a tokenizer without a padding token (GPT-2's, Llama's: decoders trained on unpadded text) its
    end-of-sequence token, else its unknown token, as the padding token: batches of texts of different lengths need
    one, and padded positions are masked out (the model's config gets the same id: `build_pretrained`). Saved with
    the run's tokenizer, so the best model pads alike."""
    from nlptune.config.errors import NlptuneError

    borrowed = tokenizer.eos_token or tokenizer.unk_token
    if borrowed is None:
        raise NlptuneError(f"the tokenizer of {name_or_path!r} has no padding token, and no end-of-sequence or unknown "
                           "token to pad with: texts of different lengths cannot share a batch -> add a pad_token to "
                           "its tokenizer files (special_tokens_map.json or tokenizer_config.json)")
    tokenizer.pad_token = borrowed


def _position_limit(name_or_path: str, revision: str | None, tokenizer, trust_remote_code: bool) -> int | None:
    """How many tokens the model reads (``max_position_embeddings`` of its config), or None where its config does
    not say or cannot be read here (the model's own loading reports that)."""
    from transformers import AutoConfig

    from nlptune.utils.network import hub_or_cache

    try:
        with hub_or_cache(name_or_path):
            config = AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError):
        return None
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        return None
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and limit - 2 <= declared < limit:  # RoBERTa-style: positions start after padding
        return declared
    return limit


# Texts per call of the tokenizer. A call's texts are encoded on every core by the fast tokenizer's Rust side
# (rayon, unless TOKENIZERS_PARALLELISM=false); its Python lists of ids are turned into flat arrays before the
# next call, so lists of ints (and the tokenizer's per-text encodings) never exist for a whole split. 2048 sst2
# texts hold ~10 MB while being encoded (8192: ~40 MB); both ran as fast on 2 cores.
ENCODE_BATCH = 2048


def text_batches(texts: list, size: int = ENCODE_BATCH, consume: bool = False) -> Iterator[list[list[str]]]:
    """``texts`` (one sequence per text field: lists, or `nlptune.data.columns.Column`) ``size`` rows at a time,
    as lists. With ``consume`` the rows are deleted from ``texts`` as they are handed out, so that a caller who
    needs them no more frees their memory while they are encoded."""
    rows = len(texts[0]) if texts else 0
    for start in range(0, rows, size):
        if consume:
            batch = [list(column[:size]) for column in texts]
            for column in texts:
                del column[:size]
        else:
            batch = [list(column[start: start + size]) for column in texts]
        yield batch


def encode(tokenizer, texts: list, *, max_length: int, joint_pairs: bool, consume: bool = False) -> dict:
    """Token ids for one split: ``input_ids`` (and ``input_ids_b`` / ``token_type_ids``) as
    `nlptune.data.batching.RaggedIds`, and ``length`` (int32, the ids of a row, both texts of a siamese pair).
    Pairs are encoded jointly (`[CLS] a [SEP] b [SEP]`, pretrained models) or separately into ``input_ids`` and
    ``input_ids_b`` (scratch siamese encoders). ``consume``: empty ``texts`` while encoding them (`text_batches`)."""
    from nlptune.data.batching import RaggedIdsBuilder

    kwargs = dict(truncation=True, max_length=max_length, return_attention_mask=False)
    rows = len(texts[0]) if texts else 0
    pair, built, token_types = len(texts) == 2, {}, None
    for batch in text_batches(texts, ENCODE_BATCH, consume):
        if pair and joint_pairs:
            out = tokenizer(batch[0], batch[1], return_token_type_ids=True, **kwargs)
            if token_types is None:  # decided once for the split, on its first 100 rows
                token_types = out.get("token_type_ids") is not None and \
                    any(any(t) for t in out["token_type_ids"][:100])
            encoded = {"input_ids": out["input_ids"]}
            if token_types:
                encoded["token_type_ids"] = out["token_type_ids"]
        else:
            encoded = {"input_ids": tokenizer(batch[0], return_token_type_ids=False, **kwargs)["input_ids"]}
            if pair:
                encoded["input_ids_b"] = tokenizer(batch[1], return_token_type_ids=False, **kwargs)["input_ids"]
        for name, ids in encoded.items():
            built.setdefault(name, RaggedIdsBuilder(rows)).add(ids)
    names = ["input_ids"] + (["input_ids_b"] if pair and not joint_pairs else [])
    columns = {name: built.get(name, RaggedIdsBuilder(0)).finish() for name in dict.fromkeys(names + list(built))}
    lengths = columns["input_ids"].lengths()
    if "input_ids_b" in columns:
        lengths += columns["input_ids_b"].lengths()
    columns["length"] = lengths
    return columns


# Above this share of unknown tokens in the validation texts a model reads little of them. With a vocabulary learnt
# on their training split the shared English tasks have 3-14 % (wikiann's words 19 %, MiniLM's tokenizer under 1 %);
# a script the tokenizer does not split into words, or validation text unlike train, gives most.
UNKNOWN_WARN_SHARE = 0.5


def holds_no_word(tokenizer) -> bool:
    """Whether ``tokenizer``'s vocabulary is its special tokens alone."""
    return len(tokenizer) <= len(set(tokenizer.all_special_tokens))


def refuse_a_length_without_room(tokenizer, task, joint_pairs: bool) -> None:
    """Refuse a task.max_length that the special tokens a (pretrained) tokenizer adds to each example fill: every
    text was cut to `[CLS] [SEP]` and refused as "empty after preprocessing", and a pair was not cut at all."""
    from nlptune.config.errors import ConfigError, ConfigIssue

    pair = joint_pairs and len(task.text_fields) == 2
    try:
        specials = int(tokenizer.num_special_tokens_to_add(pair=pair))
    except (AttributeError, TypeError, ValueError):  # a tokenizer that does not say: nothing to check against
        return
    needed = specials + (2 if pair else 1)  # a word of each text
    if task.max_length < needed:
        what = "pair of texts" if pair else "text"
        raise ConfigError([ConfigIssue("task.max_length", f"{task.max_length} leaves no room for a word: the model's "
                                       f"tokenizer adds {specials} special tokens to each {what}",
                                       f"set task.max_length to {needed} or more (e.g. 128)")])


def refuse_an_empty_vocabulary(tokenizer, cfg: TokenizerConfig, texts: int, source: str) -> None:
    """Refuse a vocabulary learnt from the ``texts`` training texts (of ``source``) that holds no word: every word
    was rarer than ``cfg.min_frequency``, so every text would be read as unknown words and the model could learn
    nothing from them. (A tagger with character features still reads the words' characters: not called then.)"""
    from nlptune.data.errors import DataError

    if not holds_no_word(tokenizer):
        return
    raise DataError(f"the vocabulary learnt from the {texts:,} training text(s) holds no word: each occurs fewer "
                    f"than model.min_frequency={cfg.min_frequency} times, so every text would be read as "
                    "unknown words", file=source, split="train",
                    fix="set model.min_frequency=1, or give more training text (or start from a pretrained model)")


def unknown_share(tokenizer, columns: dict) -> float | None:
    """The share of the unknown token among the ids of ``columns`` (`encode`'s, or a tagger's) that are not
    special tokens; None for a tokenizer without an unknown token or ids without a word."""
    import numpy as np

    unknown = tokenizer.unk_token_id
    if unknown is None:
        return None
    special = [i for i in tokenizer.all_special_ids if i != unknown]
    counts = [0, 0]  # unknown, all
    for name in ("input_ids", "input_ids_b"):
        if name in columns:
            ids = columns[name]  # RaggedIds, or rows of ids
            values = np.asarray(ids.values if hasattr(ids, "values") else [i for row in ids for i in row],
                                dtype=np.int64)
            words = values[~np.isin(values, special)]
            counts = [counts[0] + int((words == unknown).sum()), counts[1] + words.size]
    return counts[0] / counts[1] if counts[1] else None


def warn_if_mostly_unknown(tokenizer, columns: dict, source: str, pretrained: str | None) -> None:
    """Warn when most of the validation split's tokens (``columns``, read from ``source``) are unknown to the
    tokenizer: the scratch vocabulary learnt on train, or the tokenizer of the ``pretrained`` model."""
    from nlptune.utils.console import warn

    share = unknown_share(tokenizer, columns)
    if share is None or share < UNKNOWN_WARN_SHARE:
        return
    said = f"{share:.0%} of the validation tokens ({source}) are unknown to "
    if pretrained:
        warn(said + f"the tokenizer of {pretrained} ({tokenizer.unk_token}): the model reads little of these texts "
             "-> pick a pretrained model whose vocabulary covers their language and script (a multilingual one)")
    else:
        warn(said + "the vocabulary learnt from the training texts: the model reads little of them -> check that "
             "both splits hold the same kind of text; with few training texts set model.min_frequency=1, or "
             "start from a pretrained model (model=pretrained) or word vectors (model.pretrained_vectors)")


# From this share of a split's texts reaching task.max_length (and so cut to it), training says so.
CUT_WARN_SHARE = 0.05


def warn_if_cut(columns: dict, max_length: int, split: str, source: str) -> None:
    """Warn when `CUT_WARN_SHARE` or more of a split's texts (``columns``: `encode`'s) reach ``max_length`` tokens:
    they were cut to it, and the model never reads their ends. (A text exactly that long is counted too: the
    tokens of a cut one are not kept to tell them apart.)"""
    import numpy as np

    from nlptune.utils.console import warn

    rows = [columns[name].lengths() >= max_length for name in ("input_ids", "input_ids_b") if name in columns]
    if not rows or not len(rows[0]):
        return
    cut = int(np.logical_or.reduce(rows).sum())
    if cut >= CUT_WARN_SHARE * len(rows[0]):
        warn(f"{cut} of the {len(rows[0])} {split} texts ({cut / len(rows[0]):.0%}, {source}) reach task.max_length="
             f"{max_length} tokens and are cut to it: the model never reads the rest -> raise task.max_length (a "
             "pretrained model reads up to its position limit, often 512), or keep it to train faster on their "
             "beginnings")


def train_word_tokenizer(words: Iterable[str], cfg: TokenizerConfig, max_length: int):
    """A word-level tokenizer of scratch taggers (tokens kind), trained on ``words`` (the training words, one
    string each): every word is exactly one token - no pre-tokenizer splits it, no [CLS]/[SEP] is added - and a
    word out of the vocabulary is [UNK]. ``cfg.kind`` is not read (a tagger scores words, never pieces); the
    vocabulary size, minimum frequency, lowercasing and unicode normalization are ``cfg``'s."""
    from tokenizers import Tokenizer, models, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = _normalizer(cfg)
    trainer = trainers.WordLevelTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                        special_tokens=SPECIAL_TOKENS, show_progress=False)
    tokenizer.train_from_iterator(words, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, unk_token=UNK, cls_token=CLS,
                                   sep_token=SEP, mask_token=MASK, model_max_length=max_length)
