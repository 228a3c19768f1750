"""What must hold before a server loads anything: its database is its own, its port is free.

Two servers on one SQLite file would both write to it (SQLite serialises
transactions, not applications) and choose clashing object ids in memory.
So a server holds an exclusive ``flock`` on ``<database>.lock`` for its whole
life; the operating system releases it when the process ends in any way,
``kill -9`` included, so a crash never leaves a stale lock behind.  The file
says which process holds it and on which port, for the message the next
server prints.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import IO


class StartupError(Exception):
    """The server cannot start; the message says why in one line, for the operator."""


class DatabaseLock:
    """An exclusive lock on a database, held while the server runs."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.path = self.db_path.with_name(self.db_path.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ``StartupError`` naming the process that holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for life
        except OSError as exc:
            # A lock file that exists can be locked read-only: the database
            # check then says what is wrong with the database itself.
            try:
                handle = open(self.path, encoding="utf-8")  # noqa: SIM115
            except OSError:
                raise StartupError(
                    f"Cannot create {self.path} beside the database: {exc.strerror}."
                ) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StartupError(f"Cannot lock the database {self.db_path}: {exc}.") from None
            who = f" ({holder})" if holder else ""
            raise StartupError(
                f"The database {self.db_path} is in use by another server{who}; "
                "stop that server first, or give this one another --db-path."
            ) from None
        self._file = handle
        self.note()

    def adopt(self, fd: int) -> None:
        """Hold the lock through ``fd``, handed over by the process that held it.

        ``flock`` locks belong to the open file, which the descriptor passed
        over the Unix socket shares: the lock never lapses between the two
        processes, so no other server can take the database meanwhile.
        """
        self._file = open(fd, "a+", encoding="utf-8", closefd=True)  # noqa: SIM115 - held for life
        self.note()

    def hand_over(self) -> int | None:
        """The descriptor that holds the lock, for a new process (see ``adopt``)."""
        return self._file.fileno() if self._file is not None else None

    def forget(self) -> None:
        """Close this process's hold without unlocking: the new process holds the lock now."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def note(self, port: int | None = None) -> None:
        """Write who holds the lock (and, once listening, on which port)."""
        if self._file is None:
            return
        # The server's pid: its supervisor's when it runs as a worker.
        pid = os.environ.get("HOTMUD_SUPERVISOR") or str(os.getpid())
        text = f"pid {pid}" + (f", port {port}" if port is not None else "")
        try:
            self._file.seek(0)
            self._file.truncate()
            self._file.write(text + "\n")
            self._file.flush()
        except (OSError, ValueError):
            pass  # a read-only lock file still locks; it just cannot say who holds it

    def release(self) -> None:
        # The file stays: removing it would let a third server lock a new
        # file while a second still waits on the old one.
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def check_port(host: str, port: int) -> None:
    """Raise ``StartupError`` at once if ``host:port`` cannot be listened on.

    Checked before content and the world are loaded, so a busy port costs
    one line and no time.  (Port 0 asks for any free port: nothing to check.)
    """
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"Cannot listen on {host}: {exc.strerror}.") from None
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            # As asyncio will: a port in TIME_WAIT after a restart is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise StartupError(
                        f"Port {port} on {host} is already in use (another server?); "
                        "stop it, or choose another port with --port."
                    ) from None
                raise StartupError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, inheritable by worker processes.

    Raises ``StartupError`` with one line when the port is busy or the host
    cannot be listened on.
    """
    check_port(host, port)
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        raise StartupError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
    sock.set_inheritable(True)
    return sock
