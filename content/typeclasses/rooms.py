"""Rooms: what a place looks like."""

from engine.api import Room as BaseRoom


class Room(BaseRoom):
    """A plain room: its name, description, things, exits and who is here."""
