"""Commands: ``Command`` and ``Context``, the registry, parsing and dispatch, fallbacks."""
