"""`promtool test rules` files generated from the typed rules and `_alert_scenarios.BUILDERS`."""

from __future__ import annotations

from typing import Any

from _alert_scenarios import BUILDERS, JOB, Case, holds

from dbsight.alerting import Alert, RuleGroup, Thresholds
from dbsight.alerting._rules import duration_text


class Ambiguous(AssertionError):
    pass


def fires(other: Alert, case: Case, at_s: int) -> bool:
    """Whether ``other`` (an alert of the same name) is firing ``at_s`` into ``case``."""
    if not case.applies(other) or not holds(other, case.value):
        return False
    earliest, latest = case.active_from
    if at_s >= latest + other.for_s:
        return True
    if at_s < earliest + other.for_s:
        return False
    raise Ambiguous(f"{other.name} {other.severity} at {at_s}s: the case cannot tell")


def _expected(siblings: list[Alert], case: Case, at_s: int) -> list[dict[str, Any]]:
    return [
        {"exp_labels": {"severity": s.severity, **s.labels, **case.labels}}
        for s in siblings
        if fires(s, case, at_s)
    ]


def _check(alert: Alert, siblings: list[Alert], case: Case, at_s: int) -> dict[str, Any]:
    return {
        "eval_time": duration_text(at_s),
        "alertname": alert.name,
        "exp_alerts": _expected(siblings, case, at_s),
    }


def _relabel(case: Case, t: Thresholds, alert: Alert) -> Case:
    """The scenarios label services with ``job``; with another service label, the series
    carry that one (and a scrape job the alerts must aggregate away)."""
    if t.service_label == "job" or alert.name == "DbsightTargetDown":
        return case
    label = t.service_label
    ours = f'job="{JOB}"'
    case.series = [
        (series.replace(ours, f'{label}="{JOB}",job="scrape"'), values)
        for series, values in case.series
    ]
    assert all(label in series for series, _ in case.series), case.series
    case.labels = {(label if k == "job" else k): v for k, v in case.labels.items()}
    return case


def unit_tests(group: RuleGroup, t: Thresholds, rule_file: str) -> dict[str, Any]:
    """Two test groups per alert of ``group`` (whose rules are alone in ``rule_file``, so
    promtool evaluates only them): series that breach its threshold (not firing one
    evaluation before its ``for:`` has passed, firing when it has) and series on the safe
    side (not firing well after)."""
    alerts = group.alerts
    tests = []
    for alert in alerts:
        siblings = [a for a in alerts if a.name == alert.name]
        longest = max(s.for_s for s in siblings)
        build = BUILDERS[alert.name]
        for breach in (True, False):
            case = _relabel(build(alert, t, breach, longest // 60 + 30), t, alert)
            assert holds(alert, case.value) == breach, (alert.name, alert.severity, case.value)
            earliest, latest = case.active_from
            if breach:
                checks = [_check(alert, siblings, case, latest + alert.for_s)]
                if earliest + alert.for_s >= 60:
                    checks.insert(0, _check(alert, siblings, case, earliest + alert.for_s - 60))
                assert checks[-1]["exp_alerts"], f"{alert.name}: the breach case fires nothing"
            else:
                checks = [_check(alert, siblings, case, latest + longest + 300)]
            tests.append(
                {
                    "interval": "1m",
                    "input_series": [{"series": s, "values": v} for s, v in case.series],
                    "alert_rule_test": checks,
                }
            )
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}
