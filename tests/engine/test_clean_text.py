"""Clean text: nothing a player types or a builder stores can drive another player's terminal.

Unit tests of ``engine.net.text``; integration tests over 127.0.0.1 with a
player who types control characters and invisible characters; in process
(``LocalGame``), a description holding raw escapes and a long say.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

import pytest
from game_helpers import named, players

from engine.app import Game
from engine.local import LocalGame
from engine.net.text import (
    FILLERS,
    KEPT,
    MAX_MARKUP,
    REMOVED,
    REMOVED_CATEGORIES,
    cap_markup,
    clean_line,
    clean_output,
)

if TYPE_CHECKING:
    from conftest import MakeClient

HOSTILE = "\x1b[2J\x9b31m\x9d0;title\x07\u202eevil\u2066x\u2069\x00\x7f"
ALLOWED = "café \u0645\u0631\u062d\u0628\u0627 \U0001f469\u200d\U0001f4bb\ttab"


def test_controls_and_bidi_overrides_are_removed_from_typed_lines() -> None:
    assert clean_line("hi" + HOSTILE) == "hi[2J31m0;titleevilx"
    assert clean_line(ALLOWED) == ALLOWED  # letters of any script, emoji joiners, tab


def test_output_keeps_newlines_and_tabs_and_drops_the_rest() -> None:
    assert clean_output("a\nb\tc" + HOSTILE) == "a\nb\tc[2J31m0;titleevilx"


#: What goes, by kind; each is also typed between ASCII, accented letters and emoji,
#: since each kind of text takes its own path through the cleaner.
INVISIBLE = {
    "line and paragraph separators (Zl, Zp)": "\u2028\u2029",
    "format characters (Cf)": (
        "\u202e\u2066\u2069\u200b\u200e\u00ad\u061c\u2060\ufeff\u0600\u06dd"
        "\U000110bd\U00013430\U0001d173"
    ),
    "TAG characters (Cf)": "\U000e0001\U000e0020\U000e0041\U000e0069\U000e007f",
    "Hangul fillers": "\u115f\u1160\u3164\uffa0",
    "controls (Cc)": "\x00\x07\x1b\r\x7f\x85\x9b",
}
AROUND = {"ascii": "ab", "accented": "éè", "emoji": "\U0001f600\U0001f389"}


@pytest.mark.parametrize("around", AROUND.values(), ids=list(AROUND))
@pytest.mark.parametrize("chars", INVISIBLE.values(), ids=list(INVISIBLE))
def test_each_kind_of_invisible_character_is_removed(chars: str, around: str) -> None:
    first, last = list(around)
    for char in chars:
        assert clean_line(first + char + last) == around, f"U+{ord(char):04X}"
        assert clean_output(first + char + last) == around, f"U+{ord(char):04X}"
    assert clean_output(first + chars + " " + chars + last) == first + " " + last


KEPT_TEXT = {
    "emoji joined by ZWJ": "\U0001f469\u200d\U0001f4bb \U0001f3f3\ufe0f\u200d\U0001f308",
    "ZWNJ in Persian": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
    "Korean syllables and jamo": "\uc548\ub155 \u1100\u1161",
    "braille blank, a visible cell": "\u2800\u2801\u2800",
    "accents, tab, variation selector": "café\tnaïve \u2764\ufe0f",
}


@pytest.mark.parametrize("text", KEPT_TEXT.values(), ids=list(KEPT_TEXT))
def test_joiners_and_ordinary_letters_of_any_script_stay(text: str) -> None:
    assert clean_line(text) == text
    assert clean_output(text + "\n" + text) == text + "\n" + text


def test_what_goes_is_every_control_and_format_character_unicode_knows() -> None:
    # Over all seventeen planes, not just those the cleaner looks through.
    every = [chr(point) for point in range(0x110000)]
    by_category = {c for c in every if unicodedata.category(c) in REMOVED_CATEGORIES}
    assert by_category - KEPT | FILLERS == REMOVED
    assert {"\u2028", "\u2029", "\U000e0001", "\U000e007f", "\u3164"} <= REMOVED
    assert clean_output("".join(sorted(REMOVED))) == ""
    rest = "".join(c for c in every if c not in REMOVED)
    assert clean_output(rest) == rest


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


async def test_another_player_never_receives_invisible_characters(
    game: Game, make_client: MakeClient
) -> None:
    alice, bob = await players(make_client, "Alice", "Bob")
    hidden = "".join(INVISIBLE.values()).replace("\r", "")
    bob.send(f"say tag{hidden}ged \u00e9\U0001f600{hidden}!")
    await bob.expect("You say")
    line = await alice.expect('!"')
    assert 'Bob says, "tagged \u00e9\U0001f600!"' in line, line
    for char in hidden:
        assert char not in alice.transcript, f"U+{ord(char):04X}"


async def test_stored_text_with_raw_escapes_is_never_rendered(local: LocalGame) -> None:
    (alice,) = await local.players("Alice")
    await alice.expect("\r\n> ")  # the look on entering
    square = named(local, "The Village Square")
    square.description = "Calm.\x1b]0;owned\x07\x1b[31m Red\u202e?"
    square.attributes["motto"] = "\x9b2J"
    text = await alice.command("look", "Exits:")
    assert "Calm.]0;owned[31m Red?" in text
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    text = await alice.command("examine here", "motto")
    assert "\x9b" not in text


@pytest.mark.parametrize("width", [30])
async def test_a_long_say_wraps_with_indented_continuation_lines(
    local: LocalGame, width: int
) -> None:
    alice, bob = await local.players("Alice", "Bob")
    spoof = "hi " + " " * 200 + "[reload] Reloaded commands.general: changed say (3 ms)."
    bob.send("say " + spoof)
    text = await alice.expect("(3 ms).")
    for line in text.split("\r\n")[1:]:
        assert not line.startswith("[reload]"), text
