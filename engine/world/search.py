"""Finding what a player means by a word: name, alias, ``#id``, ``me``, ``here``.

Pure functions over objects, so the rules are easy to test and the same for
every command.  An exact name or alias wins over a prefix; several equally
good matches are returned for the caller to list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from engine.world.objects import GameObject


def find(
    text: str,
    caller: GameObject,
    candidates: Iterable[GameObject],
    by_id: Callable[[int], GameObject | None],
) -> list[GameObject]:
    """Every object ``text`` could mean among ``candidates`` (``#id`` reaches anything)."""
    word = text.strip().lower()
    if not word:
        return []
    if word == "me" or word == "self":
        return [caller]
    if word == "here":
        return [caller.location] if caller.location is not None else []
    if word.startswith("#") and word[1:].isdigit():
        found = by_id(int(word[1:]))
        return [found] if found is not None else []
    pool = list(dict.fromkeys(candidates))
    exact = [o for o in pool if o.matches(word)]
    if exact:
        return exact
    return [
        o for o in pool
        if o.name.lower().startswith(word) or any(a.lower().startswith(word) for a in o.aliases)
    ]  # fmt: skip


def nearby(caller: GameObject) -> list[GameObject]:
    """What a character can reach: what it carries, then its room and what is there."""
    pool = list(caller.contents)
    if caller.location is not None:
        pool.append(caller.location)
        pool.extend(o for o in caller.location.contents if o is not caller)
    return pool


def describe_matches(matches: list[GameObject]) -> str:
    return ", ".join(f"{o.name} ({o.dbref})" for o in matches)
