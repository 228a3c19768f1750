"""Things: objects that can be carried, dropped, given and used."""

from engine.api import GameObject, definite
from engine.api import Thing as BaseThing


class Thing(BaseThing):
    """An ordinary thing."""


class Lamp(Thing):
    """A lamp that can be switched on and off with ``use``; it remembers which."""

    def display_name(self, looker: GameObject | None = None) -> str:
        return f"{self.name} (lit)" if self.attributes.get("lit") else self.name

    def at_use(self, user: GameObject) -> str:
        lit = not self.attributes.get("lit", False)
        self.attributes["lit"] = lit
        return f"You switch {definite(self.name)} {'on' if lit else 'off'}."


class Statue(Thing):
    """Too heavy to pick up."""

    def at_get(self, getter: GameObject) -> str | None:
        return f"{self.the_name(getter, capital=True)} will not budge."
