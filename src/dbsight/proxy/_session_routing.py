"""`SessionRouting`: where one pooled client's next unit runs — the primary, or a replica.

The database's `Router` judges a unit's statements (provably read-only?); this adds what
belongs to the client: its ``SET dbsight.role`` hint, read-your-writes after its writes (a
time window, then only replicas that have replayed the write's WAL position or synced after
it), SERIALIZABLE by default (never a replica), a read a replica gave up (asked of the
primary), a cache fill (the primary answers it), and a BEGIN answered ahead until the
transaction's first statement says where it belongs. Every decision is counted in
``proxy_routing_decisions_total``. No sockets: the session acts on the answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ._client_fields import RoutingFields
from ._metrics import routing_decisions
from ._router import Lookup, Role, Router, TransactionStart, set_role_statement
from ._topology import PRIMARY, Topology

_monotonic = time.monotonic
LSN_PENDING = 2**64  # a write's WAL position being looked up: no replica has it yet


class SessionRouting(RoutingFields):
    """One client's routing state (see the module docstring); ``begin``, a start answered
    ahead and not yet sent, is a `RoutingFields`'."""

    __slots__ = ("topology", "outstanding", "read_your_writes_s", "router", "role",
                 "serializable", "to_primary", "write_lsn", "_primary_until",
                 "_wrote_at")  # fmt: skip

    def __init__(
        self, topology: Topology, outstanding: Callable[[str], int], read_your_writes_s: float
    ) -> None:
        super().__init__()  # (``begin``: a start answered ahead, not yet sent)
        self.topology = topology
        self.outstanding = outstanding
        self.read_your_writes_s = read_your_writes_s
        self.router: Router | None = None  # the database's, once logged in (with replicas)
        self.role: Role = "auto"  # SET dbsight.role
        self.serializable = False  # SERIALIZABLE by default from its startup: no replica
        self.to_primary = False  # the next unit goes to the primary (a read asked again)
        self.write_lsn: int | None = None  # read-your-writes: until a replica replayed this
        self._primary_until = 0.0  # ... reads stay on the primary until then
        self._wrote_at: float | None = None  # ... and then only on replicas synced after it

    def role_command(self, sql: str) -> bool:
        """``SET dbsight.role = primary | replica | auto`` (or RESET): taken, True (the
        session answers it; it never reaches a server)."""
        role = set_role_statement(sql)
        if role is None:
            return False
        self.role = role
        return True

    def route(
        self, buf: bytes, start: int, statement_text: Callable[[str], str | None], filling: bool
    ) -> tuple[str, int] | Lookup:
        """The server for the unit at ``buf[start]`` and, for a replica, where the unit ends
        (-1: the connection is held to the end of a transaction); a `Lookup` when the
        router must first ask the server something (the unit is judged again after it).
        ``filling``: a cacheable read the cache lacks."""
        router = self.router
        if router is None:
            return PRIMARY, -1
        if self.role == "primary":
            routing_decisions["primary", "hint"] += 1
            return PRIMARY, -1
        if self.to_primary:  # a read a replica left unanswered
            self.to_primary = False
            return PRIMARY, -1
        if filling and self.role != "replica":
            # the primary answers it, so it can be cached (a replica's answer may miss a
            # write that has already returned)
            routing_decisions["primary", "cache_fill"] += 1
            return PRIMARY, -1
        now = _monotonic()
        unit = router.unit(buf, start, statement_text, now)
        if isinstance(unit, Lookup):
            return unit
        replica = unit.replica or (
            self.role == "replica" and router.vouched(buf, start, statement_text)
        )
        if not replica:
            routing_decisions["primary", "write"] += 1
            return PRIMARY, -1
        name = self.replica_for_reads(now)
        if name is None:
            return PRIMARY, -1
        reason = (
            "hint" if not unit.replica
            else "transaction" if unit.read_only_transaction
            else "read_only"
        )
        routing_decisions["replica", reason] += 1
        return name, (-1 if unit.read_only_transaction else unit.end)

    def replica_for_reads(self, now: float) -> str | None:
        """A replica this session's reads may go to now, or None (counted: why the primary)
        — read-your-writes: not within ``read_your_writes_s`` of its last write, then only a
        replica that has replayed it (by its WAL position, or synced after it)."""
        auto = self.role == "auto"
        if self.serializable:
            routing_decisions["primary", "session_state"] += 1
            return None
        if auto and now < self._primary_until:
            routing_decisions["primary", "read_your_writes"] += 1
            return None
        min_lsn = self.write_lsn if auto else None
        since = self._wrote_at if auto else None
        name = self.topology.pick_replica(self.outstanding, min_lsn, since)
        if name is None:
            reason = "failover" if min_lsn is None and since is None else "read_your_writes"
            routing_decisions["primary", reason] += 1
            return None
        if min_lsn is not None and min_lsn != LSN_PENDING:
            self.write_lsn = None  # a replica has it: no need to look again
        return name

    def wrote(self) -> None:
        """The session's write has returned: the time window of read-your-writes starts."""
        if self.read_your_writes_s > 0:
            self._wrote_at = now = _monotonic()
            self._primary_until = now + self.read_your_writes_s

    # -- a BEGIN answered ahead ------------------------------------------------------------
    def defer_begin(self, sql: str, message: bytes) -> bool:
        """A lone BEGIN between transactions (with replicas): True when it is answered
        ahead and sent on with the first statement after it and any SET TRANSACTION, since
        those may still make it READ ONLY, READ WRITE or SERIALIZABLE."""
        if self.router is None or self.role != "auto":
            return False
        self.begin = TransactionStart.begin(sql, message)
        return self.begin is not None

    def defer_set_transaction(self, sql: str, message: bytes) -> bool:
        """A ``SET TRANSACTION <modes>`` right after a deferred BEGIN: True when it is
        answered ahead too."""
        assert self.begin is not None
        return self.begin.set_transaction(sql, message)

    def begin_target(self) -> str:
        """Where the deferred transaction runs, at its first statement: a READ ONLY one (not
        SERIALIZABLE) on a replica, anything else on the primary."""
        assert self.begin is not None
        read_only = self.begin.on_replica
        target = self.replica_for_reads(_monotonic()) if read_only else None
        if target is None:
            if not read_only:  # (a read-only one was counted with why it is not on a replica)
                routing_decisions["primary", "write"] += 1
            return PRIMARY
        routing_decisions["replica", "transaction"] += 1
        return target
