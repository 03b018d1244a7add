"""What every receiver shares: the notification it is handed (one group's alerts) and the
error it raises, which says whether trying again may help (Alertmanager's ``notify.Retrier``
split: a 5xx or a connection failure is retryable, a 4xx is not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ._alert import Alert, label_string


class NotifyError(Exception):
    """A notification failed; ``retryable`` when sending it again may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Notification:
    """One group's alerts as a receiver gets them: the firing ones and those resolved since
    the last notification. ``now`` decides each alert's status, once for all receivers."""

    group_labels: dict[str, str]
    alerts: tuple[Alert, ...]
    now: float
    external_url: str = ""
    truncated: int = 0

    @property
    def group_key(self) -> str:
        """As Alertmanager builds it: the route's matchers, then the group's labels."""
        return "{}:" + label_string(self.group_labels)

    @property
    def firing(self) -> list[Alert]:
        return [alert for alert in self.alerts if alert.status(self.now) == "firing"]

    @property
    def resolved(self) -> list[Alert]:
        return [alert for alert in self.alerts if alert.status(self.now) == "resolved"]

    @property
    def status(self) -> str:
        """``firing`` while any alert of the group fires."""
        return "firing" if self.firing else "resolved"

    def common_labels(self) -> dict[str, str]:
        return _common([alert.labels for alert in self.alerts])

    def common_annotations(self) -> dict[str, str]:
        return _common([alert.annotations for alert in self.alerts])

    def title(self) -> str:
        """``[FIRING:2] DbsightSlowQuery app``, Alertmanager's default title."""
        count = len(self.firing) if self.firing else len(self.resolved)
        values = " ".join(self.group_labels[name] for name in sorted(self.group_labels))
        return f"[{self.status.upper()}:{count}] {values}"


def _common(items: list[object]) -> dict[str, str]:
    if not items:
        return {}
    first = dict(items[0])  # type: ignore[call-overload]
    for item in items[1:]:
        first = {k: v for k, v in first.items() if item.get(k) == v}  # type: ignore[attr-defined]
    return first


class Receiver(Protocol):
    """Sends a notification; raises `NotifyError`. ``name`` labels its metrics."""

    name: str

    def notify(self, notification: Notification) -> None: ...
