"""Accounts: names, roles, password hashes, the login dialogue and its guards."""
