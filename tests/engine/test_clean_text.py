"""Clean text: nothing a player types or a builder stores can drive another player's terminal.

Unit tests of ``engine.net.text``; integration tests over 127.0.0.1 with a
player who types control characters and a description holding raw escapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from game_helpers import named, players

from engine.app import Game
from engine.net.text import MAX_MARKUP, cap_markup, clean_line, clean_output

if TYPE_CHECKING:
    from conftest import MakeClient

HOSTILE = "\x1b[2J\x9b31m\x9d0;title\x07\u202eevil\u2066x\u2069\x00\x7f"
ALLOWED = "café \u0645\u0631\u062d\u0628\u0627 \U0001f469\u200d\U0001f4bb\ttab"


def test_controls_and_bidi_overrides_are_removed_from_typed_lines() -> None:
    assert clean_line("hi" + HOSTILE) == "hi[2J31m0;titleevilx"
    assert clean_line(ALLOWED) == ALLOWED  # letters of any script, emoji joiners, tab


def test_output_keeps_newlines_and_tabs_and_drops_the_rest() -> None:
    assert clean_output("a\nb\tc" + HOSTILE) == "a\nb\tc[2J31m0;titleevilx"


def test_colour_markup_is_capped_per_line() -> None:
    line = "|r" * 50 + "end"
    capped = cap_markup(line)
    assert capped.count("||r") == 50 - MAX_MARKUP
    assert capped.startswith("|r" * MAX_MARKUP)
    assert cap_markup("||r |n plain") == "||r |n plain"  # a literal bar is not a token


async def test_a_player_cannot_send_controls_or_colour_floods_to_others(
    game: Game, make_client: MakeClient
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    await alice.command("colour on", "white\x1b[0m\r\n> ")
    bob.send("say hi" + HOSTILE)
    await alice.expect("Bob says")
    text = await alice.expect("\r\n")
    for bad in ("\x1b[2J", "\x9b", "\x9d", "\u202e", "\u2066", "\x07", "\x00"):
        assert bad not in text, (bad, text)
    bob.send("say " + "|r!" * 1300)  # just under the 4,096-character line limit
    line = await alice.expect("Bob says")
    line += await alice.expect('"\x1b[0m\r\n')
    assert line.count("\x1b[") <= MAX_MARKUP + 1  # the codes kept, and one reset


async def test_stored_text_with_raw_escapes_is_never_rendered(
    game: Game, make_client: MakeClient
) -> None:
    (alice,) = await players(make_client, "Alice")
    square = named(game, "The Village Square")
    square.description = "Calm.\x1b]0;owned\x07\x1b[31m Red\u202e?"
    square.attributes["motto"] = "\x9b2J"
    text = await alice.command("look", "Exits:")
    assert "Calm.]0;owned[31m Red?" in text
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    text = await alice.command("examine here", "motto")
    assert "\x9b" not in text


@pytest.mark.parametrize("width", [30])
async def test_a_long_say_wraps_with_indented_continuation_lines(
    game: Game, make_client: MakeClient, width: int
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    spoof = "hi " + " " * 200 + "[reload] Reloaded commands.general: changed say (3 ms)."
    bob.send("say " + spoof)
    text = await alice.expect("(3 ms).")
    for line in text.split("\r\n")[1:]:
        assert not line.startswith("[reload]"), text
