"""The long-lived MUD server: sessions, commands, world, accounts.

Never reloaded while running; content reaches it only through the reloader
and the command registry.
"""
