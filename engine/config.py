"""Every setting of the server in one place, from flags, environment or defaults.

One ``Config`` object is built at start and handed to whoever needs it (the
uvicorn pattern), so no module reads the environment on its own.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Config:
    """Server settings; each field can be set by flag and by ``MUD_<FIELD>``."""

    host: str = "127.0.0.1"
    port: int = 4000
    content_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "content")
    db_path: Path = field(default_factory=lambda: PROJECT_ROOT / "var" / "mud.sqlite3")
    reload: bool = True
    #: Longest input line accepted, in characters; longer ones are dropped.
    max_line: int = 4096
    #: Overlong lines tolerated before the connection is closed.
    max_overlong: int = 3
    #: Seconds from connecting to being logged in; past it the connection is closed.
    login_timeout: float = 300.0
    #: Seconds before the shell starts without complete negotiation.
    connect_maxwait: float = 0.5
    #: Minimum password length for new accounts.
    min_password: int = 6
    #: Wrong passwords before the connection is closed.
    max_password_tries: int = 3
    #: Bytes queued for one client before it is considered dead and closed.
    max_output_buffer: int = 1 << 20
    #: Connections open at once, in all and from one address (loopback exempt by default).
    max_connections: int = 10000
    max_per_ip: int = 20
    limit_loopback: bool = False
    #: Input lines a second per connection on average, and the burst allowed.
    input_rate: float = 10.0
    input_burst: float = 30.0
    #: Unread lines a throttled client may have waiting before it is closed as a flood.
    flood_limit: int = 100
    #: Connections not logged in yet, in all and from one address (loopback exempt by
    #: default); past either, the one waiting longest at the login prompt gives way.
    max_pending: int = 200
    max_pending_per_ip: int = 10
    #: New accounts one address may create within ``account_creation_window`` seconds.
    account_creations: int = 3
    account_creation_window: float = 600.0
    #: Back-off after a failed login, doubling per failure, per address and account.
    login_backoff: float = 1.0
    login_backoff_max: float = 60.0
    #: Listening socket backlog (asyncio's default of 100 drops connection bursts).
    backlog: int = 4096
    #: Offer MCCP2 compression to clients.
    compression: bool = True
    #: Seconds content may hold the event loop before it is stopped (0 turns the guard off).
    content_budget: float = 1.0
    #: Seconds a stop (SIGTERM, Ctrl-C) may take before the process is ended outright.
    stop_grace: float = 5.0
    #: Seconds a new engine may take to be ready in a hot restart before it is given up.
    restart_timeout: float = 30.0
    #: What players are told just before and just after a hot restart ("" says nothing).
    restart_notice: str = "The game is restarting with new code; hold on a moment."
    restart_done: str = "The game is back, running the new code."
    #: Full garbage collections of everything (engine.longlived): after a reload one comes once
    #: 0.1 % of the game's time allows it, at most ``gc_interval`` s later; without one, every
    #: ``gc_max_interval`` s.
    gc_interval: float = 600.0
    gc_max_interval: float = 3600.0
    #: watchfiles step in milliseconds (a save is seen after about twice this).
    reload_step_ms: int = 20
    log_level: str = "INFO"
    server_name: str = "HotMUD"

    @classmethod
    def from_sources(
        cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> Config:
        """Defaults, overridden by ``MUD_*`` environment variables, overridden by flags."""
        environ = os.environ if environ is None else environ
        config = cls()
        for f in fields(cls):
            raw = environ.get(f"MUD_{f.name.upper()}")
            if raw is not None:
                setattr(config, f.name, _convert(f.type, raw))
        parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
        parser.add_argument("--host", help=f"address to listen on (default {config.host})")
        parser.add_argument("--port", type=int, help=f"port to listen on (default {config.port})")
        parser.add_argument("--content-dir", type=Path, help="directory of the game content")
        parser.add_argument("--db-path", type=Path, help="SQLite database file")
        parser.add_argument(
            "--no-reload",
            dest="reload",
            action="store_false",
            default=None,
            help="do not watch content (or engine code) for changes",
        )
        parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
        args = parser.parse_args(argv)
        for name, value in vars(args).items():
            if value is not None:
                setattr(config, name, value)
        return config


def _convert(kind: object, raw: str) -> object:
    kind = str(kind)
    if kind.startswith("bool"):
        return _flag(raw)
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    if kind.startswith("Path"):
        return Path(raw)
    return raw
