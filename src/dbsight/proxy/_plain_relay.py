"""`PlainRelay`: transaction mode's usual units, relayed with the least work per message.

A transaction-mode session with nothing between its units and the pool (no replicas, no
result cache, no request pipeline: `PooledSession._plain`) has its client's and its
server's bytes relayed here. The client's messages are framed and told to the session's
`Exchange` (with what a Query or Execute may change in the session, `StatementEffects`,
and the client's statement names, `StatementNames`); a unit takes its connection at its
first Query or Bind (`Lease.take_primary`), or waits for one with the client paused
(`Lease.wait_for`: its bytes come back here after the wait); the server's answers are read
and relayed; and a unit that ends with nothing to reset parks its connection (`end_clean`).

That is what `PooledSession.client_data`, `_gate`, `server_data` and `_release` do on
this path, and nothing else: whatever else comes goes to them, from the message where it
came — a Parse or the proxy's own command starting a unit, a Terminate, a broken frame, an
answer while the connection is parked, a unit that left something in the server session.
Cython compiles this module with the types of its ``.pxd`` (see `dbsight._compiled`); this
source is the fallback.
"""

from __future__ import annotations

import struct
from typing import Any

from .. import _hot
from . import protocol as p
from ._client_frames import CLIENT_TABLE, COPY_DATA, TERMINATE
from ._exchange import Exchange, TrackingLost
from ._link_relay import Sender
from ._topology import PRIMARY

_IDLE = ord("I")
_CLIENT = CLIENT_TABLE
PARSE, BIND, DESCRIBE, CLOSE, QUERY, EXECUTE = (ord(c) for c in "PBDCQE")


class PlainRelay:
    """The relay of one plain transaction-mode session (see the module docstring)."""

    def __init__(self, session: Any, exchange: Exchange) -> None:
        self.session = session  # a `PooledSession`: the way for everything else
        self.exchange = exchange
        self.lease = session.lease
        self.effects = session.effects
        self.statements = session.statements
        self.breaker = session._breaker  # the primary's
        self.topology = session.pools.topology
        self.settings = session.settings
        self.info = session.info
        self.listen = session.listen
        self.notifications = session.listen.notifications  # (the same list all along)
        self.shutting_down = session._shutting_down  # (then `PooledSession.request_shutdown`)
        self.client_sender = Sender(session.writer.transport)
        self.max_size = session._max_size

    def client_data(self, data: bytes) -> None:
        """The client's bytes: its messages relayed to the connection held, taken at a
        unit's first Query or Bind; from the first message that needs more, the rest goes
        to `PooledSession.client_data`."""
        session, lease = self.session, self.lease
        if lease.waiting is not None:  # (the bytes wait there)
            session.client_data(data)
            return
        if session._client_buffer:  # kept while it waited, or the start of a message
            data = session._client_buffer + data
            session._client_buffer = b""
        exchange = self.exchange
        conn = lease.conn
        n, i, seg = len(data), 0, 0  # seg: where the bytes not yet in `out` start
        at = _hot.perf_counter()
        out: list[bytes] | None = None
        try:
            while n - i >= 5:
                t = data[i]
                length = (
                    (data[i + 1] << 24) | (data[i + 2] << 16) | (data[i + 3] << 8) | data[i + 4]
                )
                if length < 4 or length > self.max_size or not _CLIENT[t]:
                    break  # (the session says what is wrong with it)
                end = i + 1 + length
                if end > n:
                    break
                if conn is None:  # a unit starts: the usual ones take a connection here
                    if t == QUERY:
                        if maybe_own(data, i + 5, end):
                            break  # (maybe the proxy's own command)
                    elif t != BIND:
                        break
                    if self.breaker.state != "closed":
                        break
                    conn = lease.take_primary()
                    if conn is None:  # all busy: the client waits, paused, with its bytes
                        if i:
                            break
                        session._client_buffer = data
                        lease.wait_for(PRIMARY)
                        return
                elif t == TERMINATE:
                    break
                if t == QUERY or t == EXECUTE:
                    self.effects.sent(conn, exchange, t, data, i, end)
                if t != COPY_DATA:
                    if t == BIND or t == DESCRIBE or t == CLOSE or (t == PARSE and data[i + 5]):
                        replaced = self.statements.rename(conn, exchange, t, data, i + 5, end, at)
                        if replaced is not None:
                            if out is None:
                                out = []
                            out.append(_hot.sliced(data, seg, i))
                            out.append(replaced)
                            i = seg = end
                            continue
                    exchange.request(t, data, i + 5, end, at)
                i = end
        except (p.ProtocolError, ValueError) as exc:
            session._malformed(exc, out if out is not None else [], data, seg, i)
            return
        if conn is not None:  # (held: relayed, its transport the lease's `server_transport`)
            sender = conn.sender
            if out is not None:
                out.append(_hot.sliced(data, seg, i))
                sender.write(b"".join(out))
            elif i > seg:
                sender.write(_hot.sliced(data, seg, i))
        if i < n:
            session.client_data(data[i:] if i else data)

    def server_data(self, data: bytes) -> None:
        """The server's bytes, answers to the unit: relayed to the client; when the unit has
        ended, its connection parked (`end_clean`) or released by the session."""
        lease = self.lease
        if lease.conn is None or lease.retry is not None:
            self.session.server_data(data)
            return
        exchange = self.exchange
        try:
            out = exchange.answers(data)
        except (TrackingLost, ValueError, struct.error) as exc:
            self.session.server_failed(exc)
            return
        if out:
            self.client_sender.write(out)
        if (
            not exchange.pending and exchange.status == _IDLE and not exchange.unsynced
            and not exchange._buffer and lease.conn is not None
        ):  # fmt: skip  # (`Exchange.at_rest`, and no server message half read)
            if not self.end_clean():
                self.session._release()

    def end_clean(self) -> bool:
        """The unit ended: when it left nothing behind (nothing to reset, no LISTEN to move,
        no error, no DDL, the proxy not shutting down), its connection goes back — parked —
        with a success for the primary's breaker, and True; else False (for
        `PooledSession._release`)."""
        exchange = self.exchange
        if (
            exchange.dirty or exchange.listens or exchange.rolled_back or exchange.ddl_count
            or exchange.ddl_seen or exchange.last_sqlstate is not None
            or self.shutting_down
        ):  # fmt: skip
            return False
        self.info.state = "idle"
        settings = self.settings
        if self.effects.settings_read() and (settings._reset_all or settings._resets):
            settings.cycle_ended()  # (its own test, inline: no Python call when it is false)
        exchange.wrote = False
        lease = self.lease
        now = _hot.monotonic()  # (one clock read: the connection's last use, the breaker's)
        lease.give_back_clean(now)
        breaker = self.breaker
        if breaker.state == "closed":
            breaker.record(True, now)
        else:
            self.topology.record(PRIMARY, True)
        if lease.waiting is None and self.notifications:
            self.listen.deliver()
        return True


_S, _E, _T, _R = (ord(c) for c in "setr")
_SLASH, _DASH = ord("/"), ord("-")


def maybe_own(data: bytes, start: int, end: int) -> bool:
    """Whether the Query text at ``data[start:end]`` may be the proxy's own command, ``SET
    dbsight.role`` or ``RESET dbsight.role`` (`router.set_role_statement`): it starts, past
    ASCII spaces, with ``set`` or ``res`` in any case, with ``/`` or ``-`` (a comment may
    come first), or with a byte that another reading of white space might skip (the session
    then looks closer). Three bytes read, no call."""
    j = start
    c = 0
    while j < end:
        c = data[j]
        if c != 32 and not (9 <= c <= 13):  # (ASCII white space: SQL's, and \s's)
            break
        j += 1
    if end - j < 4:
        return False
    if (0x1C <= c <= 0x1F) or c >= 0x80 or c == _SLASH or c == _DASH:
        return True  # (Python's \s takes the first; the others may start a comment)
    c |= 0x20
    d = data[j + 1] | 0x20
    e = data[j + 2] | 0x20
    return (c == _S and d == _E and e == _T) or (c == _R and d == _E and e == _S)
