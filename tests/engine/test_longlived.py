"""Start-up's objects stay out of full collections until a reload may have made garbage."""

from __future__ import annotations

import gc
import weakref

from engine.longlived import LongLived


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_frozen_at_start_freed_after_a_reload_and_frozen_again() -> None:
    gc.collect()
    old = Node()
    gone = weakref.ref(old)
    keeper = LongLived()
    keeper.start()
    try:
        assert gc.get_freeze_count() > 0
        del old
        gc.collect()
        assert gone() is not None, "a frozen object was walked by a full collection"
        keeper.reloaded()
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert gone() is None, "after a reload the next full collection frees old versions"
        assert gc.get_freeze_count() > 0, "what survived the collection is frozen again"
    finally:
        keeper.stop()
    assert gc.get_freeze_count() == 0
