"""Small English for messages: articles, counts and possessives.

``indefinite("brass lamp")`` is "a brass lamp", ``indefinite("iron key")`` "an iron key";
proper names (capitalised, like "Alice" or "The Village Square") and names
that bring their own article or quantity ("some coins") stay as they are.
"""

from __future__ import annotations

#: Words that start with a vowel letter but a consonant sound, and the reverse.
_CONSONANT_SOUND = ("uni", "use", "usu", "uti", "eu", "one", "once", "ubiq")
_VOWEL_SOUND = ("hour", "honest", "honour", "honor", "heir")
_OWN_ARTICLE = ("a ", "an ", "the ", "some ", "any ")


def article_for(name: str) -> str:
    """ "a" or "an", by how ``name`` sounds."""
    word = name.lower()
    if word.startswith(_VOWEL_SOUND):
        return "an"
    if word.startswith(_CONSONANT_SOUND):
        return "a"
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def is_proper(name: str) -> bool:
    """A name that takes no article: capitalised, or already with one."""
    return name[:1].isupper() or name.lower().startswith(_OWN_ARTICLE) or not name[:1].isalpha()


def indefinite(name: str) -> str:
    """``brass lamp`` -> ``a brass lamp``; ``Alice`` -> ``Alice``."""
    return name if is_proper(name) else f"{article_for(name)} {name}"


def definite(name: str, capital: bool = False) -> str:
    """``brass lamp`` -> ``the brass lamp`` (``The`` with ``capital``); proper names stay."""
    if is_proper(name):
        return name
    return f"{'The' if capital else 'the'} {name}"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``plural(2, "player")`` is ``2 players``; ``plural(1, "match", "matches")`` ``1 match``."""
    word = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count} {word}"


def possessive(name: str) -> str:
    """``Bob`` -> ``Bob's``; ``Charles`` -> ``Charles's``."""
    return f"{name}'" if name.endswith("'") else f"{name}'s"


def join_names(names: list[str]) -> str:
    """``a, b and c``."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
