"""``hotmud check``: does the game's content load, and can the world it stores use it?

The check loads every module under ``content/`` (commands, type classes, the
starter world, any other module a builder added) the way the server loads it
at start, with the engine's own loader (``LiveContent.load_all``) under the
content guard, so every module body is held to the same budget as in the
game and a ``while True: pass`` at import is stopped and reported, not
waited for.  Then it checks what the loader accepted:

- every command the content registers: a key of one lowercase word, help
  text (the class's docstring), a permission that is a ``Role``; a name two
  modules claim, or a direction, is refused by the registry as on a reload;
- the engine's default type class of each kind (``content.typeclasses.rooms.Room``
  ...), which every object created without one gets;
- when the world's database exists, every distinct type class path its
  objects store, resolved as the game resolves it and checked against the
  engine base class of the object's kind.

Every problem is one line, ``content/commands/x.py:12: SyntaxError: invalid
syntax``, the path relative to the game folder, as the reload messages in
game say it.  The database is opened read-only: a server may be running on
it, and a check must neither migrate, nor lock, nor write it.

Content is code that can end the interpreter (``os._exit``, a crash in a C
extension) or hold it in a call the guard cannot interrupt, so the command
line runs the check in a child process (``run_check``), with a marker file
naming the module loading at any moment and a timeout as the last resort;
``main`` is that child's entry point: ``python -m engine.check``.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import inspect
import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.accounts.account import Role
from engine.commands.base import Command
from engine.commands.registry import Registry
from engine.guard.errors import plain_names
from engine.guard.guard import ContentGuard
from engine.live.crashes import CrashMarkers
from engine.live.manager import (
    LiveContent,
    ValidationError,
    command_classes,
    declared_commands,
    defined_at,
)
from engine.live.typeclasses import TypeclassWatch
from engine.world import atomic
from engine.world.model import World
from engine.world.objects import KINDS, GameObject
from reloader.live import BatchError

#: The module ``python -m`` runs for the child process.
MODULE = "engine.check"
#: Where a game folder keeps its database, unless told otherwise.
DEFAULT_DB = Path("var") / "mud.sqlite3"
#: Seconds the child process may take in all before it is killed.  The guard
#: stops every module body after ``budget`` seconds; this catches only what it
#: cannot stop (a C call that never returns, a loop outside a module body).
TIMEOUT = 30.0
#: Objects named in a type class line before the rest are only counted.
NAMED = 3
#: The folder holding the ``engine`` package, for the child's ``PYTHONPATH``.
_CODE_ROOT = Path(__file__).resolve().parent.parent

#: A name clash as the registry words it: ``'look' of content.commands.b is taken by ...``.
_CLASH = re.compile(r"^'(?P<name>[^']*)' of (?P<module>[\w.]+) ")


@dataclass
class CheckReport:
    """What one check found, and how much it looked at (for the summary line)."""

    problems: list[str] = field(default_factory=list)
    modules: int = 0
    command_modules: int = 0
    commands: int = 0
    typeclass_modules: int = 0
    default_typeclasses: int = 0
    #: Distinct type class paths the database stores (None: no database was read).
    stored_paths: int | None = None
    #: The database as shown in lines: relative to the game folder when inside it.
    db_shown: str = ""
    seconds: float = 0.0

    def summary(self) -> str:
        """The last line: what was checked, how long it took, and how many problems."""
        modules = (
            f"{self.modules} content module{_s(self.modules)} "
            f"({self.commands} command{_s(self.commands)} in {self.command_modules} "
            f"command module{_s(self.command_modules)}, {self.typeclass_modules} type class "
            f"module{_s(self.typeclass_modules)})"
        )
        defaults = f"the {self.default_typeclasses} default type classes"
        if self.stored_paths is None:
            checked = f"{modules} and {defaults} (no database at {self.db_shown})"
        else:
            checked = (
                f"{modules}, {defaults} and {self.stored_paths} type class "
                f"path{_s(self.stored_paths)} in {self.db_shown}"
            )
        count = len(self.problems)
        verdict = "no problems" if not count else f"{count} problem{_s(count)}"
        return f"Checked {checked} in {self.seconds:.2f} s: {verdict}."


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def check(
    game_dir: Path,
    content_dir: Path | None = None,
    db_path: Path | None = None,
    budget: float = 1.0,
) -> list[str]:
    """Every problem of the game in ``game_dir``, one line each; empty when it is clean.

    Runs in this process: content that ends the interpreter ends the caller
    too.  ``run_check`` runs it in a child process.
    """
    return check_game(game_dir, content_dir, db_path, budget).problems


def check_game(
    game_dir: Path,
    content_dir: Path | None = None,
    db_path: Path | None = None,
    budget: float = 1.0,
    *,
    crash_marker: Path | None = None,
) -> CheckReport:
    """``check`` with the counts for the summary line.

    ``crash_marker`` is a file that names the module whose body is running,
    written and removed around each one (``engine.live.crashes``): if the
    process dies while loading, whoever started it reads there which module
    killed it.  ``budget`` must be above zero: a guard without a budget
    stops nothing.
    """
    if budget <= 0:
        raise ValueError("the budget must be above zero: without one, nothing is stopped")
    started = time.perf_counter()
    game_dir, content, db = _paths(game_dir, content_dir, db_path)
    report = CheckReport(db_shown=_shown(db, game_dir))
    if not content.is_dir():
        report.problems.append(f"{_shown(content, game_dir)}: there is no content folder here")
        report.seconds = time.perf_counter() - started
        return report
    loader = _Loader(content, budget, crash_marker)
    report.problems += loader.load()
    report.problems += loader.check_commands()
    report.modules = len(loader.manager.tree.live)
    report.command_modules = len(loader.registry.modules())
    report.commands = len(loader.registry.commands())
    report.typeclass_modules = loader.typeclass_modules()
    report.default_typeclasses = len(KINDS)
    report.problems += loader.check_defaults()
    if db.is_file():
        paths, problems = loader.check_database(db, report.db_shown)
        report.stored_paths = paths
        report.problems += problems
    report.problems = _unique([plain_names(line) for line in report.problems])
    report.seconds = time.perf_counter() - started
    return report


def _paths(
    game_dir: Path, content_dir: Path | None, db_path: Path | None
) -> tuple[Path, Path, Path]:
    """The game folder, its content and its database, absolute.

    Relative paths are inside the game folder, as in ``hotmud.toml``.
    """
    game = Path(game_dir).resolve()
    content = (game / content_dir).resolve() if content_dir is not None else game / "content"
    db = game / db_path if db_path is not None else game / DEFAULT_DB
    return game, content, db


def _shown(path: Path, game_dir: Path) -> str:
    """``path`` relative to the game folder when inside it (as every line shows paths)."""
    try:
        return Path(path).resolve().relative_to(game_dir).as_posix()
    except ValueError:
        return str(path)


def _unique(lines: list[str]) -> list[str]:
    """``lines`` without repeats, and without an unlocated line that located ones repeat.

    The first, whole-batch load words a name clash without a place
    (``'look' of content.commands.b is taken by ...``); the module's own
    trial says the same after its file and line, and only that one is kept.
    """
    seen = list(dict.fromkeys(lines))
    kept = []
    for line in seen:
        parts = re.split(r"; (?=')", line)
        located = line.startswith("'") and all(
            any(other != line and other.endswith(": " + part) for other in seen) for part in parts
        )
        if not located:
            kept.append(line)
    return kept


class _Loader:
    """The engine's content loader, as the server builds it, with the check's extra questions."""

    def __init__(self, content: Path, budget: float, crash_marker: Path | None) -> None:
        self.content = content
        #: The folder content paths are shown from, as the loader shows them.
        self.shown_from = content.parent
        # No fallbacks: the check counts and checks the content's commands only.
        self.registry = Registry()
        self.guard = ContentGuard(content, budget)
        crashes = None
        if crash_marker is not None:
            crashes = CrashMarkers(crash_marker, crash_marker.with_name("skipped.json"))
        self.manager = LiveContent(
            content, self.registry, lambda line: None, guard=self.guard, crashes=crashes
        )

    # -- loading ----------------------------------------------------------------------

    def load(self) -> list[str]:
        """Load everything as the server does at start, then find out why each left-out module is.

        ``load_all`` reports the first failure of the whole batch and leaves
        out every module that does not load alone, without saying why for
        each.  Each left-out module whose file no line names yet is loaded
        once more on its own, so every broken file gets its own line (a
        module that fails only because it imports a broken one repeats that
        one's line, which is dropped).  A batch refused as a whole (a name
        clash) leaves nothing loaded; module by module, the first claim of a
        name stands and the later one is refused, as a reload would.
        """
        report = self.manager.load_all()
        problems = list(report.failures)
        tree = self.manager.tree
        for name in sorted(tree.discover()):
            if name in tree.live:
                continue  # loaded since, as an import of an earlier one
            where = self._file_of(name)
            if any(line.startswith(where + ":") for line in problems):
                continue  # already told why (and a module stopped for looping is not run again)
            trial = self.manager.apply({name})
            for line in trial.failures:
                problems += self._located(line)
        return problems

    def _file_of(self, module: str) -> str:
        """``content/commands/x.py``: a module's file as load failures show it."""
        parts = module.split(".")[1:]
        base = self.content.joinpath(*parts)
        path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        return os.path.relpath(path, self.shown_from)

    def _located(self, line: str) -> list[str]:
        """A registry refusal, one line per clash, each at the class that claims the name."""
        if not line.startswith("'"):
            return [line]
        located = []
        for part in re.split(r"; (?=')", line):
            match = _CLASH.match(part)
            where = None
            if match:
                where = self._claim_of(match["module"], match["name"]) or self._file_of(
                    match["module"]
                )
            located.append(f"{where}: {part}" if where else part)
        return located

    def _claim_of(self, module: str, name: str) -> str | None:
        """Where in ``module`` the command holding ``name`` is defined (a trial load, undone)."""
        txn = atomic.begin()  # whatever the module body changes is undone, as in load_all's trials
        try:
            batch = self.manager.tree.prepare({module})
            loaded = batch.modules.get(module)
            commands = declared_commands(loaded) if loaded is not None else []
        except (BatchError, ValidationError):
            return None
        finally:
            txn.rollback()
        for command in commands:
            if name in (n.lower() for n in command.names):
                return self._defined_at(type(command))
        return None

    def _defined_at(self, cls: type) -> str | None:
        return defined_at(cls, self.shown_from)

    # -- commands ---------------------------------------------------------------------

    def check_commands(self) -> list[str]:
        """What the loader accepts but players would trip over, one line per command.

        The loader refuses a key that is not one word, a permission that is
        not a ``Role`` and a name another module holds.  It accepts, and
        this check reports: a key or alias that is not lowercase (the
        registry files names lowercased, so ``Look`` answers to ``look`` but
        help and every reload message show ``Look``, and two keys differing
        in case clash at the next reload), whitespace other than a space in
        a name, and a command without a docstring (``help`` would show a
        placeholder: the docstring is its help page).  A command class with
        ``run`` but no key, and no subclass anywhere, is not registered at
        all: most likely its key was forgotten.
        """
        problems = []
        for command in sorted(self.registry.commands(), key=self._place):
            cls = type(command)
            where = self._defined_at(cls) or self.registry.module_of(command)
            key = cls.key
            for name in (key, *cls.aliases):
                if not isinstance(name, str) or not name:
                    continue  # refused by the loader already
                if name.split() != [name]:
                    problems.append(
                        f"{where}: command {key!r} has the name {name!r}, which is not one word"
                    )
                elif name != name.lower():
                    what = "key" if name is key else "alias"
                    problems.append(
                        f"{where}: command {key!r} has the {what} {name!r}, which is not "
                        "lowercase (names match in any case; help shows them as written)"
                    )
            if not inspect.cleandoc(cls.__doc__ or ""):
                problems.append(f"{where}: command {key!r} has no help text (a docstring)")
            if not isinstance(cls.permission, Role):
                problems.append(
                    f"{where}: command {key!r} has the permission {cls.permission!r}, not a Role"
                )
        problems += self._keyless()
        return problems

    def _place(self, command: Command) -> tuple[str, int]:
        """Where a command's class is, to list a file's problems in the file's order."""
        where = self._defined_at(type(command)) or ""
        path, _, line = where.rpartition(":")
        return (path, int(line)) if line.isdigit() else (where, 0)

    def _keyless(self) -> list[str]:
        """Command classes with ``run`` but no key and no subclass: never registered."""
        problems = []
        for module in self.manager.tree.live.values():
            for value in command_classes(module):
                if not value.key and value.run is not Command.run and not value.__subclasses__():
                    where = self._defined_at(value) or module.__name__
                    problems.append(
                        f"{where}: command class {value.__qualname__} has no key, "
                        "so it is not registered"
                    )
        return problems

    # -- type classes -----------------------------------------------------------------

    def typeclass_modules(self) -> int:
        """Live modules that define a type class (a subclass of an engine object kind)."""
        count = 0
        for module in self.manager.tree.live.values():
            if any(
                isinstance(value, type)
                and issubclass(value, GameObject)
                and value.__module__ == module.__name__
                for value in list(vars(module).values())
            ):
                count += 1
        return count

    def _watch(self) -> TypeclassWatch:
        """The game's type class rules (``TypeclassWatch.problem``) over the loaded content."""
        return TypeclassWatch(World(), self.manager.resolve_class, self.guard, lambda line: None)

    def _why_not(self, watch: TypeclassWatch, path: str, kind: str) -> str | None:
        """Why objects of ``kind`` cannot use ``path``, worded for one line; None if they can."""
        if kind not in KINDS:
            return f"is stored for objects of the unknown kind {kind!r}"
        try:
            self.manager.resolve_class(path)
        except Exception as exc:
            return f"does not load: {type(exc).__name__}: {exc}"
        problem = watch.problem(path, kind)
        return None if problem is None else f"cannot be the type class of a {kind}: {problem}"

    def check_defaults(self) -> list[str]:
        """The type class every new object of a kind gets must load, or all of them are broken."""
        watch = self._watch()
        problems = []
        for kind, base in KINDS.items():
            path = getattr(base, "default_typeclass", "")
            if not isinstance(path, str) or not path:
                continue
            why = self._why_not(watch, path, kind)
            if why is not None:
                module = path.rpartition(".")[0]
                where = self._file_of(module) if module.startswith("content.") else "engine"
                problems.append(
                    f"{where}: type class {path} (the engine's default for new {kind}s) {why}"
                )
        return problems

    def check_database(self, db: Path, shown: str) -> tuple[int, list[str]]:
        """How many distinct type class paths the world stores, and those that do not work.

        Read-only (``_stored_objects``): a server may be running on the file;
        the check never migrates it, never takes its write lock, never changes it.
        """
        try:
            rows = _stored_objects(db)
        except sqlite3.Error as exc:
            return 0, [f"{shown}: cannot be read ({exc}); its type classes were not checked"]
        objects: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for typeclass, kind, obj_id, name in rows:
            objects.setdefault((typeclass, kind), []).append((obj_id, name))
        watch = self._watch()
        problems = []
        for (path, kind), found in sorted(objects.items()):
            why = self._why_not(watch, path, kind)
            if why is None:
                continue
            named = ", ".join(f"#{i} {n}" for i, n in found[:NAMED])
            if len(found) > NAMED:
                named += f" and {len(found) - NAMED} more"
            count = f"{len(found)} object{_s(len(found))}"
            problems.append(f"{shown}: type class {path} ({count}: {named}) {why}")
        return len({path for path, _kind in objects}), problems


def _stored_objects(db: Path) -> list[tuple[str, str, int, str]]:
    """(type class, kind, id, name) of every object the database holds, read-only.

    A database without an ``objects`` table (one no server has opened yet)
    stores no type class.
    """
    # ``mode=ro`` still creates the ``-wal`` and ``-shm`` files of a WAL database
    # that has none (one no server has open) and cannot remove them after: a
    # file without a ``-wal`` is read as ``immutable`` instead, which creates
    # nothing.  With a ``-wal`` (a server running), ``mode=ro`` reads what it holds.
    wal = db.with_name(db.name + "-wal")
    uri = f"{db.resolve().as_uri()}?{'mode=ro' if wal.exists() else 'immutable=1'}"
    connection = sqlite3.connect(uri, uri=True, timeout=2.0)
    try:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "objects" not in tables:
            return []
        return [
            (str(row[0]), str(row[1]), int(row[2]), str(row[3]))
            for row in connection.execute(
                "SELECT typeclass, kind, id, name FROM objects ORDER BY typeclass, id"
            )
        ]
    finally:
        connection.close()


# -- the child process ------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.check``: print each problem, then the summary; 0 when clean, 1 if not.

    ``--state-dir`` (given by ``run_check``) is where the crash marker is
    kept and where the exit status is written once the summary is out, so the
    parent can tell a finished check from a process content ended.
    ``--deadline`` makes the process print every thread's stack and end if it
    is still running then: the parent's timeout kills silently.
    """
    parser = argparse.ArgumentParser(
        prog="python -m engine.check", description="Check a game's content and stored world."
    )
    parser.add_argument(
        "--game-dir", type=Path, help="default: the content folder's parent, or here"
    )
    parser.add_argument("--content-dir", type=Path, help="default: GAME/content")
    parser.add_argument("--db-path", type=Path, help="default: GAME/var/mud.sqlite3")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per module body")
    parser.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error("--budget must be above zero")
    if args.deadline:
        faulthandler.dump_traceback_later(args.deadline, exit=True)
    # Paths on the command line are relative to the working directory.
    content_dir = args.content_dir.resolve() if args.content_dir else None
    db_path = args.db_path.resolve() if args.db_path else None
    game_dir = args.game_dir.resolve() if args.game_dir else None
    if game_dir is None:
        game_dir = content_dir.parent if content_dir is not None else Path.cwd()
    # The engine's log lines (a stopped module's stack, say) are not the check's output.
    logging.disable(logging.CRITICAL)
    marker = args.state_dir / "loading.json" if args.state_dir else None
    report = check_game(game_dir, content_dir, db_path, args.budget, crash_marker=marker)
    for line in report.problems:
        print(line, flush=True)
    print(report.summary(), flush=True)
    status = 1 if report.problems else 0
    if args.state_dir is not None:
        (args.state_dir / "status").write_text(str(status), encoding="utf-8")
    return status


def run_check(
    game_dir: Path,
    content_dir: Path | None = None,
    db_path: Path | None = None,
    budget: float = 1.0,
    timeout: float = TIMEOUT,
) -> int:
    """``main`` in a child process, its output going straight to this one's; its exit status.

    Content that ends the interpreter or hangs where the guard cannot stop
    it ends the child, never the caller: the child is killed after
    ``timeout`` seconds, and a child that ended before its summary is
    reported in one line, naming the module that was loading when the
    marker says so.  Returns 0 when clean, 1 otherwise.
    """
    game_dir, content, db = _paths(game_dir, content_dir, db_path)
    with tempfile.TemporaryDirectory(prefix="hotmud-check-") as state:
        state_dir = Path(state)
        command = [sys.executable, "-m", MODULE, "--game-dir", str(game_dir)]
        command += ["--content-dir", str(content), "--db-path", str(db)]
        command += ["--budget", str(budget), "--state-dir", str(state_dir)]
        deadline = timeout - 1 if timeout > 2 else None
        if deadline is not None:
            command += ["--deadline", str(deadline)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_CODE_ROOT), env.get("PYTHONPATH", "")) if p
        )
        sys.stdout.flush()
        returncode = _run_child(command, env, timeout, deadline)
        status = state_dir / "status"
        if status.is_file():
            return 0 if status.read_text(encoding="utf-8").strip() == "0" else 1
        marker = state_dir / "loading.json"
        if returncode == 2 and not marker.exists():
            return 2  # argparse refused the arguments and said why
        if returncode is None:
            how = f"did not finish in {timeout:.0f} s and was stopped"
        else:
            how = f"ended before its summary ({_exit_status(returncode)})"
        loading = _loading(state_dir / "loading.json", content.parent)
        where = f"{loading}: " if loading else ""
        during = (
            "while this module was loading"
            if loading
            else "outside any module body (a command class's __init__?)"
        )
        print(f"{where}the check process {how} {during}", flush=True)
        print("Check incomplete: 1 problem.", flush=True)
        return 1


def _run_child(
    command: list[str], env: dict[str, str], timeout: float, deadline: float | None
) -> int | None:
    """Run the check's process; its exit status, or None when it ran out of time.

    The process leads a process group of its own, killed whole once the
    process is gone: whatever content started (``subprocess.run(["sleep",
    "60"])`` at import) ends with the check instead of outliving it, holding
    the terminal.  Its ``deadline`` (a second before ``timeout``) ends it
    with a stack dump first; the timeout kills what even that could not end.
    """
    started = time.monotonic()
    with subprocess.Popen(command, env=env, process_group=0) as process:
        try:
            code = process.wait(timeout=timeout)
            # Ended by its own --deadline (faulthandler exits with 1): out of time too.
            late = deadline is not None and time.monotonic() - started >= deadline
            return None if late else code
        except subprocess.TimeoutExpired:
            return None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _exit_status(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _loading(marker: Path, shown_from: Path) -> str | None:
    """The file of the module whose body was running when the child ended, if any."""
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    path = record.get("path") if isinstance(record, dict) else None
    if isinstance(path, str) and path:
        return os.path.relpath(path, shown_from)
    module = record.get("module") if isinstance(record, dict) else None
    return module if isinstance(module, str) else None


if __name__ == "__main__":
    sys.exit(main())
