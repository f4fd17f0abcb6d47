"""What a command refuses to do as asked: the CLI prints the message on one
line of stderr and exits with the refusal's code, never a traceback.

Kept apart from app/cli.py so any command module can raise one without
importing the CLI, and the CLI can catch them without importing the engine.
"""

from __future__ import annotations


class Refused(Exception):
    """A request the user can fix; ``exit_code`` says how the command ends."""

    exit_code = 1


class NotFound(Refused):
    """The thing named (a receipt...) does not exist: exit 1, not a configuration error."""


class Ambiguous(Refused):
    """A prefix that several things start with: a usage mistake, exit 2."""

    exit_code = 2
