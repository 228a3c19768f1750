"""The web client in a real browser: headless Chromium plays the page the game serves.

playwright's Python package drives Debian's ``chromium`` (``.ci/run`` installs
it with apt; playwright's own browser download does not work on these
machines).  Without them these tests are skipped, unless
``HOTMUD_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Connect
from server_helpers import player

from engine.app import Game
from engine.testing import ServerProcess

CHROMIUM = Path(os.environ.get("HOTMUD_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--headless=new"]
#: Deadline of one wait in the page, in milliseconds.
WAIT = 5000

try:
    from playwright.async_api import Page, WebSocketRoute, async_playwright, expect
except ImportError:  # pragma: no cover - the dev extra installs it
    async_playwright = None  # type: ignore[assignment]


def _missing() -> str:
    if async_playwright is None:
        return "playwright's Python package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return ""


@pytest.fixture
async def browser_page(game: Game) -> AsyncIterator[Page]:
    """A page of headless Chromium, at the game's web client, phone-sized."""
    assert game.listeners.web is not None
    async for page in _page(game.listeners.web.port):
        yield page


async def _page(
    port: int, before: Callable[[Page], Awaitable[None]] | None = None
) -> AsyncIterator[Page]:
    missing = _missing()
    if missing:
        if os.environ.get("HOTMUD_REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 375, "height": 700})
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            if before is not None:
                await before(page)
            await page.goto(f"http://127.0.0.1:{port}/")
            yield page
            assert not errors, errors
        finally:
            await browser.close()


async def type_line(page: Page, text: str) -> None:
    await page.locator("#input").fill(text)
    await page.locator("#input").press("Enter")


async def output_has(page: Page, text: str) -> None:
    await expect(page.locator("#output")).to_contain_text(text, timeout=WAIT)


async def log_in_new(page: Page, name: str, password: str = "secret1") -> None:
    await output_has(page, "By what name are you known?")
    await type_line(page, name)
    await output_has(page, "Create a new character?")
    await type_line(page, "yes")
    await output_has(page, "Choose a password")
    # The password goes into a password field, and is never shown.
    await expect(page.locator("#input")).to_have_attribute("type", "password", timeout=WAIT)
    await expect(page.locator("#input")).to_be_focused()
    await type_line(page, password)
    await output_has(page, "Type it again")
    await type_line(page, password)
    await expect(page.locator("#input")).to_have_attribute("type", "text", timeout=WAIT)
    await output_has(page, "Exits:")


@pytest.mark.game(reload=True)
async def test_a_browser_player_plays_beside_a_telnet_player(
    game: Game, browser_page: Page, connect: Connect, content_dir: Path
) -> None:
    page = browser_page
    assert await page.locator("#output").get_attribute("aria-live") == "polite"
    await log_in_new(page, "Ann")
    assert "secret1" not in await page.locator("#output").inner_text()

    # The room's name and exits come from GMCP; an exit is a button that goes there.
    room = await page.locator("#room-name").inner_text()
    assert room
    exits = page.locator("#exits button")
    assert await exits.count() >= 1
    direction = await exits.first.inner_text()
    await exits.first.click()
    await expect(page.locator("#room-name")).not_to_have_text(room, timeout=WAIT)
    await output_has(page, direction)

    # A telnet player beside: each hears the other.
    bob = await connect(game.port)
    await bob.login_new("Bob")
    await type_line(page, "chat Hello from the browser, héllo")
    await bob.expect("Hello from the browser, héllo")
    bob.send("chat Hi there")
    await output_has(page, "Hi there")

    # Colour markup arrives as ANSI escapes and is shown as colour (here 24-bit).
    await type_line(page, "say |#ff8800orange|n and |rred|n")
    coloured = page.locator("#output span", has_text="orange").last
    await expect(coloured).to_have_css("color", "rgb(255, 136, 0)", timeout=WAIT)
    red = page.locator("#output span", has_text="red").last
    await expect(red).to_have_css("color", "rgb(205, 0, 0)", timeout=WAIT)

    # The input line keeps a history: up brings back what was typed.
    await page.locator("#input").press("ArrowUp")
    await expect(page.locator("#input")).to_have_value("say |#ff8800orange|n and |rred|n")
    await page.locator("#input").press("ArrowDown")
    await expect(page.locator("#input")).to_have_value("")

    # A builder's save goes live while the page plays on.
    general = content_dir / "commands" / "general.py"
    source = general.read_text(encoding="utf-8")
    general.write_text(source.replace("You say, ", "You proclaim, "), encoding="utf-8")
    for _ in range(50):
        await type_line(page, "say live")
        try:
            await expect(page.locator("#output")).to_contain_text(
                'You proclaim, "live"', timeout=200
            )
            break
        except AssertionError:
            await asyncio.sleep(0.1)
    await output_has(page, 'You proclaim, "live"')

    # A phone's width: the game wraps its text to the page, which reported its size as
    # a telnet client reports NAWS; nothing is wider than the screen.
    (session,) = [s for s in game.players.sessions if s.name == "Ann"]
    assert 30 <= session.width <= 50, session.width
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    box: Any = await page.locator("#input").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 375


async def test_the_page_connects_again_by_itself(game: Game, browser_page: Page) -> None:
    page = browser_page
    await log_in_new(page, "Cy")
    (session,) = game.players.sessions
    session.abort()  # the connection is lost (the game drops it)
    await output_has(page, "The connection was lost")
    # A new connection, a new login prompt, without anyone touching the page.
    prompts = page.locator("#output .line", has_text="By what name are you known?")
    await expect(prompts).to_have_count(2, timeout=10_000)
    await type_line(page, "Cy")
    await output_has(page, "Password:")
    await type_line(page, "secret1")
    await expect(page.locator("#status")).to_contain_text("Cy", timeout=WAIT)


async def test_a_browser_player_keeps_playing_across_a_hot_restart(server: ServerProcess) -> None:
    alice = await player(server.port, "Alice")  # telnet, the admin
    async for page in _page(server.web_port):
        await log_in_new(page, "Bea")
        await alice.expect("Bea has entered the game.")
        alice.send("restart Mind the gap.")
        await output_has(page, "Mind the gap.")
        await expect(page.locator("#output")).to_contain_text(
            "The game is back, running the new code.", timeout=15_000
        )
        await type_line(page, "say after the restart")
        await output_has(page, 'You say, "after the restart"')
        await alice.expect('Bea says, "after the restart"')
        # The same connection, the same login: the page never reconnected.
        text = await page.locator("#output").inner_text()
        assert text.count("By what name are you known?") == 1
        assert "connection was lost" not in text and "closed the connection" not in text


async def test_the_page_draws_every_colour_depth_and_follows_gmcp(game: Game) -> None:
    """The page against a websocket played by the test (playwright's routing), byte by byte."""
    assert game.listeners.web is not None
    sent: list[str | bytes] = []
    routes: list[WebSocketRoute] = []

    async def mock(page: Page) -> None:
        def opened(route: WebSocketRoute) -> None:
            routes.append(route)
            route.on_message(lambda message: sent.append(message))

        await page.route_web_socket("**/ws", opened)

    async for page in _page(game.listeners.web.port, mock):
        await expect(page.locator("#status")).to_contain_text("Connected", timeout=WAIT)
        (route,) = routes
        # 256 colours (a colour of the cube, a grey), truecolour, bright, bold, reset; an
        # escape cut between two frames; UTF-8 cut inside a character.
        route.send(b"\x1b[38;5;196mcube\x1b[0m \x1b[38;5;244mgrey\x1b[0m \x1b[38;2;1;2;3mtrue")
        route.send(b"\x1b[0m \x1b[1;92mbright\x1b[")
        route.send("0m caf\u00e9 \u2603".encode()[:-2])
        route.send("\u2603".encode()[1:] + b"\r\n> ")
        colours = {
            "cube": "rgb(255, 0, 0)",
            "grey": "rgb(128, 128, 128)",
            "true": "rgb(1, 2, 3)",
            "bright": "rgb(0, 255, 0)",
        }
        for word, colour in colours.items():
            span = page.locator("#output span", has_text=word)
            await expect(span).to_have_css("color", colour, timeout=WAIT)
        await expect(page.locator("#output span.b", has_text="bright")).to_have_count(1)
        await output_has(page, "café ☃")
        # GMCP: the room and its exits; a password prompt and its end.
        route.send('Room.Info {"num": 5, "name": "The Hall", "exits": {"north": 6, "up": 7}}')
        await expect(page.locator("#room-name")).to_have_text("The Hall", timeout=WAIT)
        await expect(page.locator("#exits button")).to_have_text(["north", "up"])
        route.send('Client.Password {"hidden": true}')
        await expect(page.locator("#input")).to_have_attribute("type", "password", timeout=WAIT)
        await type_line(page, "hunter22")
        route.send('Client.Password {"hidden": false}')
        await expect(page.locator("#input")).to_have_attribute("type", "text", timeout=WAIT)
        await page.locator("#exits button", has_text="up").click()
        for _ in range(100):
            if b"up" in sent:
                break
            await asyncio.sleep(0.05)
        # What the page sent: its hello, its window's size, the password, the exit clicked.
        texts = [m for m in sent if isinstance(m, str)]
        lines = [m for m in sent if isinstance(m, bytes)]
        assert texts[0].startswith("Core.Hello ") and any(
            t.startswith("Client.Window ") for t in texts
        )
        assert lines == [b"hunter22", b"up"]
        assert "hunter22" not in await page.locator("#output").inner_text()
