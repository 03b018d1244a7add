"""The notifier's own counters: notifications by receiver and outcome, and what was dropped
because a queue was full. Kept in plain integers too, so that they can be read without a
registry (tests, ``dbsight alerts``)."""

from __future__ import annotations

import threading
from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self.outcomes: Tally[tuple[str, str]] = Tally()
        self.dropped_count = 0
        self._registry = registry
        self._notifications: Counter | None = None
        self._dropped: Counter | None = None
        if registry is not None:
            self._notifications = Counter(
                "dbsight_notifications",
                "Notifications sent by receiver and outcome (success, failure after retries).",
                ["receiver", "outcome"],
                registry=registry,
            )
            self._dropped = Counter(
                "dbsight_notifications_dropped",
                "Alerts and notifications dropped because the notifier's bounded queue was full.",
                registry=registry,
            )

    def outcome(self, receiver: str, outcome: str) -> None:
        with self._lock:
            self.outcomes[(receiver, outcome)] += 1
        if self._notifications is not None:
            self._notifications.labels(receiver, outcome).inc()

    def dropped(self) -> None:
        with self._lock:
            self.dropped_count += 1
        if self._dropped is not None:
            self._dropped.inc()

    def close(self) -> None:
        """Unregister the families (a reconfiguration registers new ones)."""
        if self._registry is not None:
            for family in (self._notifications, self._dropped):
                try:
                    self._registry.unregister(family)  # type: ignore[arg-type]
                except KeyError:
                    pass
            self._registry = None
