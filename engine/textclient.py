"""What the project's scripted clients share: a text buffer read until a pattern comes.

``engine.testing.MudClient`` (telnet) and ``engine.web.client.WebClient`` (a
websocket) each say how they read more text (``_fill``) and send a line;
waiting for a text or a regex, with a deadline and a failure that shows what
did arrive, is written once, here.
"""

from __future__ import annotations

import asyncio
import re


class ExpectTimeout(AssertionError):
    """The text a script waited for did not arrive in time; the message shows what did."""


class TextClient:
    """A connection's text, read with deadlines: ``expect`` a text or a regex, ``command``."""

    #: Seconds an ``expect`` waits unless told otherwise.
    timeout: float = 5.0
    #: The password ``login_new`` and ``login`` use unless told otherwise.
    password: str = "correct horse"

    def __init__(self, timeout: float | None = None) -> None:
        self.buffer = ""
        #: Everything ever received, for assertions about what never came.
        self.transcript = ""
        if timeout is not None:
            self.timeout = timeout

    def send(self, line: str) -> None:
        raise NotImplementedError

    async def _fill(self) -> bool:
        """Read more into ``buffer`` (and ``transcript``); False once the connection ended."""
        raise NotImplementedError

    def _ended(self) -> bool:
        """Whether the connection is known to have ended (nothing more will come)."""
        raise NotImplementedError

    async def expect(self, pattern: str | re.Pattern[str], timeout: float | None = None) -> str:
        """Read until ``pattern`` (a text, or a regex) arrives; everything up to and including it.

        Text after it stays buffered for the next ``expect``.
        """
        timeout = self.timeout if timeout is None else timeout
        regex = pattern if isinstance(pattern, re.Pattern) else None
        text = pattern if isinstance(pattern, str) else pattern.pattern

        def end() -> int:
            if regex is None:
                at = self.buffer.find(text)
                return -1 if at < 0 else at + len(text)
            match = regex.search(self.buffer)
            return -1 if match is None else match.end()

        async def wait() -> str:
            while (at := end()) < 0:
                if self._ended() or not await self._fill():
                    raise ExpectTimeout(
                        f"connection closed before {text!r}; got {self.buffer[-2000:]!r}"
                    )
            seen, self.buffer = self.buffer[:at], self.buffer[at:]
            return seen

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            got = self.buffer[-2000:]
            raise ExpectTimeout(f"no {text!r} within {timeout} s; got {got!r}") from None

    async def command(
        self, line: str, pattern: str | re.Pattern[str], timeout: float | None = None
    ) -> str:
        """Send ``line`` and wait for ``pattern`` in the answer."""
        self.send(line)
        return await self.expect(pattern, timeout)

    async def _drain(self, timeout: float | None) -> None:
        """Read until the connection ends; fail if it is still open after ``timeout``."""
        timeout = self.timeout if timeout is None else timeout

        async def drain() -> None:
            while not self._ended() and await self._fill():
                pass

        try:
            await asyncio.wait_for(drain(), timeout)
        except TimeoutError:
            raise ExpectTimeout(
                f"still connected after {timeout} s; got {self.buffer[-2000:]!r}"
            ) from None

    # -- the starter game's login dialogue ------------------------------------------------

    async def login_new(self, name: str, password: str | None = None) -> str:
        """Create the character ``name``; the text up to the first look."""
        await self.expect("By what name are you known? ")
        self.send(name)
        await self.expect("Create a new character? (yes/no) ")
        self.send("yes")
        await self.expect("Choose a password")
        return await self.login_new_password(password)

    async def login_new_password(self, password: str | None = None) -> str:
        """Answer the new-password prompt (already shown) twice; the text up to the first look."""
        password = self.password if password is None else password
        self.send(password)
        await self.expect("Type it again: ")
        self.send(password)
        return await self.expect_look()

    async def login(self, name: str, password: str | None = None) -> str:
        """Log in to an existing account; the text up to the first look."""
        await self.expect("By what name are you known? ")
        self.send(name)
        await self.expect("Password: ")
        self.send(self.password if password is None else password)
        return await self.expect_look()

    async def expect_look(self, timeout: float | None = None) -> str:
        """A room description (the starter game's), up to the prompt that follows it."""
        text = await self.expect("Exits:", timeout)
        return text + await self.expect("\r\n> ", timeout)
