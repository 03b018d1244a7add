"""The database dashboard: statements by table and operation, their latency, the slow and
failing ones, N+1 findings, client pools and functions (docs/metrics.md's db_client_*).

Statements seen by the proxy are in the same families, so choosing the proxy's job here
shows what went through it."""

from __future__ import annotations

from ._model import Dashboard, Panel, Row, Target, Variable
from ._promql import ROUTE, quantile, ratio, selector, sum_rate

UID = "dbsight-database"

OPERATIONS = "db_client_operations_total"
ERRORS = "db_client_errors_total"
DURATION = "db_client_operation_duration_seconds"
SLOW = "db_client_slow_operations_total"
USED = 'state="used"'


def database_dashboard() -> Dashboard:
    items: tuple[Panel | Row, ...] = (
        Row("Statements"),
        Panel(
            "Statements by operation",
            (Target(sum_rate(OPERATIONS, by="operation"), "{{operation}}"),),
            "Statements per second by operation (select, insert, update, delete, ddl, tx, other).",
            unit="ops",
            stack=True,
        ),
        Panel(
            "Statements by table",
            (Target(sum_rate(OPERATIONS, by="table"), "{{table}}"),),
            "Statements per second by their first table (empty: none named).",
            unit="ops",
            stack=True,
        ),
        Panel(
            "Latency p95 by table and operation",
            (Target(quantile(0.95, DURATION, by="operation, table"), "{{operation}} {{table}}"),),
            "95th percentile of statement duration (buckets 0.5 ms to 10 s). A statement's "
            "own percentiles are in /metrics/summary.",
            unit="s",
        ),
        Panel(
            "Latency p99 by operation",
            (Target(quantile(0.99, DURATION, by="operation"), "{{operation}}"),),
            "99th percentile of statement duration by operation.",
            unit="s",
        ),
        Row("Slow statements, errors and N+1"),
        Panel(
            "Slow-query rate",
            (Target(sum_rate(SLOW, by="operation, table"), "{{operation}} {{table}}"),),
            "Statements at or over slow_query_threshold_ms per second.",
            unit="ops",
        ),
        Panel(
            "Slow share of statements",
            (Target(ratio(sum_rate(SLOW), sum_rate(OPERATIONS)), "slow"),),
            "Slow statements of all statements.",
            unit="percentunit",
            max=1,
        ),
        Panel(
            "Errors by table and operation",
            (
                Target(
                    sum_rate(OPERATIONS, 'outcome="error"', by="operation, table"),
                    "{{operation}} {{table}}",
                ),
            ),
            "Statements that failed, per second. The proxy's own answers by SQLSTATE are on "
            "the proxy dashboard.",
            unit="ops",
        ),
        Panel(
            "Errors by SQLSTATE",
            (
                Target(
                    sum_rate(ERRORS, by="sqlstate, operation, table"),
                    "{{sqlstate}} {{operation}} {{table}}",
                ),
            ),
            "Failed statements per second by the SQLSTATE the server sent (40P01 deadlock, "
            "40001 serialization failure, 23505 unique violation, class 53 out of resources "
            "...; unknown: the client gave none), with their operation and table.",
            unit="ops",
        ),
        Panel(
            "Errors by SQLSTATE class",
            (Target(sum_rate(ERRORS, by="error_class"), "class {{error_class}}"),),
            "Failed statements per second by SQLSTATE class: 23 integrity, 40 transaction "
            "rollback (deadlocks, serialization), 42 syntax or access, 53 resources, 57 "
            "operator intervention (timeouts, cancels), 08 connection.",
            unit="ops",
            stack=True,
        ),
        Panel(
            "N+1 findings by route",
            (Target(sum_rate("db_client_n_plus_one_total", ROUTE, by="route"), "{{route}}"),),
            "Requests where one statement ran once per row of an earlier one, per second.",
            unit="ops",
        ),
        Row("Connections and functions"),
        Panel(
            "Pool connections",
            (
                Target(
                    f"sum by (pool, state) ({selector('db_client_connections')})",
                    "{{pool}} {{state}}",
                ),
                Target(f"sum by (pool) ({selector('db_client_connections_max')})", "{{pool}} max"),
            ),
            "Connections of each client pool by state, and its configured maximum.",
            min=0,
        ),
        Panel(
            "Pool saturation",
            (
                Target(
                    ratio(
                        f"sum by (pool) ({selector('db_client_connections', USED)})",
                        f"sum by (pool) ({selector('db_client_connections_max')})",
                    ),
                    "{{pool}}",
                ),
            ),
            "Connections in use of each pool's maximum: at 100 % callers wait.",
            unit="percentunit",
            max=1,
        ),
        Panel(
            "Pool wait timeouts",
            (Target(sum_rate("db_client_pool_timeouts_total", by="pool"), "{{pool}}"),),
            "Callers per second that waited for a pool connection past the pool's timeout "
            "and got an error (asyncpg, SQLAlchemy queue pools, psycopg_pool).",
            unit="ops",
        ),
        Panel(
            "Queries per function call (p95)",
            (Target(quantile(0.95, "db_client_function_queries", by="function"), "{{function}}"),),
            "Statements one call of an observed function runs: a growing count is an N+1 "
            "in the making.",
        ),
        Panel(
            "Observer errors",
            (Target(sum_rate("dbsight_observer_errors_total", by="observer"), "{{observer}}"),),
            "Observer hooks that raised (the statements themselves were unaffected).",
            unit="ops",
            quiet="an observer hook must raise.",
        ),
        Panel(
            "Alert notifications",
            (
                Target(sum_rate("dbsight_notifications_total", by="receiver, outcome"),
                       "{{receiver}} {{outcome}}"),
                Target(sum_rate("dbsight_notifications_dropped_total"), "dropped"),
            ),  # fmt: skip
            "Notifications dbsight's notifier sent to each receiver, by outcome, and those "
            "dropped because a queue was full.",
            unit="ops",
            quiet="the notifier is off until a receiver is configured, then sends only when "
            "an alert fires or resolves.",
        ),
    )
    return Dashboard(
        uid=UID,
        title="dbsight / Database",
        description="Statements by table and operation, slow statements, errors, N+1 "
        "findings and client pools, as dbsight's instruments (and the proxy) see them.",
        items=items,
        variables=(
            Variable("service", "Service", f"label_values({OPERATIONS}, job)"),
            Variable(
                "route",
                "Route",
                'label_values(db_client_n_plus_one_total{job=~"$service"}, route)',
            ),
        ),
    )
