"""Exits: the ways from one room to another."""

from engine.api import Exit as BaseExit


class Exit(BaseExit):
    """A plain exit anyone may pass."""
