"""Hypothesis strategies for hostile telnet input, and the plans that send it.

A ``Plan`` is what one hostile connection does: how far it gets before it
misbehaves (``stage``), the byte chunks it sends, and how it leaves
(``ending``).  The strategies build the chunks from telnet's grammar broken
in every way a client can break it: random bytes, IAC commands cut short or
followed by junk, subnegotiations never ended or nested, floods of option
requests, NUL bytes and invalid UTF-8, and well-formed subnegotiations with
hostile payloads for the options the engine handles itself.  Large streams
(1 MiB subnegotiations, 400 KB of option requests, GMCP and NEW-ENVIRON
hoarding) are drawn as a few parameters and built here, since Hypothesis
does not generate megabytes itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from telnetlib3.telopt import (
    AARDWOLF,
    ABORT,
    AO,
    ATCP,
    AYT,
    BINARY,
    BRK,
    CHARSET,
    CMD_EOR,
    COM_PORT_OPTION,
    DM,
    DO,
    DONT,
    EC,
    ECHO,
    EL,
    EOF,
    EOR,
    GA,
    GMCP,
    IAC,
    IP,
    LFLOW,
    LINEMODE,
    LOGOUT,
    MCCP2_COMPRESS,
    MCCP3_COMPRESS,
    MCCP_COMPRESS,
    MSDP,
    MSP,
    MSSP,
    MXP,
    NAWS,
    NEW_ENVIRON,
    NOP,
    SB,
    SE,
    SGA,
    SNDLOC,
    STATUS,
    SUSP,
    TM,
    TSPEED,
    TTYPE,
    WILL,
    WONT,
    XDISPLOC,
    ZMP,
)

MiB = 1 << 20

#: The options telnetlib3 (or the engine) does something with; any byte is fair too.
KNOWN_OPTIONS = (
    BINARY, ECHO, SGA, STATUS, TM, LOGOUT, SNDLOC, TTYPE, EOR, NAWS, TSPEED, LFLOW,
    LINEMODE, XDISPLOC, NEW_ENVIRON, CHARSET, COM_PORT_OPTION, MSDP, MSSP,
    MCCP_COMPRESS, MCCP2_COMPRESS, MCCP3_COMPRESS, MSP, MXP, ZMP, AARDWOLF, ATCP, GMCP,
    b"\xff",
)  # fmt: skip
VERBS = (WILL, WONT, DO, DONT)
TWO_BYTE_COMMANDS = (NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, CMD_EOR, ABORT, SUSP, EOF, SE)

#: Byte sequences that are not UTF-8: lone continuation bytes, overlong forms
#: (of "/" and NUL), UTF-16 surrogates, sequences cut short, bytes past U+10FFFF.
BAD_UTF8 = (
    b"\x80", b"\xbf", b"\x80\x80\x80",
    b"\xc0\xaf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xe0\x9f\xbf",
    b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf", b"\xfc\x80\x80\x80\x80\xaf",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb8\x80",
    b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xf0\x9f",
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xfe", b"\xff\xfe",
)  # fmt: skip
LINE_ENDS = (b"\r\n", b"\n", b"\r", b"\r\x00", b"\n\r", b"")


def escape(data: bytes) -> bytes:
    """Double every IAC, as a correct client does inside data and subnegotiations."""
    return data.replace(IAC, IAC + IAC)


options = st.one_of(st.sampled_from(KNOWN_OPTIONS), st.integers(0, 255).map(lambda n: bytes([n])))

negotiation = st.builds(lambda verb, opt: IAC + verb + opt, st.sampled_from(VERBS), options)

#: IAC followed by anything: a real two-byte command, IAC IAC, or junk.
iac_command = st.one_of(
    st.sampled_from(TWO_BYTE_COMMANDS).map(lambda cmd: IAC + cmd),
    st.just(IAC + IAC),
    st.binary(min_size=0, max_size=3).map(lambda tail: IAC + tail),
)

#: Sequences that stop in the middle (the next chunk, or nothing, follows).
truncated = st.sampled_from(
    [
        IAC,
        IAC + DO,
        IAC + WILL,
        IAC + SB,
        IAC + SB + TTYPE,
        IAC + SB + NAWS + b"\x00",
        IAC + SB + GMCP,
    ]
)

text = st.text(max_size=60)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def gmcp_payload(draw: st.DrawFn) -> bytes:
    package = draw(st.sampled_from(["Core.Hello", "Core.Supports.Set", "Char.Vitals", ""]) | text)
    body = draw(
        st.one_of(
            json_like.map(json.dumps),
            text,
            st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
            st.integers(1, 3000).map(lambda depth: "[" * depth),
        )
    )
    return f"{package} {body}".encode(errors="surrogatepass")


@st.composite
def structured_payload(draw: st.DrawFn, opt: bytes) -> bytes:
    """A payload shaped like what ``opt`` expects, usually a little wrong."""
    words = st.binary(max_size=24) | text.map(lambda t: t.encode(errors="surrogatepass"))
    if opt == TTYPE:
        kind = draw(st.sampled_from([b"\x00", b"\x01", b"\x02"]))
        name = draw(st.sampled_from([b"MUDLET", b"XTERM-256COLOR", b"MTTS 2147483647"]) | words)
        mtts = draw(st.integers(-(2**70), 2**70).map(lambda n: b"MTTS %d" % n))
        return kind + draw(st.sampled_from([name, mtts]))
    if opt == NAWS:
        return draw(st.binary(min_size=0, max_size=9))
    if opt == NEW_ENVIRON:
        kind = draw(st.sampled_from([b"\x00", b"\x01", b"\x02", b"\x03"]))
        parts = draw(st.lists(st.sampled_from([b"\x00", b"\x01", b"\x02", b"\x03"]) | words))
        return kind + b"".join(parts)
    if opt == CHARSET:
        kind = draw(st.integers(0, 9).map(lambda n: bytes([n])))
        return kind + draw(st.sampled_from([b";UTF-8;ascii", b"UTF-8", b";", b""]) | words)
    if opt == GMCP:
        return draw(gmcp_payload())
    if opt in (MSDP, MSSP):
        parts = draw(st.lists(st.integers(1, 6).map(lambda n: bytes([n])) | words, max_size=12))
        return b"".join(parts)
    if opt == LINEMODE:
        kind = draw(st.integers(0, 4).map(lambda n: bytes([n])))
        return kind + draw(st.binary(max_size=12))
    return draw(st.binary(max_size=32))


@st.composite
def subnegotiation(draw: st.DrawFn) -> bytes:
    """IAC SB <option> <payload> and an end that may be right, missing or wrong."""
    opt = draw(options)
    payload = draw(st.binary(max_size=64) | structured_payload(opt))
    if draw(st.booleans()):
        payload = escape(payload)
    end = draw(
        st.just(IAC + SE)
        | st.sampled_from([b"", SE, IAC + IAC, IAC + NOP, IAC + SB + GMCP, IAC + SB])
        | st.binary(min_size=1, max_size=2).map(lambda tail: IAC + tail)
    )
    return IAC + SB + opt + payload + end


#: The options whose subnegotiations reach the engine's own code (GMCP messages,
#: TTYPE answers, window sizes, NEW-ENVIRON variables, CHARSET replies).
ENGINE_OPTIONS = (GMCP, TTYPE, NAWS, NEW_ENVIRON, CHARSET, MSSP)


@st.composite
def engine_subnegotiation(draw: st.DrawFn) -> bytes:
    """A well-formed subnegotiation with a hostile payload: it is parsed and handed on."""
    opt = draw(st.sampled_from(ENGINE_OPTIONS))
    return IAC + SB + opt + escape(draw(structured_payload(opt))) + IAC + SE


@st.composite
def nested_subnegotiation(draw: st.DrawFn) -> bytes:
    inner = draw(subnegotiation())
    outer_opt = draw(options)
    closes = draw(st.sampled_from([IAC + SE, IAC + SE + IAC + SE, b""]))
    return IAC + SB + outer_opt + draw(st.binary(max_size=8)) + inner + closes


#: The same option requests over and over (answered each time by the server).
negotiation_flood = st.builds(
    lambda commands, times: b"".join(commands) * times,
    st.lists(negotiation, min_size=1, max_size=4),
    st.integers(1, 400),
)

#: Every option byte, 0 to 255, each with a random payload.
every_option_subnegotiated = st.builds(
    lambda payload, end: b"".join(IAC + SB + bytes([n]) + payload + end for n in range(256)),
    st.binary(max_size=6).map(escape),
    st.sampled_from([IAC + SE, b""]),
)

#: Text lines full of NUL bytes and invalid UTF-8, with any line end.
bad_text = st.builds(
    lambda pieces, end: b"".join(pieces) + end,
    st.lists(
        st.sampled_from(BAD_UTF8)
        | st.just(b"\x00")
        | text.map(lambda t: t.encode("utf-8", errors="surrogatepass")),
        max_size=10,
    ),
    st.sampled_from(LINE_ENDS),
)

#: Commands a logged-in player could type (with their arguments mangled).
commands = st.builds(
    lambda verb, rest, end: verb + rest + end,
    st.sampled_from([b"say ", b"look ", b"who", b"help ", b"colour ", b"get ", b"'", b"quit"]),
    st.binary(max_size=30),
    st.sampled_from(LINE_ENDS),
)

chunk = st.one_of(
    st.binary(min_size=1, max_size=512),
    negotiation,
    iac_command,
    truncated,
    subnegotiation(),
    engine_subnegotiation(),
    nested_subnegotiation(),
    negotiation_flood,
    every_option_subnegotiated,
    bad_text,
    commands,
)

STAGES = ("connect", "banner", "new_name", "new_password", "password", "playing")
ENDINGS = ("close", "reset", "half_close", "keep_open")


@dataclass
class Plan:
    """One hostile connection.

    ``stage``: how far it gets honestly first (``connect``: it sends at once,
    during the server's negotiation; ``banner``: it waits for the name prompt;
    ``new_name``/``new_password``: mid-way through creating an account;
    ``password``: at the password prompt of an existing account; ``playing``:
    logged in).  ``ending``: ``close`` (FIN), ``reset`` (SO_LINGER 0, an RST),
    ``half_close`` (shutdown(SHUT_WR), then read on until the server closes) or
    ``keep_open`` (left open, not sending, until the example ends).
    ``reads=False``: it never reads what the server sends.
    """

    stage: str
    chunks: list[bytes] = field(default_factory=list)
    ending: str = "close"
    pause: bool = False
    reads: bool = True

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # How Hypothesis prints a falsifying example: without the megabytes.
        printer.text(repr(self))

    def __repr__(self) -> str:
        shown = [c if len(c) <= 80 else c[:60] + b"...(%d bytes)" % len(c) for c in self.chunks]
        return (
            f"Plan(stage={self.stage!r}, ending={self.ending!r}, pause={self.pause}, "
            f"reads={self.reads}, chunks={shown!r})"
        )


def plans(
    chunks: st.SearchStrategy[bytes], min_chunks: int = 0, max_chunks: int = 8
) -> st.SearchStrategy[Plan]:
    return st.builds(
        Plan,
        stage=st.sampled_from(STAGES),
        chunks=st.lists(chunks, min_size=min_chunks, max_size=max_chunks),
        ending=st.sampled_from(ENDINGS),
        pause=st.booleans(),
        reads=st.booleans(),
    )


# -- megabyte streams ---------------------------------------------------------------


@st.composite
def huge_subnegotiation(draw: st.DrawFn) -> bytes:
    """IAC SB <option> and 1 MiB of payload, ended or not.

    The payload repeats a drawn pattern; unescaped, an IAC in it breaks the
    subnegotiation and the rest arrives as a flood of data.
    """
    opt = draw(st.sampled_from([TTYPE, GMCP, NEW_ENVIRON, CHARSET, MSDP, NAWS]) | options)
    pattern = draw(st.binary(min_size=1, max_size=16))
    if draw(st.booleans()):
        pattern = escape(pattern)
    size = draw(st.sampled_from([MiB - 64, MiB, MiB + 4096]))
    payload = (pattern * (size // len(pattern) + 1))[:size]
    end = draw(st.sampled_from([IAC + SE, b"", IAC + NOP]))
    return IAC + SB + opt + payload + end


def repeated(one: bytes, size: int) -> bytes:
    """``one`` over and over, about ``size`` bytes of it."""
    return one * max(1, size // len(one))


#: About 400 KB of option requests, which the server answers one by one.
huge_negotiation_flood = st.lists(negotiation, min_size=1, max_size=4).map(
    lambda commands: repeated(b"".join(commands), 400_000)
)


def gmcp_hoard(count: int = 64, item: bytes = b"{}") -> bytes:
    """``count`` GMCP messages under distinct package names, each with 15 KB of bulky JSON."""
    body = b"[" + b",".join([item] * (15_000 // (len(item) + 1))) + b"]"
    return b"".join(IAC + SB + GMCP + b"Pkg%d " % n + body + IAC + SE for n in range(count))


@st.composite
def environ_hoard(draw: st.DrawFn) -> bytes:
    """NEW-ENVIRON answers naming ever new variables (30,000 of them, 300-500 KB)."""
    var = draw(st.sampled_from([b"\x00", b"\x03"]))  # VAR, USERVAR
    value = draw(st.binary(min_size=1, max_size=8).map(escape))
    per_message = 200
    out = []
    for start in range(0, 30_000, per_message):
        pairs = b"".join(
            var + b"K%d" % n + b"\x01" + value for n in range(start, start + per_message)
        )
        out.append(IAC + SB + NEW_ENVIRON + b"\x00" + pairs + IAC + SE)
    return b"".join(out)


huge_chunk = st.one_of(
    huge_subnegotiation(),
    huge_negotiation_flood,
    st.builds(gmcp_hoard, st.integers(64, 80), st.sampled_from([b"{}", b"[]", b"0", b'""'])),
    environ_hoard(),
)


def crowd(chunks: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[Plan]]:
    """One to three connections doing the same (what each costs the server adds up),
    sometimes beside another plan."""
    return st.builds(
        lambda plan, copies, others: [plan] * copies + others,
        plans(chunks, min_chunks=1, max_chunks=1),
        st.integers(1, 3),
        st.lists(plans(chunk, max_chunks=3), max_size=1),
    )
