"""What must hold before a server loads anything: its database is its own, its port is free.

Two servers on one SQLite file would both write to it (SQLite serialises
transactions, not applications) and choose clashing object ids in memory.
So a server holds an exclusive ``flock`` on the database file itself, under
whatever name it was given (a symlink, a hard link), for its whole life; the
operating system releases it when the process ends in any way, ``kill -9``
included, so a crash never leaves a stale lock behind.  A note beside the
file says which process holds it and on which port, for the message the
next server prints.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path


class StartupError(Exception):
    """The server cannot start; the message says why in one line, for the operator."""


class DatabaseLock:
    """An exclusive lock on a database file, whatever name reaches it, held while the server runs.

    The lock is an ``flock`` on a descriptor of the database file itself,
    opened (and, on a first start, created) before SQLite touches it.  A lock
    file named from the path, as before, let two servers share one database
    through a symlink or a hard link; one named from the resolved path still
    misses hard links, and one named from the file's device and inode misses
    a hard link in another folder and, on a first start, has no inode to be
    named from.  The open file is the one thing every name shares: two first
    starts race on one ``O_CREAT`` and the kernel gives the lock to one.

    Why this does not disturb SQLite: on Linux ``flock`` and the POSIX
    ``fcntl`` record locks SQLite takes on the same file are separate kinds
    that never conflict (WAL, which the store uses, already rules out network
    filesystems, where ``flock`` is emulated with ``fcntl``).  One rule
    follows from POSIX locks: closing *any* descriptor of a file drops every
    POSIX lock the process holds on it, SQLite's too, so this descriptor is
    closed only once the store is closed (``release``, ``forget``).

    A hot restart hands the descriptor to the new worker (``hand_over``,
    ``adopt``): an ``flock`` belongs to the open file, so it never lapses.

    Who holds the lock (pid and port, for the next server's one-line refusal)
    is a note, ``hotmud-<device>-<inode>.lock`` in the database's real folder,
    so it is found through a symlink or a hard link beside the file; for a
    hard link in another folder the refusal comes without it.  The note is
    only a note: it is removed at release, and a note that cannot be written
    (a read-only folder) leaves the lock as strong.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        #: The descriptor of the database file that holds the lock.
        self._fd: int | None = None
        #: An older worker's ``<db>.lock`` descriptor, handed over in a restart (see ``adopt``).
        self._legacy_fd: int | None = None
        self._note_path: Path | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ``StartupError`` naming the process that holds it."""
        fd = self._open_database()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = self._read_note(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StartupError(f"Cannot lock the database {self.db_path}: {exc}.") from None
            who = f" ({holder})" if holder else ""
            raise StartupError(
                f"The database {self.db_path} is in use by another server{who}; "
                "stop that server first, or give this one another --db-path."
            ) from None
        self._hold(fd)

    def adopt(self, fd: int) -> None:
        """Hold the lock through ``fd``, handed over by the process that held it.

        ``flock`` locks belong to the open file, which the descriptor passed
        over the Unix socket shares: the lock never lapses between the two
        processes, so no other server can take the database meanwhile.  A
        worker of an older engine hands over its ``<db>.lock`` file instead:
        that is kept (older servers look there) and the database locked too.
        """
        if self._identity(fd) == self._identity(self.db_path):
            self._hold(fd)
            return
        self._legacy_fd = fd
        self.acquire()

    def hand_over(self) -> int | None:
        """The descriptor that holds the lock, for a new process (see ``adopt``)."""
        return self._fd

    def forget(self) -> None:
        """Close this process's hold without unlocking: the new process holds the lock now."""
        for fd in (self._fd, self._legacy_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._legacy_fd = None
        self._note_path = None

    def note(self, port: int | None = None) -> None:
        """Write who holds the lock (and, once listening, on which port)."""
        if self._fd is None or self._note_path is None:
            return
        # The server's pid: its supervisor's when it runs as a worker.
        pid = os.environ.get("HOTMUD_SUPERVISOR") or str(os.getpid())
        text = f"pid {pid}" + (f", port {port}" if port is not None else "") + "\n"
        data = text.encode()
        try:
            fd = os.open(self._note_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return  # a read-only folder: the lock holds; it just cannot say who holds it
        try:
            # Written over, then cut: never empty once first written.
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        except OSError:
            pass
        finally:
            os.close(fd)

    def release(self) -> None:
        """Unlock and close (after the store is closed: see the class docstring)."""
        if self._fd is None:
            return
        if self._note_path is not None:
            with contextlib.suppress(OSError):
                self._note_path.unlink()
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self.forget()

    # -- inside -----------------------------------------------------------------

    def _open_database(self) -> int:
        """A descriptor of the database file, created empty if there is none yet.

        SQLite takes an empty file for an empty database.  A file that cannot
        be opened for writing is opened to read: it locks all the same, and
        the store's check then says what is wrong with it in its own words.
        """
        flags = os.O_CLOEXEC | os.O_NOCTTY
        with contextlib.suppress(OSError):
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(self.db_path, flags | os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            with contextlib.suppress(OSError):
                return os.open(self.db_path, flags | os.O_RDONLY)
            raise StartupError(
                f"Cannot open the database {self.db_path}: {exc.strerror}."
            ) from None

    def _hold(self, fd: int) -> None:
        self._fd = fd
        self._note_path = self._note_for(fd)
        self.note()

    def _note_for(self, fd: int) -> Path | None:
        identity = self._identity(fd)
        if identity is None:
            return None
        folder = Path(os.path.realpath(self.db_path)).parent
        return folder / f"hotmud-{identity[0]}-{identity[1]}.lock"

    def _read_note(self, fd: int) -> str:
        note = self._note_for(fd)
        if note is None:
            return ""
        try:
            return note.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return ""

    @staticmethod
    def _identity(file: int | Path) -> tuple[int, int] | None:
        """The device and inode of a descriptor or path: which file it is, whatever its name."""
        try:
            stat = os.fstat(file) if isinstance(file, int) else os.stat(file)
        except OSError:
            return None
        return stat.st_dev, stat.st_ino


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
