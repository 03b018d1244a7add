"""One warning per Redis outage, not one per request: the features that fail open or to
defaults log when they start doing so and when Redis answers again."""

from __future__ import annotations

import logging


class OutageLog:
    """``down(exc)`` on each failure, ``up()`` on each success; logs only the changes."""

    __slots__ = ("is_down", "log", "what")

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.is_down = False

    def down(self, exc: BaseException) -> None:
        if not self.is_down:
            self.is_down = True
            self.log.warning("%s until redis answers again: %s", self.what, exc)

    def up(self) -> None:
        if self.is_down:
            self.is_down = False
            self.log.warning("redis answers again: %s no more", self.what)
