"""The world: objects and their rules, the world model, transactions and the SQLite store.

Modules here may name each other's types; nothing here imports the network,
commands or content layers.
"""
