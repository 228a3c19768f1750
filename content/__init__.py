"""The game itself: commands and world, reloaded live whenever a file here is saved.

Modules here are loaded by the engine's reloader, never imported normally, and
module-level variables are reset by every reload: keep game state on the
world's objects, not in globals.
"""
