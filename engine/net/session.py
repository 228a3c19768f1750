"""One telnet connection: how text goes out, how lines come in, how it ends.

Output never waits: ``send`` queues on the transport and returns, so a
broadcast cannot stall on one slow client.  A client that stops reading is
closed once its queue passes ``max_output_buffer`` instead of holding memory.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from telnetlib3.telopt import CMD_EOR, ECHO, EOR, GA, GMCP, IAC, SGA, WILL, WONT

from engine.accounts.account import Account, Role
from engine.net.clientinfo import MAX_WIDTH, MIN_WIDTH, ClientInfo, clamp
from engine.net.colour import Depth, render, wrap
from engine.net.limits import TokenBucket
from engine.net.lines import BoundedLineReader
from engine.net.text import clean_output
from engine.world import atomic
from engine.world.atomic import Deliver

if TYPE_CHECKING:
    from engine.config import Config
    from engine.world.objects import Character, GameObject

log = logging.getLogger(__name__)

_ids = itertools.count(1)

#: What one read asks telnetlib3 for: more than its reader ever buffers (twice
#: its limit plus one socket read).  Asked for less than it holds, its
#: ``read(n)`` decodes byte by byte (seconds of CPU under a flood) and garbles
#: a multi-byte character cut at the end of its buffer (docs/architecture.md).
READ_CHUNK = 1 << 20


def to_wire(text: str) -> str:
    """Telnet wants CR LF line ends; content writes plain ``\\n``."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def as_sent(text: str, width: int, depth: Depth, newline: bool = True) -> str:
    """``text`` as a client receives it: cleaned, wrapped to ``width``, coloured, CR LF ends."""
    text = clean_output(text)
    if newline:
        text = wrap(text, width) + "\n"
    return to_wire(render(text, depth))


class _TurnOutput:
    """The sessions that have output this turn of the loop, written together at its end.

    One callback per turn for every session, instead of one per session: a
    command in a crowded room writes to many.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._sessions: list[Session] = []

    def add(self, session: Session) -> None:
        if not self._sessions:
            self._loop.call_soon(self._flush)
        self._sessions.append(session)

    def _flush(self) -> None:
        sessions, self._sessions = self._sessions, []
        for session in sessions:
            try:
                session.flush()
            except Exception:
                log.exception("writing to %r failed", session)


#: Each event loop's ``_TurnOutput`` (tests run many loops, one after another).
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _TurnOutput] = (
    weakref.WeakKeyDictionary()
)


def _turn_of(loop: asyncio.AbstractEventLoop) -> _TurnOutput:
    turn = _turns.get(loop)
    if turn is None:
        turn = _turns[loop] = _TurnOutput(loop)
    return turn


class Flooding(Exception):
    """A client kept sending far over the input rate; the session closes it."""


def _now(action: Callable[[], None]) -> None:
    action()


class Session:
    """A connected client, before and after login.

    Everything written to the client goes through ``deliver``, which the game
    points at its durability layer: output that follows a world change waits
    until that change is committed (see ``engine.world.durability``).
    """

    def __init__(
        self,
        reader: Any,
        writer: Any,
        config: Config,
        deliver: Deliver = _now,
        deliver_unchanged: Deliver | None = None,
    ) -> None:
        self.id = next(_ids)
        self.deliver = deliver
        #: For output that follows no change of its own (see ``DurableOutput.unless_troubled``).
        self.deliver_unchanged = deliver_unchanged or deliver
        self.reader = reader
        self.writer = writer
        self.config = config
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.account: Account | None = None
        self.character: Character | None = None
        self.closed = False
        #: Set when another connection took this session's character over.
        self.superseded = False
        #: Where the login dialogue stands (``engine.accounts.login``).
        self.login_stage: tuple[str, str] = ("name", "")
        #: Lines typed and not run yet (while a command runs, or a restart is under way).
        self.queued: deque[str] = deque()
        #: The read in progress, if any (a restart takes what it read).
        self.reading: asyncio.Future[str | None] | None = None
        #: What the previous engine process handed over about this connection, if it did.
        self.adopted: dict[str, Any] | None = getattr(writer.protocol, "adopted", None)
        self.task: asyncio.Task[Any] | None = None
        self.connected_at = time.time()
        #: This connection's name for the supervisor (``engine.hot.keeper``): the same
        #: across hot restarts and crashes; "" without a supervisor.
        self.key = ""
        self.last_input = self.connected_at
        self.lines = BoundedLineReader(
            reader.read,
            limit=config.max_line,
            max_overlong=config.max_overlong,
            on_overlong=self._overlong,
            chunk=READ_CHUNK,
        )
        self._bucket = TokenBucket(config.input_rate, config.input_burst)
        self._throttled = 0
        self._ttype_seen: int | None = -1
        self._client = ClientInfo()
        #: Output of the current loop turn, written with one system call.
        self._out: list[bytes] = []
        #: The prompt the player sits at, the cursor after it (None once they type or
        #: anything else is shown): a message arriving then starts on a line of its
        #: own and is followed by the prompt again.
        self._at_prompt: str | None = None
        self._reprompt: str | None = None
        self._flush_scheduled = False
        #: Where this session's output joins the turn's (its event loop's ``_TurnOutput``).
        self._turn: _TurnOutput | None = None

    @property
    def role(self) -> Role:
        return self.account.role if self.account else Role.PLAYER

    @property
    def name(self) -> str:
        return self.account.name if self.account else f"#{self.id}"

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.name} {self.peer}>"

    # -- what the client supports -------------------------------------------------

    @property
    def client(self) -> ClientInfo:
        """The client's capabilities, re-read as its TTYPE answers arrive.

        The telnet protocol counts TTYPE answers (``ttype_seen``), so the
        answers are only read again when a new one came in.
        """
        seen = getattr(self.writer.protocol, "ttype_seen", None)
        if seen is None or seen != self._ttype_seen:
            self._ttype_seen = seen
            ttypes = [self.writer.get_extra_info(f"ttype{i}") or "" for i in (1, 2, 3, 4)]
            self._client = ClientInfo.from_ttypes(ttypes)
        return self._client

    @property
    def gmcp_hello(self) -> dict[str, Any]:
        """What the client said in GMCP ``Core.Hello`` (client name and version), if anything."""
        protocol = getattr(self.writer, "protocol", None)
        hello = getattr(protocol, "gmcp_from_client", {}).get("Core.Hello")
        return hello if isinstance(hello, dict) else {}

    @property
    def width(self) -> int:
        """The window width the client reported (NAWS), kept within sane bounds."""
        width = getattr(self.writer.protocol, "window_width", None)
        if width is None:
            width = clamp(self.writer.get_extra_info("cols"), MIN_WIDTH, MAX_WIDTH, 80)
        return width

    @property
    def colour(self) -> Depth:
        """Colours to send: the client's, unless the account turned colour off or on."""
        setting = self.account.settings.get("colour", "auto") if self.account else "auto"
        client = self.client
        if setting == "off":
            return Depth.NONE
        if setting == "on":
            # The player's explicit choice wins, even over a screen reader flag.
            return max(client.depth, Depth.ANSI16)
        return Depth.NONE if client.screen_reader else client.depth

    def _option(self, option: bytes) -> bool:
        return bool(self.writer.local_option.enabled(option))

    # -- output ---------------------------------------------------------------

    def send(self, text: str, newline: bool = True, *, held: bool = True) -> None:
        """Queue ``text`` for the client; never blocks, never raises.

        ``held=False`` is for the engine's own notices (reload reports,
        content errors): they go out even if the content that was running
        when they were made fails and its output is dropped.
        """
        if self.closed:
            return
        # What the client can show is only asked when it matters: a prompt is
        # not wrapped, and text without markup looks the same at every depth.
        width = self.width if newline else 0
        depth = self.colour if "|" in text else Depth.NONE
        data = as_sent(text, width, depth, newline)
        if held:
            self._emit(lambda: self._write(data), "text")
        else:
            self.deliver_unchanged(lambda: self._write(data))

    def _emit(self, action: Callable[[], None], kind: atomic.OutputKind) -> None:
        """Deliver ``action``, or hold it in the open content transaction until it ends.

        Output of content that fails never reaches other players (see
        ``engine.world.atomic``); what the caller was shown before the error may be.
        """
        txn = atomic.current()
        if txn is None:
            self.deliver_unchanged(action)
        else:
            txn.hold(self, action, kind)

    def gmcp(self, package: str, data: Any) -> None:
        """Send a GMCP message if the client agreed to GMCP; otherwise nothing."""
        if self.closed or not self._option(GMCP):
            return
        self._emit(lambda: self._direct(self.writer.send_gmcp, package, data), "gmcp")

    def room_changed(self, room: GameObject | None) -> None:
        """Tell GMCP clients (Mudlet's mapper) where the character now stands."""
        if room is None:
            return
        exits = {e.name: e.destination.id for e in getattr(room, "exits", ()) if e.destination}
        self.gmcp("Room.Info", {"num": room.id, "name": room.name, "exits": exits})

    def _write(self, data: str) -> None:
        prompt = self._at_prompt
        if prompt is not None:
            # Unasked-for output while the player sits at the prompt: from the
            # margin, and the prompt again after it (at the end of the turn).  A
            # client that takes EOR (a MUD client, the web page) ends the prompt's
            # line itself and keeps its own input line: it needs neither.
            self._at_prompt = None
            if self._option(EOR):
                prompt = None
        if prompt is not None:
            data = "\r\n" + data
            self._queue_prompt_again(prompt)
        try:
            encoded = self.writer.encode(data)
        except Exception:
            log.exception("encoding output for %r failed", self)
            return
        self._queue(encoded.replace(IAC, IAC + IAC))

    def _queue(self, raw: bytes) -> None:
        """Add bytes (already telnet-escaped) to this turn's output."""
        self._out.append(raw)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            turn = self._turn
            if turn is None:
                turn = self._turn = _turn_of(asyncio.get_running_loop())
            turn.add(self)

    def _direct(self, write: Callable[..., Any], *args: Any) -> None:
        """A telnetlib3 call that writes itself (options, GMCP), after the text before it."""
        self.flush()
        if self.writer.transport is not None and not self.writer.transport.is_closing():
            write(*args)

    def flush(self) -> None:
        """Write everything queued this turn at once: text, prompt and GA in one send."""
        self._flush_scheduled = False
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        transport = self.writer.transport
        if transport is None or transport.is_closing():
            return
        try:
            # send_iac writes bytes untouched; the text in them was escaped
            # when it was queued, and GA/EOR must stay unescaped.
            self.writer.send_iac(data)
        except Exception:
            log.exception("write to %r failed", self)
            self.abort()
            return
        transport = self.writer.transport
        if transport is not None and transport.get_write_buffer_size() > (
            self.config.max_output_buffer
        ):
            log.warning("%r is not reading its output; closing", self)
            self.abort()

    def prompt(self, text: str = "> ") -> None:
        """Show a prompt and mark its end (EOR if negotiated, else GA) for MUD clients."""
        self.send(text, newline=False)
        if not self.closed:
            self.deliver_unchanged(self._end_prompt)
            self.deliver_unchanged(lambda: self._sitting_at(text))

    def _sitting_at(self, text: str) -> None:
        self._at_prompt = text

    def _queue_prompt_again(self, text: str) -> None:
        """Show ``text`` again once this turn's output is written, unless a prompt comes anyway."""
        if self._reprompt is None:
            self._reprompt = text
            asyncio.get_running_loop().call_soon(self._prompt_again)

    def _prompt_again(self) -> None:
        text, self._reprompt = self._reprompt, None
        if text is not None and self._at_prompt is None and not self.closed:
            self.prompt(text)

    def _end_prompt(self) -> None:
        if self._option(EOR):
            self._queue(IAC + CMD_EOR)
        elif not self._option(SGA):  # GA means nothing once the client asked to suppress it
            self._queue(IAC + GA)

    # -- input ----------------------------------------------------------------

    async def _overlong(self) -> None:
        self.send(f"That line was longer than {self.config.max_line} characters and was dropped.")

    async def readline(self) -> str | None:
        """The next input line, or None once the client is gone."""
        if self.closed:
            return None
        line = await self.lines.readline()
        self._at_prompt = None  # the client's echo of Enter left the prompt line
        self.last_input = time.time()
        if line is not None:
            await self._throttle()
        return line

    async def _throttle(self) -> None:
        """Hold a line that comes faster than the allowed rate; close a real flood.

        A client that waits for each answer is only slowed down.  One whose
        unread lines pile up past ``flood_limit`` while it is being held is
        not listening at all, and is closed.
        """
        delay = self._bucket.take()
        if delay <= 0:
            self._throttled = 0
            return
        if self._throttled == 0:
            self.send("You are sending commands faster than the game allows; slow down.")
        self._throttled += 1
        if self.lines.pending > self.config.flood_limit:
            raise Flooding(f"{self.lines.pending} lines waiting over the rate limit")
        await asyncio.sleep(delay)

    def show_typing(self) -> None:
        """Ask the client to show what it types again (a password prompt cut short by a crash)."""
        self.deliver_unchanged(lambda: self._direct(self.writer.iac, WONT, ECHO))

    async def read_secret(self, prompt: str) -> str | None:
        """Read a line with the client's echo off (passwords)."""
        self.deliver_unchanged(lambda: self._direct(self.writer.iac, WILL, ECHO))
        self.prompt(prompt)
        try:
            return await self.readline()
        finally:
            if not self.closed:
                self.deliver_unchanged(lambda: self._direct(self.writer.iac, WONT, ECHO))
                self.send("")

    # -- lifetime -------------------------------------------------------------

    def log_in(self, account: Account) -> None:
        """From now on no idle timeout: players may idle as long as they like."""
        self.account = account
        protocol = getattr(self.writer, "protocol", None)
        if protocol is not None and hasattr(protocol, "set_timeout"):
            protocol.set_timeout(0)
        if protocol is not None and hasattr(protocol, "log_in"):
            protocol.log_in()

    def close(self, message: str | None = None) -> None:
        """Say ``message``, flush what is queued, and close the connection."""
        if self.closed:
            return
        if message:
            self.send(message)
        self.closed = True
        self._emit(self._close_now, "control")

    def _close_now(self) -> None:
        self.flush()
        try:
            self.writer.close()
        except Exception:
            log.debug("closing %r failed", self, exc_info=True)

    def release(self) -> None:
        """The connection is gone and its play loop has ended: let go of what links back here.

        The session and its line reader refer to each other (through bound
        methods); undone here, both are freed as soon as the last reference
        goes, instead of waiting for a full garbage collection, which
        ``engine.longlived`` keeps rare.
        """
        self.closed = True
        self.lines.release()
        self.reading = None
        self.task = None

    def abort(self) -> None:
        """Drop the connection at once, discarding queued output."""
        self.closed = True
        transport = self.writer.transport
        if transport is not None:
            transport.abort()
