"""Alerts on the statements the service runs (``db_client_*``: latency, errors, and the
errors by SQLSTATE that need a person: deadlocks, serialization failures, the server out of
resources), its connection pools and the background work observed with ``@db_observer``
(``db_client_function_*``). The proxy's statements are in the same families, so these
alerts cover what goes through it too."""

from __future__ import annotations

from ._promql import events_sum, increase_sum, p95, rate_sum, ratio, value
from ._rules import Alert, RuleGroup
from ._thresholds import Thresholds


def database_rules(t: Thresholds) -> tuple[RuleGroup, ...]:
    return (
        RuleGroup(
            "dbsight-database",
            (
                _slow_p95(t), _slow_rate(t), _errors(t), _deadlocks(t), _serialization(t),
                _resources(t), _n_plus_one(t), _pool(t), _pool_timeouts(t),
            ),  # fmt: skip
        ),
        RuleGroup("dbsight-background-work", (_function_errors(t), _function_long(t))),
    )


def _slow_p95(t: Thresholds) -> Alert:
    s = t.service_label
    expr = p95("db_client_operation_duration_seconds", (s, "system", "table"), "5m")
    return Alert(
        name="DbsightDatabaseLatencyHigh",
        expr=f"{expr} > {value(t.db_latency_p95_s)}",
        for_s=600,
        severity="warning",
        summary=(
            f"Statements of {{{{ $labels.{s} }}}} on {{{{ $labels.table }}}} are slow "
            f"(p95 over {t.db_latency_p95_s * 1000:g} ms)"
        ),
        description=(
            f"95 % of the {{{{ $labels.system }}}} statements {{{{ $labels.{s} }}}} ran on "
            "table {{ $labels.table }} in the last 5 minutes took up to "
            "{{ $value | humanizeDuration }}."
        ),
        runbook="dbsightdatabaselatencyhigh",
        threshold=t.db_latency_p95_s,
        comparison=">",
        unit="s",
    )


def _slow_rate(t: Thresholds) -> Alert:
    s = t.service_label
    expr = rate_sum("db_client_slow_operations_total", (s, "system"), "5m")
    return Alert(
        name="DbsightSlowQueriesFrequent",
        expr=f"{expr} > {value(t.slow_queries_per_s)}",
        for_s=600,
        severity="warning",
        summary=f"{{{{ $labels.{s} }}}} runs many slow statements",
        description=(
            f"{{{{ $labels.{s} }}}} ran {{{{ $value | humanize }}}} {{{{ $labels.system }}}} "
            "statements per second at or over its slow_query_threshold_ms over the last "
            "5 minutes."
        ),
        runbook="dbsightslowqueriesfrequent",
        threshold=t.slow_queries_per_s,
        comparison=">",
        unit="/s",
    )


def _errors(t: Thresholds) -> Alert:
    s = t.service_label
    expr = rate_sum("db_client_operations_total", (s, "system"), "5m", 'outcome="error"')
    return Alert(
        name="DbsightDatabaseErrors",
        expr=f"{expr} > {value(t.db_errors_per_s)}",
        for_s=300,
        severity="info",
        summary=f"Statements of {{{{ $labels.{s} }}}} fail",
        description=(
            f"{{{{ $value | humanize }}}} {{{{ $labels.system }}}} statements per second of "
            f"{{{{ $labels.{s} }}}} raised an error over the last 5 minutes."
        ),
        runbook="dbsightdatabaseerrors",
        threshold=t.db_errors_per_s,
        comparison=">",
        unit="/s",
    )


def _deadlocks(t: Thresholds) -> Alert:
    s = t.service_label
    expr = events_sum("db_client_errors_total", (s, "system"), "5m", 'sqlstate="40P01"')
    return Alert(
        name="DbsightDatabaseDeadlocks",
        expr=f"{expr} > {value(t.deadlocks_per_5m)}",
        for_s=60,
        severity="warning",
        summary=f"Transactions of {{{{ $labels.{s} }}}} deadlock (40P01)",
        description=(
            f"The {{{{ $labels.system }}}} server broke {{{{ $value | humanize }}}} deadlocks "
            f"of {{{{ $labels.{s} }}}} in the last 5 minutes by aborting one of the "
            "transactions (SQLSTATE 40P01)."
        ),
        runbook="dbsightdatabasedeadlocks",
        threshold=t.deadlocks_per_5m,
        comparison=">",
    )


def _serialization(t: Thresholds) -> Alert:
    s = t.service_label
    expr = rate_sum("db_client_errors_total", (s, "system"), "5m", 'sqlstate="40001"')
    return Alert(
        name="DbsightDatabaseSerializationFailures",
        expr=f"{expr} > {value(t.serialization_failures_per_s)}",
        for_s=300,
        severity="warning",
        summary=f"Transactions of {{{{ $labels.{s} }}}} fail to serialize (40001)",
        description=(
            f"{{{{ $value | humanize }}}} {{{{ $labels.system }}}} statements per second of "
            f"{{{{ $labels.{s} }}}} failed with SQLSTATE 40001 (serialization failure; a "
            "deadlock on MySQL and MariaDB) over the last 5 minutes: their transactions must "
            "be retried."
        ),
        runbook="dbsightdatabaseserializationfailures",
        threshold=t.serialization_failures_per_s,
        comparison=">",
        unit="/s",
    )


def _resources(t: Thresholds) -> Alert:
    s = t.service_label
    expr = events_sum(
        "db_client_errors_total", (s, "system", "sqlstate"), "5m", 'error_class="53"'
    )
    return Alert(
        name="DbsightDatabaseResourceErrors",
        expr=f"{expr} > {value(t.resource_errors_per_5m)}",
        for_s=60,
        severity="critical",
        summary=(
            f"The database of {{{{ $labels.{s} }}}} is out of resources "
            "({{ $labels.sqlstate }})"
        ),
        description=(
            f"{{{{ $value | humanize }}}} statements of {{{{ $labels.{s} }}}} failed with "
            "SQLSTATE {{ $labels.sqlstate }} (class 53, insufficient resources: disk full, "
            "out of memory, too many connections) on {{ $labels.system }} in the last "
            "5 minutes."
        ),
        runbook="dbsightdatabaseresourceerrors",
        threshold=t.resource_errors_per_5m,
        comparison=">",
    )


def _n_plus_one(t: Thresholds) -> Alert:
    s = t.service_label
    expr = rate_sum("db_client_n_plus_one_total", (s, "route"), "10m")
    return Alert(
        name="DbsightNPlusOneQueries",
        expr=f"{expr} > {value(t.n_plus_one_per_s)}",
        for_s=600,
        severity="info",
        summary=f"Route {{{{ $labels.route }}}} of {{{{ $labels.{s} }}}} runs N+1 queries",
        description=(
            f"dbsight found {{{{ $value | humanize }}}} N+1 patterns per second in requests "
            f"to {{{{ $labels.route }}}} of {{{{ $labels.{s} }}}} over the last 10 minutes."
        ),
        runbook="dbsightnplusonequeries",
        threshold=t.n_plus_one_per_s,
        comparison=">",
        unit="/s",
    )


def _pool(t: Thresholds) -> Alert:
    s = t.service_label
    used = ratio(
        f'sum by ({s}, pool) (db_client_connections{{state="used"}})',
        f"sum by ({s}, pool) (db_client_connections_max)",
    )
    return Alert(
        name="DbsightClientPoolSaturated",
        expr=f"{used} >= {value(t.pool_saturation)}",
        for_s=300,
        severity="warning",
        summary=f"Pool {{{{ $labels.pool }}}} of {{{{ $labels.{s} }}}} is nearly exhausted",
        description=(
            f"{{{{ $value | humanizePercentage }}}} of the connections of pool "
            f"{{{{ $labels.pool }}}} ({{{{ $labels.{s} }}}}) have been in use for 5 minutes: "
            "the next requests wait for one."
        ),
        runbook="dbsightclientpoolsaturated",
        threshold=t.pool_saturation,
        comparison=">=",
        unit="ratio",
    )


def _pool_timeouts(t: Thresholds) -> Alert:
    s = t.service_label
    expr = increase_sum("db_client_pool_timeouts_total", (s, "pool"), "5m")
    return Alert(
        name="DbsightClientPoolTimeouts",
        expr=f"{expr} > {value(t.pool_timeouts_per_5m)}",
        for_s=60,
        severity="warning",
        summary=f"Callers of pool {{{{ $labels.pool }}}} of {{{{ $labels.{s} }}}} time out",
        description=(
            "{{ $value | humanize }} callers waited for a connection of pool "
            f"{{{{ $labels.pool }}}} ({{{{ $labels.{s} }}}}) longer than its timeout in the "
            "last 5 minutes and got an error instead of a connection."
        ),
        runbook="dbsightclientpooltimeouts",
        threshold=t.pool_timeouts_per_5m,
        comparison=">",
    )


def _function_errors(t: Thresholds) -> Alert:
    s = t.service_label
    expr = events_sum("db_client_function_errors_total", (s, "function"), "10m")
    return Alert(
        name="DbsightBackgroundWorkFailing",
        expr=f"{expr} > {value(t.function_errors_per_10m)}",
        for_s=60,
        severity="warning",
        summary=f"{{{{ $labels.function }}}} of {{{{ $labels.{s} }}}} fails",
        description=(
            "{{ $labels.function }} raised {{ $value | humanize }} times in the last "
            "10 minutes."
        ),
        runbook="dbsightbackgroundworkfailing",
        threshold=t.function_errors_per_10m,
        comparison=">",
    )


def _function_long(t: Thresholds) -> Alert:
    s = t.service_label
    expr = p95("db_client_function_duration_seconds", (s, "function"), "15m")
    return Alert(
        name="DbsightBackgroundWorkSlow",
        expr=f"{expr} > {value(t.function_duration_p95_s)}",
        for_s=900,
        severity="warning",
        summary=(
            f"{{{{ $labels.function }}}} of {{{{ $labels.{s} }}}} runs long "
            f"(p95 over {value(t.function_duration_p95_s)} s)"
        ),
        description=(
            "95 % of the calls of {{ $labels.function }} in the last 15 minutes took up to "
            "{{ $value | humanizeDuration }}."
        ),
        runbook="dbsightbackgroundworkslow",
        threshold=t.function_duration_p95_s,
        comparison=">",
        unit="s",
    )
