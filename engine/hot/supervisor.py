"""The process ``python -m engine`` runs: it holds the port and keeps one game worker serving.

It binds the listening socket once, then runs the game in a worker process
(``engine.hot.worker``) that inherits it.  A restart (the admin command
``restart``, SIGHUP, or a save under ``engine/``) starts a second worker
beside the first with the code now on disk; the old one hands the new one
its connections and exits once the new one has taken them.  If the new one
fails (a syntax error in engine code, an import error, not ready in time, a
store it cannot open), the old one is told why and goes on serving.

This process must never die or hang, and a worker may die at any moment:
it keeps a copy of every connection and of the database lock
(``engine.hot.ledger``), so when a worker dies (a crash, ``kill -9``, a
restart that failed after the handover, an old worker killed mid-handover)
it starts a new one within about a second and hands it every connection:
players stay on theirs, in their character.  A worker that keeps crashing
(``crash_limit`` times within a minute) is not started forever: the server
stops with one line.  Whatever happens, it ends serving or stopped, never
in between; SIGTERM and SIGHUP always work.

This process stays for the server's whole life, so a service manager
(systemd) and a terminal see one pid: Ctrl-C or SIGTERM here is passed on to
the worker, which shuts the game down; the worker's log goes to this
process's output and log file.  Workers run in their own process group (a
terminal's Ctrl-C reaches them once, through here) and die with this
process (``PR_SET_PDEATHSIG``), so a ``kill -9`` of the server is a
``kill -9`` of the game.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from engine import logs
from engine.config import Config, ConfigError, unknown_variables
from engine.hot import wire
from engine.hot.ledger import Ledger
from engine.hot.snapshots import CodeSnapshots
from engine.startup import StartupError, listen
from engine.web import listeners

log = logging.getLogger(__name__)

#: How long a stop may take before the workers are killed.
STOP_WAIT = 30.0
#: The window in which ``crash_limit`` crashes stop the server, in seconds.
CRASH_WINDOW = 60.0


@dataclass
class Worker:
    """One game process and the supervisor's end of its control socket."""

    process: subprocess.Popen[bytes]
    control: socket.socket
    generation: int
    ready: bool = False
    #: It sent its connections to a newer worker and is on its way out.
    handed_over: bool = False
    #: It said the game stops (shutdown, a signal): its end is not a crash.
    stopping: bool = False
    #: Given up on (killed): its end needs nothing more.
    discarded: bool = False
    #: It has taken the connections from the old worker and is bringing them back.
    adopting: bool = False
    #: Why it failed to start, as it said itself.
    error: str = ""
    started: float = field(default_factory=time.monotonic)
    #: Copies what it prints (its log) to the terminal and the log file.
    output: logs.LineCopier | None = None
    #: A worker taking over after a crash: this end of its handover socket, until
    #: the ledger's state is sent, and why the one before it ended.
    recovery: socket.socket | None = None
    cause: str = ""
    #: The copy of the engine code it started from (``engine.hot.snapshots``).
    code: Path | None = None


class Supervisor:
    """Spawns workers, restarts them on request, carries the game on when one dies."""

    def __init__(
        self, argv: list[str], config: Config, log_file: logging.Handler | None = None
    ) -> None:
        self.argv = argv
        self.config = config
        #: The log file, written here alone (engine.logs).
        self.log_file = log_file
        self.listener: socket.socket | None = None
        #: The other ports every worker serves (the web client's, the PROXY listener), by name.
        self.listeners: dict[str, socket.socket] = {}
        self.current: Worker | None = None
        self.incoming: Worker | None = None
        self.leaving: list[Worker] = []
        self.ledger = Ledger()
        self.snapshots = CodeSnapshots()
        self.restarts = 0
        #: Workers started so far: each one's generation, and the prefix of its keys.
        self.spawned = 0
        self.crashes: deque[float] = deque()
        self.started_at = time.time()
        self.stopping = False
        #: The exit status once the game is over.
        self.status = 0
        #: Whoever asked for the restart under way was told it is busy already.
        self._busy_told = False
        self.selector = selectors.DefaultSelector()
        self._signals: list[int] = []
        self._wake_r, self._wake_w = socket.socketpair()

    # -- life ----------------------------------------------------------------------

    def run(self) -> int:
        try:
            self.listener = listen(self.config.host, self.config.port, self.config.backlog)
            self.listeners = listeners.bind_all(self.config)
        except StartupError as exc:
            print(f"hotmud: {exc}", file=sys.stderr)
            return 1
        self._announce()
        self._install_signals()
        self.current = self._spawn(handover=None)
        try:
            return self._loop()
        finally:
            for worker in self._workers():
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                worker.process.wait()
            self.ledger.close()
            self.snapshots.close()

    def _announce(self) -> None:
        """Say which game is served (once the port is ours: a busy port is its own line)."""
        config = self.config
        if config.game_dir is None:
            return
        shown = _shown_path(config.game_dir)
        print(
            f"Serving the game in {shown}; edit {_shown_path(config.content_dir)}/ "
            "and each save goes live."
            if config.reload
            else f"Serving the game in {shown} (live reload is off).",
            file=sys.stderr,
        )

    def _loop(self) -> int:
        while True:
            for key, _ in self.selector.select(timeout=0.2):
                if key.fileobj is self._wake_r:
                    self._wake_r.recv(4096)
                elif isinstance(key.data, logs.LineCopier):
                    self._copy_output(key.fd, key.data)
                elif key.fileobj is getattr(key.data, "recovery", None):
                    self._send_recovery(key.data)
                else:
                    self._message(key.data)
            while self._signals:
                self._signal(self._signals.pop(0))
            self._reap()
            if self.stopping and not self._workers():
                return self.status
            self._check_incoming_deadline()

    def _workers(self) -> list[Worker]:
        found = [w for w in (self.current, self.incoming) if w is not None]
        return found + self.leaving

    # -- signals -----------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        self.selector.register(self._wake_r, selectors.EVENT_READ)
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda n, _f: self._signals.append(n))

    def _signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            self.begin_restart("SIGHUP")
            return
        name = signal.Signals(signum).name
        if self.stopping:
            log.warning("%s again: killing the game at once", name)
            for worker in self._workers():
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
            return
        log.info("%s received: stopping the game", name)
        self.stopping = True
        for worker in self._workers():
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signum)

    # -- workers -------------------------------------------------------------------------

    def _spawn(self, handover: socket.socket | None, good_code: bool = False) -> Worker:
        """A new worker, from the code on disk or (``good_code``) the last that served."""
        assert self.listener is not None
        control, theirs = socket.socketpair()
        generation = self.spawned
        self.spawned += 1
        env = {
            **os.environ,
            "HOTMUD_LISTEN_FD": str(self.listener.fileno()),
            "HOTMUD_CONTROL_FD": str(theirs.fileno()),
            "HOTMUD_GENERATION": str(generation),
            "HOTMUD_RESTARTS": str(self.restarts),
            "HOTMUD_STARTED_AT": repr(self.started_at),
            "HOTMUD_SUPERVISOR": str(os.getpid()),
        }
        fds = [self.listener.fileno(), theirs.fileno()]
        if self.listeners:
            env["HOTMUD_LISTEN_FDS"] = listeners.describe(self.listeners)
            fds += [sock.fileno() for sock in self.listeners.values()]
        if handover is not None:
            env["HOTMUD_HANDOVER_FD"] = str(handover.fileno())
            fds.append(handover.fileno())
        command = [sys.executable, "-m", "engine.hot.worker", *self.argv]
        code = self.snapshots.good if good_code else self.snapshots.take()
        if good_code and code is not None:
            # -P: the copy, not the working folder, is where `engine` comes from.
            command.insert(1, "-P")
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(code), env.get("PYTHONPATH", "")) if p
            )
        process = subprocess.Popen(
            command,
            env=env,
            pass_fds=fds,
            process_group=0,
            stderr=subprocess.PIPE,
        )
        theirs.close()
        worker = Worker(process, control, generation, output=logs.LineCopier(self.log_file))
        worker.code = code
        self.selector.register(control, selectors.EVENT_READ, worker)
        assert process.stderr is not None
        os.set_blocking(process.stderr.fileno(), False)
        self.selector.register(process.stderr, selectors.EVENT_READ, worker.output)
        log.debug("started game worker %d (pid %d)", generation, process.pid)
        return worker

    def _copy_output(self, fd: int, copier: logs.LineCopier) -> None:
        """What a worker printed: to the terminal and the log file; its end unregisters it."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        copier.feed(data)
        if not data:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)

    def _drain_output(self, worker: Worker) -> None:
        """Copy what an ended worker printed last, then let its pipe go."""
        stream = worker.process.stderr
        if stream is None or stream.closed or worker.output is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(stream)
        while True:
            try:
                data = os.read(stream.fileno(), 65536)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            worker.output.feed(data)
            if not data:
                break
        stream.close()

    def _message(self, worker: Worker) -> None:
        try:
            message, fds = wire.recv(worker.control)
        except (OSError, ValueError):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(worker.control)
            return
        kind = message.get("kind")
        if kind == "conn" and fds:
            self.ledger.record(str(message.get("key")), fds.pop(0), message.get("state") or {})
        elif kind == "conn-state":
            self.ledger.update(str(message.get("key")), message.get("state") or {})
        elif kind == "conn-gone":
            self.ledger.forget(str(message.get("key")))
        elif kind == "ready":
            if fds:
                self.ledger.hold_lock(fds.pop(0))
            self._ready(worker)
        elif kind == "restart":
            self.begin_restart(str(message.get("reason", "")), requester=worker)
        elif kind == "failed":
            worker.error = str(message.get("error", ""))
        elif kind == "stopping":
            worker.stopping = True
        elif kind == "adopting":
            worker.adopting = True
        elif kind == "restart-abandoned":
            # The old worker could not finish its side (a full disk): it serves on.
            self._discard(self.incoming)
        elif kind == "handed-over":
            worker.handed_over = True
            if worker is self.current:
                self.current = None
            self.leaving.append(worker)
        for fd in fds:
            os.close(fd)

    def _ready(self, worker: Worker) -> None:
        worker.ready = True
        self.snapshots.served(worker.code)
        if worker is not self.incoming:
            return
        self.current, self.incoming = worker, None
        self._busy_told = False
        if worker.cause:
            log.info("worker %d serves again after the crash", worker.generation)
        else:
            self.restarts += 1
            log.info("hot restart %d done: worker %d serves", self.restarts, worker.generation)

    def begin_restart(self, reason: str, requester: Worker | None = None) -> None:
        """Start a new worker beside the current one, which will hand over to it."""
        current = self.current
        if self.stopping or current is None or not current.ready:
            log.info("no restart now (%s): the game is not serving yet", reason or "asked")
            return
        if self.incoming is not None:
            # One line to whoever asked while a restart is under way, not one per ask.
            if requester is not None or not self._busy_told:
                self._tell(requester or current, {"kind": "restart-busy"})
                self._busy_told = requester is None
            log.info("restart asked for (%s) while one is under way", reason or "no reason")
            return
        log.info("hot restart requested (%s)", reason or "no reason given")
        ours, theirs = socket.socketpair()
        self.restarts += 1
        try:
            self.incoming = self._spawn(handover=theirs)
        finally:
            self.restarts -= 1
        theirs.close()
        self._tell(current, {"kind": "handover", "reason": reason}, [ours.fileno()])
        ours.close()

    def _tell(
        self, worker: Worker, message: dict[str, object], fds: list[int] | None = None
    ) -> None:
        with contextlib.suppress(OSError):
            wire.send(worker.control, message, fds or [])

    def _check_incoming_deadline(self) -> None:
        incoming = self.incoming
        if incoming is None or incoming.ready:
            return
        if time.monotonic() - incoming.started > self.config.restart_timeout:
            incoming.error = (
                f"the new engine was not ready within {self.config.restart_timeout:g} s"
            )
            with contextlib.suppress(ProcessLookupError):
                incoming.process.kill()

    # -- ends --------------------------------------------------------------------------------

    def _reap(self) -> None:
        """Notice workers that ended and act on each: nothing, a failed restart, a recovery."""
        for worker in list(self._workers()):
            status = worker.process.poll()
            if status is None:
                continue
            self._let_go(worker)
            if worker in self.leaving:
                self.leaving.remove(worker)
            elif worker is self.incoming:
                self.incoming = None
                self._incoming_ended(worker, status)
            elif worker is self.current:
                self.current = None
                self._current_ended(worker, status)

    def _let_go(self, worker: Worker) -> None:
        if not worker.ready:
            self.snapshots.discard(worker.code)
        for sock in (worker.control, worker.recovery):
            if sock is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(sock)
            sock.close()
        worker.recovery = None
        self._drain_output(worker)

    def _incoming_ended(self, worker: Worker, status: int) -> None:
        if worker.discarded or self.stopping:
            return
        current = self.current
        error = worker.error or f"the new engine {_ended(status)} before it was ready"
        if current is not None and not current.handed_over:
            log.error("hot restart failed: %s; the running game goes on", error)
            self._tell(current, {"kind": "restart-failed", "error": error})
            return
        # Its connections were handed over (or it was taking over after a crash).
        self._recover(error if not worker.cause else f"{worker.cause}; then {error}")

    def _current_ended(self, worker: Worker, status: int) -> None:
        if self.stopping or worker.stopping:
            # The game stopped as asked (shutdown, a signal): so does the server.
            self.stopping = True
            self.status = status if status >= 0 else 1
            self._discard(self.incoming)
            return
        incoming = self.incoming
        if incoming is not None and incoming.adopting and not incoming.cause:
            # The old worker died after the new one took everything: nothing is lost.
            log.warning("the old worker %s after the handover; the new one goes on", _ended(status))
            return
        if not worker.ready and self.ledger.lock_fd is None:
            # The first start failed (the worker said why): nothing to carry on.
            self.stopping = True
            self.status = status if status > 0 else 1
            return
        self._recover(worker.error or f"it {_ended(status)}")

    def _discard(self, worker: Worker | None) -> None:
        if worker is None:
            return
        worker.discarded = True
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()

    def _recover(self, cause: str) -> None:
        """A new worker takes every connection from the ledger, as from an old worker."""
        now = time.monotonic()
        self.crashes.append(now)
        while self.crashes and now - self.crashes[0] > CRASH_WINDOW:
            self.crashes.popleft()
        if len(self.crashes) >= max(1, self.config.crash_limit):
            log.error(
                "The game's engine process ended %d times within a minute (the last time: %s); "
                "the server stops.",
                len(self.crashes),
                cause,
            )
            self.stopping = True
            self.status = 1
            self._discard(self.incoming)
            return
        self._discard(self.incoming)
        # Workers from the code on disk died twice in a row: the last good code takes over.
        good = len(self.crashes) >= 2 and self.snapshots.good is not None
        if good:
            since = time.strftime("%H:%M:%S", time.localtime(self.snapshots.good_since))
            cause += (
                f"; running the last good engine code (serving since {since}) until a "
                "restart with fixed code"
            )
        count = len(self.ledger.kept)
        log.error(
            "The game's engine process ended unexpectedly (%s); a new one takes over its "
            "%d connection%s.",
            cause,
            count,
            "s" if count != 1 else "",
        )
        ours, theirs = socket.socketpair()
        worker = self._spawn(handover=theirs, good_code=good)
        theirs.close()
        worker.recovery = ours
        worker.cause = cause
        self.selector.register(ours, selectors.EVENT_READ, worker)
        self.incoming = worker

    def _send_recovery(self, worker: Worker) -> None:
        """The worker taking over is prepared: hand it the ledger's connections and lock."""
        sock = worker.recovery
        assert sock is not None
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)
        worker.recovery = None
        try:
            message, _ = wire.recv(sock)
            if message.get("kind") == "prepared":
                state, fds = self.ledger.handover(worker.cause)
                wire.send(sock, state, fds)
        except (OSError, ValueError) as exc:
            log.warning("the worker taking over went away before it had the connections: %s", exc)
        finally:
            sock.close()


def _ended(status: int) -> str:
    """``was killed by SIGKILL``, ``exited with status 3``: how a process ended, in words."""
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


def main(argv: list[str] | None = None, prog: str = "python -m engine") -> int:
    """Serve the game folder found from here upwards (``hotmud run`` and ``python -m engine``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        config = Config.from_sources(args, prog=prog)
    except ConfigError as exc:
        print(f"hotmud: {exc}", file=sys.stderr)
        return 2
    try:
        log_file = logs.setup(config, to_file=True)
    except OSError as exc:
        # The game matters more than its log file: serve, and say why there is none.
        log_file = None
        print(
            f"hotmud: cannot write the log file {config.log_path} ({exc.strerror}); "
            "logging to the terminal only.",
            file=sys.stderr,
        )
    for line in unknown_variables(os.environ):
        print(f"hotmud: {line}", file=sys.stderr)
    if config.game_dir is not None:
        # Every worker serves this same game, wherever it is started from.
        args = ["--game", str(config.game_dir), *args]
    return Supervisor(args, config, log_file).run()


def _shown_path(path: os.PathLike[str] | str) -> str:
    """A path as the person who started the server would type it: relative when below here."""
    relative = os.path.relpath(path)
    return relative if relative != "." and not relative.startswith("..") else str(path)
