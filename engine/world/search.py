"""Finding what a player means by a word: name, alias, ``#id``, ``me``, ``here``, ``2.lamp``.

Pure functions over objects, so the rules are easy to test and the same for
every command:

- ``me`` (or ``self``), ``here`` and ``#id`` name one object each;
- an exact name or alias (any case) wins over everything below;
- otherwise each word typed must begin a word of the name or of one alias,
  in order: ``lamp``, ``bra`` and ``brass l`` all find "brass lamp";
- ``2.lamp`` is the second of the objects ``lamp`` finds, in the order they
  are offered (what the caller carries, then the room, then what is in it).

Several equally good matches are returned for the caller to list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from engine.world.objects import GameObject

#: ``2.lamp``: the second of several lamps.
ORDINAL = re.compile(r"^(\d+)\.(.+)$")


def words_match(typed: list[str], name: str) -> bool:
    """True if each typed word begins a word of ``name``, in order."""
    words = name.lower().split()
    at = 0
    for word in typed:
        while at < len(words) and not words[at].startswith(word):
            at += 1
        if at == len(words):
            return False
        at += 1
    return True


def parse_ordinal(text: str) -> tuple[int | None, str]:
    """``2.lamp`` -> (2, "lamp"); ``lamp`` -> (None, "lamp")."""
    match = ORDINAL.match(text)
    if match is None:
        return None, text
    return int(match.group(1)), match.group(2).strip()


def find(
    text: str,
    caller: GameObject,
    candidates: Iterable[GameObject],
    by_id: Callable[[int], GameObject | None],
) -> list[GameObject]:
    """Every object ``text`` could mean among ``candidates`` (``by_id`` resolves ``#id``)."""
    word = " ".join(text.split()).lower()
    if not word:
        return []
    nth, word = parse_ordinal(word)
    if nth is not None:
        among = find(word, caller, candidates, by_id)
        return [among[nth - 1]] if 0 < nth <= len(among) else []
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
    typed = word.split()
    return [o for o in pool if any(words_match(typed, n) for n in (o.name, *o.aliases))]


def nearby(caller: GameObject) -> list[GameObject]:
    """What a character can reach: what it carries, then its room and what is there."""
    pool = list(caller.contents)
    if caller.location is not None:
        pool.append(caller.location)
        pool.extend(o for o in caller.location.contents if o is not caller)
    return pool


def describe_matches(matches: list[GameObject]) -> str:
    """``brass lamp (#11), brass lamp (#15)``: the candidates, to choose among."""
    return ", ".join(f"{o.name} ({o.dbref})" for o in matches)


def is_near(obj: GameObject, caller: GameObject) -> bool:
    """True for the caller, what it carries, its place and what is there."""
    here = caller.location
    return (
        obj is caller
        or obj is here
        or obj.location is caller
        or (here is not None and obj.location is here)
    )
