"""Colour markup in content, rendered for what each client supports.

Markup (Evennia-style, so builders know it):

====================  ==========================================
``|r |g |y |b |m |c |w |x``  red, green, yellow, blue, magenta, cyan, white, black
``|R |G |Y |B |M |C |W |X``  the bright versions
``|h``                bold, ``|u`` underline
``|#rrggbb``          any colour (24-bit; reduced to what the client has)
``|n``                back to normal
``||``                a literal ``|``
====================  ==========================================

Pure functions, no I/O: ``render(text, depth)`` gives ANSI 16-colour,
xterm-256 or truecolor escapes, or plain text for clients without colour or
with a screen reader.  Every line that contains colour ends with a reset, so
colour never bleeds into the next line or the prompt.
"""

from __future__ import annotations

import re
from enum import IntEnum


class Depth(IntEnum):
    """How many colours a client shows."""

    NONE = 0
    ANSI16 = 16
    XTERM256 = 256
    TRUECOLOR = 1 << 24


#: Markup letter -> (red, green, blue) of the normal and bright ANSI colours.
_RGB: dict[str, tuple[int, int, int]] = {
    "x": (0, 0, 0),
    "r": (205, 0, 0),
    "g": (0, 205, 0),
    "y": (205, 205, 0),
    "b": (0, 0, 238),
    "m": (205, 0, 205),
    "c": (0, 205, 205),
    "w": (229, 229, 229),
    "X": (127, 127, 127),
    "R": (255, 0, 0),
    "G": (0, 255, 0),
    "Y": (255, 255, 0),
    "B": (92, 92, 255),
    "M": (255, 0, 255),
    "C": (0, 255, 255),
    "W": (255, 255, 255),
}
_ANSI_INDEX = {letter: index for index, letter in enumerate("xrgybmcw")}

TOKEN = re.compile(r"\|(\||#[0-9a-fA-F]{6}|[rgybmcwxRGYBMCWXnhu])")
RESET = "\x1b[0m"


def _ansi16(letter: str) -> str:
    index = _ANSI_INDEX[letter.lower()]
    return f"\x1b[{'1;' if letter.isupper() else ''}{30 + index}m"


def _nearest16(rgb: tuple[int, int, int]) -> str:
    letter = min(_RGB, key=lambda k: sum((a - b) ** 2 for a, b in zip(_RGB[k], rgb, strict=True)))
    return _ansi16(letter)


def _xterm256(rgb: tuple[int, int, int]) -> str:
    """The nearest of xterm's 6x6x6 colour cube and 24 greys."""
    r, g, b = rgb

    def level(v: int) -> int:
        return 0 if v < 48 else 1 if v < 115 else (v - 35) // 40

    cube = 16 + 36 * level(r) + 6 * level(g) + level(b)
    grey = round((r + g + b) / 3)
    if abs(r - g) < 10 and abs(g - b) < 10 and 8 <= grey <= 238:
        cube = 232 + min(23, (grey - 8) // 10)
    return f"\x1b[38;5;{cube}m"


def _code(token: str, depth: Depth) -> str:
    if token == "n":
        return RESET
    if token == "h":
        return "\x1b[1m"
    if token == "u":
        return "\x1b[4m"
    if token.startswith("#"):
        rgb = (int(token[1:3], 16), int(token[3:5], 16), int(token[5:7], 16))
    else:
        rgb = _RGB[token]
        if depth == Depth.ANSI16 or depth == Depth.XTERM256:
            return _ansi16(token)
    if depth == Depth.TRUECOLOR:
        return f"\x1b[38;2;{rgb[0]};{rgb[1]};{rgb[2]}m"
    if depth == Depth.XTERM256:
        return _xterm256(rgb)
    return _nearest16(rgb)


def render(text: str, depth: Depth) -> str:
    """Replace markup with escapes for ``depth`` (or remove it for ``Depth.NONE``)."""
    if "|" not in text:
        return text
    if depth == Depth.NONE:
        return strip(text)
    lines = []
    for line in text.split("\n"):
        coloured = False

        def replace(match: re.Match[str]) -> str:
            nonlocal coloured
            token = match.group(1)
            if token == "|":
                return "|"
            coloured = True
            return _code(token, depth)

        rendered = TOKEN.sub(replace, line)
        lines.append(rendered + RESET if coloured and not rendered.endswith(RESET) else rendered)
    return "\n".join(lines)


def strip(text: str) -> str:
    """The text without any markup (``||`` becomes ``|``)."""
    if "|" not in text:
        return text
    return TOKEN.sub(lambda m: "|" if m.group(1) == "|" else "", text)


def visible_length(text: str) -> int:
    return len(strip(text))


def _in_effect(text: str) -> str:
    """The markup still in effect at the end of ``text``: its colour, bold, underline."""
    colour, bold, underline = "", False, False
    for match in TOKEN.finditer(text):
        token = match.group(1)
        if token == "n":
            colour, bold, underline = "", False, False
        elif token == "h":
            bold = True
        elif token == "u":
            underline = True
        elif token != "|":
            colour = match.group(0)
    return ("|h" if bold else "") + ("|u" if underline else "") + colour


#: What starts every continuation piece of a wrapped line.
CONTINUATION = "  "
#: Where a line may break: a single space between two visible characters.
_BREAK = re.compile(r"(?<=\S) (?=\S)")


def wrap(text: str, width: int) -> str:
    """Wrap each line of marked-up ``text`` at ``width`` visible characters.

    Markup takes no room on screen, so it is not counted; the markup in effect
    at a break is repeated at the start of the next piece.  Words longer
    than the width are left whole; leading indentation is kept on the first
    piece of a line.  Continuation pieces are indented by ``CONTINUATION``,
    so a player's long line can never wrap into something that looks like
    a line of its own (``[reload] ...``, ``Pat says, ...``).
    """
    if width <= 0:
        return text
    out: list[str] = []
    for line in text.split("\n"):
        if "|" not in line:
            out.append(line if len(line) <= width else _wrap_plain(line, width))
            continue
        if visible_length(line) <= width:
            out.append(line)
            continue
        words = _BREAK.split(line)
        current = words[0]
        current_len = visible_length(current)
        for word in words[1:]:
            size = visible_length(word)
            if current_len + 1 + size > width:
                out.append(current)
                # ``render`` ends every line with a reset: the markup in effect
                # carries over to the next piece, so a narrow window shows the
                # colours a wide one does.
                current = _in_effect(current) + CONTINUATION + word
                current_len = size + len(CONTINUATION)
            else:
                current += " " + word
                current_len += 1 + size
        out.append(current)
    return "\n".join(out)


def _wrap_plain(line: str, width: int) -> str:
    """``wrap`` for one line without markup: the same pieces, found a piece at a time.

    Every character shows, so a piece is a slice: the last break within the
    width is found with ``rfind`` instead of adding up words one by one
    (the text of every ``look`` goes through here).
    """
    pieces: list[str] = []
    start = 0
    room = width
    end = len(line)
    while end - start > room:
        cut = _last_break(line, start, start + room)
        if cut < 0:  # a word longer than the width: kept whole
            cut = _next_break(line, start + room + 1)
            if cut < 0:
                break
        pieces.append(line[start:cut])
        start = cut + 1
        room = width - len(CONTINUATION)
    pieces.append(line[start:])
    return ("\n" + CONTINUATION).join(pieces)


def _breaks_at(line: str, index: int) -> bool:
    """True if the space at ``index`` stands alone between visible characters (``_BREAK``)."""
    if not 0 < index < len(line) - 1:
        return False
    return not (line[index - 1].isspace() or line[index + 1].isspace())


def _last_break(line: str, start: int, limit: int) -> int:
    """The last break after ``start`` and at or before ``limit``; -1 if none."""
    cut = line.rfind(" ", start + 1, limit + 1)
    while cut > start and not _breaks_at(line, cut):
        cut = line.rfind(" ", start + 1, cut)
    return cut if cut > start else -1


def _next_break(line: str, begin: int) -> int:
    """The first break at or after ``begin``; -1 if none."""
    cut = line.find(" ", begin)
    while cut >= 0 and not _breaks_at(line, cut):
        cut = line.find(" ", cut + 1)
    return cut
