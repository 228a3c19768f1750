"""The login conversation over a real telnet connection."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from telnetlib3.telopt import ECHO

from engine.accounts.account import Role
from engine.app import Game

if TYPE_CHECKING:
    from conftest import MakeClient, MakeRaw

IAC_WILL_ECHO = b"\xff\xfb\x01"
IAC_WONT_ECHO = b"\xff\xfc\x01"


async def test_new_account_with_password_twice_and_echo_off(
    game: Game, make_client: MakeClient, password: str
) -> None:
    client = await make_client()
    banner = await client.expect("By what name are you known? ")
    assert "Welcome to HotMUD" in banner
    client.send("Alice")
    await client.expect("There is nobody called Alice. Create a new character? (yes/no) ")
    client.send("yes")
    await client.expect("Choose a password (at least 6 characters): ")
    # The server took over echo before asking: the password is not shown.
    assert client.writer.remote_option.enabled(ECHO)
    client.send(password)
    await client.expect("Type it again: ")
    assert client.writer.remote_option.enabled(ECHO)
    client.send(password)
    text = await client.expect("Exits:")
    assert "Welcome, Alice! You are an admin." in text
    assert "The Village Square" in text
    # Echo is given back once the password is in.
    assert not client.writer.remote_option.enabled(ECHO)
    assert password not in client.transcript
    account = await game.accounts.verify("Alice", password)
    assert account is not None and account.role is Role.ADMIN


async def test_the_server_sends_will_echo_before_the_password_prompt(
    game: Game, make_raw: MakeRaw, password: str
) -> None:
    await game.accounts.create("Alice", password)
    raw = await make_raw()
    await raw.expect(b"known? ")
    # Every prompt ends with IAC GA, so that MUD clients show it at once.
    assert await raw.expect(b"\xff\xf9") == b"\xff\xf9"
    await raw.send(b"Alice\r\n")
    before_prompt = await raw.expect(b"Password: ")
    assert IAC_WILL_ECHO in before_prompt
    assert IAC_WONT_ECHO not in before_prompt
    await raw.send(password.encode() + b"\r\n")
    after = await raw.expect(b"Exits:")
    assert IAC_WONT_ECHO in after


async def test_second_account_is_a_player(game: Game, make_client: MakeClient) -> None:
    await (await make_client()).login_new("Alice")
    bob = await make_client()
    text = await bob.login_new("Bob")
    assert "Welcome, Bob! You are a player." in text


async def test_an_existing_account_logs_in(
    game: Game, make_client: MakeClient, password: str
) -> None:
    first = await make_client()
    await first.login_new("Alice")
    await first.command("quit", "Goodbye.")
    await first.expect_closed()

    again = await make_client()
    await again.expect("known? ")
    again.send("alice")  # names are not case-sensitive
    await again.expect("Password: ")
    assert again.writer.remote_option.enabled(ECHO)
    again.send(password)
    text = await again.expect("Exits:")
    assert "The Village Square" in text
    assert "Create a new character" not in again.transcript
    await again.command("who", "1 player online")


# A short back-off: the doubling wait between failures is tested on its own.
@pytest.mark.game(login_backoff=0.01)
async def test_wrong_password_three_times_disconnects(
    game: Game, make_client: MakeClient, password: str
) -> None:
    await game.accounts.create("Alice", password)
    client = await make_client()
    await client.expect("known? ")
    client.send("Alice")
    for _ in range(2):
        await client.expect("Password: ")
        client.send("wrong password")
        await client.expect("Wrong password.")
    await client.expect("Password: ")
    client.send("still wrong")
    rest = await client.expect_closed()
    assert "Wrong password too many times. Goodbye." in rest
    assert "Exits:" not in client.transcript
    # The server goes on serving.
    other = await make_client()
    await other.login("Alice")


async def test_right_password_after_a_wrong_one(
    game: Game, make_client: MakeClient, password: str
) -> None:
    await game.accounts.create("Alice", password)
    client = await make_client()
    await client.expect("known? ")
    client.send("Alice")
    await client.expect("Password: ")
    client.send("wrong password")
    await client.expect("Wrong password.")
    await client.expect("Password: ")
    client.send(password)
    await client.expect("Exits:")


async def test_too_short_password_is_refused(game: Game, make_client: MakeClient) -> None:
    client = await make_client()
    await client.expect("known? ")
    client.send("Alice")
    await client.expect("(yes/no) ")
    client.send("y")
    await client.expect("Choose a password")
    client.send("abc")
    await client.expect("That is too short: at least 6 characters.")
    # Asked again, not taken.
    await client.expect("Choose a password")
    assert await game.accounts.find("Alice") is None
    client.send("abcdef")
    await client.expect("Type it again: ")
    client.send("abcdef")
    await client.expect("Exits:")


async def test_differing_passwords_are_asked_again(game: Game, make_client: MakeClient) -> None:
    client = await make_client()
    await client.expect("known? ")
    client.send("Alice")
    await client.expect("(yes/no) ")
    client.send("yes")
    await client.expect("Choose a password")
    client.send("first-password")
    await client.expect("Type it again: ")
    client.send("second-password")
    await client.expect("The two passwords differ. Once more.")
    await client.expect("Choose a password")
    assert await game.accounts.find("Alice") is None


async def test_invalid_name_and_declined_creation_return_to_the_name_prompt(
    game: Game, make_client: MakeClient
) -> None:
    client = await make_client()
    await client.expect("known? ")
    client.send("R2-D2")
    await client.expect("Names are 2 to 20 letters")
    await client.expect("known? ")
    client.send("Alice")
    await client.expect("(yes/no) ")
    client.send("no")
    await client.expect("known? ")
    assert await game.accounts.find("Alice") is None


@pytest.mark.game(login_timeout=0.5)
async def test_an_idle_unauthenticated_connection_is_closed(
    game: Game, make_client: MakeClient
) -> None:
    client = await make_client()
    await client.expect("known? ")
    await client.expect_closed(timeout=3)
    # A logged-in player may idle longer than that.
    player = await make_client()
    await player.login_new("Alice")
    await asyncio.sleep(1.0)
    await player.command("look", "Exits:")


async def test_two_clients_racing_for_one_new_name(game: Game, make_client: MakeClient) -> None:
    first = await make_client()
    second = await make_client()
    for client in (first, second):
        await client.expect("known? ")
        client.send("Carol")
        await client.expect("(yes/no) ")
        client.send("yes")
        await client.expect("Choose a password")
    # Both were offered the free name; the first to finish gets it.
    await first.login_new_password("secret-one")
    second.send("secret-two")
    await second.expect("Type it again: ")
    second.send("secret-two")
    await second.expect("Someone took the name Carol a moment ago. Choose another.")
    await second.expect("known? ")
    assert await game.accounts.verify("Carol", "secret-one") is not None
    assert await game.accounts.verify("Carol", "secret-two") is None
