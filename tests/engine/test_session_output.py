"""What a loop turn sends each client: all of it in one write, whoever else fails."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.config import Config
from engine.net.session import Session


class Options:
    def enabled(self, option: bytes) -> bool:
        return False


class Transport:
    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class Writer:
    """What a session uses of telnetlib3's writer; each write is recorded."""

    protocol = None
    local_option = Options()

    def __init__(self, fails: bool = False) -> None:
        self.transport = Transport()
        self.writes: list[bytes] = []
        self.fails = fails

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def encode(self, text: str) -> bytes:
        return text.encode()

    def send_iac(self, data: bytes) -> None:
        if self.fails:
            raise OSError("the socket is gone")
        self.writes.append(data)

    def close(self) -> None:
        pass


class Reader:
    async def read(self, size: int) -> str:
        return ""


def session(writer: Writer) -> Session:
    return Session(Reader(), writer, Config())


async def test_everything_a_turn_sends_a_client_goes_in_one_write_in_order() -> None:
    writers = [Writer() for _ in range(30)]
    sessions = [session(w) for w in writers]
    for n, each in enumerate(sessions):
        each.send(f"first {n}")
        each.send(f"second {n}")
        each.prompt()
    assert all(w.writes == [] for w in writers), "written before the turn ended"
    await asyncio.sleep(0)
    for n, writer in enumerate(writers):
        assert len(writer.writes) == 1
        assert writer.writes[0].startswith(f"first {n}\r\nsecond {n}\r\n> ".encode())
    sessions[3].send("later")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # It came while the player sat at the prompt: from the margin, then the prompt again.
    assert b"".join(writers[3].writes[1:]).startswith(b"\r\nlater\r\n> ")
    assert all(len(w.writes) == 1 for n, w in enumerate(writers) if n != 3)


async def test_a_message_at_the_prompt_starts_a_line_and_is_followed_by_the_prompt() -> None:
    writer = Writer()
    player = session(writer)
    player.prompt()
    await asyncio.sleep(0)
    player.send("Lee has entered the game.")
    player.send('Lee says, "Hello."')
    for _ in range(3):
        await asyncio.sleep(0)
    after = b"".join(writer.writes[1:])
    assert after.startswith(b'\r\nLee has entered the game.\r\nLee says, "Hello."\r\n> ')
    assert after.count(b"> ") == 1  # one prompt again, not one per message


async def test_a_client_whose_write_fails_does_not_keep_the_others_from_theirs() -> None:
    # The failing writer's transport cannot even be aborted (no ``abort``): the
    # error leaves the session's flush, and the turn goes on to the next client.
    writers = [Writer(), Writer(fails=True), Writer()]
    sessions = [session(w) for w in writers]
    for each in sessions:
        each.send("hello")
    await asyncio.sleep(0)
    assert writers[0].writes == [b"hello\r\n"]
    assert writers[2].writes == [b"hello\r\n"]
