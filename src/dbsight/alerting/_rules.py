"""The typed rule model: every alert and recording rule dbsight ships is one of these, built in
code (`_catalog`) and written out as a Prometheus rule file (`_export`), so the rule file, the
``alerts list`` table, the runbook links and the promtool unit tests all read the same source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")


def paged_and_warned(critical: object, warning: object) -> tuple[tuple[Severity, Any], ...]:
    """The two severities of an alert that has a critical and a warning threshold."""
    return (("critical", critical), ("warning", warning))

# How an alert's expression compares its value with its threshold: the unit tests use it to
# build input series on either side of the threshold.
Comparison = Literal[">", ">=", "<", "=="]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alerting rule. ``expr`` keeps only the series that breach ``threshold`` (compared
    with ``comparison``), so ``$value`` in the annotations is the measured value."""

    name: str
    expr: str
    for_s: int
    severity: Severity
    summary: str
    description: str
    runbook: str  # the anchor of its section in docs/runbooks.md
    threshold: float
    comparison: Comparison
    unit: str = ""  # how `alerts list` prints the threshold: "s", "ratio", "/s", ""
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def for_text(self) -> str:
        return duration_text(self.for_s)

    def threshold_text(self) -> str:
        value = self.threshold
        if self.unit == "ratio":
            shown = f"{value * 100:.4g} %"
        elif self.unit == "s" and value < 1:
            shown = f"{value * 1000:.4g} ms"
        else:
            shown = f"{value:.4g}{' ' + self.unit if self.unit else ''}"
        return f"{self.comparison} {shown}"


@dataclass(frozen=True, slots=True)
class RecordingRule:
    """A series precomputed by Prometheus (the SLO ratios the burn-rate alerts read)."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """A Prometheus rule group: its rules are evaluated together, in order."""

    name: str
    rules: tuple[Alert | RecordingRule, ...]

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(rule for rule in self.rules if isinstance(rule, Alert))


def duration_text(seconds: int) -> str:
    """A Prometheus duration (``90`` -> ``1m30s``, ``3600`` -> ``1h``, ``0`` -> ``0s``)."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_duration(text: str) -> int:
    """Seconds of a Prometheus duration such as ``1d``, ``90m``, ``1h30m`` (no fractions)."""
    import re

    units = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    matches = re.fullmatch(r"(?:\d+[wdhms])+", text.strip())
    if not matches:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h or 1d")
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([wdhms])", text))
