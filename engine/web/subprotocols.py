"""What each MUD Standards websocket subprotocol carries, and how it becomes telnet for the game.

The game speaks telnet to every connection (``engine.net.telnet``).  A
websocket client chooses what it wants in its ``Sec-WebSocket-Protocol``
header (https://mudstandards.org/websocket/, a proposal; frame kinds as
RFC 6455 names them: TEXT is opcode 0x1, BINARY 0x2):

- ``telnet.mudstandards.org``: the whole telnet stream, negotiation and all,
  in BINARY frames both ways; the client is a telnet client.
- ``terminal.mudstandards.org`` (the default when a client names none):
  UTF-8 text with ANSI colour in BINARY frames both ways; a frame from the
  client holds one or more lines.  No telnet reaches the client:
  ``ClientSide`` answers the game's negotiation on its behalf.
- ``gmcp.mudstandards.org``: the same text in BINARY frames, and GMCP as TEXT
  frames, ``Package.Name json``, both ways.

Pure functions and one state machine over bytes, no I/O: ``engine.web.bridge``
moves the bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from telnetlib3.telopt import (
    BINARY,
    DO,
    DONT,
    ECHO,
    EOR,
    GMCP,
    IAC,
    IS,
    NAWS,
    SB,
    SE,
    SEND,
    SGA,
    TTYPE,
    WILL,
    WONT,
)

TELNET = "telnet.mudstandards.org"
TERMINAL = "terminal.mudstandards.org"
GMCP_PROTOCOL = "gmcp.mudstandards.org"
#: Every subprotocol served, the default first.
SUBPROTOCOLS = (TERMINAL, TELNET, GMCP_PROTOCOL)

#: The GMCP message a ``gmcp.mudstandards.org`` client gets when the game asks for a
#: password (telnet ``WILL ECHO``: ``{"hidden": true}``) and when that ends
#: (``WONT ECHO``: ``{"hidden": false}``): the page switches its input line to a
#: password field and back.  telnet clients get the telnet itself.
PASSWORD_PACKAGE = "Client.Password"


def password_message(hidden: bool) -> bytes:
    """The GMCP message telling a page to hide (or show again) what is typed."""
    return f'{PASSWORD_PACKAGE} {{"hidden": {"true" if hidden else "false"}}}'.encode()


#: The GMCP message a page sends with its window's size, ``{"cols": 60, "rows": 30}``: taken
#: by ``ClientSide``, which tells the game as NAWS would (text is wrapped to fit).
WINDOW_PACKAGE = "Client.Window"


#: Longest subnegotiation from the game kept whole (a GMCP message); longer ones are dropped.
MAX_SUBNEGOTIATION = 1 << 20


def choose(offered: Sequence[str]) -> str | None:
    """The subprotocol for a client that offered ``offered``, in its own order of preference.

    None: the client named none (it gets ``TERMINAL``, and no header names
    it).  A client that named only others is refused (``ValueError``).
    """
    if not offered:
        return None
    for name in offered:
        if name in SUBPROTOCOLS:
            return name
    served = ", ".join(SUBPROTOCOLS)
    raise ValueError(f"none of {', '.join(offered)} is served here; ask for one of {served}")


def lines_to_telnet(data: bytes) -> bytes:
    """A text frame from the client (one or more lines) as telnet input: CR LF ends, IAC doubled.

    A frame's last line needs no line end; an empty frame is one empty line.
    """
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\0", b"")
    if not text.endswith(b"\n"):
        text += b"\n"
    return text.replace(IAC, IAC + IAC).replace(b"\n", b"\r\n")


def gmcp_to_telnet(message: bytes) -> bytes:
    """A GMCP message from the client (``Package.Name json``) as a telnet subnegotiation."""
    return IAC + SB + GMCP + message.replace(IAC, IAC + IAC) + IAC + SE


#: MTTS bits (https://tintin.mudhalla.net/protocols/mtts/).
_ANSI, _VT100, _UTF8, _256, _TRUECOLOR = 1, 2, 4, 8, 256

#: What ``ClientSide`` answers to TTYPE, in turn: a name, a terminal, MTTS bits.
PAGE_TTYPES = (
    "HOTMUD-WEB",
    "XTERM-TRUECOLOR",
    f"MTTS {_ANSI | _VT100 | _UTF8 | _256 | _TRUECOLOR}",
)
TERMINAL_TTYPES = ("WEBSOCKET", "XTERM-256COLOR", f"MTTS {_ANSI | _VT100 | _UTF8 | _256}")

_DATA, _IAC, _OPTION, _SB, _SB_IAC = range(5)
_VERBS = (WILL, WONT, DO, DONT)


class ClientSide:
    """A telnet client speaking for a websocket client that speaks no telnet.

    The game's telnet output goes through ``from_game``: text comes out for
    the client, negotiation is answered (the answers go back to the game as
    if the client had sent them), GMCP comes out as messages (``gmcp``
    only), everything else of telnet is dropped.  It agrees to what the
    game needs to treat the client well: TTYPE (a name and MTTS bits, for
    colour and UTF-8), NAWS (the window's width), BINARY both ways, SGA, EOR,
    ECHO (password entry: ``echo_changes``) and, for ``gmcp``, GMCP;
    everything else is refused.

    Its option state is the game's mirrored (what the game does, what it
    asked of the client), so after a hot restart it is rebuilt from the
    game's telnet state (``restore``).
    """

    #: Options the client does when asked (DO x: WILL x).
    DOES = frozenset({TTYPE, NAWS, BINARY})

    def __init__(
        self, gmcp: bool, ttypes: Sequence[str] = TERMINAL_TTYPES, width: int = 80, height: int = 24
    ) -> None:
        self.gmcp = gmcp
        self.ttypes = tuple(ttypes)
        self.width = width
        self.height = height
        #: Options the game agreed to do (it said WILL, this side DO).
        self.game_does: set[bytes] = set()
        #: Options this side does for the game (it said DO, this side WILL).
        self.client_does: set[bytes] = set()
        self._wanted = frozenset({BINARY, SGA, EOR, ECHO} | ({GMCP} if gmcp else set()))
        self._state = _DATA
        self._verb = b""
        self._sb = bytearray()
        self._sb_overflow = False
        self._ttype_turn = 0

    @property
    def hidden(self) -> bool:
        """The game echoes (password entry): the client should hide what is typed."""
        return ECHO in self.game_does

    def restore(self, game_does: set[bytes], client_does: set[bytes]) -> None:
        """Take up the option state a connection had in another process (a hot restart)."""
        self.game_does = {o for o in game_does if o in self._wanted}
        self.client_does = {o for o in client_does if o in self.DOES}
        self._ttype_turn = len(self.ttypes)

    def from_game(self, data: bytes) -> tuple[list[tuple[bool, bytes]], bytes]:
        """The game's telnet bytes: (frames for the client, answers for the game).

        Each frame is (is a GMCP message, payload); text comes first in the
        order written, one payload for each run of text.
        """
        frames: list[tuple[bool, bytes]] = []
        answers = bytearray()
        text = bytearray()
        i, size = 0, len(data)
        while i < size:
            state = self._state
            if state == _DATA:
                end = data.find(IAC, i)
                if end < 0:
                    text += data[i:]
                    break
                text += data[i:end]
                i = end + 1
                self._state = _IAC
                continue
            byte = data[i : i + 1]
            i += 1
            if state == _IAC:
                if byte == IAC:
                    text += IAC
                    self._state = _DATA
                elif byte in _VERBS:
                    self._verb = byte
                    self._state = _OPTION
                elif byte == SB:
                    self._sb.clear()
                    self._sb_overflow = False
                    self._state = _SB
                else:  # GA, EOR, NOP, a stray SE ...: nothing for the client
                    self._state = _DATA
            elif state == _OPTION:
                hidden = self.hidden
                answers += self._negotiate(self._verb, byte)
                self._state = _DATA
                if self.gmcp and hidden != self.hidden:
                    _flush(text, frames)
                    shown = b"true" if self.hidden else b"false"
                    frames.append(
                        (True, PASSWORD_PACKAGE.encode() + b' {"hidden": ' + shown + b"}")
                    )
            elif state == _SB:
                if byte == IAC:
                    self._state = _SB_IAC
                elif len(self._sb) < MAX_SUBNEGOTIATION:
                    self._sb += byte
                else:
                    self._sb_overflow = True
            else:  # _SB_IAC
                if byte == IAC:
                    self._sb += IAC
                    self._state = _SB
                    continue
                self._state = _DATA
                if byte == SE and not self._sb_overflow:
                    message, answer = self._subnegotiation(bytes(self._sb))
                    if message is not None:
                        _flush(text, frames)
                        frames.append((True, message))
                    answers += answer
                self._sb.clear()
        _flush(text, frames)
        return frames, bytes(answers)

    def _negotiate(self, verb: bytes, option: bytes) -> bytes:
        if verb == WILL:
            if option not in self._wanted:
                return IAC + DONT + option
            if option in self.game_does:
                return b""
            self.game_does.add(option)
            return IAC + DO + option
        if verb == WONT:
            if option not in self.game_does:
                return b""
            self.game_does.discard(option)
            return IAC + DONT + option
        if verb == DO:
            if option not in self.DOES:
                return IAC + WONT + option
            if option in self.client_does:
                return b""
            self.client_does.add(option)
            answer = IAC + WILL + option
            if option == NAWS:
                answer += self.naws()
            return answer
        # DONT
        if option not in self.client_does:
            return b""
        self.client_does.discard(option)
        return IAC + WONT + option

    def resize(self, message: bytes) -> bytes:
        """A page's ``Client.Window`` message: the NAWS report for the game, if it asked for one."""
        try:
            size = json.loads(message.partition(b" ")[2] or b"null")
            width, height = int(size["cols"]), int(size.get("rows") or self.height)
        except (ValueError, TypeError, KeyError, AttributeError):
            return b""
        self.width = max(1, min(width, 0xFFFF))
        self.height = max(1, min(height, 0xFFFF))
        return self.naws() if NAWS in self.client_does else b""

    def naws(self) -> bytes:
        """The window size, as the NAWS subnegotiation reports it (RFC 1073)."""
        size = bytes(
            [self.width >> 8 & 0xFF, self.width & 0xFF, self.height >> 8 & 0xFF, self.height & 0xFF]
        )
        return IAC + SB + NAWS + size.replace(IAC, IAC + IAC) + IAC + SE

    def _subnegotiation(self, buf: bytes) -> tuple[bytes | None, bytes]:
        """A subnegotiation from the game: (a GMCP message for the client or None, an answer)."""
        option = buf[:1]
        if option == GMCP:
            return (buf[1:] if self.gmcp and GMCP in self.game_does else None), b""
        if option == TTYPE and buf[1:2] == SEND and TTYPE in self.client_does:
            name = self.ttypes[min(self._ttype_turn, len(self.ttypes) - 1)]
            self._ttype_turn += 1
            return None, IAC + SB + TTYPE + IS + name.encode("ascii") + IAC + SE
        return None, b""


def _flush(text: bytearray, frames: list[tuple[bool, bytes]]) -> None:
    """The text gathered so far as a frame of its own (NUL, telnet's filler after CR, dropped)."""
    if text:
        frames.append((False, bytes(text).replace(b"\0", b"")))
        text.clear()
