"""The alert: labels that identify it, annotations that describe it, when it started and
ended. Shaped like Alertmanager's (``model.Alert``), so that the same record goes to a real
Alertmanager and into the webhook format it sends.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

Status = Literal["firing", "resolved"]

# Alertmanager's zero time: what its webhook shows as the endsAt of a firing alert.
ZERO_TIME = "0001-01-01T00:00:00Z"

# FNV-1a, 64 bits, over the sorted label pairs with 0xff separators: Prometheus'
# ``model.LabelSet.Fingerprint``, so dbsight's fingerprint is the one Alertmanager shows.
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """The labels' fingerprint as Alertmanager prints it (16 hex digits)."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name.encode(), labels[name].encode()):
            for byte in part:
                value = ((value ^ byte) * _FNV_PRIME) & _MASK
            value = ((value ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{value:016x}"


def label_string(labels: Mapping[str, str]) -> str:
    """``{alertname="X", service="y"}``: a label set as Alertmanager writes it (group keys)."""
    pairs = ", ".join(f"{name}={_quote(labels[name])}" for name in sorted(labels))
    return "{" + pairs + "}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def rfc3339(wall: float) -> str:
    """A wall-clock time as RFC 3339 in UTC with milliseconds (``2026-12-06T01:44:15.123Z``)."""
    seconds = int(wall)
    millis = round((wall - seconds) * 1000)
    if millis == 1000:
        seconds, millis = seconds + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert. ``labels`` identify it (``alertname``, ``severity``, ``service`` and what
    tells it apart); the same labels are the same alert, fired again or resolved.
    ``ends_at`` is None while it fires."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: float = field(default_factory=time.time)
    ends_at: float | None = None
    generator_url: str = ""

    def __post_init__(self) -> None:
        for required in ("alertname", "severity", "service"):
            if not self.labels.get(required):
                raise ValueError(f"an alert needs a {required!r} label (got {dict(self.labels)})")

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def status(self, now: float | None = None) -> Status:
        if self.ends_at is None:
            return "firing"
        return "resolved" if self.ends_at <= (time.time() if now is None else now) else "firing"

    def resolved(self, at: float | None = None) -> Alert:
        """This alert ending ``at`` (now)."""
        return replace(self, ends_at=time.time() if at is None else at)

    def to_webhook(self, now: float | None = None) -> dict[str, object]:
        """As an item of ``alerts`` in Alertmanager's webhook payload (version 4). As there,
        a firing alert's end is not shown, even when one is foreseen."""
        status = self.status(now)
        return {
            "status": status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at) if status == "resolved" and self.ends_at else ZERO_TIME,
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }
