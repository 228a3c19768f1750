"""reloader.graph: who imports whom, who must be rebuilt, and in which order."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from functools import partial
from types import FrameType
from typing import Any, TypeVar

import pytest

from reloader.graph import ImportGraph


def graph_of(*edges: str) -> ImportGraph:
    """``graph_of("b->a", "c->b")``: b imports a, c imports b."""
    graph = ImportGraph()
    for edge in edges:
        importer, imported = edge.split("->")
        graph.add(importer, imported)
    return graph


T = TypeVar("T")


class Runaway(Exception):
    """A graph walk took far more steps than its tiny graph can need."""


def bounded(call: Callable[[], T], steps: int = 20_000) -> T:
    """``call()``, failing fast instead of hanging (or eating memory) if it never ends.

    Counts the Python line events of the call with ``sys.settrace``; the
    exception raised from the trace function ends the runaway walk in place.
    """
    count = 0

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        count += 1
        if count > steps:
            raise Runaway(f"no result after {steps} steps")
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        return call()
    finally:
        sys.settrace(previous)


def test_bounded_stops_a_walk_that_never_ends() -> None:
    def forever() -> None:
        while True:
            pass

    with pytest.raises(Runaway):
        bounded(forever)


# -- add, replace, forget ------------------------------------------------------


def test_add_records_an_edge_in_one_direction_only() -> None:
    graph = graph_of("b->a")
    assert graph.imports_of("b") == {"a"}
    assert graph.imports_of("a") == frozenset()
    assert graph.importers_of("a") == {"b"}
    assert graph.importers_of("b") == set()


def test_add_accumulates_and_ignores_duplicates() -> None:
    graph = graph_of("c->a", "c->b", "c->a")
    assert graph.imports_of("c") == {"a", "b"}


def test_a_module_importing_itself_is_not_an_edge() -> None:
    graph = graph_of("a->a")
    assert graph.imports_of("a") == frozenset()
    assert graph.importers_of("a") == set()
    graph.replace("b", ["b", "a"])
    assert graph.imports_of("b") == {"a"}


def test_replace_drops_the_old_imports_of_that_module_only() -> None:
    graph = graph_of("c->a", "c->b", "d->a")
    graph.replace("c", ["x"])
    assert graph.imports_of("c") == {"x"}
    assert graph.importers_of("a") == {"d"}
    assert graph.importers_of("b") == set()
    graph.replace("c", [])
    assert graph.imports_of("c") == frozenset()
    assert graph.importers_of("x") == set()


def test_replace_accepts_any_iterable_once() -> None:
    graph = ImportGraph()
    graph.replace("c", (name for name in ["a", "b"]))
    assert graph.imports_of("c") == {"a", "b"}


def test_imports_of_is_a_snapshot_not_the_internal_set() -> None:
    graph = graph_of("b->a")
    seen = graph.imports_of("b")
    graph.add("b", "z")
    assert seen == {"a"}
    assert graph.imports_of("b") == {"a", "z"}


def test_forget_drops_the_module_s_own_imports_but_keeps_edges_pointing_at_it() -> None:
    graph = graph_of("b->a", "c->b")
    graph.forget("b")
    assert graph.imports_of("b") == frozenset()
    assert graph.importers_of("a") == set()
    # Evidence for the next batch: c still imports the vanished b, so c is rebuilt.
    assert graph.importers_of("b") == {"c"}
    assert graph.dependents({"b"}) == {"c"}
    assert graph.dependents({"a"}) == set()


def test_forget_of_an_unknown_module_is_harmless() -> None:
    graph = graph_of("b->a")
    graph.forget("nope")
    assert graph.imports_of("b") == {"a"}


# -- dependents ----------------------------------------------------------------


def test_dependents_are_transitive() -> None:
    graph = graph_of("b->a", "c->b")
    assert graph.dependents({"a"}) == {"b", "c"}
    assert graph.dependents({"b"}) == {"c"}
    assert graph.dependents({"c"}) == set()


def test_dependents_follow_every_branch_of_a_diamond() -> None:
    graph = graph_of("left->base", "right->base", "top->left", "top->right", "other->x")
    assert graph.dependents({"base"}) == {"left", "right", "top"}
    assert graph.dependents({"left"}) == {"top"}
    assert graph.dependents({"base", "x"}) == {"left", "right", "top", "other"}


def test_dependents_leave_out_the_names_asked_about() -> None:
    graph = graph_of("b->a", "c->b")
    assert graph.dependents({"a", "b"}) == {"c"}
    assert graph.dependents(set()) == set()
    assert graph.dependents({"unknown"}) == set()


def test_dependents_terminate_on_cycles() -> None:
    graph = graph_of("a->b", "b->a", "c->a", "d->c", "d->d")
    assert bounded(lambda: graph.dependents({"a"})) == {"b", "c", "d"}
    assert bounded(lambda: graph.dependents({"c"})) == {"d"}
    ring = graph_of("a->c", "b->a", "c->b")
    assert bounded(lambda: ring.dependents({"a"})) == {"b", "c"}


def test_dependents_of_a_one_shot_iterable_still_leave_out_the_names() -> None:
    # In a cycle the names asked about are their own dependents; they must be
    # left out even when handed in as a generator (which can be read once).
    graph = graph_of("a->b", "b->a")
    assert bounded(lambda: graph.dependents(name for name in ["a"])) == {"b"}
    assert bounded(lambda: graph.dependents(iter(["a", "b"]))) == set()


# -- order -----------------------------------------------------------------------


def assert_imported_first(graph: ImportGraph, order: list[str]) -> None:
    for importer in order:
        for imported in graph.imports_of(importer):
            if imported in order:
                assert order.index(imported) < order.index(importer), (imported, importer, order)


def test_order_puts_every_imported_module_before_its_importer() -> None:
    graph = graph_of("top->left", "top->right", "left->base", "right->base", "z->top", "a->z")
    names = ["a", "base", "left", "right", "top", "z"]
    for permutation in itertools.permutations(names):
        order = graph.order(permutation)
        assert sorted(order) == names
        assert_imported_first(graph, order)
    assert graph.order(names) == ["base", "left", "right", "top", "z", "a"]


def test_order_only_returns_the_names_asked_for() -> None:
    graph = graph_of("c->b", "b->a")
    assert graph.order(["c", "a"]) == ["a", "c"]
    assert graph.order(["c"]) == ["c"]
    assert graph.order([]) == []
    assert graph.order(["unknown", "c"]) == ["c", "unknown"]


def test_order_of_a_one_shot_iterable() -> None:
    graph = graph_of("b->a")
    assert graph.order(name for name in ["b", "a"]) == ["a", "b"]


@pytest.mark.parametrize(
    "edges",
    [
        ("a->b", "b->a", "c->a"),
        ("c->a", "b->a", "a->b"),
    ],
)
def test_order_breaks_a_cycle_by_name_whatever_the_input_order(edges: tuple[str, ...]) -> None:
    graph = graph_of(*edges)
    for permutation in itertools.permutations(["a", "b", "c"]):
        # a and b import each other: the cycle is entered at the smallest
        # name, so a's dependency b comes first; c (importing a) comes after both.
        assert bounded(partial(graph.order, permutation)) == ["b", "a", "c"]


def test_order_of_a_three_ring_is_deterministic_and_complete() -> None:
    graph = graph_of("a->c", "c->b", "b->a", "d->b")
    permutations = list(itertools.permutations(["a", "b", "c", "d"]))
    results = bounded(lambda: {tuple(graph.order(p)) for p in permutations})
    assert results == {("b", "c", "a", "d")}


def test_order_with_a_self_loop_and_a_cycle_outside_the_names() -> None:
    graph = graph_of("a->a", "a->x", "x->y", "y->x", "b->a")
    assert graph.order(["b", "a"]) == ["a", "b"]
