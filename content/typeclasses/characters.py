"""Characters: how players' bodies look to others."""

from engine.api import Character as BaseCharacter


class Character(BaseCharacter):
    """A player character."""
