"""Unit tests of colour markup (``engine.net.colour``) and client capabilities
(``engine.net.clientinfo``).

Pure functions: rendering at each colour depth, stripping, wrapping at a width with markup that
takes no room, and what a client's TTYPE / MTTS answers and window size mean.
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.net.clientinfo import MAX_WIDTH, MIN_WIDTH, MTTS, ClientInfo, clamp, parse_mtts
from engine.net.colour import CONTINUATION, RESET, Depth, render, strip, visible_length, wrap

ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
BREAK = re.compile(r"(?<=\S) (?=\S)")  # where wrap may break a line


def unescaped(text: str) -> str:
    return ESCAPE.sub("", text)


# -- render -----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", list(Depth))
def test_text_without_markup_is_returned_unchanged(depth: Depth) -> None:
    text = "Plain text, even with escapes \x1b[31m it was given."
    assert render(text, depth) is text


def test_no_colour_strips_every_token_and_unescapes_pipes() -> None:
    text = "|rred|n |#ff8800orange |hbold|u under|n a||b |Rbright"
    assert render(text, Depth.NONE) == "red orange bold under a|b bright"
    assert render(text, Depth.NONE) == strip(text)


@pytest.mark.parametrize(
    ("markup", "code"),
    [
        ("|x", "\x1b[30m"),
        ("|r", "\x1b[31m"),
        ("|g", "\x1b[32m"),
        ("|y", "\x1b[33m"),
        ("|b", "\x1b[34m"),
        ("|m", "\x1b[35m"),
        ("|c", "\x1b[36m"),
        ("|w", "\x1b[37m"),
        ("|R", "\x1b[1;31m"),
        ("|W", "\x1b[1;37m"),
        ("|X", "\x1b[1;30m"),
        ("|h", "\x1b[1m"),
        ("|u", "\x1b[4m"),
    ],
)
@pytest.mark.parametrize("depth", [Depth.ANSI16, Depth.XTERM256])
def test_named_colours_are_ansi_codes_at_16_and_256(depth: Depth, markup: str, code: str) -> None:
    assert render(f"{markup}word|n", depth) == f"{code}word{RESET}"


@pytest.mark.parametrize(
    ("markup", "code"),
    [
        ("|r", "\x1b[38;2;205;0;0m"),
        ("|R", "\x1b[38;2;255;0;0m"),
        ("|#ff8800", "\x1b[38;2;255;136;0m"),
        ("|#FF8800", "\x1b[38;2;255;136;0m"),
        ("|h", "\x1b[1m"),
    ],
)
def test_truecolor_sends_exact_rgb(markup: str, code: str) -> None:
    assert render(f"{markup}x", Depth.TRUECOLOR) == f"{code}x{RESET}"


@pytest.mark.parametrize(
    ("hex_", "index"),
    [
        ("#ff8800", 208),  # 16 + 36*5 + 6*2 + 0
        ("#000000", 16),  # black: the cube's corner, not the grey ramp
        ("#ffffff", 231),  # white: the cube's other corner
        ("#ff0000", 196),
        ("#0000ff", 21),
        ("#808080", 244),  # a grey: the 24-step grey ramp (232..255)
        ("#121212", 233),
        ("#eeeeee", 255),
    ],
)
def test_xterm256_picks_the_cube_or_the_grey_ramp(hex_: str, index: int) -> None:
    assert render(f"|{hex_}x", Depth.XTERM256) == f"\x1b[38;5;{index}mx{RESET}"


@pytest.mark.parametrize(
    ("hex_", "code"),
    [
        ("#ff8800", "\x1b[33m"),  # orange: nearest is yellow
        ("#ff0000", "\x1b[1;31m"),  # pure red: the bright red
        ("#cd0000", "\x1b[31m"),
        ("#010101", "\x1b[30m"),
        ("#fefefe", "\x1b[1;37m"),
    ],
)
def test_ansi16_picks_the_nearest_of_the_16(hex_: str, code: str) -> None:
    assert render(f"|{hex_}x", Depth.ANSI16) == f"{code}x{RESET}"


@pytest.mark.parametrize("depth", [Depth.ANSI16, Depth.XTERM256, Depth.TRUECOLOR])
def test_every_coloured_line_ends_with_a_reset(depth: Depth) -> None:
    text = "|rred\nplain\n|gone|n\n|b|htwo"
    lines = render(text, depth).split("\n")
    assert lines[0].endswith(RESET)
    assert lines[1] == "plain"
    assert lines[2].endswith(RESET) and not lines[2].endswith(RESET + RESET)
    assert lines[3].endswith(RESET)


@pytest.mark.parametrize("depth", list(Depth))
def test_a_double_pipe_is_a_literal_pipe_and_not_colour(depth: Depth) -> None:
    assert render("a||b ||r", depth) == "a|b |r"


@pytest.mark.parametrize("text", ["|z", "|#12345", "|#12345g", "|", "end|", "|#"])
@pytest.mark.parametrize("depth", list(Depth))
def test_unknown_markup_is_left_as_typed(depth: Depth, text: str) -> None:
    assert render(text, depth) == text
    assert strip(text) == text


def test_visible_length_counts_no_markup() -> None:
    assert visible_length("|r|#ff8800|hab||c|n") == 4
    assert visible_length("plain") == 5


markup_text = st.lists(
    st.one_of(
        st.sampled_from(["|r", "|G", "|#ff8800", "|#A0b0C0", "|n", "|h", "|u", "||", "|", "|z"]),
        st.sampled_from([" ", "\n", "word", "x", "  ", "é", "\t"]),
        st.text(alphabet="ab |\n#0f", max_size=8),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(markup_text, st.sampled_from(list(Depth)))
def test_rendering_only_adds_escapes(text: str, depth: Depth) -> None:
    rendered = render(text, depth)
    assert unescaped(rendered) == strip(text)
    assert rendered.count("\n") == text.count("\n")
    if depth == Depth.NONE:
        assert "\x1b" not in rendered
    else:
        for line in rendered.split("\n"):
            assert not ESCAPE.search(line) or line.endswith(RESET)


# -- wrap -------------------------------------------------------------------------------------


def test_wrap_breaks_at_the_width() -> None:
    text = "one two three four five six"
    assert wrap(text, 9) == "one two\n  three\n  four\n  five\n  six"
    assert wrap(text, 100) == text
    assert wrap(text, 0) == text


def test_wrap_does_not_count_markup() -> None:
    # Eight visible characters per piece; the markup would make them 20 long.
    assert strip(wrap("|#ff8800abc |rdefg |nhij", 8)) == "abc defg\n  hij"


def test_wrap_keeps_a_long_word_whole_and_indentation() -> None:
    assert wrap("  indented text here", 10) == "  indented\n  text\n  here"
    assert wrap("a " + "x" * 30 + " b", 10) == "a\n  " + "x" * 30 + "\n  b"


def test_wrap_wraps_each_line_on_its_own() -> None:
    assert wrap("aaa bbb\nccc ddd eee", 7) == "aaa bbb\nccc ddd\n  eee"


def test_a_wrapped_line_never_starts_a_line_of_its_own() -> None:
    """Continuation pieces are indented: a player cannot wrap text into a fake system line."""
    spoof = "hello " + "x" * 60 + " [reload] Reloaded commands.general: changed say (3 ms)."
    pieces = wrap(spoof, 80).split("\n")
    assert len(pieces) > 1
    assert all(piece.startswith(CONTINUATION) for piece in pieces[1:])


@pytest.mark.parametrize("depth", [Depth.ANSI16, Depth.XTERM256, Depth.TRUECOLOR])
def test_colour_carries_over_a_wrap(depth: Depth) -> None:
    """A narrow window shows the same colours as a wide one (render resets every line)."""
    text = "|rred |hbold red|n plain |#00ff00green green"
    narrow = render(wrap(text, 9), depth).split("\n")
    assert [unescaped(line) for line in narrow] == [
        "red bold",
        "  red",
        "  plain",
        "  green",
        "  green",
    ]
    red = render("|r", depth).removesuffix(RESET)
    bold = "\x1b[1m"
    green = render("|#00ff00", depth).removesuffix(RESET)
    assert narrow[0] == f"{red}red {bold}bold{RESET}"
    assert narrow[1] == f"{bold}{red}  red{RESET}"
    assert narrow[2] == "  plain"
    assert narrow[3] == f"  {green}green{RESET}"
    assert narrow[4] == f"{green}  green{RESET}"


@settings(max_examples=300, deadline=None)
@given(markup_text, st.integers(min_value=1, max_value=40))
def test_wrap_only_turns_spaces_into_line_breaks_and_fills_greedily(text: str, width: int) -> None:
    sources = text.split("\n")
    assert wrap(text, width) == "\n".join(wrap(source, width) for source in sources)
    for source in sources:
        pieces = wrap(source, width).split("\n")
        # Nothing visible is lost or added: each break replaced one space
        # (and indents the piece after it).
        assert all(strip(p).startswith(CONTINUATION) for p in pieces[1:])
        unwrapped = [strip(pieces[0])] + [strip(p)[len(CONTINUATION) :] for p in pieces[1:]]
        assert " ".join(unwrapped) == strip(source)
        for piece in pieces:
            assert visible_length(piece) <= width or len(BREAK.split(piece)) == 1
        for piece, following in itertools.pairwise(pieces):
            first_word = BREAK.split(strip(following)[len(CONTINUATION) :])[0]
            assert visible_length(piece) + 1 + len(first_word) > width


def greedy_by_words(line: str, width: int) -> list[str]:
    """The rule ``wrap`` follows, word by word: a piece takes words while they fit."""
    words = BREAK.split(line)
    pieces = [words[0]]
    for word in words[1:]:
        if len(pieces[-1]) + 1 + len(word) > width:
            pieces.append(CONTINUATION + word)
        else:
            pieces[-1] += " " + word
    return pieces


#: Plain text with the spaces that make breaking hard: runs of them, tabs, no-break spaces.
plain_text = st.text(alphabet=st.sampled_from("ab \t\u00a0\u3000xyz"), max_size=120)


@settings(max_examples=500, deadline=None)
@given(plain_text, st.integers(min_value=1, max_value=40))
def test_wrap_of_text_without_markup_is_the_greedy_rule(line: str, width: int) -> None:
    """Text without markup is wrapped a slice at a time; the pieces are the word-by-word ones."""
    assert wrap(line, width).split("\n") == greedy_by_words(line, width)


# -- clientinfo: TTYPE, MTTS, window size ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "flags"),
    [
        ("MTTS 137", MTTS.ANSI | MTTS.COLORS_256 | MTTS.PROXY),
        ("mtts 1", MTTS.ANSI),
        ("MTTS 0", MTTS(0)),
        ("MTTS 4096", MTTS(0)),  # bits past the known ones are dropped
        ("MTTS 71", MTTS.ANSI | MTTS.VT100 | MTTS.UTF8 | MTTS.SCREEN_READER),
    ],
)
def test_parse_mtts(text: str, flags: MTTS) -> None:
    assert parse_mtts(text) == flags


@pytest.mark.parametrize("text", [None, "", "MTTS", "MTTS x", "XTERM", "MTTS-1", "MTTS  "])
def test_parse_mtts_refuses_what_is_not_mtts(text: str | None) -> None:
    assert parse_mtts(text) is None


@pytest.mark.parametrize(
    ("ttypes", "name", "term", "depth", "utf8", "reader"),
    [
        ([], "", "", Depth.NONE, False, False),
        (["unknown", "unknown"], "unknown", "unknown", Depth.NONE, False, False),
        (["xterm-256color"] * 2, "xterm-256color", "xterm-256color", Depth.XTERM256, False, False),
        (["XTERM"], "XTERM", "XTERM", Depth.ANSI16, False, False),
        (["vt100"], "vt100", "vt100", Depth.ANSI16, False, False),
        (["xterm-direct"], "xterm-direct", "xterm-direct", Depth.TRUECOLOR, False, False),
        (["xterm-truecolor"], "xterm-truecolor", "xterm-truecolor", Depth.TRUECOLOR, False, False),
        (["dumb"], "dumb", "dumb", Depth.NONE, False, False),
        (["xterm.UTF-8"], "xterm.UTF-8", "xterm.UTF-8", Depth.ANSI16, True, False),
        # Known MUD clients without MTTS.
        (["TINTIN++", "TINTIN++"], "TINTIN++", "TINTIN++", Depth.XTERM256, False, False),
        (["mudlet"], "mudlet", "mudlet", Depth.TRUECOLOR, False, False),
        (["ZMUD"], "ZMUD", "ZMUD", Depth.ANSI16, False, False),
        # MTTS decides when given.
        (
            ["MUDLET", "XTERM-256COLOR", "MTTS 271"],
            "MUDLET",
            "XTERM-256COLOR",
            Depth.TRUECOLOR,
            True,
            False,
        ),
        (["TINTIN++", "XTERM", "MTTS 137"], "TINTIN++", "XTERM", Depth.XTERM256, False, False),
        (["CLIENT", "ANSI-ISH", "MTTS 1"], "CLIENT", "ANSI-ISH", Depth.ANSI16, False, False),
        (
            ["MUDLET", "XTERM-256COLOR", "MTTS 0"],
            "MUDLET",
            "XTERM-256COLOR",
            Depth.NONE,
            False,
            False,
        ),
        (
            ["MUDLET", "XTERM-256COLOR", "MTTS 71"],
            "MUDLET",
            "XTERM-256COLOR",
            Depth.NONE,
            True,
            True,
        ),
        (["MUDLET", "", "MTTS 333", ""], "MUDLET", "MUDLET", Depth.NONE, True, True),
    ],
)
def test_client_info_from_ttype_answers(
    ttypes: list[str], name: str, term: str, depth: Depth, utf8: bool, reader: bool
) -> None:
    info = ClientInfo.from_ttypes(ttypes)
    assert (info.name, info.term, info.depth, info.utf8, info.screen_reader) == (
        name,
        term,
        depth,
        utf8,
        reader,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.from_regex(r"MTTS [0-9]{1,5}")), max_size=4))
def test_any_ttype_answers_give_a_consistent_client(ttypes: list[str]) -> None:
    info = ClientInfo.from_ttypes(ttypes)
    assert info.depth in set(Depth)
    if info.screen_reader:
        assert info.depth == Depth.NONE
        assert info.mtts is not None and MTTS.SCREEN_READER in info.mtts


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 80),
        ("abc", 80),
        (0, 80),
        (-5, 80),
        (5, MIN_WIDTH),
        (19, MIN_WIDTH),
        (20, 20),
        (100, 100),
        ("120", 120),
        (250, 250),
        (251, MAX_WIDTH),
        (65535, MAX_WIDTH),
    ],
)
def test_clamp_keeps_a_window_width_sane(value: object, expected: int) -> None:
    assert clamp(value, MIN_WIDTH, MAX_WIDTH, 80) == expected
    assert (MIN_WIDTH, MAX_WIDTH) == (20, 250)
