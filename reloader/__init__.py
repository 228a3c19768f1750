"""Generic live-reload machinery: the exocet loader, the import graph, the watcher.

Nothing here knows about MUDs; ``reloader`` never imports ``engine`` or ``content``.
"""
