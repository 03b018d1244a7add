"""Is each backend of a topology up, and is each replica recent enough to read from?

One ``BackendMonitor`` per server keeps one connection of its own open between checks (a
check is then one round trip, and a server that cannot accept new connections any more is
still seen) and opens a new one when it broke. A check must answer within ``timeout_s``; any
failure makes the backend down with ``last_error`` saying why, logged once per change of
state, never raised: a monitor is a background task that must outlive the outages it reports.

The primary must not be in recovery (a standby cannot take writes); its WAL position is noted
as ``current_lsn``. A replica must be in recovery, and its lag is read from the server:

- ``lag_s``: ``now() - pg_last_xact_replay_timestamp()``, the age of the last transaction
  replayed, except that a replica that has replayed all it received, and at least the
  primary's last known position, lags 0: an idle primary commits nothing, so the last
  replayed transaction grows old while the replica is perfectly up to date.
- ``lag_bytes``: the primary's ``current_lsn`` minus the replica's replay position, when the
  primary's is known.
- ``synced_at``: the latest moment (``time.monotonic``) the replica is known to have caught up
  with: each primary check notes when it asked for the WAL insert position and what it got
  (``positions``); a replica that has replayed a position has everything the primary had
  committed before it was asked. Read-your-writes by time uses it: after a session's write,
  its reads go only to a replica synced after that write.

A replica is in rotation (reads may go to it) while it is up and its lag is known and within
``max_lag_s`` (and ``max_lag_bytes``, when set). Once out for lag it comes back only when the
lag is down to half those limits, so that a replica hovering at the limit does not flap in and
out with every check. ``on_change`` is called whenever ``up`` or ``in_rotation`` changes: the
routing layer opens or closes the backend's circuit breaker there.

``HealthBoard`` holds the monitors of one primary and its replicas and checks them in one
loop: the primary first, so the replicas are compared with a position read just before theirs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from ._backend import BackendConnection, BackendSpec
from ._backend_errors import BackendError, BackendUnavailable

logger = logging.getLogger("dbsight.proxy.health")

Role = Literal["primary", "replica"]

_INITIAL = (False, False)  # (up, in_rotation) before the first check
_POSITIONS_KEPT = 600  # the primary's positions a replica can be matched with (10 min at 1 s)

# A standby cannot take pg_current_wal_flush_lsn() (it raises), hence the CASEs. The flush
# position rather than pg_current_wal_lsn() (the write position): only flushed WAL is sent
# to replicas, so it is exactly what a caught-up replica has replayed (the lag). The insert
# position is what read-your-writes compares with: a commit acknowledged before the query
# is at or below it even when it is not flushed yet (synchronous_commit = off, or a
# transaction that wrote nothing else).
PRIMARY_QUERY = (
    "SELECT pg_is_in_recovery(),"
    " CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn() END,"
    " CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn() END"
)
# The lag in seconds is computed by the server: no parsing of timestamps in its DateStyle.
# pg_is_wal_replay_paused() raises on a primary, hence its CASE.
REPLICA_QUERY = (
    "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(),"
    " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()),"
    " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END"
)


def parse_lsn(text: str) -> int:
    """A ``pg_lsn`` in its text form (``16/B374D848``) as the 64-bit position it stands for."""
    high, sep, low = text.partition("/")
    try:
        if not sep or not high or not low:
            raise ValueError
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise ValueError(f"not a WAL position (expected X/Y in hex): {text!r}") from None


@dataclass(frozen=True)
class BackendTarget:
    """A server of the topology: its name (in stats and logs), role and how to log in."""

    name: str
    role: Role
    spec: BackendSpec

    def __post_init__(self) -> None:
        if self.role not in ("primary", "replica"):
            raise ValueError(f"role must be 'primary' or 'replica', got {self.role!r}")
        if not self.name:
            raise ValueError("a backend target needs a name")


class _CheckFailed(Exception):
    """The server answered, but not as a server of this role should."""


class BackendMonitor:
    """Health and lag of one backend; see the module docstring."""

    def __init__(
        self,
        target: BackendTarget,
        *,
        interval_s: float = 1.0,
        timeout_s: float = 2.0,
        max_lag_s: float = 10.0,
        max_lag_bytes: int | None = None,
        primary_lsn: Callable[[], int | None] = lambda: None,
        primary_positions: Callable[[], Sequence[tuple[float, int]]] = tuple,
        on_change: Callable[[BackendMonitor], None] | None = None,
    ) -> None:
        for label, value in (
            ("interval_s", interval_s),
            ("timeout_s", timeout_s),
            ("max_lag_s", max_lag_s),
        ):
            if not value > 0:
                raise ValueError(f"{label} must be > 0, got {value}")
        if max_lag_bytes is not None and max_lag_bytes < 0:
            raise ValueError(f"max_lag_bytes must be >= 0, got {max_lag_bytes}")
        self.target = target
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.max_lag_s = max_lag_s
        self.max_lag_bytes = max_lag_bytes
        self.primary_lsn = primary_lsn
        self.primary_positions = primary_positions
        self.on_change = on_change

        # Before the first check a backend counts as down: nothing has vouched for it yet.
        self.up = False
        self.in_rotation = False
        self.lag_s: float | None = None
        self.lag_bytes: int | None = None
        self.replay_lsn: int | None = None
        self.current_lsn: int | None = None
        # the primary: (when asked, WAL position) of its recent checks, oldest first
        self.positions: deque[tuple[float, int]] = deque(maxlen=_POSITIONS_KEPT)
        self.synced_at: float | None = None  # a replica: see the module docstring
        self.replay_paused: bool | None = None
        self.last_error: str | None = None
        self.checked_at: float | None = None  # wall clock (epoch seconds), for display

        self._reported: tuple[bool, bool] | None = None  # (up, in_rotation) last logged
        self._conn: BackendConnection | None = None
        self._lock = asyncio.Lock()  # the periodic task and a caller share one connection
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def role(self) -> Role:
        return self.target.role

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Check once (so the state is known on return), then every ``interval_s``."""
        if self._task is not None or self._closed:
            return
        await self.check()
        self._task = asyncio.create_task(self._run(), name=f"dbsight-health-{self.name}")

    async def close(self) -> None:
        """Stop the periodic checks and close the monitor's connection."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        async with self._lock:
            await self._drop_connection()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check()

    # ------------------------------------------------------------------ one check

    async def check(self) -> None:
        """One check; updates the attributes, calls ``on_change``, never raises."""
        async with self._lock:
            if self._closed:
                return
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._probe()
            except TimeoutError:
                await self._drop_connection()  # it may be mid-request
                self._down(f"no answer within {self.timeout_s:g} s (timeout_s)")
            except BackendUnavailable as exc:
                if isinstance(exc.__cause__, TimeoutError):  # the login hit the same deadline
                    self._down(f"no answer within {self.timeout_s:g} s (timeout_s)")
                else:
                    self._down(str(exc))
            except (BackendError, _CheckFailed) as exc:
                self._down(str(exc))
            except Exception as exc:  # an unexpected answer must not kill the monitor
                # the traceback at debug level: the state change is logged once, below
                logger.debug("dbsight proxy: check of %s failed", self.name, exc_info=True)
                await self._drop_connection()
                self._down(f"{type(exc).__name__}: {exc}")
            self.checked_at = time.time()
        self._report()

    async def _probe(self) -> None:
        reused = self._conn is not None and self._conn.usable
        try:
            await self._query(await self._connection())
        except BackendUnavailable:
            await self._drop_connection()
            if not reused:
                raise
            # The kept connection broke (terminated, server restarted, network blip): one
            # failed socket is not a failed server; a new connection decides.
            await self._query(await self._connection())

    async def _connection(self) -> BackendConnection:
        if self._conn is None or not self._conn.usable:
            await self._drop_connection()
            # The check's own deadline bounds the login too: on Python 3.11 an
            # ``asyncio.timeout`` that fires as the connect completes can be swallowed by the
            # connect's ``wait_for``, leaving only the spec's (longer) login timeout.
            spec = self.target.spec
            if spec.connect_timeout_s > self.timeout_s:
                spec = replace(spec, connect_timeout_s=self.timeout_s)
            self._conn = await BackendConnection.connect(spec)
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _query(self, conn: BackendConnection) -> None:
        if self.role == "primary":
            asked = time.monotonic()  # what was committed before now is at or below the answer
            (result,) = await conn.execute(PRIMARY_QUERY)
            in_recovery, flush_lsn, insert_lsn = result.rows[0]
            if in_recovery != "f" or flush_lsn is None or insert_lsn is None:
                raise _CheckFailed("in recovery: a standby, not a primary; it cannot take writes")
            self.current_lsn = parse_lsn(flush_lsn)
            self.positions.append((asked, parse_lsn(insert_lsn)))
            self._up()
            return
        (result,) = await conn.execute(REPLICA_QUERY)
        in_recovery, receive_text, replay_text, age_text, paused_text = result.rows[0]
        if in_recovery != "t" or replay_text is None:
            raise _CheckFailed("not in recovery: no longer a replica (promoted?)")
        receive = None if receive_text is None else parse_lsn(receive_text)
        replay = parse_lsn(replay_text)
        primary = self.primary_lsn()
        caught_up = (
            receive is not None and replay >= receive and (primary is None or replay >= primary)
        )
        if caught_up:
            self.lag_s = 0.0
        else:  # None: no transaction replayed since the replica started, lag unknown
            self.lag_s = None if age_text is None else max(0.0, float(age_text))
        self.lag_bytes = None if primary is None else max(0, primary - replay)
        self.replay_lsn = replay
        for asked, position in reversed(self.primary_positions()):
            if position <= replay:
                if self.synced_at is None or asked > self.synced_at:
                    self.synced_at = asked
                break
        self.replay_paused = paused_text == "t"
        self._up()

    def _up(self) -> None:
        lagging = self.up and not self.in_rotation  # a replica out for lag at the last check
        self.in_rotation = self.role == "primary" or self._lag_acceptable(0.5 if lagging else 1.0)
        self.up = True
        self.last_error = None

    def _lag_acceptable(self, share: float) -> bool:
        """Lag known and within ``share`` of the limits."""
        if self.lag_s is None or self.lag_s > self.max_lag_s * share:
            return False
        return (
            self.max_lag_bytes is None
            or self.lag_bytes is None  # primary unknown (down): judge by time alone
            or self.lag_bytes <= self.max_lag_bytes * share
        )

    def _down(self, error: str) -> None:
        self.up = False
        self.in_rotation = False
        self.last_error = error
        self.lag_s = self.lag_bytes = self.replay_lsn = self.current_lsn = None
        self.synced_at = None
        self.positions.clear()
        self.replay_paused = None

    # ------------------------------------------------------------------ reporting

    def _report(self) -> None:
        """Log when ``up`` or ``in_rotation`` changed (or on the first check), and call
        ``on_change`` when they differ from what they were before."""
        state = (self.up, self.in_rotation)
        before, self._reported = self._reported, state
        if state == before:
            return
        if not self.up:
            logger.warning(
                "dbsight proxy: %s %s is down: %s", self.role, self.name, self.last_error
            )
        elif not self.in_rotation:
            logger.warning(
                "dbsight proxy: replica %s is out of rotation: lag %s s, %s bytes",
                self.name, _shown(self.lag_s), _shown(self.lag_bytes),
            )  # fmt: skip
        else:
            logger.info("dbsight proxy: %s %s is in service", self.role, self.name)
        self._alert()
        if state != (before or _INITIAL) and self.on_change is not None:
            try:
                self.on_change(self)
            except Exception:  # the routing layer's bug must not stop the checks
                logger.exception("dbsight proxy: on_change of %s failed", self.name)

    def _alert(self) -> None:
        """Tell the alert notifier (dbsight.notify) of the new state; never raises."""
        if not self.up:
            reason = f"down: {self.last_error}"
        else:
            reason = f"lag {_shown(self.lag_s)} s, {_shown(self.lag_bytes)} bytes"
        try:
            from ..notify import alert_backend

            alert_backend(self.name, self.role, self.up, self.in_rotation, reason)
        except Exception:  # the notifier's failure must not stop the checks
            logger.debug("dbsight proxy: backend alert failed", exc_info=True)

    def stats(self) -> dict[str, Any]:
        """What ``/stats/pools`` shows for this backend."""
        return {
            "name": self.name,
            "role": self.role,
            "up": self.up,
            "in_rotation": self.in_rotation,
            "lag_s": self.lag_s,
            "lag_bytes": self.lag_bytes,
            "replay_paused": self.replay_paused,
            "last_error": self.last_error,
            "checked_at": self.checked_at,
        }


def _shown(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g}"


class HealthBoard:
    """The monitors of one primary and its replicas; see the module docstring."""

    def __init__(
        self,
        primary: BackendTarget,
        replicas: Sequence[BackendTarget],
        *,
        interval_s: float = 1.0,
        timeout_s: float = 2.0,
        max_lag_s: float = 10.0,
        max_lag_bytes: int | None = None,
        on_change: Callable[[BackendMonitor], None] | None = None,
    ) -> None:
        if primary.role != "primary":
            raise ValueError(f"{primary.name} is given as the primary but has role {primary.role}")
        for replica in replicas:
            if replica.role != "replica":
                raise ValueError(
                    f"{replica.name} is given as a replica but has role {replica.role}"
                )
        names = [primary.name, *(replica.name for replica in replicas)]
        if len(set(names)) != len(names):
            raise ValueError(f"backend names must be unique, got {names}")
        options: dict[str, Any] = {
            "interval_s": interval_s,
            "timeout_s": timeout_s,
            "max_lag_s": max_lag_s,
            "max_lag_bytes": max_lag_bytes,
            "on_change": on_change,
        }
        self.interval_s = interval_s
        self.primary = BackendMonitor(primary, **options)
        self.replicas = [
            BackendMonitor(
                replica, primary_lsn=self._primary_lsn,
                primary_positions=self._primary_positions, **options,
            )
            for replica in replicas
        ]
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def _primary_lsn(self) -> int | None:
        return self.primary.current_lsn

    def _primary_positions(self) -> Sequence[tuple[float, int]]:
        return self.primary.positions

    @property
    def monitors(self) -> list[BackendMonitor]:
        return [self.primary, *self.replicas]

    async def start(self) -> None:
        """Check everything once (the state is known on return), then every ``interval_s``."""
        if self._task is not None or self._closed:
            return
        await self.check_all()
        self._task = asyncio.create_task(self._run(), name="dbsight-health-board")

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await asyncio.gather(*(monitor.close() for monitor in self.monitors))

    async def check_all(self) -> None:
        """The primary first (its position is what replicas are compared with), then the
        replicas concurrently."""
        await self.primary.check()
        await asyncio.gather(*(replica.check() for replica in self.replicas))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check_all()

    def in_rotation(self) -> list[BackendMonitor]:
        """The replicas reads may go to now (the primary's ``up`` says whether it can serve)."""
        return [replica for replica in self.replicas if replica.in_rotation]

    def stats(self) -> list[dict[str, Any]]:
        return [monitor.stats() for monitor in self.monitors]
