"""Opening the world at start: restored from the store, or the starter world built anew."""

from __future__ import annotations

import logging

from engine.guard.guard import ContentFailed, ContentGuard
from engine.live.manager import LiveContent
from engine.world.model import World

log = logging.getLogger(__name__)


def open_world(world: World, content: LiveContent, guard: ContentGuard) -> None:
    """Restore ``world`` from its store, or build the starter world (content's
    ``world.starter.build``, under the guard) into an empty one; a start room in any case."""
    count = world.load()
    if count:
        log.info("world restored: %d objects", count)
    else:
        _build_starter(world, content, guard)
    if world.start_room is None:
        rooms = world.rooms()
        world.set_start(
            rooms[0] if rooms else world.create_room("The Void", "Nothing is here yet.")
        )
    world.commit_now()


def _build_starter(world: World, content: LiveContent, guard: ContentGuard) -> None:
    build = getattr(content.module("world.starter"), "build", None)
    if build is None:
        log.warning("content.world.starter has no build(world); starting with one room")
        return
    try:
        guard.call("build() of world.starter", build, world, context="building")
    except ContentFailed as failure:
        log.error("the starter world could not be built: %s", failure.line)
    world.commit_now()
    log.info("starter world built: %d objects", len(world.objects))
