"""The proxy dashboard: clients and throughput, routing by role and reason, replicas (lag,
health, rotation), circuit breakers, the result cache, rejections, errors and the server
pools, from the proxy_* families its admin port exposes (docs/metrics.md)."""

from __future__ import annotations

from ._model import Dashboard, Panel, Row, Target, Variable
from ._promql import quantile, ratio, selector, sum_rate

UID = "dbsight-proxy"

ROUTED = "proxy_routed_total"
CACHE = "proxy_cache_operations_total"


def _gauge(aggregation: str, metric: str, by: str, *matchers: str) -> str:
    return f"{aggregation} by ({by}) ({selector(metric, *matchers)})"


def proxy_dashboard() -> Dashboard:
    items: tuple[Panel | Row, ...] = (
        Row("Clients and throughput"),
        Panel(
            "Throughput by server role",
            (Target(sum_rate(ROUTED, by="role"), "{{role}}"),),
            "Units of work (a statement, or a transaction in transaction mode) per second, "
            "by the role of the server they went to.",
            unit="ops",
            stack=True,
        ),
        Panel(
            "Statements by operation",
            (Target(sum_rate("db_client_operations_total", by="operation"), "{{operation}}"),),
            "Statements the proxy observed, per second, by operation.",
            unit="ops",
            stack=True,
        ),
        Panel(
            "Clients by state",
            (Target(_gauge("sum", "proxy_client_connections", "state"), "{{state}}"),),
            "Client connections: starting up, idle, active (holding a server connection) "
            "and waiting for one.",
            stack=True,
        ),
        Panel(
            "Client connections accepted",
            (Target(sum_rate("proxy_clients_accepted_total"), "accepted"),),
            "New client connections per second: a client that reconnects for every "
            "statement shows here.",
            unit="ops",
        ),
        Panel(
            "Statement latency p95 through the proxy",
            (
                Target(
                    quantile(0.95, "db_client_operation_duration_seconds", by="operation"),
                    "{{operation}}",
                ),
            ),
            "95th percentile of statement duration as the proxy measured it.",
            unit="s",
        ),
        Row("Routing and replicas"),
        Panel(
            "Routing by role and reason",
            (Target(sum_rate(ROUTED, by="role, reason"), "{{role}}: {{reason}}"),),
            "Why each unit of work went where it did (docs/routing.md).",
            unit="ops",
            stack=True,
        ),
        Panel(
            "Replica lag",
            (Target(_gauge("max", "proxy_replica_lag_seconds", "server"), "{{server}}"),),
            "How far behind the primary each replica's replay is; past max_replica_lag_s "
            "it leaves the rotation.",
            unit="s",
        ),
        Panel(
            "Backends up and in rotation",
            (
                Target(_gauge("min", "proxy_backend_up", "server, role"), "{{server}} up"),
                Target(
                    _gauge("min", "proxy_backend_in_rotation", "server, role"),
                    "{{server}} in rotation",
                ),
            ),
            "1 while a server's health check passes; in rotation while it takes requests "
            "(a replica: up and within its lag limit).",
            min=0,
            max=1,
        ),
        Panel(
            "Circuit breakers",
            (Target(_gauge("max", "proxy_breaker_open", "server"), "{{server}}"),),
            "0 closed, 0.5 half-open, 1 open (the server gets no requests).",
            min=0,
            max=1,
        ),
        Panel(
            "Server connect errors",
            (Target(sum_rate("proxy_server_connect_errors_total", by="pool"), "{{pool}}"),),
            "Failed attempts to open a server connection, per second.",
            unit="ops",
        ),
        Row("Result cache"),
        Panel(
            "Result cache operations",
            (Target(sum_rate(CACHE, by="result"), "{{result}}"),),
            "Cached answers: hit, miss, store, eviction, invalidation, per second.",
            unit="ops",
        ),
        Panel(
            "Result cache hit ratio",
            (
                Target(
                    ratio(sum_rate(CACHE, 'result="hit"'), sum_rate(CACHE, 'result=~"hit|miss"')),
                    "hit ratio",
                ),
            ),
            "Cacheable reads answered from the cache.",
            unit="percentunit",
            max=1,
        ),
        Panel(
            "Result cache memory",
            (Target(f"sum ({selector('proxy_cache_bytes')})", "bytes"),),
            "Memory held by cached answers and their keys (bounded by cache_max_bytes).",
            unit="bytes",
        ),
        Row("Rejections and errors"),
        Panel(
            "Rejections by reason",
            (Target(sum_rate("proxy_rejected_total", by="reason"), "{{reason}}"),),
            "Clients and statements the request pipeline rejected, per second.",
            unit="ops",
            quiet="the pipeline must reject a client or statement.",
        ),
        Panel(
            "Server errors by SQLSTATE",
            (
                Target(
                    sum_rate("db_client_errors_total", by="sqlstate, operation"),
                    "{{sqlstate}} {{operation}}",
                ),
            ),
            "Statements the server failed, relayed to the client as they were, per second by "
            "SQLSTATE (40P01 deadlock, 40001 serialization failure, 23505 unique violation, "
            "class 53 out of resources ...).",
            unit="ops",
        ),
        Panel(
            "Errors the proxy answered, by SQLSTATE",
            (Target(sum_rate("proxy_client_errors_total", by="sqlstate"), "{{sqlstate}}"),),
            "Errors the proxy itself sent clients (53300 pool timeout, 08006 server gone, "
            "rejections ...), per second.",
            unit="ops",
            quiet="the proxy must answer a client with an error of its own.",
        ),
        Row("Server pools"),
        Panel(
            "Server connections by pool",
            (
                Target(
                    _gauge("sum", "proxy_server_connections", "pool, state"), "{{pool}} {{state}}"
                ),
                Target(_gauge("sum", "proxy_pool_max_size", "pool"), "{{pool}} max"),
            ),
            "Server connections by state (idle, used, connecting) and each pool's maximum.",
        ),
        Panel(
            "Mean pool wait per acquire",
            (
                Target(
                    ratio(
                        sum_rate("proxy_pool_wait_seconds_total", by="pool"),
                        sum_rate("proxy_pool_acquires_total", by="pool"),
                    ),
                    "{{pool}}",
                ),
            ),
            "Time a client waited for a free server connection, per connection handed out.",
            unit="s",
        ),
        Panel(
            "Clients waiting for a server connection",
            (Target(_gauge("sum", "proxy_pool_waiting_clients", "pool"), "{{pool}}"),),
            "Clients queued for a server connection now: the pool is too small or the server slow.",
        ),
        Panel(
            "Pool timeouts (53300)",
            (Target(sum_rate("proxy_pool_timeouts_total", by="pool"), "{{pool}}"),),
            "Waits for a server connection that ended in 53300, per second.",
            unit="ops",
        ),
        Panel(
            "Server connection churn",
            (
                Target(sum_rate("proxy_server_connects_total", by="pool"), "{{pool}} opened"),
                Target(sum_rate("proxy_server_closed_total", by="pool"), "{{pool}} closed"),
                Target(sum_rate("proxy_server_resets_total", by="pool"), "{{pool}} reset"),
                Target(
                    sum_rate("proxy_server_clean_releases_total", by="pool"),
                    "{{pool}} clean release",
                ),
                Target(
                    sum_rate("proxy_server_deallocated_statements_total", by="pool"),
                    "{{pool}} statement deallocated",
                ),
            ),
            "Server connections opened and closed, releases that reset a session left with "
            "state against those that needed no round trip, and prepared statements dropped "
            "from idle connections over max_prepared_statements.",
            unit="ops",
            width=24,
        ),
    )
    return Dashboard(
        uid=UID,
        title="dbsight / Proxy",
        description="The dbsight proxy: throughput, routing, replicas, breakers, result "
        "cache, rejections and server pools, from its admin port's /metrics.",
        items=items,
        variables=(
            Variable("service", "Proxy", "label_values(proxy_clients_accepted_total, job)"),
        ),
    )
