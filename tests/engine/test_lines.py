"""The bounded line reader: line ends, stray LFs, overlong lines, control characters."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from engine.net.lines import BoundedLineReader, LineSplitter, LineTooLong


def feed_all(splitter: LineSplitter, chunks: Iterable[str]) -> list[str | None]:
    out: list[str | None] = []
    for chunk in chunks:
        out.extend(splitter.feed(chunk))
    return out


# -- LineSplitter ----------------------------------------------------------------


def test_crlf_lf_and_bare_cr_each_end_a_line() -> None:
    assert LineSplitter().feed("look\r\nsay hi\nwho\rquit\r\n") == ["look", "say hi", "who", "quit"]


def test_cr_nul_ends_one_line() -> None:
    # RFC 854: a bare CR is sent as CR NUL.
    assert LineSplitter().feed("look\r\0who\r\n") == ["look", "who"]


def test_a_partial_line_waits_for_its_end() -> None:
    splitter = LineSplitter()
    assert splitter.feed("lo") == []
    assert splitter.feed("ok") == []
    assert splitter.feed("\r\n") == ["look"]


def test_lf_after_a_cr_that_ended_the_previous_chunk_is_not_an_empty_line() -> None:
    splitter = LineSplitter()
    assert splitter.feed("look\r") == ["look"]
    assert splitter.feed("\n") == []
    assert splitter.feed("who\r") == ["who"]
    assert splitter.feed("\nsay hi\n") == ["say hi"]


def test_only_the_first_chunk_after_a_cr_can_carry_its_lf() -> None:
    splitter = LineSplitter()
    assert splitter.feed("look\r") == ["look"]
    assert splitter.feed("say") == []
    # This LF ends 'say'; it is not swallowed as a CR's partner.
    assert splitter.feed("\n") == ["say"]


def test_empty_lines_are_kept() -> None:
    # An empty line is the player pressing enter; the dispatcher ignores it.
    assert LineSplitter().feed("\r\n\nlook\n") == ["", "", "look"]


def test_control_characters_are_stripped_but_tabs_kept() -> None:
    line = "lo\x07ok\x1b[A at\tthe\x7f sky\x00\x08"
    assert LineSplitter().feed(line + "\n") == ["look[A at\tthe sky"]


def test_a_line_exactly_at_the_limit_is_accepted() -> None:
    splitter = LineSplitter(limit=10)
    assert splitter.feed("x" * 10 + "\n") == ["x" * 10]
    # Also when it arrives in pieces.
    assert feed_all(splitter, ["y" * 4, "y" * 6, "\r\n"]) == ["y" * 10]


def test_an_overlong_line_is_dropped_and_reported_once() -> None:
    splitter = LineSplitter(limit=10)
    assert splitter.feed("x" * 11 + "\nlook\n") == [None, "look"]


def test_an_overlong_line_over_many_chunks_is_reported_once_and_discarded_to_its_end() -> None:
    splitter = LineSplitter(limit=10)
    out = feed_all(splitter, ["x" * 6, "x" * 6, "x" * 1000, "x" * 5000, "tail\r\n", "say ok\r\n"])
    assert out == [None, "say ok"]


def test_an_overlong_line_never_holds_more_than_the_limit() -> None:
    splitter = LineSplitter(limit=100)
    for _ in range(50):
        splitter.feed("z" * 10_000)
        assert sum(len(p) for p in splitter._partial) <= 100
    assert splitter.feed("\n") == []
    assert splitter.feed("next\n") == ["next"]


def test_a_split_cr_lf_after_an_overlong_line_is_one_line_end() -> None:
    splitter = LineSplitter(limit=5)
    assert feed_all(splitter, ["x" * 20 + "\r", "\nok\n"]) == [None, "ok"]


# -- BoundedLineReader -------------------------------------------------------------


class Source:
    """The reader's ``read``: hands out the given chunks, then end of input."""

    def __init__(self, *chunks: str) -> None:
        self.chunks = list(chunks)
        self.sizes: list[int] = []

    async def read(self, n: int) -> str:
        self.sizes.append(n)
        return self.chunks.pop(0) if self.chunks else ""


async def read_lines(reader: BoundedLineReader) -> list[str]:
    lines = []
    while (line := await reader.readline()) is not None:
        lines.append(line)
    return lines


async def test_reader_joins_chunks_into_lines_and_returns_none_at_eof() -> None:
    source = Source("lo", "ok\r", "\nsay hel", "lo\nwho\r\n")
    reader = BoundedLineReader(source.read)
    assert await read_lines(reader) == ["look", "say hello", "who"]
    assert await reader.readline() is None


async def test_reader_drops_a_partial_line_at_eof() -> None:
    reader = BoundedLineReader(Source("look\n", "unfinished").read)
    assert await read_lines(reader) == ["look"]


async def test_reader_reports_each_overlong_line_and_goes_on() -> None:
    reports: list[int] = []

    async def on_overlong() -> None:
        reports.append(1)

    source = Source("x" * 30 + "\n", "look\n", "y" * 30, "\nwho\n")
    reader = BoundedLineReader(source.read, limit=10, max_overlong=3, on_overlong=on_overlong)
    assert await reader.readline() == "look"
    assert len(reports) == 1
    assert await reader.readline() == "who"
    assert len(reports) == 2
    assert await reader.readline() is None


async def test_repeated_overlong_lines_raise_line_too_long() -> None:
    reports: list[int] = []

    async def on_overlong() -> None:
        reports.append(1)

    source = Source("x" * 11 + "\n", "ok\n", "x" * 11 + "\n", "x" * 11 + "\nnever\n")
    reader = BoundedLineReader(source.read, limit=10, max_overlong=3, on_overlong=on_overlong)
    assert await reader.readline() == "ok"
    with pytest.raises(LineTooLong):
        await reader.readline()
    # Every dropped line was reported, the last one included.
    assert len(reports) == 3


async def test_a_line_exactly_at_the_reader_limit_is_accepted() -> None:
    reader = BoundedLineReader(Source("x" * 4096 + "\r\n").read, limit=4096, max_overlong=1)
    assert await reader.readline() == "x" * 4096
    assert reader.limit == 4096


async def test_reader_asks_for_its_chunk_size() -> None:
    source = Source("look\n")
    reader = BoundedLineReader(source.read, chunk=12345)
    await reader.readline()
    assert source.sizes == [12345]


def test_a_cr_lf_sent_by_a_telnet_client_not_in_binary_mode_is_one_line_end() -> None:
    # netkit telnet, not in binary mode, sends a pasted (or piped) CR LF as CR NUL CR LF.
    splitter = LineSplitter()
    assert splitter.feed("Tess\r\x00\r\nyes\r\x00\r\n") == ["Tess", "yes"]
    assert splitter.feed("look\r\x00") == ["look"]  # Enter in a terminal: CR NUL alone
