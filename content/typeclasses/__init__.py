"""Type classes: the behaviour of world objects, named by dotted path on each object.

Edit one and every existing object of that class runs the new code at its next
use, keeping its data.  If a class stops loading, its objects keep their data
but are held: they are not taken, used, moved, entered or passed through (the
missing class might have refused it), players are told so in one line and
builders which objects; they return to their own class as soon as it loads
again.
"""
