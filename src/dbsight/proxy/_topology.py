"""The servers behind a pooled proxy: the primary and its replicas, their health, lag and
circuit breakers, and the `Router` that decides between them.

A replica takes reads while its monitor keeps it in rotation (reachable, lag within
``max_replica_lag_s`` / ``max_replica_lag_bytes``) and its breaker is not open; among those
the one with the fewest outstanding requests gets the next read. With none available, reads
go to the primary. When the primary's breaker is open, clients get 57P03 at once instead of
waiting on a server that keeps failing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ._backend import BackendSpec
from ._breaker import CircuitBreaker
from ._config import ProxyConfig, Upstream
from ._health import BackendMonitor, BackendTarget, HealthBoard
from ._router import Router

PRIMARY = "primary"
_monotonic = time.monotonic


class Topology:
    """See the module docstring; one per proxy that holds its own server connections."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self._tls = config.upstream_tls_context()
        primary = config.upstream_server
        self.servers: dict[str, Upstream] = {PRIMARY: primary}
        for number, replica in enumerate(config.replica_servers, 1):
            self.servers[f"replica{number}"] = replica
        self.replica_names = [name for name in self.servers if name != PRIMARY]
        self.routing = bool(self.replica_names)
        self._routers: dict[str, Router] = {}  # per database: its functions, views, tables
        self.breakers = {
            name: CircuitBreaker(
                window_s=config.breaker_window_s,
                min_requests=config.breaker_min_requests,
                error_rate=config.breaker_error_rate,
                cooldown_s=config.breaker_cooldown_s,
            )
            for name in self.servers
        }
        self.health: HealthBoard | None = None
        if self.replica_names:
            targets = {name: self._target(name, upstream) for name, upstream in self.servers.items()}
            self.health = HealthBoard(
                targets[PRIMARY],
                [targets[name] for name in self.replica_names],
                interval_s=config.health_interval_s,
                timeout_s=config.health_timeout_s,
                max_lag_s=config.max_replica_lag_s,
                max_lag_bytes=config.max_replica_lag_bytes,
            )
            for monitor in (self.health.primary, *self.health.replicas):
                monitor.on_change = self._health_changed


    def router_for(self, database: str) -> Router | None:
        """The router of ``database`` (what its catalog says of functions and relations is
        its own), or None without replicas."""
        if not self.routing:
            return None
        router = self._routers.get(database)
        if router is None:
            router = self._routers[database] = Router()
        return router
    def _target(self, name: str, upstream: Upstream) -> BackendTarget:
        primary = self.config.upstream_server
        spec = BackendSpec(
            host=upstream.host,
            port=upstream.port,
            user=upstream.user or primary.user or "postgres",
            database=upstream.database or primary.database or "postgres",
            password=upstream.password if upstream.password is not None else primary.password,
            connect_timeout_s=self.config.health_timeout_s,
            application_name="dbsight-proxy-health",
            tls=self._tls,
            tls_optional=self.config.upstream_tls == "prefer",
        )
        return BackendTarget(name=name, role="primary" if name == PRIMARY else "replica", spec=spec)

    async def start(self) -> None:
        if self.health is not None:
            await self.health.start()

    async def close(self) -> None:
        if self.health is not None:
            await self.health.close()

    # -- decisions ---------------------------------------------------------------------
    def pick_replica(
        self,
        outstanding: Callable[[str], int],
        min_lsn: int | None = None,
        synced_after: float | None = None,
    ) -> str | None:
        """The replica for the next read, or None (none in rotation: the primary reads);
        with ``min_lsn``, only one seen to have replayed that WAL position; with
        ``synced_after`` (a ``time.monotonic``), only one known to have caught up with the
        primary as it was after that moment. Candidates are
        asked in order of load, so a half-open breaker's trial slot is only taken by the
        replica that then gets the request."""
        if self.health is None:
            return None
        now = _monotonic()
        candidates = sorted(
            (outstanding(monitor.target.name), monitor.target.name)
            for monitor in self.health.in_rotation()
            if monitor.target.name != PRIMARY
            and (min_lsn is None or (monitor.replay_lsn or 0) >= min_lsn)
            and (synced_after is None or (monitor.synced_at or 0.0) > synced_after)
        )
        for _, name in candidates:
            if self.breakers[name].allow(now):
                return name
        return None

    def primary_allowed(self) -> bool:
        breaker = self.breakers[PRIMARY]
        return breaker.state == "closed" or breaker.allow(_monotonic())

    def record(self, name: str, ok: bool) -> None:
        """The outcome of a request on server ``name`` (False: the server's fault)."""
        breaker = self.breakers[name]
        before = breaker.record(ok, _monotonic())
        if before is not None:
            _breaker_alert(name, before, breaker.state)

    def _health_changed(self, monitor: BackendMonitor) -> None:
        """A health check found a server down: its breaker opens (the monitor logs it)."""
        if not monitor.up:
            breaker = self.breakers[monitor.target.name]
            before = breaker.state
            breaker.force_open(_monotonic())
            if before != "open":
                _breaker_alert(monitor.target.name, before, "open")

    def stats(self) -> list[dict[str, Any]]:
        """Health, lag and breaker of each server, for /stats/pools."""
        health = {item["name"]: item for item in self.health.stats()} if self.health else {}
        return [
            {
                "name": name,
                "role": "primary" if name == PRIMARY else "replica",
                "address": f"{upstream.host}:{upstream.port}",
                **health.get(name, {}),
                "breaker": self.breakers[name].stats(),
            }
            for name, upstream in self.servers.items()
        ]


def _breaker_alert(name: str, before: str, after: str) -> None:
    """Tell the alert notifier (dbsight.notify) that a breaker opened or closed again (a
    half-open breaker is neither: its trials decide); never raises."""
    if after not in ("open", "closed") or (before == "half_open" and after == "open"):
        return  # a failed trial re-opens what the alert already says is open
    try:
        from ..notify import alert_breaker

        alert_breaker(name, after == "open")
    except Exception:  # the notifier's failure never reaches a request
        logging.getLogger("dbsight").debug("dbsight proxy: breaker alert failed", exc_info=True)
