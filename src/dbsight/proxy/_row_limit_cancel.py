"""`RowLimitCancel`: the firewall's ``max_rows`` carried out on the server.

When a statement returns more rows than the firewall allows, the client gets the firewall's
error in place of the rest of its result (`Exchange.row_limit`, put there by
`StatementScreen`) and the statement is cancelled on its server connection, so the server
stops sending rows. The connection is kept, and the client's next statements wait, until
the cancel has been handled: a cancel arriving late would stop the next statement instead.
So the end of the transaction waits for it too (`in_flight`), and goes on once it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from ._backend import BackendConnection
from ._backend_errors import BackendError


class RowLimitCancel:
    """One client's cancel of a statement past the row limit (see the module docstring):
    ``background`` holds its task until done; ``then`` runs when a transaction's end
    waited for it."""

    __slots__ = ("_background", "_then", "task")

    def __init__(self, background: set[asyncio.Task[Any]], then: Callable[[], None]) -> None:
        self.task: asyncio.Task[None] | None = None  # the cancel in flight, if any
        self._background = background
        self._then = then

    def start(self, conn: BackendConnection) -> None:
        """Cancel the statement running on ``conn``."""
        task = asyncio.get_running_loop().create_task(_cancel_on(conn))
        self.task = task
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def in_flight(self) -> bool:
        """At a transaction's end, with a cancel started: True while it is still in flight
        (``then`` runs once it is done), else False and it is forgotten."""
        task = self.task
        assert task is not None
        if not task.done():
            task.add_done_callback(self._handled)
            return True
        self.task = None
        return False

    def _handled(self, _: asyncio.Task[None]) -> None:
        self.task = None
        self._then()


async def _cancel_on(conn: BackendConnection) -> None:
    with contextlib.suppress(BackendError):
        await conn.cancel()
