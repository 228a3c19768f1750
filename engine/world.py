"""The world model: rooms joined by exits, and the characters standing in them.

World state belongs to the engine, never to content modules, so a reload
cannot touch it: content describes the starter world once (``build(world)``)
and commands read and change it through these objects.  Persistence arrives
with a later issue; for now the world lives in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.session import Session

#: The usual short forms players type for compass and vertical exits.
SHORT_DIRECTIONS: dict[str, str] = {
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "up": "u",
    "down": "d",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}


@dataclass(eq=False)
class Exit:
    """A one-way way out of a room, matched by its name or any alias."""

    name: str
    destination: Room
    aliases: tuple[str, ...] = ()

    def matches(self, word: str) -> bool:
        word = word.lower()
        return word == self.name.lower() or word in (a.lower() for a in self.aliases)


@dataclass(eq=False)
class Room:
    id: str
    name: str
    description: str = ""
    exits: list[Exit] = field(default_factory=list)
    occupants: list[Character] = field(default_factory=list)

    def find_exit(self, word: str) -> Exit | None:
        return next((e for e in self.exits if e.matches(word)), None)

    def __repr__(self) -> str:
        return f"<Room {self.id} {self.name!r}>"


@dataclass(eq=False)
class Character:
    """A player's body in the world; its ``session`` is None while offline."""

    name: str
    account_id: int
    location: Room | None = None
    session: Session | None = None

    @property
    def online(self) -> bool:
        return self.session is not None

    def __repr__(self) -> str:
        return f"<Character {self.name}>"


class WorldError(Exception):
    """A world-building mistake in content, such as an exit to a missing room."""


class World:
    """Every room and character of the running game."""

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}
        self.characters: dict[int, Character] = {}
        self.start_room: Room | None = None

    # -- building ---------------------------------------------------------

    def add_room(self, room_id: str, name: str, description: str = "") -> Room:
        if room_id in self.rooms:
            raise WorldError(f"room {room_id!r} exists already")
        room = Room(room_id, name, description)
        self.rooms[room_id] = room
        if self.start_room is None:
            self.start_room = room
        return room

    def room(self, room_id: str) -> Room:
        try:
            return self.rooms[room_id]
        except KeyError:
            raise WorldError(f"no room {room_id!r}") from None

    def link(
        self,
        source: str,
        name: str,
        destination: str,
        back: str | None = None,
        aliases: tuple[str, ...] | None = None,
        back_aliases: tuple[str, ...] | None = None,
    ) -> Exit:
        """Open an exit ``name`` from ``source`` to ``destination`` (and ``back``, if named).

        Compass names get their short form (``north`` answers to ``n``)
        unless aliases are given.
        """
        there = self._open(self.room(source), name, self.room(destination), aliases)
        if back is not None:
            self._open(self.room(destination), back, self.room(source), back_aliases)
        return there

    def _open(self, room: Room, name: str, to: Room, aliases: tuple[str, ...] | None) -> Exit:
        if room.find_exit(name):
            raise WorldError(f"{room.id} has an exit {name!r} already")
        if aliases is None:
            short = SHORT_DIRECTIONS.get(name.lower())
            aliases = (short,) if short else ()
        exit_ = Exit(name, to, tuple(aliases))
        room.exits.append(exit_)
        return exit_

    # -- characters ---------------------------------------------------------

    def character_for(self, account_id: int, name: str) -> Character:
        """The account's character, created in the start room on first use."""
        character = self.characters.get(account_id)
        if character is None:
            character = Character(name, account_id)
            self.characters[account_id] = character
        return character

    def place(self, character: Character, room: Room | None) -> None:
        """Put ``character`` in ``room`` (None takes it out of the world)."""
        if character.location is not None and character in character.location.occupants:
            character.location.occupants.remove(character)
        character.location = room
        if room is not None and character not in room.occupants:
            room.occupants.append(character)

    def take_out(self, character: Character) -> None:
        """Remove an offline character from its room, remembering where it was."""
        if character.location is not None and character in character.location.occupants:
            character.location.occupants.remove(character)

    def bring_in(self, character: Character) -> Room | None:
        """Put a character back where it was, or in the start room the first time."""
        self.place(character, character.location or self.start_room)
        return character.location

    def online(self) -> list[Character]:
        return [c for c in self.characters.values() if c.online]

    def find_online(self, name: str) -> Character | None:
        name = name.lower()
        return next((c for c in self.online() if c.name.lower() == name), None)
