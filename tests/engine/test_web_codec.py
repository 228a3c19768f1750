"""The web side's pure parts: subprotocol choice, the telnet client for terminal and gmcp,
the message in flight, and whose address a proxied connection is."""

from __future__ import annotations

import pytest
from telnetlib3.telopt import (
    BINARY,
    CHARSET,
    DO,
    DONT,
    ECHO,
    GA,
    GMCP,
    IAC,
    IS,
    MSSP,
    NAWS,
    SB,
    SE,
    SEND,
    TTYPE,
    WILL,
    WONT,
)

from engine.startup import StartupError
from engine.web.addresses import TrustedProxies, parse_address
from engine.web.bridge import InFlight
from engine.web.subprotocols import (
    GMCP_PROTOCOL,
    PAGE_TTYPES,
    TELNET,
    TERMINAL,
    ClientSide,
    choose,
    gmcp_to_telnet,
    lines_to_telnet,
)


def test_the_client_chooses_in_its_own_order_and_terminal_is_the_default() -> None:
    assert choose([]) is None
    assert choose(["x.example", GMCP_PROTOCOL, TELNET]) == GMCP_PROTOCOL
    assert choose([TELNET, TERMINAL]) == TELNET
    with pytest.raises(ValueError, match="none of chat is served"):
        choose(["chat"])


def test_a_frame_of_lines_becomes_telnet_lines() -> None:
    assert lines_to_telnet(b"look") == b"look\r\n"
    assert lines_to_telnet(b"say a\nsay b\n") == b"say a\r\nsay b\r\n"
    assert lines_to_telnet(b"one\r\ntwo\rthree") == b"one\r\ntwo\r\nthree\r\n"
    assert lines_to_telnet(b"") == b"\r\n"
    assert lines_to_telnet(b"\xff\x00x") == b"\xff\xffx\r\n"
    assert (
        gmcp_to_telnet(b'Core.Hello {"a": 1}')
        == IAC + SB + GMCP + b'Core.Hello {"a": 1}' + IAC + SE
    )


def test_the_client_side_answers_negotiation_and_keeps_text() -> None:
    client = ClientSide(gmcp=True, ttypes=PAGE_TTYPES, width=100)
    frames, answers = client.from_game(IAC + DO + TTYPE + b"Hello\r\n" + IAC + IAC + IAC + GA)
    assert frames == [(False, b"Hello\r\n\xff")]
    assert answers == IAC + WILL + TTYPE
    _, answers = client.from_game(IAC + SB + TTYPE + SEND + IAC + SE)
    assert answers == IAC + SB + TTYPE + IS + b"HOTMUD-WEB" + IAC + SE
    client.from_game(IAC + SB + TTYPE + SEND + IAC + SE)
    _, answers = client.from_game(IAC + SB + TTYPE + SEND + IAC + SE)
    assert answers == IAC + SB + TTYPE + IS + b"MTTS 271" + IAC + SE
    _, answers = client.from_game(IAC + DO + NAWS)
    assert answers == IAC + WILL + NAWS + IAC + SB + NAWS + b"\x00\x64\x00\x18" + IAC + SE
    _, answers = client.from_game(IAC + WILL + BINARY + IAC + DO + CHARSET + IAC + WILL + MSSP)
    assert answers == IAC + DO + BINARY + IAC + WONT + CHARSET + IAC + DONT + MSSP
    _, answers = client.from_game(IAC + WILL + BINARY)
    assert answers == b""  # already agreed: no answer, no loop


def test_gmcp_and_the_password_prompt_become_messages_in_order() -> None:
    client = ClientSide(gmcp=True)
    client.from_game(IAC + WILL + GMCP)
    data = b"Name: " + IAC + SB + GMCP + b'Room.Info {"name": "Hall"}' + IAC + SE + b"rest"
    frames, _ = client.from_game(data)
    assert frames == [(False, b"Name: "), (True, b'Room.Info {"name": "Hall"}'), (False, b"rest")]
    frames, answers = client.from_game(IAC + WILL + ECHO + b"Password: ")
    assert answers == IAC + DO + ECHO
    assert frames == [(True, b'Client.Password {"hidden": true}'), (False, b"Password: ")]
    assert client.hidden
    frames, answers = client.from_game(IAC + WONT + ECHO)
    assert (frames, answers) == ([(True, b'Client.Password {"hidden": false}')], IAC + DONT + ECHO)


def test_a_terminal_client_gets_no_gmcp_and_commands_split_between_writes_are_whole() -> None:
    client = ClientSide(gmcp=False)
    frames, answers = client.from_game(IAC + WILL + GMCP + IAC + SB + GMCP + b"X 1" + IAC + SE)
    assert (frames, answers) == ([], IAC + DONT + GMCP)
    assert client.from_game(b"ab" + IAC) == ([(False, b"ab")], b"")
    assert client.from_game(WILL) == ([], b"")
    assert client.from_game(ECHO + b"cd") == ([(False, b"cd")], IAC + DO + ECHO)


def test_a_page_reports_its_window_size_as_naws() -> None:
    client = ClientSide(gmcp=True)
    assert client.resize(b'Client.Window {"cols": 42, "rows": 30}') == b""  # NAWS not asked yet
    _, answers = client.from_game(IAC + DO + NAWS)
    assert answers == IAC + WILL + NAWS + IAC + SB + NAWS + b"\x00\x2a\x00\x1e" + IAC + SE
    resized = client.resize(b'Client.Window {"cols": 255}')
    assert resized == IAC + SB + NAWS + b"\x00" + IAC + IAC + b"\x00\x1e" + IAC + SE
    assert client.resize(b"Client.Window nonsense") == b""


def test_the_client_side_takes_up_a_restored_state() -> None:
    client = ClientSide(gmcp=True)
    client.restore({GMCP, ECHO, MSSP}, {NAWS, CHARSET})
    assert client.game_does == {GMCP, ECHO} and client.client_does == {NAWS}
    assert client.hidden
    assert client.from_game(IAC + WILL + GMCP) == ([], b"")


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame (RFC 6455 section 5.2)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 65536:
        head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def test_in_flight_keeps_only_the_message_not_yet_whole() -> None:
    flight = InFlight()
    flight.feed(frame(2, b"look") + frame(1, b"x" * 300))
    assert flight.raw == b""
    big = frame(2, b"y" * 70000)
    flight.feed(big[:5])
    assert flight.raw == big[:5]
    flight.feed(big[5:1000])
    assert flight.raw == big[:1000]
    flight.feed(big[1000:] + frame(2, b"z")[:3])
    assert flight.raw == frame(2, b"z")[:3]
    flight.feed(frame(2, b"z")[3:])
    assert flight.raw == b""
    # A fragmented message, a ping between its fragments: all of it until its last fragment.
    first, ping, last = frame(1, b"ab", fin=False), frame(9, b""), frame(0, b"cd")
    flight.feed(first + ping)
    assert flight.raw == first + ping
    flight.feed(last)
    assert flight.raw == b""


def test_addresses_and_trusted_proxies() -> None:
    assert str(parse_address("::ffff:192.0.2.1")) == "192.0.2.1"
    assert str(parse_address("[2001:db8::1]:443")) == "2001:db8::1"
    assert str(parse_address("203.0.113.5:5000")) == "203.0.113.5"
    assert parse_address("unknown") is None
    proxies = TrustedProxies.from_setting("127.0.0.1, 10.0.0.0/8")
    assert proxies.trusts("10.1.2.3") and not proxies.trusts("192.0.2.1")
    hops = ["198.51.100.1, 203.0.113.9", "10.0.0.2"]
    assert proxies.forwarded_for("127.0.0.1", hops) == "203.0.113.9"
    assert proxies.forwarded_for("192.0.2.50", hops) == "192.0.2.50"  # not a proxy of ours
    assert proxies.forwarded_for("127.0.0.1", ["junk"]) == "127.0.0.1"
    assert proxies.forwarded_for("127.0.0.1", []) == "127.0.0.1"
    assert not TrustedProxies.from_setting("")
    assert TrustedProxies.from_setting(["127.0.0.1", "10.0.0.0/8"]).trusts("10.0.0.9")
    with pytest.raises(StartupError, match='"nope" is not an address'):
        TrustedProxies.from_setting("nope")
