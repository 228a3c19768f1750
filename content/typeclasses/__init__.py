"""Type classes: the behaviour of world objects, named by dotted path on each object.

Edit one and every existing object of that class runs the new code at its next
use, keeping its data.  If a class stops loading, its objects fall back to the
engine's base behaviour for their kind and builders are told; they return to
their own class as soon as it loads again.
"""
