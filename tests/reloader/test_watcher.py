"""reloader.watcher: from watchfiles events to "these sources changed or went away".

The filter and ``classify`` are tested on their own; ``watch_sources`` both
against a scripted ``awatch`` and against real watchfiles on a tmp dir.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import watchfiles
from watchfiles import Change

from reloader.watcher import SourceChanges, SourceFilter, classify, watch_sources

#: Every wait on a watcher is bounded by this many seconds.
DEADLINE = 5.0

# -- SourceFilter -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/game/content/general.py",
        "/game/content/__init__.py",
        "/game/content/quests",  # a directory (or a file without a suffix)
        "/game/content/4913",  # vim's probe file: kept here, dropped by classify
    ],
)
@pytest.mark.parametrize("change", list(Change))
def test_the_filter_accepts_sources_and_names_without_a_suffix(change: Change, path: str) -> None:
    assert SourceFilter()(change, path)


@pytest.mark.parametrize(
    "path",
    [
        "/game/content/.general.py.swp",
        "/game/content/general.py.swo",
        "/game/content/general.py~",
        "/game/content/general.pyc",
        "/game/content/__pycache__/general.cpython-311.pyc",
        "/game/content/__pycache__/general.py",
        "/game/content/__pycache__",
        "/game/content/.git/HEAD",
        "/game/content/.#general.py",
        "/game/content/notes.txt",
        "/game/content/general.py.tmp",
        "/game/content/data.json",
    ],
)
def test_the_filter_drops_editor_files_caches_and_other_suffixes(path: str) -> None:
    assert not SourceFilter()(Change.modified, path)
    assert not SourceFilter()(Change.added, path)


# -- classify -------------------------------------------------------------------


def touch(path: Path, text: str = "") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_an_existing_source_is_changed_and_a_missing_path_removed(tmp_path: Path) -> None:
    saved = touch(tmp_path / "general.py")
    gone_file = str(tmp_path / "gone.py")
    gone_dir = str(tmp_path / "quests")
    assert classify({saved, gone_file, gone_dir}) == SourceChanges(
        changed=frozenset({saved}), removed=frozenset({gone_file, gone_dir})
    )


def test_existing_files_that_are_not_sources_are_ignored(tmp_path: Path) -> None:
    probe = touch(tmp_path / "4913")
    notes = touch(tmp_path / "notes.txt")
    assert classify({probe, notes}) == SourceChanges(frozenset(), frozenset())


def test_classify_of_nothing_is_empty() -> None:
    assert classify(set()) == SourceChanges(frozenset(), frozenset())


def test_a_directory_that_appeared_expands_to_its_sources(tmp_path: Path) -> None:
    quests = tmp_path / "quests"
    expected = {
        touch(quests / "__init__.py"),
        touch(quests / "board.py"),
        touch(quests / "deep" / "deeper" / "x.py"),
        touch(quests / "plain" / "y.py"),
    }
    touch(quests / "README.txt")
    touch(quests / "4913")
    touch(quests / "__pycache__" / "board.py")
    touch(quests / "deep" / "__pycache__" / "x.py")
    touch(quests / ".hidden" / "z.py")
    touch(quests / "deep" / ".git" / "hook.py")
    (quests / "empty").mkdir()
    assert classify({str(quests)}) == SourceChanges(frozenset(expected), frozenset())
    assert classify({str(quests / "empty")}) == SourceChanges(frozenset(), frozenset())


def test_a_directory_and_a_file_inside_it_are_reported_once(tmp_path: Path) -> None:
    board = touch(tmp_path / "quests" / "board.py")
    assert classify({str(tmp_path / "quests"), board}) == SourceChanges(
        frozenset({board}), frozenset()
    )


# -- watch_sources against a scripted awatch --------------------------------------------


def scripted_awatch(
    batches: list[set[tuple[Change, str]]], calls: list[dict[str, Any]]
) -> Callable[..., AsyncIterator[set[tuple[Change, str]]]]:
    async def awatch(*paths: Any, **kwargs: Any) -> AsyncIterator[set[tuple[Change, str]]]:
        calls.append({"paths": paths, **kwargs})
        for batch in batches:
            yield batch

    return awatch


async def collect(directory: Path, **kwargs: Any) -> list[SourceChanges]:
    async with asyncio.timeout(DEADLINE):  # should the real awatch run after all
        return [changes async for changes in watch_sources(directory, **kwargs)]


async def test_an_added_and_deleted_pair_is_decided_by_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = touch(tmp_path / "kept.py")  # vim: written anew, still there
    gone = str(tmp_path / "gone.py")  # added then deleted: not there
    modified_but_gone = str(tmp_path / "late.py")
    batches = [
        {(Change.added, kept), (Change.deleted, kept)},
        {(Change.added, gone), (Change.deleted, gone), (Change.modified, modified_but_gone)},
        {(Change.deleted, kept)},  # a stale "deleted" of a file that is there
    ]
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(watchfiles, "awatch", scripted_awatch(batches, calls))
    stop = asyncio.Event()
    result = await collect(tmp_path, step_ms=7, debounce_ms=300, stop_event=stop)
    assert result == [
        SourceChanges(frozenset({kept}), frozenset()),
        SourceChanges(frozenset(), frozenset({gone, modified_but_gone})),
        SourceChanges(frozenset({kept}), frozenset()),
    ]
    [call] = calls
    assert call["paths"] == (tmp_path,)
    assert isinstance(call["watch_filter"], SourceFilter)
    assert (call["step"], call["debounce"], call["stop_event"]) == (7, 300, stop)


async def test_batches_with_nothing_to_report_are_not_yielded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = touch(tmp_path / "4913")
    saved = touch(tmp_path / "general.py")
    batches = [{(Change.added, probe)}, set(), {(Change.modified, saved)}]
    monkeypatch.setattr(watchfiles, "awatch", scripted_awatch(batches, []))
    assert await collect(tmp_path) == [SourceChanges(frozenset({saved}), frozenset())]


# -- watch_sources against real watchfiles ----------------------------------------------


class LiveWatch:
    """``watch_sources`` running in a task over a real directory; batches land in a queue."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.stop = asyncio.Event()
        self.queue: asyncio.Queue[SourceChanges] = asyncio.Queue()
        self.seen: list[SourceChanges] = []
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async for changes in watch_sources(self.directory, stop_event=self.stop):
            self.queue.put_nowait(changes)

    async def start(self) -> None:
        """Start watching, and return once a save is seen (the watch is in place)."""
        self.task = asyncio.create_task(self._run())
        probe = self.directory / "probe.py"
        async with asyncio.timeout(DEADLINE):
            while True:
                probe.write_text("", encoding="utf-8")
                try:
                    changes = await asyncio.wait_for(self.queue.get(), 0.2)
                except TimeoutError:
                    continue
                if str(probe) in changes.changed:
                    break
            # Let stragglers of the probe arrive, so that tests start clean.
            while True:
                try:
                    await asyncio.wait_for(self.queue.get(), 0.1)
                except TimeoutError:
                    return

    async def until(self, done: Callable[[list[SourceChanges]], bool]) -> list[SourceChanges]:
        """Batches yielded from now on, up to the first one after which ``done`` holds."""
        batches: list[SourceChanges] = []
        async with asyncio.timeout(DEADLINE):
            while not done(batches):
                batches.append(await self.queue.get())
        self.seen.extend(batches)
        return batches

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            async with asyncio.timeout(DEADLINE):
                await self.task


def changed_in(batches: list[SourceChanges]) -> set[str]:
    return {path for changes in batches for path in changes.changed}


def removed_in(batches: list[SourceChanges]) -> set[str]:
    return {path for changes in batches for path in changes.removed}


@pytest.fixture
def src(tmp_path: Path) -> Path:
    directory = (tmp_path / "src").resolve()
    directory.mkdir()
    touch(directory / "general.py", "OLD = 1\n")
    return directory


@pytest.fixture
async def live(src: Path) -> AsyncIterator[LiveWatch]:
    watch = LiveWatch(src)
    await watch.start()
    try:
        yield watch
    finally:
        await watch.close()
    assert watch.task is not None and watch.task.done() and watch.task.exception() is None


async def test_a_save_is_yielded(src: Path, live: LiveWatch) -> None:
    target = str(src / "general.py")
    (src / "general.py").write_text("NEW = 1\n", encoding="utf-8")
    batches = await live.until(lambda seen: target in changed_in(seen))
    assert target not in removed_in(batches)


async def test_an_atomic_rename_save_is_a_change_of_the_target(src: Path, live: LiveWatch) -> None:
    target = src / "general.py"
    temporary = src / "general.py.tmp1234"
    temporary.write_text("NEW = 2\n", encoding="utf-8")
    os.replace(temporary, target)
    batches = await live.until(lambda seen: str(target) in changed_in(seen))
    assert str(target) not in removed_in(batches)
    assert str(temporary) not in changed_in(batches) | removed_in(batches)
    # The watch survives the rename: the next plain save is seen too.
    target.write_text("NEW = 3\n", encoding="utf-8")
    await live.until(lambda seen: str(target) in changed_in(seen))


async def test_a_delete_is_yielded_as_removed(src: Path, live: LiveWatch) -> None:
    target = src / "general.py"
    target.unlink()
    batches = await live.until(lambda seen: str(target) in removed_in(seen))
    assert str(target) not in changed_in(batches)


async def test_a_directory_moved_into_the_tree_yields_its_sources(
    src: Path, live: LiveWatch, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    names = ["__init__.py", "board.py", "deep/__init__.py", "deep/npc.py"]
    for name in names:
        touch(staging / name)
    touch(staging / "__pycache__" / "board.py")
    touch(staging / ".hidden" / "x.py")
    touch(staging / "notes.txt")
    os.rename(staging, src / "quests")
    expected = {str(src / "quests" / name) for name in names}
    batches = await live.until(lambda seen: expected <= changed_in(seen))
    assert changed_in(batches) == expected
    assert removed_in(batches) == set()


async def test_a_burst_of_saves_arrives_as_one_batch(src: Path, live: LiveWatch) -> None:
    paths = [src / f"mod{i:02}.py" for i in range(20)]
    for path in paths:
        path.write_text(f"VALUE = {path.stem!r}\n", encoding="utf-8")
    expected = {str(path) for path in paths}
    batches = await live.until(lambda seen: bool(expected & changed_in(seen)))
    assert expected <= batches[-1].changed, f"split over batches: {batches}"


async def test_editor_swap_files_never_show(src: Path, live: LiveWatch) -> None:
    swap = src / ".general.py.swp"
    backup = src / "general.py~"
    swap.write_text("swap", encoding="utf-8")
    backup.write_text("backup", encoding="utf-8")
    swap.unlink()
    backup.unlink()
    target = src / "general.py"
    target.write_text("NEW = 4\n", encoding="utf-8")
    batches = await live.until(lambda seen: str(target) in changed_in(seen))
    assert {str(swap), str(backup)}.isdisjoint(changed_in(batches) | removed_in(batches))


async def test_an_existing_non_source_file_alone_yields_nothing(src: Path, live: LiveWatch) -> None:
    (src / "4913").write_text("", encoding="utf-8")
    await asyncio.sleep(0.15)  # several steps: its events form a group of their own
    target = src / "general.py"
    target.write_text("NEW = 5\n", encoding="utf-8")
    batches = await live.until(lambda seen: str(target) in changed_in(seen))
    assert batches == [SourceChanges(frozenset({str(target)}), frozenset())]


async def test_setting_the_stop_event_ends_the_watch(src: Path) -> None:
    watch = LiveWatch(src)
    await watch.start()
    watch.stop.set()
    assert watch.task is not None
    async with asyncio.timeout(DEADLINE):
        await watch.task
    assert watch.task.exception() is None
