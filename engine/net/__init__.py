"""Connections: the telnet server, one ``Session`` per client, line reading, text and colour.

Depends on ``engine.accounts`` (who is logged in) and on the world's types;
nothing below it knows about sockets.
"""
