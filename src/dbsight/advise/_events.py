"""Advice events: what the analysis found (an index to create, a plan finding, a failing
database check) and its resolution, as small immutable records an alert notifier consumes.

Producers call `emit`; consumers `subscribe` a callback (a notifier, a test, the web page).
Until a consumer exists, and alongside any that does, each event is logged on the
``dbsight.advice`` logger once per ``key`` per ``interval_s`` (default `LOG_INTERVAL_S`), as a
JSON line on stderr while the application configured no logging (`FallbackJsonLog`). An
event's ``summary`` and ``details`` never hold literals or parameter values: producers build
them from normalized statements, relation and column names and numbers.

A failing subscriber is logged and skipped; it never reaches the producer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..export.logging import FallbackJsonLog

__all__ = [
    "ADVICE_LOGGER",
    "LOG_INTERVAL_S",
    "AdviceEvent",
    "Severity",
    "emit",
    "set_log_interval",
    "subscribe",
    "unsubscribe",
]

ADVICE_LOGGER = "dbsight.advice"
LOG_INTERVAL_S = 3600.0
# Keys remembered for the log interval before the oldest are forgotten.
_MAX_KEYS = 10_000

Severity = Literal["critical", "warning", "info"]
Kind = Literal["index", "plan", "check", "regression"]
_LEVELS: dict[str, int] = {"critical": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}

logger = logging.getLogger(ADVICE_LOGGER)


@dataclass(frozen=True, slots=True)
class AdviceEvent:
    """One finding of the analysis. ``key`` is stable for the same finding on the same
    object (``plan:seq_scan:order_items:8fbbdd2da99111f4``, ``check:unused_index:public.ix``),
    so a notifier can deduplicate it and resolve it later (``resolved=True``)."""

    kind: Kind
    severity: Severity
    key: str
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    resolved: bool = False
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "key": self.key,
            "summary": self.summary,
            "details": dict(self.details),
            "resolved": self.resolved,
            "at": self.at,
        }


Subscriber = Callable[[AdviceEvent], None]

_lock = threading.Lock()
_subscribers: list[Subscriber] = []
_last_logged: dict[tuple[str, bool], float] = {}
_interval_s = LOG_INTERVAL_S
_log = FallbackJsonLog(logger, logging.INFO)


def subscribe(callback: Subscriber) -> None:
    """Call ``callback`` with every event emitted from now on (from the emitting thread)."""
    with _lock:
        if callback not in _subscribers:
            _subscribers.append(callback)


def unsubscribe(callback: Subscriber) -> None:
    with _lock:
        if callback in _subscribers:
            _subscribers.remove(callback)


def set_log_interval(seconds: float) -> None:
    """How long the same key is not logged again (subscribers still get every event)."""
    global _interval_s
    if seconds < 0:
        raise ValueError(f"the advice log interval cannot be negative, got {seconds}")
    with _lock:
        _interval_s = seconds
        _last_logged.clear()


def emit(event: AdviceEvent) -> None:
    """Hand ``event`` to every subscriber and log it unless its key was logged within the
    interval. Never raises."""
    with _lock:
        subscribers = tuple(_subscribers)
        now = time.monotonic()
        memo = (event.key, event.resolved)
        last = _last_logged.get(memo)
        due = last is None or now - last >= _interval_s
        if due:
            if len(_last_logged) >= _MAX_KEYS:
                horizon = now - _interval_s
                for old in [k for k, at in _last_logged.items() if at <= horizon]:
                    del _last_logged[old]
                if len(_last_logged) >= _MAX_KEYS:
                    _last_logged.clear()
            _last_logged[memo] = now
    for callback in subscribers:
        try:
            callback(event)
        except Exception:  # a consumer's failure never reaches the analysis
            logger.exception("advice subscriber %r failed", callback)
    if due:
        level = logging.INFO if event.resolved else _LEVELS[event.severity]
        if _log.enabled(level):
            verb = "resolved" if event.resolved else event.severity
            _log.log(
                level, "%s %s: %s", event.kind, verb, event.summary,
                extra={"advice": event.to_dict()},
            )  # fmt: skip
