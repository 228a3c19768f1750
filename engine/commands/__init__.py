"""Commands: ``Command`` and ``Context``, the registry, parsing and dispatch, fallbacks, and
``runner``: the one road from a typed line to a command run."""
