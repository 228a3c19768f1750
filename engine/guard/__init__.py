"""Guarding content: the stall timer (watchdog), the guard around every stretch of content,
content errors for builders, running commands under the guard, content tasks and threads.
"""
