"""Every rule group dbsight ships, built from one `Thresholds`."""

from __future__ import annotations

from ._database import database_rules
from ._http import http_rules
from ._proxy import proxy_rules
from ._rules import Alert, RuleGroup
from ._slo import slo_rules
from ._thresholds import Thresholds


def build_rules(thresholds: Thresholds | None = None) -> tuple[RuleGroup, ...]:
    """The rule groups, in the order the rule file lists them."""
    t = thresholds or Thresholds.model_validate({})
    return (*http_rules(t), *database_rules(t), *proxy_rules(t), *slo_rules(t))


def all_alerts(groups: tuple[RuleGroup, ...]) -> tuple[Alert, ...]:
    return tuple(alert for group in groups for alert in group.alerts)
