"""Every setting of the server in one place: hotmud.toml, then ``MUD_*`` variables, then flags.

One ``Config`` object is built at start and handed to whoever needs it (the
uvicorn pattern), so no module reads the environment on its own.  Each
setting is declared once below, with its group, its default and one line on
what it does; the commented ``hotmud.toml`` of a new game, ``hotmud run
--help`` and the environment variables are all made from those declarations,
so none of them can leave a setting out.

A typo must never silently do nothing: an unknown key or a value of the
wrong type in ``hotmud.toml``, a bad ``MUD_*`` value or a bad flag stops the
start with one line that names it (``ConfigError``).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

#: The file that makes a folder a game folder, found by walking up as git finds ``.git``.
GAME_FILE = "hotmud.toml"

#: The log levels a game may choose.
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

#: The groups of ``hotmud.toml`` and of ``--help``, in order, with a heading for each.
GROUPS: dict[str, str] = {
    "server": "Where the game listens and how it presents itself",
    "files": "Where the game's files are (relative paths are inside the game folder)",
    "reload": "Live reload and the content guard",
    "logs": "Logging",
    "limits": "Limits on what one connection may send and hold",
    "login": "Logging in and creating accounts",
    "restart": "Stopping and hot restarts",
    "memory": "Garbage collection",
    "web": "The web client, reverse proxies and encrypted play",
}


def setting(
    default: Any,
    group: str,
    text: str,
    low: float | None = 0,
    high: float | None = None,
    words: bool = False,
) -> Any:
    """Declare a setting: its default, its group in hotmud.toml and one line on what it does.

    A number must lie between ``low`` and ``high`` (each None: no bound); by
    default it may not be negative.  ``words``: a list, kept as one text of
    space-separated words (as a variable or flag gives it), which hotmud.toml
    may also write as an array of texts.
    """
    assert group in GROUPS, group
    metadata = {"group": group, "help": text, "low": low, "high": high, "words": words}
    return field(default=default, metadata=metadata)


class ConfigError(Exception):
    """A setting that cannot be used; the message is the one line to print."""


@dataclass
class Config:
    """Server settings; each is a key of hotmud.toml, a ``MUD_<NAME>`` variable and a flag."""

    host: str = setting("127.0.0.1", "server", "Address to listen on (0.0.0.0: every address).")
    port: int = setting(4000, "server", "Telnet port players connect to.", high=65535)
    server_name: str = setting("HotMUD", "server", "The game's name, as MUD listings show it.")
    compression: bool = setting(True, "server", "Offer MCCP2 compression to clients.")
    backlog: int = setting(
        4096, "server", "Connections the system queues before they are taken.", low=1
    )
    connect_maxwait: float = setting(
        0.5, "server", "Seconds to wait for a client's telnet negotiation before the login."
    )
    content_dir: Path = setting(Path("content"), "files", "The game's content: commands, types.")
    db_path: Path = setting(
        Path("var/mud.sqlite3"), "files", "The SQLite database of the world and the accounts."
    )
    reload: bool = setting(
        True, "reload", "Put each save under content/ live (in a checkout, engine saves too)."
    )
    reload_step_ms: int = setting(
        20, "reload", "How often the watcher looks for saves, in ms (a save is seen in ~2x).", low=1
    )
    content_budget: float = setting(
        1.0, "reload", "Seconds content may hold the game before it is stopped (0: no guard)."
    )
    max_changes: int = setting(
        10_000,
        "reload",
        "Objects one command (or timer, hook) may create, change or destroy (0: no cap).",
    )
    tests_dir: str = setting(
        "tests",
        "reload",
        'The game\'s tests: a save goes live only once they pass ("": saves are not tested).',
    )
    test_timeout: float = setting(
        20.0,
        "reload",
        "Seconds the tests of a save may take; then they are stopped and it is refused.",
        low=0.1,
    )
    log_level: str = setting("INFO", "logs", "DEBUG, INFO, WARNING or ERROR.")
    log_file: str = setting(
        "var/log/hotmud.log", "logs", 'The log file, beside the terminal ("": none).'
    )
    log_max_bytes: int = setting(
        10_000_000, "logs", "Size at which the log file is rotated, in bytes."
    )
    log_backups: int = setting(5, "logs", "Rotated log files kept (hotmud.log.1 and on).")
    max_line: int = setting(
        4096, "limits", "Longest input line, in characters; longer ones go.", low=1
    )
    max_overlong: int = setting(3, "limits", "Overlong lines tolerated before disconnecting.")
    max_output_buffer: int = setting(
        1 << 20,
        "limits",
        "Bytes queued for a client that does not read before it is closed.",
        low=1024,
    )
    max_connections: int = setting(10000, "limits", "Connections open at once, in all.", low=1)
    max_per_ip: int = setting(20, "limits", "Connections open at once from one address.", low=1)
    limit_loopback: bool = setting(
        False, "limits", "Apply the per-address limits to this machine's own addresses too."
    )
    input_rate: float = setting(
        10.0, "limits", "Input lines a second per connection, on average.", low=0.001
    )
    input_burst: float = setting(
        30.0, "limits", "Input lines a connection may send in a burst.", low=0.001
    )
    flood_limit: int = setting(
        100,
        "limits",
        "Unread lines a throttled client may have waiting before it is closed.",
        low=1,
    )
    max_bad_negotiation: int = setting(
        5, "limits", "Malformed telnet subnegotiations a connection may send before it is closed."
    )
    login_timeout: float = setting(
        300.0, "login", "Seconds from connecting to being logged in, then the line is closed."
    )
    min_password: int = setting(6, "login", "Shortest password of a new account.", low=1)
    max_password_tries: int = setting(
        3, "login", "Wrong passwords before the connection is closed.", low=1
    )
    max_pending: int = setting(
        200, "login", "Connections not logged in yet, in all (the oldest gives way).", low=1
    )
    max_pending_per_ip: int = setting(
        10, "login", "Connections not logged in yet, per address.", low=1
    )
    account_creations: int = setting(
        3, "login", "New accounts one address may create within the window below."
    )
    account_creation_window: float = setting(
        600.0, "login", "The window for new accounts per address, in seconds."
    )
    password_cost: int = setting(
        14,
        "login",
        "Work of a password hash: scrypt's N is 2 to this power. Each step doubles the time"
        " and memory a login takes (14: 16 MiB, about 40 ms); accounts take a new cost when"
        " they next log in.",
        low=10,
        high=20,
    )
    login_backoff: float = setting(
        1.0, "login", "Seconds of back-off after a failed login, doubling each failure."
    )
    login_backoff_max: float = setting(
        60.0, "login", "Longest back-off after failed logins, in seconds."
    )
    stop_grace: float = setting(
        5.0, "restart", "Seconds a stop may take before the process is ended outright."
    )
    restart_timeout: float = setting(
        30.0, "restart", "Seconds a new engine may take to be ready in a hot restart."
    )
    restart_notice: str = setting(
        "The game is restarting with new code; hold on a moment.",
        "restart",
        'What players read just before a hot restart ("": nothing).',
    )
    restart_done: str = setting(
        "The game is back, running the new code.",
        "restart",
        'What players read just after a hot restart ("": nothing).',
    )
    recovery_notice: str = setting(
        "The game had a problem and is back. A command that got no answer did not "
        "happen; type it again.",
        "restart",
        'What players read when the game is back after its engine process died ("": nothing).',
    )
    crash_limit: int = setting(
        5,
        "restart",
        "Crashes of the engine process within a minute before the server stops.",
        low=1,
    )
    gc_interval: float = setting(
        600.0, "memory", "Longest wait, in seconds, for a collection of everything after a reload."
    )
    gc_max_interval: float = setting(
        3600.0, "memory", "Seconds between collections of everything without reloads."
    )
    web: bool = setting(True, "web", "Serve the web client: its page and a websocket at /ws.")
    web_port: int = setting(
        4001,
        "web",
        "Port of the web client (0: any free port; so is 4001 while port is 0).",
        high=65535,
    )
    web_origins: str = setting(
        "",
        "web",
        "Other sites whose pages may open the websocket, space-separated (https://a.example).",
        words=True,
    )
    web_max_frame: int = setting(
        65536,
        "web",
        "Largest websocket message a client may send, in bytes; a bigger one closes it (1009).",
        low=256,
    )
    trusted_proxies: str = setting(
        "",
        "web",
        "Reverse proxies (addresses, networks; space-separated) whose X-Forwarded-For counts.",
        words=True,
    )
    proxy_port: int = setting(
        0,
        "web",
        "A telnet port whose connections start with a PROXY protocol header (0: none).",
        high=65535,
    )
    tls_port: int = setting(
        0,
        "web",
        "The port players reach telnet over TLS (at a proxy), told to clients by MSSP (0: none).",
        high=65535,
    )
    #: The game folder served (the one holding hotmud.toml), or None for a server
    #: started with explicit --content-dir and --db-path (the engine's own tests).
    game_dir: Path | None = None

    # -- where things are -------------------------------------------------------------

    @property
    def log_path(self) -> Path | None:
        """The log file, or None: relative to the game folder, or to the database's folder."""
        if not self.log_file:
            return None
        path = Path(self.log_file)
        if path.is_absolute():
            return path
        base = self.game_dir if self.game_dir is not None else self.db_path.parent
        return base / path

    @property
    def tests_path(self) -> Path | None:
        """The game's tests folder, whose tests every save must pass; None: saves are not tested.

        A relative ``tests_dir`` is inside the game folder.  A server without a
        game folder (explicit content and database paths) tests saves only when
        told where the tests are (``MUD_TESTS_DIR``, ``--tests-dir``), which
        ``from_sources`` makes absolute.  Saves are tested only while the folder
        exists.
        """
        if not self.tests_dir:
            return None
        path = Path(self.tests_dir)
        if path.is_absolute():
            return path
        return self.game_dir / path if self.game_dir is not None else None

    # -- sources ----------------------------------------------------------------------

    @classmethod
    def from_sources(
        cls,
        argv: Sequence[str] | None = None,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        prog: str = "hotmud run",
    ) -> Config:
        """hotmud.toml of the game found from ``cwd`` up, then ``MUD_*``, then flags.

        Raises ``ConfigError`` with one line for anything it cannot use;
        ``SystemExit`` for ``--help`` and for argparse's own usage errors.
        """
        environ = os.environ if environ is None else environ
        args = parser(prog).parse_args(argv)
        given_game = args.game or environ.get("MUD_GAME_DIR")
        if given_game:
            game_dir: Path | None = Path(given_game).resolve()
            assert game_dir is not None
            if not (game_dir / GAME_FILE).is_file():
                raise ConfigError(f"{given_game} is not a game folder: it has no {GAME_FILE}.")
        else:
            game_dir = find_game(cwd or Path.cwd())
        config = cls()
        if game_dir is not None:
            config.game_dir = game_dir
            read_toml(config, game_dir / GAME_FILE)
        read_environment(config, environ)
        for name, value in vars(args).items():
            if value is not None and name != "game":
                setattr(config, name, value)
        given = {name for name, value in vars(args).items() if value is not None} | {
            f.name for f in settings() if f"MUD_{f.name.upper()}" in environ
        }
        explicit = {"content_dir", "db_path"} <= given
        if game_dir is None and not explicit:
            here = cwd or Path.cwd()
            raise ConfigError(
                f"No game here: {here} and the folders above it have no {GAME_FILE}. "
                "Make a game with 'hotmud new mygame', then 'cd mygame' and 'hotmud run'."
            )
        if config.log_level.upper() not in LEVELS:
            raise ConfigError(
                f'The log level must be one of {", ".join(LEVELS)}, not "{config.log_level}".'
            )
        config._resolve_paths()
        if game_dir is None and "tests_dir" in given and config.tests_dir:
            # Like the content and database paths there: from where the server starts.
            config.tests_dir = str((cwd or Path.cwd()) / config.tests_dir)
        return config

    def _resolve_paths(self) -> None:
        """Relative content and database paths are inside the game folder."""
        if self.game_dir is None:
            return
        if not self.content_dir.is_absolute():
            self.content_dir = self.game_dir / self.content_dir
        if not self.db_path.is_absolute():
            self.db_path = self.game_dir / self.db_path


def settings() -> list[Field[Any]]:
    """Every setting (the fields with a group), in declaration order."""
    return [f for f in fields(Config) if "group" in f.metadata]


def default_of(f: Field[Any]) -> Any:
    return f.default if f.default is not MISSING else None


def kind_of(f: Field[Any]) -> str:
    """``bool``, ``int``, ``float``, ``str`` or ``Path``: the type a setting's values must have."""
    return str(f.type).split(" ")[0]


def find_game(start: Path) -> Path | None:
    """The nearest folder from ``start`` upwards that holds hotmud.toml, as git finds ``.git``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / GAME_FILE).is_file():
            return folder
    return None


# -- hotmud.toml ------------------------------------------------------------------------


def read_toml(config: Config, path: Path) -> None:
    """Apply a game's hotmud.toml: keys in their group (or at the top), of the right type."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's message ends "(at line 3, column 7)": said the way the others are.
        found = re.search(r"^(.*) \(at line (\d+), column \d+\)$", str(exc))
        what, line = (found.group(1), found.group(2)) if found else (str(exc), "?")
        raise ConfigError(f"{path.name} line {line}: this is not valid TOML: {what}.") from None
    known = {f.name: f for f in settings()}
    for key, value in data.items():
        if key in GROUPS and isinstance(value, dict):
            for name, inner in value.items():
                if name in data and not isinstance(data[name], dict):
                    first = _line_of(text, None, name)
                    raise ConfigError(
                        f'{path.name} line {_line_of(text, key, name)}: "{name}" is set twice '
                        f"(also at line {first}, before any section); keep one."
                    )
                _apply_key(config, known, path, text, key, name, inner)
        else:
            _apply_key(config, known, path, text, None, key, value)


def _apply_key(
    config: Config,
    known: dict[str, Field[Any]],
    path: Path,
    text: str,
    group: str | None,
    key: str,
    value: object,
) -> None:
    where = f"{path.name} line {_line_of(text, group, key)}"
    f = known.get(key)
    if f is None:
        if group is None and isinstance(value, dict):
            close = difflib.get_close_matches(key, GROUPS, n=1)
            hint = f"; did you mean [{close[0]}]?" if close else ""
            raise ConfigError(f"{where}: unknown section [{key}]{hint}")
        close = difflib.get_close_matches(key, known, n=1)
        hint = f'; did you mean "{close[0]}"?' if close else "."
        section = f" in [{group}]" if group else ""
        raise ConfigError(f'{where}: unknown setting "{key}"{section}{hint}')
    if group is not None and f.metadata["group"] != group:
        raise ConfigError(f'{where}: "{key}" belongs in [{f.metadata["group"]}], not [{group}].')
    setattr(config, key, _typed(f, value, f'{where}: "{key}"'))


def _line_of(text: str, group: str | None, key: str) -> int:
    """The line of ``key`` in ``group`` (None: before any table), for a message; 0 if unseen."""
    table: str | None = None
    pattern = re.compile(rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*=""")
    header = re.compile(r"^\s*\[([^\[\]]+)\]")
    for number, line in enumerate(text.splitlines(), 1):
        found = header.match(line)
        if found:
            table = found.group(1).strip()
            if group is None and table == key:
                return number
            continue
        if table == group and pattern.match(line):
            return number
    return 0


def _in_range(f: Field[Any], value: Any, named: str) -> None:
    """A number outside the setting's bounds stops the start, saying which bounds."""
    if kind_of(f) not in ("int", "float"):
        return
    low, high = f.metadata.get("low"), f.metadata.get("high")
    if (low is None or value >= low) and (high is None or value <= high):
        return
    if low is not None and high is not None:
        wanted = f"between {low:g} and {high:g}"
    elif low is not None:
        wanted = f"at least {low:g}"
    else:
        wanted = f"at most {high:g}"
    raise ConfigError(f"{named} must be {wanted}, not {value:g}.")


_WANTED = {
    "bool": "true or false",
    "int": "a whole number",
    "float": "a number",
    "str": "a text in quotes",
    "Path": "a path in quotes",
}


def _typed(f: Field[Any], value: object, named: str) -> object:
    """``value`` as the setting's type, or ConfigError saying what was wanted."""
    kind = kind_of(f)
    if f.metadata.get("words") and isinstance(value, list):
        return _joined_words(value, named)
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "Path": isinstance(value, str),
    }[kind]
    if not ok:
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        wanted = "a list of texts in quotes" if f.metadata.get("words") else _WANTED[kind]
        raise ConfigError(f"{named} must be {wanted}, not {shown}.")
    if kind == "Path":
        return Path(str(value))
    number = float(value) if kind == "float" else value  # type: ignore[arg-type]
    _in_range(f, number, named)
    return number


def _joined_words(values: list[object], named: str) -> str:
    """A TOML array of words (``["https://a.example", "https://b.example"]``) as one text."""
    for value in values:
        if not isinstance(value, str) or not value.strip() or len(value.split()) != 1:
            shown = f'"{value}"' if isinstance(value, str) else repr(value)
            raise ConfigError(f"{named} must list single words in quotes, not {shown}.")
    return " ".join(str(value).strip() for value in values)


# -- MUD_* variables ----------------------------------------------------------------------


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def read_environment(config: Config, environ: Mapping[str, str]) -> None:
    """Apply every ``MUD_<NAME>`` variable set; a value that is not of the type stops."""
    for f in settings():
        variable = f"MUD_{f.name.upper()}"
        raw = environ.get(variable)
        if raw is None:
            continue
        setattr(config, f.name, _from_text(f, raw, variable))


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line for each ``MUD_*`` variable set that names no setting (a typo, most likely)."""
    names = {f"MUD_{f.name.upper()}" for f in settings()} | {"MUD_GAME_DIR"}
    lines = []
    for variable in sorted(v for v in environ if v.startswith("MUD_") and v not in names):
        close = difflib.get_close_matches(variable, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"{variable} is not a setting{hint}; it is ignored.")
    return lines


def _from_text(f: Field[Any], raw: str, named: str) -> object:
    kind = kind_of(f)
    value = raw.strip()
    try:
        if kind == "bool":
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError
            return value.lower() in _TRUE
        if kind in ("int", "float"):
            number = int(value) if kind == "int" else float(value)
            _in_range(f, number, named)
            return number
    except ValueError:
        raise ConfigError(f'{named} must be {_WANTED[kind]}, not "{raw}".') from None
    if kind == "Path":
        return Path(raw)
    return raw


# -- flags ----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, whose mistakes cost one line (not the whole usage) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hotmud: {message} (see '{self.prog} --help').\n")


def _flag_type(f: Field[Any]) -> Any:
    """The flag's converter: the setting's type, within its bounds."""
    kind = kind_of(f)
    convert: Any = {"int": int, "float": float, "Path": Path, "str": str}[kind]

    def typed(raw: str) -> Any:
        try:
            value = convert(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{_WANTED[kind]} is wanted, not "{raw}"') from None
        try:
            _in_range(f, value, "it")
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).rstrip(".")) from None
        return value

    typed.__name__ = kind  # argparse names the type in its messages
    return typed


def parser(prog: str = "hotmud run") -> argparse.ArgumentParser:
    """The flags of ``hotmud run`` and ``python -m engine``: one for every setting."""
    made = _Parser(
        prog=prog,
        description=(
            "Serve the game in this folder: the nearest folder from here upwards that has "
            "a hotmud.toml (make one with 'hotmud new'). Its content/ reloads on every save."
        ),
        epilog=(
            "Every setting comes from the game's hotmud.toml, then from its MUD_* "
            "environment variable, then from its flag: a flag wins. Each is listed above "
            "with its variable and its default."
        ),
    )
    made.add_argument(
        "--game",
        metavar="DIR",
        help="the game folder to serve (MUD_GAME_DIR; default: found from here upwards)",
    )
    groups = {name: made.add_argument_group(title) for name, title in GROUPS.items()}
    for f in settings():
        flag = "--" + f.name.replace("_", "-")
        text = f.metadata["help"].rstrip(".").replace("%", "%%")
        shown = f"MUD_{f.name.upper()}; default: {_shown(default_of(f))}"
        group = groups[f.metadata["group"]]
        kind = kind_of(f)
        if kind == "bool":
            group.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{text} ({shown})",
            )
            continue
        group.add_argument(
            flag,
            type=_flag_type(f),
            metavar=_metavar(f),
            help=f"{text} ({shown})",
        )
    return made


_METAVARS = {
    "host": "ADDRESS",
    "log_level": "LEVEL",
    "server_name": "NAME",
    "log_file": "PATH",
    "tests_dir": "PATH",
}


def _metavar(f: Field[Any]) -> str:
    """What a flag's value is, in a word: ``SECONDS``, ``N``, ``PATH``, ``TEXT``."""
    if f.name in _METAVARS:
        return _METAVARS[f.name]
    kind = kind_of(f)
    if kind == "float":
        return "SECONDS" if "econds" in f.metadata["help"] else "NUMBER"
    return {"int": "N", "Path": "PATH"}.get(kind, "TEXT")


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return f'"{value}"' if value == "" or " " in value else value
    return str(value)


# -- a new game's hotmud.toml ------------------------------------------------------------


#: Settings a new game's hotmud.toml sets (at their defaults); the others are commented out.
SET_IN_NEW_GAMES = ("server_name", "host", "port")


def toml_template() -> str:
    """A hotmud.toml with every setting, grouped, each with its default and what it does."""
    lines = [
        "# Settings of this game, each at its default. To change one, remove the '#'",
        "# before it and change the value. A MUD_<NAME> environment variable or a flag",
        "# of 'hotmud run' (listed by 'hotmud run --help') overrides what is set here.",
    ]
    for group, title in GROUPS.items():
        lines += ["", f"[{group}]", f"# {title}."]
        for f in settings():
            if f.metadata["group"] != group:
                continue
            value = _toml_value(default_of(f))
            lines.append(f"# {f.metadata['help']} Default: {value}")
            lines.append(f"{'' if f.name in SET_IN_NEW_GAMES else '# '}{f.name} = {value}")
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    return str(value)
