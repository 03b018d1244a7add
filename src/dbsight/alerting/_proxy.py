"""Alerts on the dbsight proxy (``proxy_*``): its pools, the errors it answers clients with,
its request pipeline, and the replicas and breakers of its servers."""

from __future__ import annotations

from ._promql import events_sum, increase_sum, rate_sum, ratio, value
from ._rules import Alert, RuleGroup, paged_and_warned
from ._thresholds import Thresholds


def proxy_rules(t: Thresholds) -> tuple[RuleGroup, ...]:
    return (
        RuleGroup(
            "dbsight-proxy",
            (
                _pool(t), _timeouts(t), _resources(t), _client_errors(t), _rejections(t),
                _lag(t), _out_of_rotation(t), *_breaker(t),
            ),  # fmt: skip
        ),
    )


def _pool(t: Thresholds) -> Alert:
    s = t.service_label
    used = ratio(
        f'sum by ({s}, pool) (proxy_server_connections{{state="used"}})',
        f"sum by ({s}, pool) (proxy_pool_max_size)",
    )
    return Alert(
        name="DbsightProxyPoolSaturated",
        expr=f"{used} >= {value(t.pool_saturation)}",
        for_s=300,
        severity="warning",
        summary="Proxy pool {{ $labels.pool }} is nearly exhausted",
        description=(
            "{{ $value | humanizePercentage }} of the server connections of proxy pool "
            f"{{{{ $labels.pool }}}} ({{{{ $labels.{s} }}}}) have been in use for 5 minutes: "
            "clients start waiting for one."
        ),
        runbook="dbsightproxypoolsaturated",
        threshold=t.pool_saturation,
        comparison=">=",
        unit="ratio",
    )


def _timeouts(t: Thresholds) -> Alert:
    s = t.service_label
    expr = increase_sum("proxy_pool_timeouts_total", (s, "pool"), "5m")
    return Alert(
        name="DbsightProxyPoolTimeouts",
        expr=f"{expr} > {value(t.pool_timeouts_per_5m)}",
        for_s=60,
        severity="warning",
        summary="Clients of proxy pool {{ $labels.pool }} time out waiting (53300)",
        description=(
            "{{ $value | humanize }} clients of pool {{ $labels.pool }} "
            f"({{{{ $labels.{s} }}}}) waited longer than the pool's wait timeout in the last "
            "5 minutes and got SQLSTATE 53300."
        ),
        runbook="dbsightproxypooltimeouts",
        threshold=t.pool_timeouts_per_5m,
        comparison=">",
    )


def _resources(t: Thresholds) -> Alert:
    s = t.service_label
    # 53300 has an alert of its own (above), per pool
    selector = 'sqlstate=~"53...", sqlstate!="53300"'
    expr = events_sum("proxy_client_errors_total", (s, "sqlstate"), "5m", selector)
    return Alert(
        name="DbsightProxyResourceErrors",
        expr=f"{expr} > 0",
        for_s=60,
        severity="warning",
        summary="The proxy refuses clients for lack of resources ({{ $labels.sqlstate }})",
        description=(
            "The proxy of {{ $labels." + s + " }} answered {{ $value | humanize }} clients with "
            "SQLSTATE {{ $labels.sqlstate }} (class 53, insufficient resources) in the last "
            "5 minutes."
        ),
        runbook="dbsightproxyresourceerrors",
        threshold=0,
        comparison=">",
    )


def _client_errors(t: Thresholds) -> Alert:
    s = t.service_label
    expr = rate_sum("proxy_client_errors_total", (s, "sqlstate"), "5m")
    return Alert(
        name="DbsightProxyClientErrors",
        expr=f"{expr} > {value(t.client_errors_per_s)}",
        for_s=300,
        severity="warning",
        summary="The proxy answers clients with SQLSTATE {{ $labels.sqlstate }}",
        description=(
            "The proxy of {{ $labels." + s + " }} answered {{ $value | humanize }} clients "
            "per second with SQLSTATE {{ $labels.sqlstate }} over the last 5 minutes."
        ),
        runbook="dbsightproxyclienterrors",
        threshold=t.client_errors_per_s,
        comparison=">",
        unit="/s",
    )


def _rejections(t: Thresholds) -> Alert:
    s = t.service_label
    expr = rate_sum("proxy_rejected_total", (s, "reason"), "5m")
    return Alert(
        name="DbsightProxyRejections",
        expr=f"{expr} > {value(t.rejections_per_s)}",
        for_s=300,
        severity="warning",
        summary="The proxy rejects clients or statements ({{ $labels.reason }})",
        description=(
            "The request pipeline of the proxy of {{ $labels." + s + " }} rejected "
            "{{ $value | humanize }} clients or statements per second for "
            "{{ $labels.reason }} over the last 5 minutes."
        ),
        runbook="dbsightproxyrejections",
        threshold=t.rejections_per_s,
        comparison=">",
        unit="/s",
    )


def _lag(t: Thresholds) -> Alert:
    s = t.service_label
    return Alert(
        name="DbsightReplicaLagHigh",
        expr=f"max by ({s}, server) (proxy_replica_lag_seconds) > {value(t.replica_lag_s)}",
        for_s=120,
        severity="warning",
        summary="Replica {{ $labels.server }} is over " + value(t.replica_lag_s) + " s behind",
        description=(
            "Replica {{ $labels.server }} of the proxy of {{ $labels." + s + " }} has replayed "
            "the primary's changes {{ $value | humanizeDuration }} late for 2 minutes."
        ),
        runbook="dbsightreplicalaghigh",
        threshold=t.replica_lag_s,
        comparison=">",
        unit="s",
    )


def _out_of_rotation(t: Thresholds) -> Alert:
    s = t.service_label
    return Alert(
        name="DbsightReplicaOutOfRotation",
        expr=f'max by ({s}, server) (proxy_backend_in_rotation{{role="replica"}}) == 0',
        for_s=300,
        severity="warning",
        summary="Replica {{ $labels.server }} takes no reads",
        description=(
            "The proxy of {{ $labels." + s + " }} has kept replica {{ $labels.server }} out of "
            "rotation for 5 minutes (down or lagging): its reads go to the other servers."
        ),
        runbook="dbsightreplicaoutofrotation",
        threshold=0,
        comparison="==",
    )


def _breaker(t: Thresholds) -> tuple[Alert, ...]:
    s = t.service_label
    return tuple(
        Alert(
            name="DbsightProxyBreakerOpen",
            expr=f"max by ({s}, server) (proxy_breaker_open{{{selector}}}) == 1",
            for_s=60,
            severity=severity,
            summary="The proxy's circuit breaker to {{ $labels.server }} is open",
            description=(
                "The proxy of {{ $labels." + s + " }} has stopped sending work to "
                "{{ $labels.server }} for a minute after repeated connection failures."
            ),
            runbook="dbsightproxybreakeropen",
            threshold=1,
            comparison="==",
        )
        # the primary's breaker refuses every client (57P03); a replica's only moves its reads
        for severity, selector in paged_and_warned(
            'server="primary"', 'server!="primary"'
        )
    )
