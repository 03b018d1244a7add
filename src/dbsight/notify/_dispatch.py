"""The notifier: alerts in through a bounded queue, out to the receivers in groups.

The pipeline, after Alertmanager's: `Notifier.fire`/`resolve` only put the alert in a
bounded queue (a full queue drops it and counts the drop), so the application's thread
never waits; a dispatcher thread merges each alert into what it knows (deduplication by
fingerprint: the same labels are the same alert), files it in its group (``group_by``:
alertname and service), and flushes the groups on their timers — ``group_wait`` after the
group appears, then every ``group_interval`` when something changed (an alert new to the
group, or resolved), else every ``repeat_interval`` while alerts fire. Silenced alerts are
left out. Each receiver has a sender thread of its own (see `Sender`), retrying with
backoff. A real Alertmanager does its own grouping: it gets each alert as it changes, and
the firing ones again every ``resend_s``.

An alert whose ``ends_at`` lies in the future fires until then and then resolves by itself
(the statement and N+1 alerts: each occurrence pushes the end further).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ._alert import Alert
from ._alertmanager import AlertmanagerClient
from ._metrics import NotifyMetrics
from ._receiver import Notification, Receiver
from ._sender import RetryPolicy, Sender, wait_idle
from ._silence import Silences

logger = logging.getLogger("dbsight.notify")

GROUP_BY = ("alertname", "service")
QUEUE_SIZE = 1000
# Distinct alerts held at once; a new one past this is dropped (and counted), as the queue's.
MAX_ALERTS = 10_000
_IDLE_WAIT_S = 3600.0


@dataclass(slots=True)
class _Group:
    labels: dict[str, str]
    next_flush: float
    alerts: dict[str, Alert] = field(default_factory=dict)
    notified_firing: set[str] = field(default_factory=set)
    last_notified: float = float("-inf")


class _AlertmanagerReceiver:
    """The Alertmanager client as a sender's receiver: the notification's alerts are posted
    as they are (its ``group_labels`` are empty)."""

    name = "alertmanager"

    def __init__(self, client: AlertmanagerClient) -> None:
        self.client = client

    def notify(self, notification: Notification) -> None:
        self.client.post(notification.alerts, notification.now)


class Notifier:
    def __init__(
        self,
        receivers: Sequence[Receiver] = (),
        *,
        alertmanager: AlertmanagerClient | None = None,
        group_wait_s: float = 30.0,
        group_interval_s: float = 300.0,
        repeat_interval_s: float = 4 * 3600.0,
        group_by: Sequence[str] = GROUP_BY,
        silences: Silences | None = None,
        metrics: NotifyMetrics | None = None,
        retry: RetryPolicy | None = None,
        queue_size: int = QUEUE_SIZE,
        max_alerts: int = MAX_ALERTS,
        external_url: str = "",
    ) -> None:
        self.max_alerts = max_alerts
        self.group_wait_s = group_wait_s
        self.group_interval_s = group_interval_s
        self.repeat_interval_s = repeat_interval_s
        self.group_by = tuple(group_by)
        self.silences = silences if silences is not None else Silences()
        self.metrics = metrics if metrics is not None else NotifyMetrics()
        self.external_url = external_url
        retry = retry if retry is not None else RetryPolicy()
        self.senders = [Sender(receiver, self.metrics, retry) for receiver in receivers]
        self._alertmanager = alertmanager
        self._am_sender = (
            Sender(_AlertmanagerReceiver(alertmanager), self.metrics, retry)
            if alertmanager is not None
            else None
        )
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=queue_size)
        self._alerts: dict[str, Alert] = {}  # by fingerprint: what the dispatcher knows
        self._groups: dict[tuple[str, ...], _Group] = {}
        self._am_changed: dict[str, Alert] = {}
        self._am_next_resend = float("inf")
        self._lock = threading.Lock()  # guards the dispatcher's state for `alerts()`
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="dbsight-notifier", daemon=True)
        self._thread.start()

    # -- the application's side: never blocks ------------------------------------------
    def fire(self, alert: Alert) -> bool:
        """Hand ``alert`` over (firing, or resolved when its ``ends_at`` has passed); False
        when the queue was full and it was dropped."""
        return self._put(("alert", alert))

    def resolve(self, labels: Mapping[str, str], at: float | None = None) -> bool:
        """Resolve the alert with these labels (nothing happens to an alert never fired)."""
        return self._put(("resolve", (dict(labels), time.time() if at is None else at)))

    def _put(self, item: tuple[str, Any]) -> bool:
        if self._closed:
            return False
        try:
            self._inbox.put_nowait(item)
        except queue.Full:
            self.metrics.dropped()
            return False
        return True

    def alerts(self) -> list[Alert]:
        """The alerts known now (firing, or resolved and not yet notified)."""
        with self._lock:
            return list(self._alerts.values())

    @property
    def all_senders(self) -> list[Sender]:
        return [*self.senders, *([self._am_sender] if self._am_sender is not None else [])]

    def flush(self, timeout_s: float = 1.0, reason: str = "") -> bool:
        """Notify every group now (ahead of its timer) and wait, at most ``timeout_s``, until
        the receivers have been sent what is pending; True when they all have."""
        deadline = time.monotonic() + timeout_s
        done = threading.Event()
        if not self._put(("flush", done)):
            return False
        if not done.wait(max(0.0, deadline - time.monotonic())):
            return False
        return wait_idle(self.all_senders, deadline)

    def close(self, timeout_s: float = 0.0) -> None:
        """Stop (after flushing for at most ``timeout_s`` when given)."""
        if self._closed:
            return
        if timeout_s > 0:
            self.flush(timeout_s)
        self._closed = True
        try:
            self._inbox.put_nowait(("stop", None))
        except queue.Full:
            pass
        for sender in self.all_senders:
            sender.close()

    # -- the dispatcher thread ---------------------------------------------------------
    def _run(self) -> None:
        while True:
            timeout = max(0.0, self._next_deadline() - time.time())
            try:
                kind, payload = self._inbox.get(timeout=min(timeout, _IDLE_WAIT_S))
            except queue.Empty:
                kind, payload = "tick", None
            if kind == "stop":
                return
            try:
                with self._lock:
                    if kind == "alert":
                        self._merge(payload)
                    elif kind == "resolve":
                        self._resolve(*payload)
                    self._tick(force=kind == "flush")
            except Exception:  # a bug here must not end the thread: alerts keep flowing
                logger.exception("dbsight: the notifier's dispatcher failed")
            if kind == "flush":
                payload.set()

    def _next_deadline(self) -> float:
        with self._lock:
            deadlines = [group.next_flush for group in self._groups.values()]
        if self._am_changed:
            return time.time()
        return min([*deadlines, self._am_next_resend], default=float("inf"))

    def _merge(self, alert: Alert) -> None:
        now = time.time()
        key = alert.fingerprint
        known = self._alerts.get(key)
        if known is not None and known.status(now) == "firing":
            # the same alert again: it keeps its start, takes the new end and annotations
            alert = replace(alert, starts_at=min(known.starts_at, alert.starts_at))
        elif alert.status(now) == "resolved":
            return  # resolving what is not firing: nothing to say
        elif known is None and len(self._alerts) >= self.max_alerts:
            self.metrics.dropped()
            return
        self._alerts[key] = alert
        self._file(key, alert, now)

    def _resolve(self, labels: dict[str, str], at: float) -> None:
        from ._alert import fingerprint

        key = fingerprint(labels)
        known = self._alerts.get(key)
        if known is None or known.status(at) == "resolved":
            return
        resolved = known.resolved(at)
        self._alerts[key] = resolved
        self._file(key, resolved, time.time())

    def _file(self, key: str, alert: Alert, now: float) -> None:
        group_key = tuple(alert.labels.get(name, "") for name in self.group_by)
        group = self._groups.get(group_key)
        if group is None:
            labels = {name: alert.labels[name] for name in self.group_by if alert.labels.get(name)}
            group = self._groups[group_key] = _Group(labels, now + self.group_wait_s)
        group.alerts[key] = alert
        if self._am_sender is not None:
            self._am_changed[key] = alert
            if self._am_next_resend == float("inf"):
                self._am_next_resend = now + self._alertmanager.resend_s  # type: ignore[union-attr]

    def _tick(self, *, force: bool = False) -> None:
        now = time.time()
        self._post_to_alertmanager(now, force)
        for group_key, group in list(self._groups.items()):
            if force or group.next_flush <= now:
                self._flush(group, now)
                group.next_flush = now + self.group_interval_s
                if not group.alerts:
                    del self._groups[group_key]

    def _flush(self, group: _Group, now: float) -> None:
        muted = self.silences.mutes
        firing = {
            key: alert for key, alert in group.alerts.items()
            if alert.status(now) == "firing" and not muted(alert.labels, now)
        }  # fmt: skip
        resolved = {
            key: alert for key, alert in group.alerts.items()
            if alert.status(now) == "resolved" and key in group.notified_firing
        }  # fmt: skip
        changed = bool(firing.keys() - group.notified_firing) or bool(resolved)
        repeat = bool(firing) and now - group.last_notified >= self.repeat_interval_s
        if (changed or repeat) and (firing or resolved):
            notification = Notification(
                dict(group.labels),
                tuple(sorted([*firing.values(), *resolved.values()], key=lambda a: a.starts_at)),
                now,
                self.external_url,
            )
            for sender in self.senders:
                sender.submit(notification)
            group.last_notified = now
        group.notified_firing = (
            set(firing) if (changed or repeat) else group.notified_firing & set(firing)
        )
        # resolved alerts have been said (or never were): the group forgets them
        for key, alert in list(group.alerts.items()):
            if alert.status(now) == "resolved":
                del group.alerts[key]
                if self._alerts.get(key) is alert:
                    del self._alerts[key]

    def _post_to_alertmanager(self, now: float, force: bool) -> None:
        sender = self._am_sender
        if sender is None:
            return
        muted = self.silences.mutes
        due = force or now >= self._am_next_resend
        if due:  # every firing alert again, as Alertmanager expects while they fire
            batch = {k: a for k, a in self._alerts.items() if a.status(now) == "firing"}
            batch.update(self._am_changed)
            self._am_next_resend = now + self._alertmanager.resend_s  # type: ignore[union-attr]
        else:
            batch = dict(self._am_changed)
        self._am_changed.clear()
        alerts = tuple(a for a in batch.values() if not muted(a.labels, now))
        if alerts:
            sender.submit(Notification({}, alerts, now, self.external_url))
        if not any(a.status(now) == "firing" for a in self._alerts.values()):
            self._am_next_resend = float("inf")
