"""The replay's one error type: what it says is the whole message a user sees."""

from __future__ import annotations


class ReplayError(Exception):
    """A capture that cannot be read, a target that cannot be reached, a report that is
    not a replay's: one line for the user, never a traceback. ``usage`` is True when the
    input named is at fault (a bad file: the command line's exit status 2), False when the
    replay failed (an unreachable target: status 1)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def bad_input(message: str) -> ReplayError:
    """A `ReplayError` for a file that is not what the command needs (exit status 2)."""
    return ReplayError(message, usage=True)
