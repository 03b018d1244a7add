"""dbsight's own events as alerts: a slow statement, an advice event (plan finding, index
advice, failing check, regression), an N+1 finding, a failing health check — and their
resolution. Alerts carry normalized statements, fingerprints, routes, relation names and
numbers; a statement's own text (with its literals) only with ``include_query_bodies``.

Events that have no resolution of their own (a slow statement, an N+1 finding, a plan
finding) fire until `RESOLVE_AFTER_S` after their last occurrence, then resolve: each
occurrence pushes the alert's ``ends_at`` (Alertmanager's ``resolve_timeout``, which is 5 m).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._alert import Alert
from ._dispatch import Notifier

if TYPE_CHECKING:
    from ..advise._events import AdviceEvent
    from ..core import QueryEvent
    from ..ops.health import HealthReport
    from ..stats._nplusone import NPlusOneFinding

RESOLVE_AFTER_S = 300.0
SLOW_QUERY = "DbsightSlowQuery"
N_PLUS_ONE = "DbsightNPlusOne"
HEALTH_CHECK = "DbsightHealthCheckFailing"
BACKEND_DOWN = "DbsightBackendDown"
OUT_OF_ROTATION = "DbsightReplicaOutOfRotation"
BREAKER_OPEN = "DbsightBreakerOpen"
ADVICE_ALERTS = {
    "index": "DbsightIndexAdvice",
    "plan": "DbsightPlanFinding",
    "check": "DbsightCheckFailing",
    "regression": "DbsightRegression",
}
# The same event is handed to the notifier at most once per this share of the resolve
# window (a statement slow on every request must not fill the queue with copies).
_REFIRE_SHARE = 0.1
_MAX_REMEMBERED = 10_000


class _Throttle:
    """True for a key's first occurrence, then once per ``interval_s``."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                return False
            if len(self._last) >= _MAX_REMEMBERED:
                self._last.clear()
            self._last[key] = now
            return True


class AlertSources:
    """Turns dbsight's events into alerts for ``notifier``."""

    def __init__(
        self,
        notifier: Notifier,
        *,
        service: str,
        slow_query_ms: float,
        include_query_bodies: bool = False,
        resolve_after_s: float = RESOLVE_AFTER_S,
    ) -> None:
        self.notifier = notifier
        self.service = service
        self.slow_query_ms = slow_query_ms
        self.include_query_bodies = include_query_bodies
        self.resolve_after_s = resolve_after_s
        self._throttle = _Throttle(resolve_after_s * _REFIRE_SHARE)
        self._failing_checks: set[str] = set()
        self._checks_lock = threading.Lock()

    def _labels(self, alertname: str, severity: str, **extra: str | None) -> dict[str, str]:
        labels = {"alertname": alertname, "severity": severity, "service": self.service}
        labels.update({name: value for name, value in extra.items() if value})
        return labels

    def _fire_for_a_while(self, labels: dict[str, str], annotations: dict[str, str]) -> None:
        now = time.time()
        self.notifier.fire(Alert(labels, annotations, now, now + self.resolve_after_s))

    # -- a slow statement --------------------------------------------------------------
    def slow_statement(self, event: QueryEvent) -> None:
        if not self._throttle.due(f"slow:{event.fingerprint}:{event.route}"):
            return
        labels = self._labels(
            SLOW_QUERY, "warning", query_fingerprint=event.fingerprint, route=event.route
        )
        duration_ms = event.duration_s * 1000.0
        where = f" on {event.route}" if event.route else ""
        target = f" {event.table}" if event.table else ""
        annotations = {
            "summary": (
                f"{event.operation.upper()}{target} took {duration_ms:.0f} ms{where} "
                f"(alert threshold {self.slow_query_ms:g} ms)"
            ),
            "description": f"Statement {event.fingerprint}: {event.normalized}",
            "statement": event.normalized,
            "duration_ms": f"{duration_ms:.1f}",
        }
        if event.error is not None:
            annotations["error"] = event.error.sqlstate or event.error.type
        if self.include_query_bodies:
            annotations["query_text"] = event.sql
        self._fire_for_a_while(labels, annotations)

    # -- advice events -----------------------------------------------------------------
    def advice(self, event: AdviceEvent) -> None:
        alertname = ADVICE_ALERTS.get(event.kind, "DbsightAdvice")
        labels = self._labels(alertname, event.severity, key=event.key)
        if event.resolved:
            self.notifier.resolve(labels, at=event.at)
            return
        if not self._throttle.due(f"advice:{event.key}"):
            return
        annotations = {"summary": event.summary, "description": _describe(event.details)}
        if event.kind == "check":  # checks say when they pass again
            self.notifier.fire(Alert(labels, annotations, event.at))
        else:
            self._fire_for_a_while(labels, annotations)

    # -- N+1 findings ------------------------------------------------------------------
    def n_plus_one(self, finding: NPlusOneFinding) -> None:
        if not self._throttle.due(f"n+1:{finding.fingerprint}:{finding.route}"):
            return
        labels = self._labels(
            N_PLUS_ONE, "warning", query_fingerprint=finding.fingerprint, route=finding.route
        )
        where = finding.route or "a request"
        annotations = {
            "summary": (
                f"N+1 queries on {where}: one statement {finding.count} times "
                f"({finding.total_ms:.1f} ms)"
            ),
            "description": f"Statement {finding.fingerprint}: {finding.normalized}",
            "statement": finding.normalized,
        }
        self._fire_for_a_while(labels, annotations)

    # -- health checks -----------------------------------------------------------------
    def health(self, report: HealthReport) -> None:
        for result in report.results:
            labels = self._labels(
                HEALTH_CHECK, "critical" if result.critical else "warning", check=result.name
            )
            with self._checks_lock:
                was_failing = result.name in self._failing_checks
                if result.ok:
                    self._failing_checks.discard(result.name)
                else:
                    self._failing_checks.add(result.name)
            if result.ok:
                if was_failing:
                    self.notifier.resolve(labels)
                continue
            if was_failing and not self._throttle.due(f"health:{result.name}"):
                continue
            self.notifier.fire(
                Alert(
                    labels,
                    {
                        "summary": f"Health check {result.name} {result.status}",
                        "description": result.error or f"status {result.status}",
                    },
                )
            )


    # -- the proxy's backends --------------------------------------------------------------
    def backend(self, name: str, role: str, up: bool, in_rotation: bool, reason: str) -> None:
        """A proxy's backend changed state: the primary down, or a replica out of rotation
        (down or lagging) fire; back in service resolves."""
        if role == "primary":
            labels = self._labels(BACKEND_DOWN, "critical", backend=name, role=role)
            failing, summary = not up, f"Primary {name} is down"
        else:
            labels = self._labels(OUT_OF_ROTATION, "warning", backend=name, role=role)
            failing = not in_rotation
            summary = f"Replica {name} is out of rotation" + ("" if up else " (down)")
        if failing:
            self.notifier.fire(Alert(labels, {"summary": summary, "description": reason}))
        else:
            self.notifier.resolve(labels)

    def breaker(self, name: str, is_open: bool) -> None:
        """A proxy's circuit breaker opened (fires) or closed again (resolves)."""
        labels = self._labels(BREAKER_OPEN, "warning", backend=name)
        if is_open:
            summary = f"Circuit breaker of {name} is open: requests to it are refused"
            self.notifier.fire(Alert(labels, {"summary": summary}))
        else:
            self.notifier.resolve(labels)


def _describe(details: Mapping[str, Any]) -> str:
    """The scalar details of an advice event, one ``name: value`` a line."""
    lines = [
        f"{name}: {value}" for name, value in details.items()
        if isinstance(value, (str, int, float, bool)) and value != ""
    ]  # fmt: skip
    return "\n".join(lines)
