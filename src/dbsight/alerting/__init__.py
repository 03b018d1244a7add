"""dbsight's alert rules, typed in code and exported as Prometheus rule files, with the
Alertmanager routing that goes with them (see docs/alerts.md and docs/runbooks.md)."""

from ._catalog import all_alerts, build_rules
from ._export import DEFAULT_RUNBOOK_BASE, rule_file, runbook_url, to_yaml
from ._routing import EmailTarget, PagerDutyTarget, SlackTarget, alertmanager_config
from ._rules import SEVERITIES, Alert, RecordingRule, RuleGroup, Severity
from ._thresholds import AlertConfigError, Thresholds, load_thresholds

__all__ = [
    "DEFAULT_RUNBOOK_BASE",
    "SEVERITIES",
    "Alert",
    "AlertConfigError",
    "EmailTarget",
    "PagerDutyTarget",
    "RecordingRule",
    "RuleGroup",
    "Severity",
    "SlackTarget",
    "Thresholds",
    "alertmanager_config",
    "all_alerts",
    "build_rules",
    "load_thresholds",
    "rule_file",
    "runbook_url",
    "to_yaml",
]
