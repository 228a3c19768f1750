"""The audit trail: one log line for every privileged act, naming who did what to whom.

Every line goes to the logger ``hotmud.audit`` at INFO and reads as one
sentence, the actor first, so that ``grep AUDIT`` (or ``grep 'AUDIT Pat '``)
finds them::

    AUDIT <actor> <act>[ <target>][: <detail>].

The acts audited, and their lines (``(#9)`` is an object's id):

- ``grant`` of a higher role: ``AUDIT Pat granted the builder role to Lee.``
- ``grant`` of a lower role, a revoke:
  ``AUDIT Pat revoked the admin role from Lee: now a player.``
  (granting the role an account has already changes nothing and is not audited)
- ``shutdown``: ``AUDIT Pat shut the game down: "back soon".``
  (``AUDIT Pat shut the game down.`` without a message)
- ``restart``, once the new engine is asked for (not when the game runs
  without its supervisor and says it cannot):
  ``AUDIT Pat started a hot restart: "new spells".``
- ``reload`` typed by hand, content's command or the engine's own:
  ``AUDIT Pat reloaded content by hand: commands.general.`` (or ``: every
  module.``); whether it loaded follows on the content manager's own line.
- ``destroy``, of anything:
  ``AUDIT Pat destroyed a brass lamp (#17) in The Market (#4).``
  ``AUDIT Pat destroyed an old sword (#21) carried by Lee (#9), by force.``
  ``AUDIT Pat destroyed the character Lee (#9) in The Market (#4), by force.``
  ``AUDIT Pat destroyed the room Attic (#12), with the exit up (#13), the exit down (#14).``
  (``by force``: ``destroy/force`` was needed, for a player's character or
  what another player carries)
- ``teleport`` of another player's character (not of oneself, nor of things):
  ``AUDIT Pat teleported Lee (#9) from The Village Square (#1) to The Market (#4).``
- a builder's change to another player's character:
  ``AUDIT Pat set the attribute hp of Lee (#9) to 5.``
  ``AUDIT Pat removed the attribute hp from Lee (#9).``
  ``AUDIT Pat changed the type class of Lee (#9) to content.typeclasses.characters.Character.``
  ``AUDIT Pat set the home of Lee (#9) to The Market (#4).`` (or ``to the start room.``)
  ``AUDIT Pat described Lee (#9): "Tall.\\nQuiet.".``
  ``AUDIT Pat set the aliases of Lee (#9) to Leo, Lion.`` (or ``to none.``)
- a new account, at the login prompt (the actor is the new account):
  ``AUDIT Lee created a new account from 127.0.0.1: a player.``
  (the first account of a new game: ``...: an admin.``)

Players' own messages and values are quoted as JSON strings.  There is no
``force`` command (making another player act) to audit.  Accounts change
nowhere else: ``accounts`` only lists them, and a player's ``colour``
setting is their own.

A line is written only once the act has happened, never for a refusal.
Control characters in any part are escaped, so one act is always one line.
The logger's own level is INFO, so a quieter ``--log-level`` does not hide
the audit trail.
"""

from __future__ import annotations

import logging
import re

#: The audit trail's logger; its lines reach whatever handlers the root logger has.
log = logging.getLogger("hotmud.audit")
log.setLevel(logging.INFO)

#: What could end a line or hide text: C0 and C1 controls, DEL, the Unicode line separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def audit_line(actor: str, act: str, target: str = "", detail: str = "") -> str:
    """The sentence ``audit`` logs: ``AUDIT <actor> <act>[ <target>][: <detail>].``"""
    sentence = " ".join(part for part in (actor, act, target) if part)
    if detail:
        sentence += f": {detail}"
    if not sentence.endswith("."):
        sentence += "."
    return _one_line(f"AUDIT {sentence}")


def audit(actor: str, act: str, target: str = "", detail: str = "") -> None:
    """Log that ``actor`` did ``act`` (to ``target``), in one line at INFO.

    ``act`` is a verb phrase in the past tense that reads on into ``target``
    (``"granted the builder role to"``, ``"Lee"``); ``detail`` follows a colon::

        audit("Pat", "shut the game down", detail='"back soon"')
        # AUDIT Pat shut the game down: "back soon".

    Call it after the act succeeded, never when it was refused.
    """
    log.info("%s", audit_line(actor, act, target, detail))
