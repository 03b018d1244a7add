"""The proxy's own ``proxy_*`` metrics, read from its sessions and pools at scrape time.

Nothing here runs per statement or per message: the relay keeps plain counters (the pools'
statistics, each session's state) and this collector turns them into Prometheus families
when ``/metrics`` is scraped. The statements themselves are the ``db_client_*`` families of
the same registry (source ``proxy``), and each transaction pool is also a
``db_client_connections{pool}`` gauge like an in-process client pool.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

Family = CounterMetricFamily | GaugeMetricFamily

if TYPE_CHECKING:
    from .._runtime import Runtime
    from ._server import ProxyServer

# The errors the proxy itself answered clients with, by SQLSTATE (08P01 bad input, 08006
# server unreachable, 53300 no free server connection, 28P01 bad password, 57P01 shutdown).
client_errors: Counter[str] = Counter()

# Where units of work were sent (read/write splitting), by server role and reason: read_only,
# write (not provably read-only), transaction (a READ ONLY one on a replica), hint (a
# dbsight:primary/replica comment or SET dbsight.role), read_your_writes, failover (no replica
# in rotation, or a replica gave a read up), session_state (session mode: the session holds
# temporary tables, LISTEN or cursors WITH HOLD, so it stays on its own connection),
# cache_fill (a cacheable read the result cache lacks: the primary's answer is cached).
routing_decisions: Counter[tuple[str, str]] = Counter()

CLIENT_STATES = ("startup", "idle", "active", "waiting")

# pool statistic -> (family name, help)
_POOL_COUNTERS = {
    "total_acquired": (
        "proxy_pool_acquires", "Server connections handed to a client for a transaction."
    ),
    "total_wait_s": (
        "proxy_pool_wait_seconds", "Time clients waited for a free server connection."
    ),
    "total_timeouts": (
        "proxy_pool_timeouts", "Waits for a server connection that ended in 53300."
    ),
    "total_connects": ("proxy_server_connects", "Server connections opened."),
    "connect_errors": ("proxy_server_connect_errors", "Failed attempts to open one."),
    "total_closed": ("proxy_server_closed", "Server connections closed."),
    "total_resets": (
        "proxy_server_resets",
        "Releases that reset the server session (a client left state in it).",
    ),
    "total_clean_releases": (
        "proxy_server_clean_releases",
        "Releases with nothing to reset: no round trip.",
    ),
    "total_deallocated": (
        "proxy_server_deallocated_statements",
        "Prepared statements dropped from idle server connections over max_prepared_statements.",
    ),
}
_POOL_GAUGES = {
    "waiting": ("proxy_pool_waiting_clients", "Clients waiting for a server connection now."),
    "max_size": ("proxy_pool_max_size", "Configured maximum of server connections."),
}


class ProxyMetrics(Collector):
    """See the module docstring. One per runtime (``runtime.component("proxy_metrics",
    ProxyMetrics)``), over every running `ProxyServer` of the process; `close()` unregisters
    it."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = runtime.registry
        self.servers: weakref.WeakSet[ProxyServer] = weakref.WeakSet()
        self.registry.register(self)
        self._registered = True

    def add(self, server: ProxyServer) -> None:
        self.servers.add(server)

    def remove(self, server: ProxyServer) -> None:
        self.servers.discard(server)

    def _families(self) -> dict[str, Family]:
        families: dict[str, Family] = {
            "clients": GaugeMetricFamily(
                "proxy_client_connections",
                "Client connections by state (startup, idle, active: holds a server "
                "connection, waiting: for one).",
                labels=["state"],
            ),
            "clients_total": CounterMetricFamily(
                "proxy_clients_accepted", "Client connections accepted."
            ),
            "errors": CounterMetricFamily(
                "proxy_client_errors",
                "Errors the proxy itself answered clients with, by SQLSTATE.",
                labels=["sqlstate"],
            ),
            "rejected": CounterMetricFamily(
                "proxy_rejected",
                "Clients and statements the request pipeline rejected, by reason.",
                labels=["reason"],
            ),
            "cache": CounterMetricFamily(
                "proxy_cache_operations",
                "Result cache lookups and changes: hit, miss, store, eviction, invalidation.",
                labels=["result"],
            ),
            "cache_bytes": GaugeMetricFamily(
                "proxy_cache_bytes", "Memory held by cached answers (and their keys)."
            ),
            "routed": CounterMetricFamily(
                "proxy_routed",
                "Units of work (a Query, or the messages up to a Sync) by the server role "
                "they went to and why.",
                labels=["role", "reason"],
            ),
            "backend_up": GaugeMetricFamily(
                "proxy_backend_up",
                "1 when the server's health check passes (with replicas).",
                labels=["server", "role"],
            ),
            "in_rotation": GaugeMetricFamily(
                "proxy_backend_in_rotation",
                "1 when the server takes requests (a replica: up and its lag within limits).",
                labels=["server", "role"],
            ),
            "lag": GaugeMetricFamily(
                "proxy_replica_lag_seconds",
                "How far behind the primary a replica's replay is.",
                labels=["server"],
            ),
            "breaker": GaugeMetricFamily(
                "proxy_breaker_open",
                "Circuit breaker per server: 0 closed, 0.5 half-open, 1 open.",
                labels=["server"],
            ),
            "server_connections": GaugeMetricFamily(
                "proxy_server_connections",
                "Server connections by pool and state (idle, used, connecting).",
                labels=["pool", "state"],
            ),
        }
        for key, (name, documentation) in _POOL_COUNTERS.items():
            families[key] = CounterMetricFamily(name, documentation, labels=["pool"])
        for key, (name, documentation) in _POOL_GAUGES.items():
            families[key] = GaugeMetricFamily(name, documentation, labels=["pool"])
        return families

    def describe(self) -> Iterator[Metric]:
        return iter(self._families().values())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        servers = list(self.servers)
        states = Counter(
            session.info.state for server in servers for session in list(server.sessions)
        )
        for state in CLIENT_STATES:
            families["clients"].add_metric([state], states.get(state, 0))
        families["clients_total"].add_metric([], sum(server.clients_total for server in servers))
        for sqlstate, count in sorted(client_errors.items()):
            families["errors"].add_metric([sqlstate], count)
        cached: Counter[str] = Counter()
        size = 0
        for server in servers:
            cache = server.pooling.cache if server.pooling is not None else None
            if cache is not None:
                cached.update(hit=cache.hits, miss=cache.misses, store=cache.stores,
                              eviction=cache.evictions, invalidation=cache.invalidations)
                size += cache.size_bytes
        for result, count in sorted(cached.items()):
            families["cache"].add_metric([result], count)
        families["cache_bytes"].add_metric([], size)
        rejected: Counter[str] = Counter()
        for server in servers:
            if server.pipeline is not None:
                rejected.update(server.pipeline.rejected)
        for reason, count in sorted(rejected.items()):
            families["rejected"].add_metric([reason], count)
        for (role, reason), count in sorted(routing_decisions.items()):
            families["routed"].add_metric([role, reason], count)
        for server in servers:
            for backend in server.server_stats():
                _backend_samples(families, backend)
        # pools of the same name in several servers (tests run several) are added up
        samples: dict[tuple[str, tuple[str, ...]], float] = {}
        for server in servers:
            for pool in server.pool_stats():
                _pool_samples(pool, samples)
        for (key, labels), value in samples.items():
            families[key].add_metric(list(labels), value)
        yield from families.values()

    def close(self) -> None:
        if self._registered:
            self._registered = False
            try:
                self.registry.unregister(self)
            except KeyError:  # the registry was cleared by someone else
                pass


def _pool_samples(pool: dict[str, Any], samples: dict[tuple[str, tuple[str, ...]], float]) -> None:
    name = str(pool["name"])
    for state in ("idle", "used", "connecting"):
        key = ("server_connections", (name, state))
        samples[key] = samples.get(key, 0.0) + float(pool.get(state, 0))
    for stat in (*_POOL_COUNTERS, *_POOL_GAUGES):
        if stat in pool:
            samples[(stat, (name,))] = samples.get((stat, (name,)), 0.0) + float(pool[stat])


_BREAKER_VALUES = {"closed": 0.0, "half_open": 0.5, "open": 1.0}


def _backend_samples(families: dict[str, Family], backend: dict[str, Any]) -> None:
    name, role = str(backend["name"]), str(backend["role"])
    if "up" in backend:
        families["backend_up"].add_metric([name, role], float(bool(backend["up"])))
        families["in_rotation"].add_metric([name, role], float(bool(backend.get("in_rotation"))))
    if role == "replica" and backend.get("lag_s") is not None:
        families["lag"].add_metric([name], float(backend["lag_s"]))
    state = backend.get("breaker", {}).get("state")
    if state in _BREAKER_VALUES:
        families["breaker"].add_metric([name], _BREAKER_VALUES[state])
