"""Clean text: what players type and what the game shows cannot drive anyone's terminal.

Unicode TR36 is the model: control characters in untrusted text are
removed, not passed on.  Two edges use these pure functions:

- every line a player types for a command (``clean_line``): the characters
  below go (tab stays), and colour markup past ``MAX_MARKUP`` tokens in the
  line is shown as typed instead of being rendered;
- every text sent to a client (``clean_output``): the same characters go,
  newlines and tabs stay, so nothing stored (a description, an attribute a
  type class shows, content's own strings) can reach a terminal raw.  The
  engine's own colour escapes are added after this, by ``engine.net.colour``.

What goes is taken from ``unicodedata`` by general category, not listed by
hand: controls (Cc: C0 but tab and newline, DEL, C1); every format
character (Cf: bidi embeddings, overrides and isolates, zero width space,
word joiner, BOM, the TAG characters that hide text in plain sight, which
also leaves England's, Scotland's and Wales's flags a plain black flag); the
line and paragraph separators (Zl, Zp: U+2028 and U+2029 break lines in some
clients); and the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0), letters
that show as blank and make invisible names and messages.  The joiners
ZWNJ and ZWJ stay: emoji sequences and several scripts need them.  U+2800
BRAILLE PATTERN BLANK stays too: it is the blank cell of braille text and
of braille art, takes one column like a space, and hides nothing after it.

Speed: both functions run on every line typed and sent.  The characters are
found once, at import, over the planes that hold them (0, 1 and 14; 20 to
30 ms), and compiled into character classes (see ``_strip``): ASCII text
is checked against its own controls only, other text is read once for
anything suspect, and only a line with something to remove, or with an
emoji, is read again.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from engine.net.colour import TOKEN

#: Colour changes a player's line may carry; the rest is shown as typed.
MAX_MARKUP = 20

#: Removed by general category: controls, format characters, line and paragraph separators.
REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})

#: Kept although their category is removed: tab and newline (layout), and the
#: joiners ZWNJ and ZWJ (emoji sequences, several scripts).
KEPT = frozenset("\t\n\u200c\u200d")

#: Blank letters (Lo): the Hangul choseong and jungseong fillers, the Hangul
#: filler and its halfwidth form.
FILLERS = frozenset("\u115f\u1160\u3164\uffa0")

#: Where Unicode puts its controls and format characters: planes 2 and 3 hold
#: ideographs, 4 to 13 nothing yet, 15 and 16 private use.  (A test checks
#: every plane against this.)
PLANES = (0, 1, 14)


def removed_characters() -> frozenset[str]:
    """Every character ``clean_output`` removes, from this Python's Unicode database."""
    category = unicodedata.category
    found = {
        char
        for plane in PLANES
        for char in map(chr, range(plane << 16, (plane + 1) << 16))
        if category(char) in REMOVED_CATEGORIES
    }
    return frozenset((found - KEPT) | FILLERS)


def _char_class(spans: Iterable[tuple[int, int]]) -> str:
    """A regular expression character class matching each ``(first, last)`` code point span."""
    parts = []
    for first, last in spans:
        part = re.escape(chr(first))
        parts.append(part if first == last else f"{part}-{re.escape(chr(last))}")
    return "[" + "".join(parts) + "]"


def _spans(chars: Iterable[str]) -> list[tuple[int, int]]:
    """Runs of consecutive code points, as ``(first, last)``."""
    spans: list[tuple[int, int]] = []
    for point in sorted(map(ord, chars)):
        if spans and spans[-1][1] == point - 1:
            spans[-1] = (spans[-1][0], point)
        else:
            spans.append((point, point))
    return spans


REMOVED = removed_characters()
_BMP = [c for c in REMOVED if c <= "\uffff"]
_ASTRAL = [c for c in REMOVED if c > "\uffff"]

# A class with spans past the BMP checks each of them for every character it
# reads, so the exact class reads plain text at a fifth of the speed of one
# within the BMP.  Each text takes the first of these that settles it:
#: ASCII text (``str.isascii`` is free): its controls only.
_ASCII_CONTROLS = re.compile(_char_class(_spans(c for c in REMOVED if c.isascii())))
#: Other text: nothing to remove in the BMP, and nothing past it (nearly every line).
_SUSPECT = re.compile(_char_class([*_spans(_BMP), (0x10000, 0x10FFFF)]))
#: Then what goes in the BMP, and whether the rest (an emoji) is near anything
#: that goes past it: one span per plane.
_BMP_CONTROLS = re.compile(_char_class(_spans(_BMP)))
_ASTRAL_SUSPECT = re.compile(
    _char_class(
        (min(points), max(points))
        for plane in PLANES[1:]
        if (points := [ord(c) for c in _ASTRAL if ord(c) >> 16 == plane])
    )
)
#: And exactly what goes past the BMP.
_ASTRAL_CONTROLS = re.compile(_char_class(_spans(_ASTRAL)))


def _strip(text: str) -> str:
    if text.isascii():
        return _ASCII_CONTROLS.sub("", text)
    if _SUSPECT.search(text) is None:
        return text
    text = _BMP_CONTROLS.sub("", text)
    if _ASTRAL_SUSPECT.search(text) is None:
        return text
    return _ASTRAL_CONTROLS.sub("", text)


def clean_output(text: str) -> str:
    """``text`` without control and format characters (newline and tab kept)."""
    return _strip(text)


def clean_line(line: str, max_markup: int = MAX_MARKUP) -> str:
    """A typed line without controls (tab kept), its colour markup capped."""
    return cap_markup(_strip(line.replace("\n", " ")), max_markup)


def cap_markup(line: str, limit: int = MAX_MARKUP) -> str:
    """Keep the first ``limit`` colour tokens of ``line``; show the rest as typed.

    A 4 KB ``say`` of markup would otherwise become two thousand colour
    codes on every listener's screen.  A token past the limit gets its bar
    doubled (``|r`` becomes ``||r``), which renders as the two characters.
    """
    if "|" not in line:
        return line
    seen = 0

    def keep(match: re.Match[str]) -> str:
        nonlocal seen
        if match.group(1) == "|":
            return match.group(0)
        seen += 1
        return match.group(0) if seen <= limit else "|" + match.group(0)

    return TOKEN.sub(keep, line)
