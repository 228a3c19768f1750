"""The process ``python -m engine`` runs: it holds the port and keeps one game worker serving.

It binds the listening socket once, then runs the game in a worker process
(``engine.hot.worker``) that inherits it.  A restart (the admin command
``restart``, SIGHUP, or a save under ``engine/``) starts a second worker
beside the first with the code now on disk; the old one hands the new one
its connections and exits once the new one is ready.  If the new one fails
(a syntax error in engine code, an import error, not ready in time), the old
one is told why and goes on serving as if nothing happened.

This process stays for the server's whole life, so a service manager
(systemd) and a terminal see one pid: Ctrl-C or SIGTERM here is passed on to
the worker, which shuts the game down; the worker's log goes to this
process's output.  Workers run in their own process group (a terminal's
Ctrl-C reaches them once, through here) and die with this process
(``PR_SET_PDEATHSIG``), so a ``kill -9`` of the server is a ``kill -9`` of
the game.
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
from dataclasses import dataclass, field

from engine import logs
from engine.config import Config, ConfigError
from engine.hot import wire
from engine.startup import StartupError, listen

log = logging.getLogger(__name__)

#: How long a stop may take before the workers are killed.
STOP_WAIT = 30.0


@dataclass
class Worker:
    """One game process and the supervisor's end of its control socket."""

    process: subprocess.Popen[bytes]
    control: socket.socket
    generation: int
    ready: bool = False
    #: It sent its connections to a newer worker and is on its way out.
    handed_over: bool = False
    #: Why it failed to start, as it said itself.
    error: str = ""
    started: float = field(default_factory=time.monotonic)
    #: Copies what it prints (its log) to the terminal and the log file.
    output: logs.LineCopier | None = None


class Supervisor:
    """Spawns workers, restarts them on request and passes signals on."""

    def __init__(
        self, argv: list[str], config: Config, log_file: logging.Handler | None = None
    ) -> None:
        self.argv = argv
        self.config = config
        #: The log file, written here alone (engine.logs).
        self.log_file = log_file
        self.listener: socket.socket | None = None
        self.current: Worker | None = None
        self.incoming: Worker | None = None
        self.leaving: list[Worker] = []
        self.restarts = 0
        self.started_at = time.time()
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        self._signals: list[int] = []
        self._wake_r, self._wake_w = socket.socketpair()

    # -- life ----------------------------------------------------------------------

    def run(self) -> int:
        try:
            self.listener = listen(self.config.host, self.config.port, self.config.backlog)
        except StartupError as exc:
            print(f"hotmud: {exc}", file=sys.stderr)
            return 1
        self._install_signals()
        self.current = self._spawn(handover=None)
        try:
            return self._loop()
        finally:
            for worker in self._workers():
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                worker.process.wait()

    def _loop(self) -> int:
        while True:
            for key, _ in self.selector.select(timeout=0.2):
                if key.fileobj is self._wake_r:
                    self._wake_r.recv(4096)
                elif isinstance(key.data, logs.LineCopier):
                    self._copy_output(key.fd, key.data)
                else:
                    self._message(key.data)
            while self._signals:
                self._signal(self._signals.pop(0))
            status = self._reap()
            if status is not None:
                return status
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

    def _spawn(self, handover: socket.socket | None) -> Worker:
        assert self.listener is not None
        control, theirs = socket.socketpair()
        generation = self.restarts
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
        if handover is not None:
            env["HOTMUD_HANDOVER_FD"] = str(handover.fileno())
            fds.append(handover.fileno())
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.hot.worker", *self.argv],
            env=env,
            pass_fds=fds,
            process_group=0,
            stderr=subprocess.PIPE,
        )
        theirs.close()
        worker = Worker(process, control, generation, output=logs.LineCopier(self.log_file))
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
            self.selector.unregister(worker.control)
            return
        for fd in fds:
            os.close(fd)
        kind = message.get("kind")
        if kind == "ready":
            worker.ready = True
            if worker is self.incoming:
                self.current, self.incoming = worker, None
                self.restarts += 1
                log.info("hot restart %d done: worker %d serves", self.restarts, worker.generation)
        elif kind == "restart":
            self.begin_restart(str(message.get("reason", "")), requester=worker)
        elif kind == "failed":
            worker.error = str(message.get("error", ""))
        elif kind == "handed-over":
            worker.handed_over = True
            if worker is self.current:
                self.current = None
            self.leaving.append(worker)

    def begin_restart(self, reason: str, requester: Worker | None = None) -> None:
        """Start a new worker beside the current one, which will hand over to it."""
        current = self.current
        if self.stopping or current is None or not current.ready:
            return
        if self.incoming is not None:
            self._tell(requester or current, {"kind": "restart-busy"})
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
        waited = time.monotonic() - incoming.started
        if waited > self.config.restart_timeout and (
            self.current is not None and not self.current.handed_over
        ):
            incoming.error = (
                f"the new engine was not ready within {self.config.restart_timeout:g} s"
            )
            with contextlib.suppress(ProcessLookupError):
                incoming.process.kill()

    def _reap(self) -> int | None:
        """Notice workers that ended; the supervisor's exit status once the game is over."""
        for worker in list(self._workers()):
            status = worker.process.poll()
            if status is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(worker.control)
            worker.control.close()
            self._drain_output(worker)
            if worker in self.leaving:
                self.leaving.remove(worker)
                continue
            if worker is self.incoming:
                self.incoming = None
                self._restart_failed(worker, status)
                continue
            if worker is self.current:
                # The game stopped (shutdown, a signal, a crash): so does the server,
                # with the game's status, for the service manager to act on.
                self.current = None
                if status != 0 and not self.stopping and not worker.error:
                    log.error("the game worker ended with status %d", status)
                return status
        return None

    def _restart_failed(self, worker: Worker, status: int) -> None:
        error = worker.error or f"the new engine exited with status {status} before it was ready"
        current = self.current
        if current is None:
            # The old worker had handed its connections over already: they are lost.
            log.error("hot restart failed after the handover: %s", error)
            self.stopping = True
            return
        log.error("hot restart failed: %s; the running game goes on", error)
        self._tell(current, {"kind": "restart-failed", "error": error})


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
    if config.game_dir is not None:
        # Every worker serves this same game, wherever it is started from.
        args = ["--game", str(config.game_dir), *args]
        shown = _shown_path(config.game_dir)
        content = _shown_path(config.content_dir)
        print(
            f"Serving the game in {shown}; edit {content}/ and each save goes live."
            if config.reload
            else f"Serving the game in {shown} (live reload is off).",
            file=sys.stderr,
        )
    return Supervisor(args, config, log_file).run()


def _shown_path(path: os.PathLike[str] | str) -> str:
    """A path as the person who started the server would type it: relative when below here."""
    relative = os.path.relpath(path)
    return relative if relative != "." and not relative.startswith("..") else str(path)
