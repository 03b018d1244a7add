"""Seed 002's alerts on the service's HTTP server, its external APIs, its cache and its
scrape target, on dbsight's families (``http_server_*``, ``external_api_*``,
``cache_operations_total``, ``up``)."""

from __future__ import annotations

from ._promql import p95, percent, rate_sum, ratio, value
from ._rules import Alert, RuleGroup, paged_and_warned
from ._thresholds import Thresholds


def http_rules(t: Thresholds) -> tuple[RuleGroup, ...]:
    return (
        RuleGroup("dbsight-http", (*_latency(t), *_errors(t), _throughput(t), _active(t))),
        RuleGroup("dbsight-dependencies", (*_external(t), *_cache(t), _target_down(t))),
    )


def _latency(t: Thresholds) -> tuple[Alert, ...]:
    s = t.service_label
    expr = p95("http_server_request_duration_seconds", (s,), "5m")
    return tuple(
        Alert(
            name="DbsightHTTPLatencyHigh",
            expr=f"{expr} > {value(threshold)}",
            for_s=300,
            severity=severity,
            summary=f"HTTP p95 latency of {{{{ $labels.{s} }}}} is over {value(threshold)} s",
            description=(
                f"95 % of the requests {{{{ $labels.{s} }}}} served in the last 5 minutes took "
                f"up to {{{{ $value | humanizeDuration }}}} (threshold {value(threshold)} s)."
            ),
            runbook="dbsighthttplatencyhigh",
            threshold=threshold,
            comparison=">",
            unit="s",
        )
        for severity, threshold in paged_and_warned(
            t.http_latency_p95_critical_s, t.http_latency_p95_warning_s
        )
    )


def _errors(t: Thresholds) -> tuple[Alert, ...]:
    s = t.service_label
    expr = ratio(
        rate_sum("http_server_requests_total", (s,), "5m", 'status=~"5.."'),
        rate_sum("http_server_requests_total", (s,), "5m"),
    )
    return tuple(
        Alert(
            name="DbsightHTTPErrorRateHigh",
            expr=f"{expr} > {value(threshold)}",
            for_s=300,
            severity=severity,
            summary=f"{{{{ $labels.{s} }}}} answers over {percent(threshold)} of requests with 5xx",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the requests {{{{ $labels.{s} }}}} "
                f"served in the last 5 minutes got a 5xx status (threshold {percent(threshold)})."
            ),
            runbook="dbsighthttperrorratehigh",
            threshold=threshold,
            comparison=">",
            unit="ratio",
        )
        for severity, threshold in paged_and_warned(
            t.http_error_ratio_critical, t.http_error_ratio_warning
        )
    )


def _throughput(t: Thresholds) -> Alert:
    s = t.service_label
    offset = t.throughput_offset
    now = rate_sum("http_server_requests_total", (s,), "10m")
    then = f"sum by ({s}) (rate(http_server_requests_total[10m] offset {offset}))"
    keep = 1 - t.throughput_drop
    return Alert(
        name="DbsightHTTPThroughputDrop",
        # the ratio is the alert's value; `and` keeps quiet services (and the first day) out
        expr=f"{ratio(now, then)} < {value(keep)}\nand\n  {then} > {value(t.throughput_min_rps)}",
        for_s=900,
        severity="info",
        summary=f"Traffic of {{{{ $labels.{s} }}}} fell by over {percent(t.throughput_drop)}",
        description=(
            f"{{{{ $labels.{s} }}}} served {{{{ $value | humanizePercentage }}}} of the requests "
            f"per second it served {offset} earlier, over the last 10 minutes."
        ),
        runbook="dbsighthttpthroughputdrop",
        threshold=keep,
        comparison="<",
        unit="ratio",
    )


def _active(t: Thresholds) -> Alert:
    s = t.service_label
    return Alert(
        name="DbsightHTTPActiveRequestsHigh",
        expr=f"sum by ({s}) (http_server_active_requests) > {value(t.active_requests)}",
        for_s=300,
        severity="info",
        summary=f"{{{{ $labels.{s} }}}} has over {value(t.active_requests)} requests in progress",
        description=(
            f"{{{{ $value }}}} requests have been in progress at {{{{ $labels.{s} }}}} for "
            "5 minutes: they queue behind something slow or the service is under-provisioned."
        ),
        runbook="dbsighthttpactiverequestshigh",
        threshold=t.active_requests,
        comparison=">",
    )


def _external(t: Thresholds) -> tuple[Alert, ...]:
    s = t.service_label
    latency = p95("external_api_request_duration_seconds", (s, "service"), "5m")
    errors = 'status=~"error|5.."'
    alerts = [
        Alert(
            name="DbsightExternalAPILatencyHigh",
            expr=f"{latency} > {value(threshold)}",
            for_s=300,
            severity=severity,
            summary=(
                f"Calls from {{{{ $labels.{s} }}}} to {{{{ $labels.service }}}} are slow "
                f"(p95 over {value(threshold)} s)"
            ),
            description=(
                f"95 % of the calls {{{{ $labels.{s} }}}} made to {{{{ $labels.service }}}} in "
                f"the last 5 minutes took up to {{{{ $value | humanizeDuration }}}}."
            ),
            runbook="dbsightexternalapilatencyhigh",
            threshold=threshold,
            comparison=">",
            unit="s",
        )
        for severity, threshold in paged_and_warned(
            t.external_latency_p95_critical_s, t.external_latency_p95_warning_s
        )
    ]
    failing = ratio(
        rate_sum("external_api_requests_total", (s, "service"), "5m", errors),
        rate_sum("external_api_requests_total", (s, "service"), "5m"),
    )
    alerts.append(
        Alert(
            name="DbsightExternalAPIFailing",
            expr=f"{failing} > {value(t.external_error_ratio_critical)}",
            for_s=300,
            severity="critical",
            summary=f"{{{{ $labels.service }}}} fails most calls from {{{{ $labels.{s} }}}}",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the calls {{{{ $labels.{s} }}}} made "
                "to {{ $labels.service }} in the last 5 minutes got a 5xx or no answer."
            ),
            runbook="dbsightexternalapifailing",
            threshold=t.external_error_ratio_critical,
            comparison=">",
            unit="ratio",
        )
    )
    alerts.append(
        Alert(
            name="DbsightExternalAPIErrors",
            expr=(
                f"{rate_sum('external_api_requests_total', (s, 'service'), '5m', errors)}"
                f" > {value(t.external_errors_per_s_warning)}"
            ),
            for_s=300,
            severity="warning",
            summary=f"Calls from {{{{ $labels.{s} }}}} to {{{{ $labels.service }}}} fail",
            description=(
                f"{{{{ $labels.{s} }}}} got {{{{ $value | humanize }}}} failed calls per second "
                "from {{ $labels.service }} (5xx or no answer) over the last 5 minutes."
            ),
            runbook="dbsightexternalapierrors",
            threshold=t.external_errors_per_s_warning,
            comparison=">",
            unit="/s",
        )
    )
    return tuple(alerts)


def _cache(t: Thresholds) -> tuple[Alert, ...]:
    s = t.service_label
    hit_ratio = ratio(
        rate_sum("cache_operations_total", (s, "backend"), "10m", 'result="hit"'),
        rate_sum("cache_operations_total", (s, "backend"), "10m", 'result=~"hit|miss"'),
    )
    return tuple(
        Alert(
            name="DbsightCacheHitRatioLow",
            expr=f"{hit_ratio} < {value(threshold)}",
            for_s=600,
            severity=severity,
            summary=f"Cache hit ratio of {{{{ $labels.{s} }}}} is under {percent(threshold)}",
            description=(
                f"Only {{{{ $value | humanizePercentage }}}} of the key lookups "
                f"{{{{ $labels.{s} }}}} made in {{{{ $labels.backend }}}} over the last 10 "
                "minutes were hits."
            ),
            runbook="dbsightcachehitratiolow",
            threshold=threshold,
            comparison="<",
            unit="ratio",
        )
        for severity, threshold in paged_and_warned(
            t.cache_hit_ratio_critical, t.cache_hit_ratio_warning
        )
    )


def _target_down(t: Thresholds) -> Alert:
    selector = f'{{job=~"{"|".join(t.target_jobs)}"}}' if t.target_jobs else ""
    return Alert(
        name="DbsightTargetDown",
        expr=f"up{selector} == 0",
        for_s=300,
        severity="critical",
        summary="{{ $labels.job }} target {{ $labels.instance }} is not reporting",
        description=(
            "Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) "
            "for 5 minutes: the service or the proxy is down, or its metrics endpoint is "
            "unreachable."
        ),
        runbook="dbsighttargetdown",
        threshold=0,
        comparison="==",
    )

