"""Long-lived objects stay out of full collections; frozen garbage goes at a bounded rate."""

from __future__ import annotations

import asyncio
import gc
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


def test_a_reload_waits_for_the_next_turn_then_everything_is_collected_once() -> None:
    gc.collect()
    old = Node()
    gone = weakref.ref(old)
    keeper = LongLived(interval=600.0)
    keeper.start()  # no running loop: turns are taken by hand below
    try:
        del old
        keeper.reloaded()
        gc.collect()
        assert gone() is not None, "a reload thawed at once: every save would pause the game"
        keeper._turn()
        assert gone() is None, "the turn after a reload collects what the reload retired"
        assert keeper.thaws == 1
        assert gc.get_freeze_count() > 0, "what survived the collection is frozen again"
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
    keeper = LongLived(interval=0.05)
    keeper.start()
    try:
        del old
        keeper.reloaded()
        for _ in range(100):
            if gone() is None:
                break
            await asyncio.sleep(0.02)
        assert gone() is None
    finally:
        keeper.stop()
