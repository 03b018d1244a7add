"""Giving a borrowed server connection back to its pool after a client's transaction.

As it is when the client left nothing behind in the server session (no round trip), else
after a reset — `DISCARD ALL` when SQL-level PREPARE, DEALLOCATE or DISCARD ran, a lighter
reset that keeps prepared statements otherwise — and, for read-your-writes by WAL position,
after reading the position the client's write reached. The work that needs the server runs
in a background task the session waits for when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib

from ._backend import BackendConnection
from ._backend_errors import BackendError
from ._exchange import Exchange
from ._health import parse_lsn
from ._pool import BackendPool
from ._session_routing import LSN_PENDING, SessionRouting
from ._statement_names import StatementNames


def give_back(
    conn: BackendConnection, exchange: Exchange, pool: BackendPool, by_lsn: bool,
    routing: SessionRouting, statements: StatementNames, background: set[asyncio.Task[None]],
) -> None:
    """Return ``conn`` to ``pool`` (see the module docstring); ``by_lsn``: the transaction
    wrote, and reads wait for a replica that has replayed it."""
    full = reset_for(exchange)
    if full is None and not by_lsn:
        pool.release_clean(conn)
        return
    if exchange.cleared:  # DISCARD ALL / DEALLOCATE ALL: the server dropped them all
        statements.clear()
    exchange.dirty = exchange.full_reset = exchange.cleared = False
    conn.settle(exchange.status, True)
    if by_lsn:
        routing.write_lsn = LSN_PENDING  # reads stay on the primary until it is known
    task = asyncio.get_running_loop().create_task(_after(pool, conn, full, by_lsn, routing))
    background.add(task)
    task.add_done_callback(background.discard)


def reset_for(exchange: Exchange) -> bool | None:
    """The reset a connection needs after the client's transaction on ``exchange``: None
    when the client left nothing in the server session (back as it is), True for
    `DISCARD ALL` (SQL-level PREPARE, DEALLOCATE or DISCARD ran, or the catalog changed
    under the statements prepared there), False for the reset that keeps them. (A connection
    that cannot be trusted is closed by its pool instead.)"""
    return exchange.full_reset if exchange.dirty else None


async def _after(
    pool: BackendPool, conn: BackendConnection, full: bool | None, by_lsn: bool,
    routing: SessionRouting,
) -> None:
    """Work on a released connection before the pool gets it back: the WAL position a
    write reached (read-your-writes by LSN), then the reset (``full`` None: none)."""
    try:
        if by_lsn:
            results = await conn.execute("SELECT pg_current_wal_insert_lsn()")
            value = results[-1].rows[0][0] if results and results[-1].rows else None
            routing.write_lsn = parse_lsn(value) if value else None
        if full is None:
            pool.release_clean(conn)
        else:
            await pool.release(conn, full)
    except BackendError:  # position unknown: the time window keeps reads safe instead
        if routing.write_lsn == LSN_PENDING:
            routing.write_lsn = None
            routing.wrote()
        with contextlib.suppress(BackendError):
            await pool.release(conn)
