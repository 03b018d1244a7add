"""The service overview: the panels of a web service's health (requests, latency,
errors, load, its database, external APIs, cache and background work), plus the cache's
latency, from the families an instrumented service exposes (docs/metrics.md)."""

from __future__ import annotations

from ._model import Dashboard, Panel, Row, Target, Variable
from ._promql import ROUTE, quantile, ratio, sum_rate

UID = "dbsight-service"

REQUESTS = "http_server_requests_total"
REQUEST_DURATION = "http_server_request_duration_seconds"


def _latency_targets(histogram: str, *matchers: str, by: str = "") -> tuple[Target, ...]:
    suffix = f" {{{{{by}}}}}" if by else ""
    return tuple(
        Target(quantile(q, histogram, *matchers, by=by), f"p{int(q * 100)}{suffix}")
        for q in (0.5, 0.95, 0.99)
    )


def service_dashboard() -> Dashboard:
    items: tuple[Panel | Row, ...] = (
        Row("Requests"),
        Panel(
            "Request rate",
            (Target(sum_rate(REQUESTS, ROUTE, by="route"), "{{route}}"),),
            "Requests served per second, by route template.",
            unit="reqps",
            stack=True,
        ),
        Panel(
            "Request latency (p50 / p95 / p99)",
            _latency_targets(REQUEST_DURATION, ROUTE),
            "Time until the response was sent, quantiles over the duration buckets (5 ms "
            "to 30 s) of the selected routes.",
            unit="s",
        ),
        Panel(
            "Error rate (5xx)",
            (
                Target(
                    ratio(
                        sum_rate(REQUESTS, ROUTE, 'status=~"5.."', by="route"),
                        sum_rate(REQUESTS, ROUTE, by="route"),
                    ),
                    "{{route}}",
                ),
            ),
            "Share of each route's requests answered with a 5xx status.",
            unit="percentunit",
        ),
        Panel(
            "Active requests",
            (
                Target(
                    'sum by (method) (http_server_active_requests{job=~"$service"})', "{{method}}"
                ),
            ),
            "Requests in progress, by method: a queue building up shows here first.",
            stack=True,
        ),
        Row("Database"),
        Panel(
            "Database latency (p50 / p95 / p99)",
            _latency_targets("db_client_operation_duration_seconds"),
            "Statement duration as the client saw it, over every instrumented database "
            "client; the database dashboard splits it by table and operation.",
            unit="s",
        ),
        Panel(
            "Share of request time in the database",
            (
                Target(
                    ratio(
                        sum_rate("http_server_request_db_seconds_total", ROUTE, by="route"),
                        sum_rate(f"{REQUEST_DURATION}_sum", ROUTE, by="route"),
                    ),
                    "{{route}}",
                ),
            ),
            "Time each route's requests spent in database statements, as a share of their "
            "duration: near 100 % the database is the route's latency.",
            unit="percentunit",
        ),
        Panel(
            "Slow queries",
            (
                Target(
                    sum_rate("db_client_slow_operations_total", by="operation, table"),
                    "{{operation}} {{table}}",
                ),
            ),
            "Statements at or over slow_query_threshold_ms per second, by operation and "
            "table. Which statements: dbsight top, or /metrics/summary.",
            unit="ops",
        ),
        Row("External APIs"),
        Panel(
            "External API latency (p95)",
            (
                Target(
                    quantile(0.95, "external_api_request_duration_seconds", by="service"),
                    "{{service}}",
                ),
            ),
            "Duration of calls through instrumented httpx clients, by external service.",
            unit="s",
        ),
        Panel(
            "External API errors",
            (
                Target(
                    sum_rate(
                        "external_api_requests_total",
                        'status=~"error|4..|5.."',
                        by="service, status",
                    ),
                    "{{service}} {{status}}",
                ),
            ),
            "Calls answered 4xx/5xx, or with no response at all (status error), per second.",
            unit="reqps",
        ),
        Row("Cache"),
        Panel(
            "Cache hit ratio",
            (
                Target(
                    ratio(
                        sum_rate("cache_operations_total", 'result="hit"', by="backend"),
                        sum_rate("cache_operations_total", 'result=~"hit|miss"', by="backend"),
                    ),
                    "{{backend}}",
                ),
            ),
            "Key lookups that hit, of those that hit or missed, by cache backend.",
            unit="percentunit",
            max=1,
            width=8,
        ),
        Panel(
            "Cache operations",
            (
                Target(
                    sum_rate("cache_operations_total", by="operation, result"),
                    "{{operation}} {{result}}",
                ),
            ),
            "Cache commands per second by operation and result (hit, miss, ok, error).",
            unit="ops",
            stack=True,
            width=8,
        ),
        Panel(
            "Cache latency (p95)",
            (
                Target(
                    quantile(0.95, "cache_operation_duration_seconds", by="operation"),
                    "{{operation}}",
                ),
            ),
            "Duration of cache commands as the client saw them (buckets 0.1 ms to 2.5 s).",
            unit="s",
            width=8,
        ),
        Row("Background work"),
        Panel(
            "Background work duration (p95)",
            (
                Target(
                    quantile(0.95, "db_client_function_duration_seconds", by="function"),
                    "{{function}}",
                ),
            ),
            "Duration of functions observed with @db_observer or ObservableRepository.",
            unit="s",
        ),
        Panel(
            "Background work errors",
            (Target(sum_rate("db_client_function_errors_total", by="function"), "{{function}}"),),
            "Calls of observed functions that raised, per second.",
            unit="ops",
        ),
    )
    return Dashboard(
        uid=UID,
        title="dbsight / Service overview",
        description="A service instrumented with dbsight: requests, latency, errors, its "
        "database, external APIs, cache and background work.",
        items=items,
        variables=(
            Variable("service", "Service", f"label_values({REQUESTS}, job)"),
            Variable("route", "Route", f'label_values({REQUESTS}{{job=~"$service"}}, route)'),
        ),
    )
