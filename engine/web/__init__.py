"""The web side: the game's page and its websocket, in the game's own process and event loop.

``server`` serves the page (files of this package) and a websocket at
``/ws`` with the MUD Standards subprotocols; ``bridge`` makes each websocket
a connection of the game's telnet protocol, so login, sessions, limits and
hot restarts are the telnet path's; ``subprotocols`` is what each
subprotocol carries; ``listeners`` binds the web and PROXY ports; ``proxy``
reads the PROXY protocol header a TLS proxy sends first.
"""
