"""Input series for every alert, built from the alert's own threshold: one set that breaches
it and one that stays on the safe side. `_alert_promtool.unit_tests` turns them into
`promtool test rules` groups, computing which alerts of the same name must fire at each
evaluation from their thresholds and ``for:`` durations, so a new alert without a scenario
fails the suite.

Rates are constant slopes starting at 0, so a ratio of two rates (error ratios, hit ratios,
histogram quantiles, SLO ratios) holds its final value from the first evaluation at which two
samples exist (1 m). Absolute rates and increases grow until their window is full, so they
cross the threshold somewhere between 1 m and the window's length: those cases check "not
firing" before the earliest start plus ``for:`` and "firing" after the latest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dbsight.alerting import Alert, Thresholds
from dbsight.export._buckets import bucket_labels
from dbsight.export.client_metrics import EXTERNAL_API_DURATION_BUCKETS
from dbsight.export.http_metrics import HTTP_DURATION_BUCKETS
from dbsight.export.prometheus import DURATION_BUCKETS as DB_BUCKETS
from dbsight.instrument._decorator import DURATION_BUCKETS as FUNCTION_BUCKETS

JOB = "api"
STEP_S = 60  # one sample a minute, one evaluation a minute


@dataclass
class Case:
    series: list[tuple[str, str]]  # (series selector, promtool values notation)
    value: float  # the expression's value once it settled
    labels: dict[str, str]  # the alert's labels besides alertname and severity
    active_from: tuple[int, int] = (60, 60)  # earliest and latest second it starts to hold
    minutes: int = 0  # how long the series run (0: long enough for every check)
    applies: Callable[[Alert], bool] = field(default=lambda alert: True)


def holds(alert: Alert, value: float) -> bool:
    t = alert.threshold
    return {
        ">": value > t, ">=": value >= t, "<": value < t, "==": value == t,
    }[alert.comparison]  # fmt: skip


def _sel(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"


def counter(name: str, labels: dict[str, str], per_s: float, minutes: int) -> tuple[str, str]:
    return _sel(name, labels), f"0+{per_s * STEP_S:g}x{minutes}"


def gauge(name: str, labels: dict[str, str], value: float, minutes: int) -> tuple[str, str]:
    return _sel(name, labels), f"{value:g}x{minutes}"


def histogram(
    name: str, labels: dict[str, str], bounds: Sequence[float], per_s: dict[int, float],
    minutes: int,
) -> list[tuple[str, str]]:  # fmt: skip
    """Bucket series (and ``_count``) of observations per second falling into bucket slot
    ``i`` (``(bounds[i-1], bounds[i]]``)."""
    out = []
    for index, le in enumerate(bucket_labels(bounds)):
        below = sum(rate for slot, rate in per_s.items() if slot <= index)
        out.append(counter(f"{name}_bucket", {**labels, "le": le}, below, minutes))
    out.append(counter(f"{name}_count", labels, sum(per_s.values()), minutes))
    return out


def p95_slot(bounds: Sequence[float], threshold: float, above: bool) -> tuple[int, float]:
    """A bucket slot whose p95 (interpolated inside it) is above, or not above, ``threshold``,
    and that p95."""
    lows = (0.0, *bounds[:-1])
    slots = range(len(bounds))
    if above:
        slot = next(i for i in slots if lows[i] >= threshold)
    else:
        slot = max(i for i in slots if bounds[i] <= threshold)
    return slot, lows[slot] + 0.95 * (bounds[slot] - lows[slot])


def _rate_value(alert: Alert, breach: bool) -> float:
    """A rate (or increase) 25 % over the threshold, or 20 % under it (any, or none, for 0)."""
    t = alert.threshold
    if breach:
        return t * 1.25 if t > 0 else 1.0
    return t * 0.8


def _ratio_value(alert: Alert, breach: bool) -> float:
    """A ratio a tenth of the way from the threshold to 0 or 1: near enough that a threshold
    that moved shows, far enough from the other severities' thresholds."""
    t = alert.threshold
    step = min(t, 1 - t) * 0.1
    if alert.comparison in (">", ">="):
        return t + step if breach else t - step
    return t - step if breach else t + step


# -- one builder per alert name -----------------------------------------------------------


def _http_latency(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    slot, p95 = p95_slot(HTTP_DURATION_BUCKETS, alert.threshold, breach)
    labels = {"job": JOB, "method": "GET", "route": "/orders"}
    series = histogram("http_server_request_duration_seconds", labels, HTTP_DURATION_BUCKETS,
                       {slot: 4.0}, m)  # fmt: skip
    return Case(series, p95, {"job": JOB})


def _error_ratio(metric: str, ok: str, bad: str, extra: dict[str, str], out: dict[str, str]):
    def build(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
        ratio = _ratio_value(alert, breach)
        total = 10.0
        series = [
            counter(metric, {**extra, "status": bad}, total * ratio, m),
            counter(metric, {**extra, "status": ok}, total * (1 - ratio), m),
        ]
        return Case(series, ratio, out)

    return build


def _throughput(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    from dbsight.alerting._rules import parse_duration

    offset_min = parse_duration(t.throughput_offset) // 60
    drop_at = offset_min + 30  # the offset's windows are full by then
    before = max(2 * t.throughput_min_rps, 2.0)
    keep = alert.threshold
    ratio = _ratio_value(alert, breach)
    after = before * ratio
    total = drop_at + alert.for_s // 60 + 30
    first = f"0+{before * STEP_S:g}x{drop_at}"
    start = before * STEP_S * drop_at + after * STEP_S
    values = f"{first} {start:g}+{after * STEP_S:g}x{total - drop_at - 1}"
    labels = {"job": JOB, "method": "GET", "route": "/orders", "status": "200"}
    # the 10-minute windows mix the two rates for 10 minutes after the drop
    return Case([(_sel("http_server_requests_total", labels), values)], ratio, {"job": JOB},
                active_from=((drop_at + 1) * 60, (drop_at + 10) * 60), minutes=total)  # fmt: skip


def _active(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    value = alert.threshold * (1.1 if breach else 0.9)
    series = [
        gauge("http_server_active_requests", {"job": JOB, "method": method}, value / 2, m)
        for method in ("GET", "POST")
    ]
    return Case(series, value, {"job": JOB}, active_from=(0, 0))


def _external_latency(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    slot, p95 = p95_slot(EXTERNAL_API_DURATION_BUCKETS, alert.threshold, breach)
    labels = {"job": JOB, "service": "payments.example", "status": "200"}
    series = histogram("external_api_request_duration_seconds", labels,
                       EXTERNAL_API_DURATION_BUCKETS, {slot: 2.0}, m)  # fmt: skip
    return Case(series, p95, {"job": JOB, "service": "payments.example"})


def _external_errors(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    rate = _rate_value(alert, breach)
    series = [
        counter("external_api_requests_total",
                {"job": JOB, "service": "payments.example", "status": "error"}, rate, m),
        # plenty of successes: the ratio alert stays quiet, this one is about the rate
        counter("external_api_requests_total",
                {"job": JOB, "service": "payments.example", "status": "200"}, rate * 10 + 1, m),
    ]  # fmt: skip
    return Case(series, rate, {"job": JOB, "service": "payments.example"}, active_from=(60, 360))


def _cache(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    ratio = _ratio_value(alert, breach)
    labels = {"job": JOB, "backend": "redis", "operation": "get"}
    series = [
        counter("cache_operations_total", {**labels, "result": "hit"}, 10 * ratio, m),
        counter("cache_operations_total", {**labels, "result": "miss"}, 10 * (1 - ratio), m),
        # writes are neither hits nor misses: they must not dilute the ratio
        counter("cache_operations_total", {**labels, "operation": "set", "result": "ok"}, 50, m),
    ]
    return Case(series, ratio, {"job": JOB, "backend": "redis"})


def _target_down(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    job = t.target_jobs[0] if t.target_jobs else JOB
    labels = {"job": job, "instance": "127.0.0.1:8000"}
    value = 0.0 if breach else 1.0
    return Case([gauge("up", labels, value, m)], value, labels, active_from=(0, 0))


def _db_latency(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    slot, p95 = p95_slot(DB_BUCKETS, alert.threshold, breach)
    labels = {"job": JOB, "system": "postgresql", "operation": "select", "table": "orders"}
    series = histogram("db_client_operation_duration_seconds", labels, DB_BUCKETS,
                       {slot: 20.0}, m)  # fmt: skip
    return Case(series, p95, {"job": JOB, "system": "postgresql", "table": "orders"})


def _rate_alert(
    metric: str, labels: dict[str, str], keep: Sequence[str], window_s: int,
    split: bool = False, per_window: bool = False,
):  # fmt: skip
    """An alert on ``sum by (job, keep...) (rate(metric[window])) > threshold`` (or
    ``increase``, with ``per_window``)."""

    def build(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
        value = _rate_value(alert, breach)
        rate = value / window_s if per_window else value
        if split:  # two series that the sum must add up
            series = [
                counter(metric, {**labels, "instance": f"127.0.0.1:{port}"}, rate / 2, m)
                for port in (8000, 8001)
            ]
        else:
            series = [counter(metric, labels, rate, m)]
        return Case(series, value, {"job": JOB, **{k: labels[k] for k in keep}},
                    active_from=(60, window_s + 60))  # fmt: skip

    return build


def _db_errors(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    rate = _rate_value(alert, breach)
    labels = {"job": JOB, "system": "postgresql", "operation": "insert", "table": "orders"}
    series = [
        counter("db_client_operations_total", {**labels, "outcome": "error"}, rate, m),
        counter("db_client_operations_total", {**labels, "outcome": "ok"}, 100, m),
    ]
    return Case(series, rate, {"job": JOB, "system": "postgresql"}, active_from=(60, 360))


def _pool_ratio(used_metric: str, max_metric: str, pool: str, states: Sequence[str]):
    def build(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
        size = 20
        used = size * _ratio_value(alert, breach)
        series = [gauge(max_metric, {"job": JOB, "pool": pool}, size, m)]
        for state in states:
            value = used if state == "used" else size - used
            series.append(gauge(used_metric, {"job": JOB, "pool": pool, "state": state}, value, m))
        return Case(series, used / size, {"job": JOB, "pool": pool}, active_from=(0, 0))

    return build


def _function_slow(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    slot, p95 = p95_slot(FUNCTION_BUCKETS, alert.threshold, breach)
    labels = {"job": JOB, "function": "nightly_rollup"}
    series = histogram("db_client_function_duration_seconds", labels, FUNCTION_BUCKETS,
                       {slot: 0.5}, m)  # fmt: skip
    return Case(series, p95, labels)


def _client_errors(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    rate = _rate_value(alert, breach)
    # under the threshold on purpose: the resource alert (class 53) fires on any, this one
    # on a rate; each case breaches only its own alert
    labels = {"job": JOB, "sqlstate": "08006"}
    return Case([counter("proxy_client_errors_total", labels, rate, m)], rate, labels,
                active_from=(60, 360))  # fmt: skip


def _resource_errors(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    # 53300 never counts here (DbsightProxyPoolTimeouts covers it): a quiet case of it
    sqlstate = "53400" if breach else "53300"
    per_s = 0.01  # below DbsightProxyClientErrors' rate, so that one stays quiet
    series = [counter("proxy_client_errors_total", {"job": JOB, "sqlstate": sqlstate}, per_s, m)]
    return Case(series, 0.6 if breach else 0.0, {"job": JOB, "sqlstate": sqlstate})


def _gauge_alert(metric: str, labels: dict[str, str], keep: Sequence[str], quiet: float):
    def build(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
        if alert.comparison == ">":
            value = alert.threshold * (1.1 if breach else 0.9)
        else:
            value = alert.threshold if breach else quiet
        out = {"job": JOB, **{k: labels[k] for k in keep}}
        return Case([gauge(metric, labels, value, m)], value, out, active_from=(0, 0))

    return build


def _breaker(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
    server = "primary" if 'server="primary"' in alert.expr else "replica1"
    value = 1.0 if breach else 0.5  # half-open is not open
    labels = {"job": JOB, "server": server}
    return Case([gauge("proxy_breaker_open", labels, value, m)], value, labels,
                active_from=(0, 0),
                applies=lambda other: ('server="primary"' in other.expr)
                == (server == "primary"))  # fmt: skip


def _slo(kind: str):
    def build(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
        # 1.1 and 0.9 times: no multiple lands on another window's factor (1, 3, 6, 14.4)
        ratio = alert.threshold * (1.1 if breach else 0.9)
        labels = {"job": JOB, "method": "GET", "route": "/orders"}
        if kind == "availability":
            series = [
                counter("http_server_requests_total", {**labels, "status": "500"}, 10 * ratio, m),
                counter("http_server_requests_total", {**labels, "status": "200"},
                        10 * (1 - ratio), m),
            ]  # fmt: skip
        else:
            fast = HTTP_DURATION_BUCKETS.index(t.slo_latency_s)
            series = histogram("http_server_request_duration_seconds", labels,
                               HTTP_DURATION_BUCKETS,
                               {fast: 10 * (1 - ratio), fast + 1: 10 * ratio}, m)  # fmt: skip
        return Case(series, ratio, {"job": JOB})

    return build


# the labels of a failed statement in db_client_errors_total (with its sqlstate and class)
_FAILED = {"job": JOB, "system": "postgresql", "operation": "update", "table": "accounts"}


def _by_sqlstate(sqlstate: str, keep: Sequence[str], split: bool = False,
                 per_window: bool = False):  # fmt: skip
    """An alert on the failed statements of one SQLSTATE (or its class): its series around
    the threshold, beside many errors of another class that must not count."""
    labels = {**_FAILED, "sqlstate": sqlstate, "error_class": sqlstate[:2]}
    build_own = _rate_alert("db_client_errors_total", labels, keep, 300, split, per_window)

    def build(alert: Alert, t: Thresholds, breach: bool, m: int) -> Case:
        case = build_own(alert, t, breach, m)
        noise = {**_FAILED, "sqlstate": "23505", "error_class": "23"}
        case.series.append(counter("db_client_errors_total", noise, 5.0, m))
        return case

    return build


BUILDERS: dict[str, Callable[[Alert, Thresholds, bool, int], Case]] = {
    "DbsightHTTPLatencyHigh": _http_latency,
    "DbsightHTTPErrorRateHigh": _error_ratio(
        "http_server_requests_total", "200", "503",
        {"job": JOB, "method": "GET", "route": "/orders"}, {"job": JOB}),
    "DbsightHTTPThroughputDrop": _throughput,
    "DbsightHTTPActiveRequestsHigh": _active,
    "DbsightExternalAPILatencyHigh": _external_latency,
    "DbsightExternalAPIFailing": _error_ratio(
        "external_api_requests_total", "200", "error",
        {"job": JOB, "service": "payments.example"}, {"job": JOB, "service": "payments.example"}),
    "DbsightExternalAPIErrors": _external_errors,
    "DbsightCacheHitRatioLow": _cache,
    "DbsightTargetDown": _target_down,
    "DbsightDatabaseLatencyHigh": _db_latency,
    "DbsightSlowQueriesFrequent": _rate_alert(
        "db_client_slow_operations_total",
        {"job": JOB, "system": "postgresql", "operation": "select", "table": "orders"},
        ("system",), 300, split=True),
    "DbsightDatabaseErrors": _db_errors,
    "DbsightDatabaseDeadlocks": _by_sqlstate("40P01", ("system",), per_window=True),
    "DbsightDatabaseSerializationFailures": _by_sqlstate("40001", ("system",), split=True),
    "DbsightDatabaseResourceErrors": _by_sqlstate("53100", ("system", "sqlstate"),
                                                  per_window=True),
    "DbsightClientPoolTimeouts": _rate_alert(
        "db_client_pool_timeouts_total", {"job": JOB, "pool": "asyncpg"}, ("pool",), 300,
        per_window=True),
    "DbsightNPlusOneQueries": _rate_alert(
        "db_client_n_plus_one_total", {"job": JOB, "route": "/orders"}, ("route",), 600),
    "DbsightClientPoolSaturated": _pool_ratio(
        "db_client_connections", "db_client_connections_max", "asyncpg", ("used", "idle")),
    "DbsightBackgroundWorkFailing": _rate_alert(
        "db_client_function_errors_total", {"job": JOB, "function": "nightly_rollup"},
        ("function",), 600, per_window=True),
    "DbsightBackgroundWorkSlow": _function_slow,
    "DbsightProxyPoolSaturated": _pool_ratio(
        "proxy_server_connections", "proxy_pool_max_size", "app@shop",
        ("used", "idle", "connecting")),
    "DbsightProxyPoolTimeouts": _rate_alert(
        "proxy_pool_timeouts_total", {"job": JOB, "pool": "app@shop"}, ("pool",), 300,
        per_window=True),
    "DbsightProxyResourceErrors": _resource_errors,
    "DbsightProxyClientErrors": _client_errors,
    "DbsightProxyRejections": _rate_alert(
        "proxy_rejected_total", {"job": JOB, "reason": "max_clients"}, ("reason",), 300),
    "DbsightReplicaLagHigh": _gauge_alert(
        "proxy_replica_lag_seconds", {"job": JOB, "server": "replica1"}, ("server",), 0.0),
    "DbsightReplicaOutOfRotation": _gauge_alert(
        "proxy_backend_in_rotation", {"job": JOB, "server": "replica1", "role": "replica"},
        ("server",), 1.0),
    "DbsightProxyBreakerOpen": _breaker,
    "DbsightHTTPAvailabilityBudgetBurn": _slo("availability"),
    "DbsightHTTPLatencyBudgetBurn": _slo("latency"),
}  # fmt: skip


