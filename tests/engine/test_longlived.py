"""Long-lived objects stay out of full collections; frozen garbage goes at a bounded rate."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

from engine.longlived import LongLived


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_what_survives_a_full_collection_is_frozen_out_of_the_next() -> None:
    gc.collect()
    keeper = LongLived()
    keeper.start()
    try:
        frozen_at_start = gc.get_freeze_count()
        assert frozen_at_start > 0
        later = Node()
        gone = weakref.ref(later)
        gc.collect()
        assert gc.get_freeze_count() > frozen_at_start, "the survivors were not frozen"
        del later
        gc.collect()
        assert gone() is not None, "a frozen object was walked by a full collection"
        assert keeper.full_collections == 2
    finally:
        keeper.stop()
    assert gc.get_freeze_count() == 0


def test_what_survives_a_middle_collection_is_frozen_too() -> None:
    """A full collection walks only what came since the last middle one: at 5,000 players,
    half on websockets, a quarter of every session's objects piled up between full passes
    and each held the game 45 to 75 ms (``scripts/bench_play.py --web-share 0.5``)."""
    gc.collect()
    keeper = LongLived()
    keeper.start()
    try:
        before = gc.get_freeze_count()
        kept = [Node() for _ in range(1000)]
        gc.collect(1)
        assert gc.get_freeze_count() >= before + 1000, "the survivors were not frozen"
        assert keeper.full_collections == 0
        frozen = gc.get_freeze_count()
        young = [Node() for _ in range(10)]
        gc.collect(0)  # the youngest generation's survivors are not frozen yet
        assert gc.get_freeze_count() == frozen
        del kept, young
    finally:
        keeper.stop()


def test_after_a_reload_everything_is_collected_once_its_share_of_time_allows() -> None:
    gc.collect()
    old = Node()
    gone = weakref.ref(old)
    keeper = LongLived(interval=600.0, share=0.001)
    keeper.start()  # no running loop: turns are taken by hand below
    try:
        del old
        now = time.monotonic()
        assert not keeper.due(now), "nothing was retired yet"
        keeper.reloaded()
        assert not keeper.due(now), "a reload thawed at once: every save would pause the game"
        gc.collect()
        assert gone() is not None
        assert keeper.due(now + 600.0), "past the interval a reload's garbage is always due"
        keeper.collect_all()
        assert gone() is None, "the collection of everything frees what the reload retired"
        assert gc.get_freeze_count() > 0, "what survived the collection is frozen again"
        pause = keeper.last_thaw_pause
        assert pause is not None and pause > 0
        keeper.reloaded()
        wait = min(600.0, pause / 0.001)  # 0.1 % of the time, and never past the interval
        assert not keeper.due(keeper.last_thaw_at + wait - 0.001)
        assert keeper.due(keeper.last_thaw_at + wait + 0.001)
    finally:
        keeper.stop()


def test_a_turn_collects_when_due_and_not_before() -> None:
    gc.collect()
    old = Node()
    gone = weakref.ref(old)
    keeper = LongLived(share=1e9)  # any pause is a negligible share: due at once
    keeper.start()
    try:
        del old
        keeper._turn()
        assert gone() is not None and keeper.thaws == 0, "no reload, not past `most`: not due"
        keeper.reloaded()
        keeper._turn()
        assert gone() is None and keeper.thaws == 1
        keeper._turn()
        assert keeper.thaws == 1, "no reload since: nothing to thaw for"
    finally:
        keeper.stop()


def test_everything_is_collected_at_the_latest_after_most_seconds() -> None:
    gc.collect()
    old = Node()
    gone = weakref.ref(old)
    keeper = LongLived(most=0.0)
    keeper.start()
    try:
        del old
        keeper._turn()
        assert gone() is None
    finally:
        keeper.stop()


async def test_with_the_game_running_the_turns_come_by_themselves() -> None:
    gc.collect()
    old = Node()
    gone = weakref.ref(old)
    keeper = LongLived(share=1e9)
    keeper.start()
    try:
        del old
        keeper.reloaded()
        for _ in range(150):  # a turn comes every second
            if gone() is None:
                break
            await asyncio.sleep(0.02)
        assert gone() is None
    finally:
        keeper.stop()
