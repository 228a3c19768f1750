"""Rows of world objects in SQLite: snapshots taken on the loop, written in a thread.

Objects change on the event loop; ``snapshot`` turns the changed ones into
plain tuples there, and ``write`` stores them from a worker thread in one
short transaction, so the loop never waits for the disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.world.objects import KINDS, GameObject
from engine.world.store import Store

COLUMNS = (
    "id", "kind", "name", "aliases", "description", "location", "destination",
    "typeclass", "account_id", "attributes",
)  # fmt: skip

_UPSERT = (
    f"INSERT INTO objects ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
)


#: Each kind's engine class, to its kind.
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}


@dataclass
class Snapshot:
    """Changed objects as rows, deleted ids and changed meta values."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rows or self.deleted or self.meta)


def row_of(obj: GameObject) -> tuple[Any, ...]:
    """``obj``'s stored fields, read from the object itself, never through its class.

    A type class may override any attribute, even with a property that
    raises; what is saved is the data, so a broken class can never keep the
    world from being saved (and everyone from being answered).
    """
    data = object.__getattribute__(obj, "__dict__")
    location = data["_location"]
    destination = data["destination"]
    return (
        data["id"],
        kind_of(obj),
        data["name"],
        json.dumps(data["aliases"]),
        data["description"],
        object.__getattribute__(location, "__dict__")["id"] if location is not None else None,
        object.__getattribute__(destination, "__dict__")["id"] if destination is not None else None,
        data["typeclass"],
        data["account_id"],
        data["attributes"].to_json(),
    )


def kind_of(obj: GameObject) -> str:
    """``obj``'s kind, from the engine class its class derives from (not from its class)."""
    for cls in type(obj).__mro__:
        kind = _KIND_OF.get(cls)
        if kind is not None:
            return kind
    raise TypeError(f"{type(obj).__name__} is not a world object")


def snapshot(
    objects: Iterable[GameObject], deleted: Iterable[int], meta: dict[str, str]
) -> Snapshot:
    return Snapshot([row_of(o) for o in objects], sorted(deleted), dict(meta))


def write(store: Store, snap: Snapshot) -> None:
    """Make ``snap`` durable in one transaction (run in a worker thread)."""
    if not snap:
        return
    with store.transaction() as db:
        if snap.rows:
            db.executemany(_UPSERT, snap.rows)
        if snap.deleted:
            db.executemany("DELETE FROM objects WHERE id = ?", [(i,) for i in snap.deleted])
        if snap.meta:
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(snap.meta.items()),
            )


def load(store: Store) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every object row (as dicts, aliases and attributes decoded) and the meta table."""

    def read(db: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
        rows = []
        for row in db.execute(f"SELECT {', '.join(COLUMNS)} FROM objects ORDER BY id"):
            item = dict(row)
            item["aliases"] = json.loads(item["aliases"])
            item["attributes"] = json.loads(item["attributes"])
            rows.append(item)
        meta = {r["key"]: r["value"] for r in db.execute("SELECT key, value FROM meta")}
        return rows, meta

    return store.read(read)
