"""Text for messages (pure Python): the characters a name read from data (a class, a label, a tag) may not hold,
because nobody can see them, and lists cut short (`listed`).

A name that holds one looks like another name, or like nothing, wherever it is shown, yet it is a class of its
own: "B-PER\\x00" beside "B-PER", "joy\\u200b" beside "joy". `hidden_characters` finds them, so that every kind
refuses them the same way (`nlptune.kinds.single_label.class_key` types the names of every kind).

Hidden are:

- control characters (Unicode category Cc: NUL, BEL, tab, newline, DEL, the C1 controls),
- format characters (Cf: zero-width spaces and joiners, byte-order marks, soft hyphens, bidirectional controls,
  tag characters),
- lone surrogates (Cs: a JSON escape such as "\\ud800" that encodes no character),
- line and paragraph separators (Zl, Zp), and inside the name any space but U+0020 (a no-break space looks like a
  space but is another character),
- other characters that show as nothing (Hangul fillers, the braille blank, the combining grapheme joiner,
  Mongolian and Khmer invisible letters, variation selectors), noncharacters, and U+FFFD (the mark of text that
  was decoded with the wrong encoding).

Whitespace at either end is not counted, except control characters other than tab, newline, carriage return,
vertical tab and form feed: the names are stripped, so it changes nothing. A zero-width joiner or a variation
selector inside an emoji ("\\U0001f469\\u200d\\U0001f4bb", "\\u2764\\ufe0f") is part of the symbol, and a
zero-width (non-)joiner between two letters of a script whose letters join (Persian "\\u0645\\u06cc\\u200c\\u0634",
Indic scripts) changes how they are drawn: both are allowed there.
"""
from __future__ import annotations

import unicodedata
from typing import Sequence

_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Zs"})
# characters of visible categories (letters, marks, symbols) that are drawn as nothing
_BLANK = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0\ufffd")
_EDGE_CONTROLS = frozenset("\t\n\r\x0b\x0c")  # what a file's layout leaves at the ends of a value
_JOINER, _NON_JOINER, _KEYCAP = "\u200d", "\u200c", "\u20e3"
# scripts whose letters a (non-)joiner never changes: there it is only hidden
_UNJOINED_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC", "COMBINING")
_EMOJI_BASES = frozenset({"So", "Sk", "Sm"})  # emoji are symbols; skin-tone modifiers are Sk
_UNNAMED = {"Cc": "a control character", "Cs": "a lone surrogate", "Cn": "a noncharacter"}
SHOWN = 3  # hidden characters a message names


def _selector(char: str) -> bool:
    code = ord(char)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def _hidden(char: str) -> bool:
    code = ord(char)
    return (unicodedata.category(char) in _HIDDEN_CATEGORIES or char in _BLANK or _selector(char)
            or 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE)  # noncharacters


def _in_emoji(text: str, i: int) -> bool:
    """Whether the joiner or variation selector at ``i`` belongs to an emoji sequence: a selector right after a
    symbol (or before a keycap), a joiner between a symbol (or its selector) and the next symbol."""
    before = text[i - 1] if i else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    base = bool(before) and unicodedata.category(before) in _EMOJI_BASES
    if _selector(text[i]):
        return base or after == _KEYCAP
    joined = base or (bool(before) and _selector(before))
    return joined and bool(after) and unicodedata.category(after) in _EMOJI_BASES


def _joining_letter(char: str) -> bool:
    """A letter or mark (beyond Latin) of a script whose shaping a zero-width (non-)joiner changes."""
    return (bool(char) and ord(char) > 0x24F and char not in _BLANK and unicodedata.category(char)[0] in "LM"
            and not unicodedata.name(char, "").startswith(_UNJOINED_SCRIPTS))


def _allowed(text: str, i: int) -> bool:
    """Whether the hidden character at ``i`` is part of what is drawn: in an emoji, or joining letters."""
    char, after = text[i], text[i + 1] if i + 1 < len(text) else ""
    # after a joining letter, before another or at the end (Malayalam's older chillu: consonant, virama, joiner)
    if char in (_JOINER, _NON_JOINER) and i and _joining_letter(text[i - 1]) and (not after or _joining_letter(after)):
        return True
    return (char == _JOINER or _selector(char)) and _in_emoji(text, i)


def hidden_characters(text: str) -> list[tuple[int, str]]:
    """(0-based index, character) of every hidden character of ``text`` (see the module doc), in order."""
    if text.isascii() and text.isprintable():  # the usual name, checked per tag of a large file: nothing hidden
        return []
    start, end = len(text) - len(text.lstrip()), len(text.rstrip())
    found = []
    for i, char in enumerate(text):
        if char == " " or (not start <= i < end and (char in _EDGE_CONTROLS or unicodedata.category(char) != "Cc")):
            continue  # stripped whitespace at an end
        if _hidden(char) and not _allowed(text, i):
            found.append((i, char))
    return found


def describe_character(char: str) -> str:
    """A character by code point and name: "U+200B ZERO WIDTH SPACE", "U+0000 (a control character)"."""
    name = unicodedata.name(char, None)
    if name:
        return f"U+{ord(char):04X} {name}"
    return f"U+{ord(char):04X} ({_UNNAMED.get(unicodedata.category(char), 'an unnamed character')})"


def describe_hidden(found: list[tuple[int, str]]) -> str:
    """`hidden_characters`' findings in words: the first `SHOWN`, each with its 1-based place, and the count of
    the rest."""
    return listed([f"{describe_character(char)} at character {i + 1}" for i, char in found], SHOWN)


def listed(items: Sequence, shown: int, quote: bool = False) -> str:
    """The first ``shown`` of ``items``, comma-separated (as reprs with ``quote``), and how many more there are."""
    head = ", ".join(map(repr if quote else str, items[:shown]))
    return head + (f" and {len(items) - shown} more" if len(items) > shown else "")
