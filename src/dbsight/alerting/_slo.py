"""Service level objectives on the HTTP server, alerted on as the Google SRE workbook's
multi-window, multi-burn-rate alerts (chapter "Alerting on SLOs", table 5-8).

The error budget is ``1 - objective``. A burn rate of 1 spends it exactly over 30 days;
each alert fires when both its long window and its short window (1/12 of the long one, so
the alert stops soon after the burning does) spend it faster than its factor:

=========  ============  ======  ====================================
burn rate  long / short  action  budget spent when it fires
=========  ============  ======  ====================================
14.4       1 h / 5 m     page    2 % in an hour
6          6 h / 30 m    page    5 % in six hours
3          1 d / 2 h     ticket  10 % in a day
1          3 d / 6 h     ticket  10 % in three days
=========  ============  ======  ====================================

Availability counts 5xx answers as bad; latency counts requests slower than
``slo_latency_ms`` (a bucket bound of ``http_server_request_duration_seconds``) as bad. The
ratios are recording rules over every window, in the same group as the alerts that read them
(rules of a group run in order, so an alert sees the ratios of its own evaluation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..export._buckets import bucket_labels
from ..export.http_metrics import HTTP_DURATION_BUCKETS
from ._promql import percent, rate_sum, ratio, value
from ._rules import Alert, RecordingRule, RuleGroup, Severity, duration_text
from ._thresholds import Thresholds

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


class BurnWindow(NamedTuple):
    factor: float
    long: str
    short: str
    severity: Severity
    for_s: int


BURN_WINDOWS = (
    BurnWindow(14.4, "1h", "5m", "critical", 120),
    BurnWindow(6, "6h", "30m", "critical", 900),
    BurnWindow(3, "1d", "2h", "warning", 3600),
    BurnWindow(1, "3d", "6h", "warning", 10800),
)


def errors_record(window: str) -> str:
    return f"dbsight:http_errors:ratio_rate{window}"


def slow_record(window: str) -> str:
    return f"dbsight:http_slow:ratio_rate{window}"


def slo_rules(t: Thresholds) -> tuple[RuleGroup, ...]:
    return (_availability(t), _latency(t))


def _availability(t: Thresholds) -> RuleGroup:
    s = t.service_label
    records = tuple(
        RecordingRule(
            errors_record(w),
            ratio(
                rate_sum("http_server_requests_total", (s,), w, 'status=~"5.."'),
                rate_sum("http_server_requests_total", (s,), w),
            ),
        )
        for w in WINDOWS
    )
    objective = percent(t.slo_availability)
    alerts = _burn_alerts(
        t,
        name="DbsightHTTPAvailabilityBudgetBurn",
        record=errors_record,
        budget=1 - t.slo_availability,
        summary=(
            f"{{{{ $labels.{s} }}}} burns its availability error budget ({objective} objective)"
        ),
        bad="answered with a 5xx",
        runbook="dbsighthttpavailabilitybudgetburn",
    )
    return RuleGroup("dbsight-slo-availability", (*records, *alerts))


def _latency(t: Thresholds) -> RuleGroup:
    s = t.service_label
    le = bucket_labels(HTTP_DURATION_BUCKETS)[_bucket_index(t.slo_latency_s)]
    records = tuple(
        RecordingRule(
            slow_record(w),
            "1 - "
            + ratio(
                rate_sum("http_server_request_duration_seconds_bucket", (s,), w, f'le="{le}"'),
                rate_sum("http_server_request_duration_seconds_count", (s,), w),
            ),
        )
        for w in WINDOWS
    )
    target = percent(t.slo_latency_target)
    alerts = _burn_alerts(
        t,
        name="DbsightHTTPLatencyBudgetBurn",
        record=slow_record,
        budget=1 - t.slo_latency_target,
        summary=(
            f"{{{{ $labels.{s} }}}} burns its latency error budget ({target} of requests "
            f"within {t.slo_latency_ms:g} ms)"
        ),
        bad=f"slower than {t.slo_latency_ms:g} ms",
        runbook="dbsighthttplatencybudgetburn",
    )
    return RuleGroup("dbsight-slo-latency", (*records, *alerts))


def _burn_alerts(
    t: Thresholds,
    *,
    name: str,
    record: Callable[[str], str],
    budget: float,
    summary: str,
    bad: str,
    runbook: str,
) -> tuple[Alert, ...]:
    s = t.service_label
    alerts = []
    for window in BURN_WINDOWS:
        threshold = window.factor * budget
        limit = value(threshold)
        alerts.append(
            Alert(
                name=name,
                expr=f"{record(window.long)} > {limit}\nand\n{record(window.short)} > {limit}",
                for_s=window.for_s,
                severity=window.severity,
                summary=summary,
                description=(
                    f"{{{{ $value | humanizePercentage }}}} of the requests to "
                    f"{{{{ $labels.{s} }}}} in the last {window.long} were {bad}: "
                    f"{window.factor:g} times the error budget's rate "
                    f"({budget:.4g} of requests), also over the last {window.short}. At this "
                    f"rate the 30-day budget lasts {_lasts(window.factor)}."
                ),
                runbook=runbook,
                threshold=threshold,
                comparison=">",
                unit="ratio",
                labels={"window": window.long},
            )
        )
    return tuple(alerts)


def _lasts(factor: float) -> str:
    return duration_text(int(30 * 86400 / factor))


def _bucket_index(seconds: float) -> int:
    for index, bound in enumerate(HTTP_DURATION_BUCKETS):
        if abs(bound - seconds) < 1e-9:
            return index
    raise ValueError(f"{seconds} s is not a bucket bound")  # Thresholds refuses it first
