"""What a client told us about itself: TTYPE names, MTTS bits, window size.

MUD clients answer TTYPE three times: their name (``MUDLET``), a terminal
type (``XTERM-256COLOR``) and ``MTTS <bits>``, a bit field of what they
support.  telnetlib3 collects the answers as ``ttype1..ttype3``; this module
turns them into decisions (colour depth, UTF-8, screen reader).  Pure
functions over strings, so every rule is easy to test.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from engine.net.colour import Depth


class MTTS(IntFlag):
    """The MTTS bit field (https://tintin.mudhalla.net/protocols/mtts/)."""

    ANSI = 1
    VT100 = 2
    UTF8 = 4
    COLORS_256 = 8
    MOUSE_TRACKING = 16
    OSC_COLOR_PALETTE = 32
    SCREEN_READER = 64
    PROXY = 128
    TRUECOLOR = 256
    MNES = 512
    MSLP = 1024
    SSL = 2048


#: Clients known to show at least this many colours even without MTTS.
_KNOWN_CLIENTS = {
    "MUDLET": Depth.TRUECOLOR,
    "TINTIN++": Depth.XTERM256,
    "MUSHCLIENT": Depth.XTERM256,
    "CMUD": Depth.XTERM256,
    "ZMUD": Depth.ANSI16,
    "BEIP": Depth.XTERM256,
    "POTATO": Depth.XTERM256,
    "BLOWTORCH": Depth.XTERM256,
}

_ANSI_TERMS = ("xterm", "ansi", "vt100", "vt220", "linux", "screen", "tmux", "rxvt")

MIN_WIDTH, MAX_WIDTH = 20, 250
MIN_HEIGHT, MAX_HEIGHT = 5, 200


def clamp(value: object, low: int, high: int, default: int) -> int:
    """Clients may send any size at all (0, 65535): keep it sane."""
    try:
        number = int(value)  # type: ignore[call-overload]  # clients send anything
    except (TypeError, ValueError):
        return default
    if number <= 0:
        return default
    return int(max(low, min(high, number)))


def parse_mtts(text: str | None) -> MTTS | None:
    if not text or not text.upper().startswith("MTTS "):
        return None
    try:
        return MTTS(int(text.split()[1]) & 0xFFF)
    except (ValueError, IndexError):
        return None


def _depth_of_term(term: str) -> Depth:
    term = term.lower()
    if "truecolor" in term or "24bit" in term or "direct" in term:
        return Depth.TRUECOLOR
    if "256" in term:
        return Depth.XTERM256
    if any(k in term for k in _ANSI_TERMS):
        return Depth.ANSI16
    return Depth.NONE


@dataclass(frozen=True)
class ClientInfo:
    """One client's capabilities, decided from its TTYPE answers."""

    name: str = ""
    term: str = ""
    mtts: MTTS | None = None
    depth: Depth = Depth.NONE
    utf8: bool = False
    screen_reader: bool = False

    @classmethod
    def from_ttypes(cls, ttypes: list[str]) -> ClientInfo:
        """Decide from the TTYPE answers in the order the client gave them."""
        answers = [t for t in ttypes if t]
        mtts = next((m for t in answers if (m := parse_mtts(t)) is not None), None)
        plain = [t for t in answers if parse_mtts(t) is None]
        name = plain[0] if plain else ""
        term = plain[1] if len(plain) > 1 else name
        depth = max(
            _KNOWN_CLIENTS.get(name.upper(), Depth.NONE),
            *(_depth_of_term(t) for t in plain),
            Depth.NONE,
        )
        utf8 = any("utf" in t.lower() for t in plain)
        reader = False
        if mtts is not None:
            depth = (
                Depth.TRUECOLOR if MTTS.TRUECOLOR in mtts
                else Depth.XTERM256 if MTTS.COLORS_256 in mtts
                else Depth.ANSI16 if MTTS.ANSI in mtts
                else Depth.NONE
            )  # fmt: skip
            utf8 = utf8 or MTTS.UTF8 in mtts
            reader = MTTS.SCREEN_READER in mtts
        return cls(name, term, mtts, Depth.NONE if reader else depth, utf8, reader)
