"""Command modules: every ``Command`` subclass with a ``key`` defined here is registered."""
