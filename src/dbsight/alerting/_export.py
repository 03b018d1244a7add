"""The typed rules written as the file Prometheus reads (the Alertmanager configuration that
goes with them: `_routing`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from ._rules import Alert, RecordingRule, RuleGroup

# Where runbook_url points when no --runbook-base is given: the page in this repository,
# relative, so nothing points outside by default; a deployment passes the URL its team reads
# the repository at (for example its Git server's view of docs/runbooks.md).
DEFAULT_RUNBOOK_BASE = "docs/runbooks.md"


def runbook_url(alert: Alert, base: str = DEFAULT_RUNBOOK_BASE) -> str:
    return f"{base}#{alert.runbook}"


def rule_file(
    groups: tuple[RuleGroup, ...],
    *,
    runbook_base: str = DEFAULT_RUNBOOK_BASE,
    annotations: bool = True,
) -> dict[str, Any]:
    """The rule file as data (``{"groups": [...]}``). ``annotations=False`` leaves them out:
    the promtool unit tests compare firing alerts by their labels."""
    return {
        "groups": [
            {
                "name": group.name,
                "rules": [_rule(rule, runbook_base, annotations) for rule in group.rules],
            }
            for group in groups
        ]
    }


def _rule(rule: Alert | RecordingRule, runbook_base: str, annotations: bool) -> dict[str, Any]:
    if isinstance(rule, RecordingRule):
        out: dict[str, Any] = {"record": rule.record, "expr": rule.expr}
        if rule.labels:
            out["labels"] = dict(rule.labels)
        return out
    out = {
        "alert": rule.name,
        "expr": rule.expr,
        "for": rule.for_text,
        "labels": {"severity": rule.severity, **rule.labels},
    }
    if annotations:
        out["annotations"] = {
            "summary": rule.summary,
            "description": rule.description,
            "runbook_url": runbook_url(rule, runbook_base),
        }
    return out


def to_yaml(data: Mapping[str, Any], header: str = "") -> str:
    """YAML as people write it: keys in the order given, multi-line expressions as blocks."""
    text = yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)
    return header + text


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)
