"""Hot restart: a new engine process takes over the listening socket and every live connection.

``supervisor`` is the process ``python -m engine`` runs and a service manager
watches; it spawns ``worker`` processes, each a whole game.  ``wire`` carries
messages and file descriptors between them; ``handover`` is what an old
worker sends a new one.
"""
