"""Clean text: what players type and what the game shows cannot drive anyone's terminal.

Unicode TR36 is the model: control characters in untrusted text are
removed, not passed on.  Two edges use these pure functions:

- every line a player types for a command (``clean_line``): C0 controls
  but tab, C1 controls and the bidi and other format controls go, and
  colour markup past ``MAX_MARKUP`` tokens in the line is shown as typed
  instead of being rendered;
- every text sent to a client (``clean_output``): the same controls go,
  newlines and tabs stay, so nothing stored (a description, an attribute a
  type class shows, content's own strings) can reach a terminal raw.  The
  engine's own colour escapes are added after this, by ``engine.net.colour``.
"""

from __future__ import annotations

import re

from engine.net.colour import TOKEN

#: Colour changes a player's line may carry; the rest is shown as typed.
MAX_MARKUP = 20

#: Joiners stay: they belong to emoji sequences and to several scripts.
_KEPT_FORMAT = "\u200c\u200d"

#: C0 but tab and newline, DEL, C1; bidi embeddings, overrides and isolates;
#: other invisible format characters (zero width space, word joiner, BOM ...).
_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]"
)


def clean_output(text: str) -> str:
    """``text`` without control and format characters (newline and tab kept)."""
    return _CONTROLS.sub("", text)


def clean_line(line: str, max_markup: int = MAX_MARKUP) -> str:
    """A typed line without controls (tab kept), its colour markup capped."""
    line = _CONTROLS.sub("", line.replace("\n", " "))
    return cap_markup(line, max_markup)


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
