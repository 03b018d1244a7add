"""The notifier's pipeline: deduplication, grouping and its timers, resolve notifications,
silences, retries with backoff, the bounded queue, and receivers that are down or hang."""

from __future__ import annotations

import threading
import time
from typing import Any

from notify_helpers import posted, wait_for
from prometheus_client import CollectorRegistry

from dbsight.notify import (
    Alert,
    Notification,
    Notifier,
    NotifyError,
    NotifyMetrics,
    RetryPolicy,
    Silences,
    WebhookReceiver,
)

FAST = RetryPolicy(attempts=4, initial_backoff_s=0.01, max_backoff_s=0.04)


def _alert(name: str = "DbsightSlowQuery", service: str = "shop", **labels: str) -> Alert:
    return Alert(
        {"alertname": name, "severity": "warning", "service": service, **labels},
        {"summary": f"{name} on {labels}"},
    )


class Recording:
    """A receiver that keeps what it is sent (failing first, if asked to)."""

    name = "recording"

    def __init__(self, failures: list[NotifyError] | None = None) -> None:
        self.failures = list(failures or [])
        self.got: list[Notification] = []
        self.calls = 0

    def notify(self, notification: Notification) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.got.append(notification)


def _notifier(receiver: Any, **options: Any) -> Notifier:
    settings: dict[str, Any] = {
        "group_wait_s": 0.0, "group_interval_s": 0.2, "repeat_interval_s": 3600.0, "retry": FAST,
    }  # fmt: skip
    settings.update(options)
    return Notifier([receiver], **settings)


def test_alerts_are_grouped_by_alertname_and_service_and_deduplicated() -> None:
    receiver = Recording()
    notifier = _notifier(receiver, group_wait_s=0.3)
    try:
        for _ in range(3):  # the same alert three times is one alert
            notifier.fire(_alert(route="/a"))
        notifier.fire(_alert(route="/b"))
        notifier.fire(_alert("DbsightNPlusOne", route="/a"))
        notifier.fire(_alert(service="billing", route="/a"))
        wait_for(lambda: len(receiver.got) == 3, what="three groups")
        groups = {tuple(sorted(n.group_labels.values())): n for n in receiver.got}
        assert set(groups) == {
            ("DbsightSlowQuery", "shop"), ("DbsightNPlusOne", "shop"),
            ("DbsightSlowQuery", "billing"),
        }  # fmt: skip
        routes = sorted(a.labels["route"] for a in groups[("DbsightSlowQuery", "shop")].alerts)
        assert routes == ["/a", "/b"]
        time.sleep(0.5)  # group intervals pass: nothing changed, nothing is sent again
        assert len(receiver.got) == 3
    finally:
        notifier.close()


def test_group_wait_gathers_before_the_first_notification() -> None:
    receiver = Recording()
    notifier = _notifier(receiver, group_wait_s=0.4)
    try:
        notifier.fire(_alert(route="/a"))
        time.sleep(0.1)
        notifier.fire(_alert(route="/b"))
        time.sleep(0.1)
        assert receiver.got == []  # still within group_wait
        wait_for(lambda: receiver.got, what="the first notification")
        assert len(receiver.got[0].alerts) == 2
    finally:
        notifier.close()


def test_a_new_alert_in_a_group_waits_for_the_group_interval_and_comes_with_the_others() -> None:
    receiver = Recording()
    notifier = _notifier(receiver, group_interval_s=0.5)
    try:
        notifier.fire(_alert(route="/a"))
        wait_for(lambda: receiver.got, what="the first notification")
        sent = time.monotonic()
        notifier.fire(_alert(route="/b"))
        wait_for(lambda: len(receiver.got) == 2, what="the second notification")
        assert time.monotonic() - sent >= 0.3  # the group interval, not at once
        assert sorted(a.labels["route"] for a in receiver.got[1].alerts) == ["/a", "/b"]
    finally:
        notifier.close()


def test_firing_alerts_are_repeated_after_the_repeat_interval() -> None:
    receiver = Recording()
    notifier = _notifier(receiver, group_interval_s=0.1, repeat_interval_s=0.4)
    try:
        notifier.fire(_alert(route="/a"))
        wait_for(lambda: len(receiver.got) == 2, what="the repeat")
        first, repeat = receiver.got[:2]
        assert repeat.now - first.now >= 0.4
        assert repeat.alerts[0].fingerprint == first.alerts[0].fingerprint
        assert repeat.alerts[0].starts_at == first.alerts[0].starts_at  # the same alert
    finally:
        notifier.close()


def test_resolving_sends_a_resolved_notification_once() -> None:
    receiver = Recording()
    notifier = _notifier(receiver)
    try:
        alert = _alert(route="/a")
        notifier.fire(alert)
        wait_for(lambda: receiver.got, what="the firing notification")
        notifier.resolve(alert.labels)
        wait_for(lambda: len(receiver.got) == 2, what="the resolved notification")
        resolved = receiver.got[1]
        assert resolved.status == "resolved"
        assert resolved.alerts[0].status(resolved.now) == "resolved"
        assert resolved.alerts[0].starts_at == alert.starts_at
        time.sleep(0.5)
        assert len(receiver.got) == 2 and notifier.alerts() == []
        notifier.resolve(alert.labels)  # resolving again: nothing to say
        time.sleep(0.3)
        assert len(receiver.got) == 2
    finally:
        notifier.close()


def test_an_alert_with_an_end_resolves_by_itself() -> None:
    receiver = Recording()
    notifier = _notifier(receiver)
    try:
        now = time.time()
        notifier.fire(Alert(_alert(route="/a").labels, {}, now, now + 0.3))
        wait_for(lambda: receiver.got, what="the firing notification")
        assert receiver.got[0].status == "firing"
        wait_for(lambda: len(receiver.got) == 2, what="the resolution")
        assert receiver.got[1].status == "resolved"
    finally:
        notifier.close()


def test_a_resolution_of_an_alert_never_notified_is_not_sent() -> None:
    receiver = Recording()
    notifier = _notifier(receiver, group_wait_s=0.3)
    try:
        alert = _alert(route="/a")
        notifier.fire(alert)
        notifier.resolve(alert.labels)
        notifier.fire(_alert(route="/b"))
        wait_for(lambda: receiver.got, what="the notification")
        assert [a.labels["route"] for a in receiver.got[0].alerts] == ["/b"]
    finally:
        notifier.close()


def test_silenced_alerts_are_not_notified_until_the_silence_ends() -> None:
    receiver = Recording()
    silences = Silences()
    silence = silences.add(['route="/a"', "alertname=~Dbsight.*"], 60, "deploying")
    notifier = _notifier(receiver, silences=silences, group_interval_s=0.1)
    try:
        notifier.fire(_alert(route="/a"))
        notifier.fire(_alert(route="/b"))
        wait_for(lambda: receiver.got, what="the notification")
        assert [a.labels["route"] for a in receiver.got[0].alerts] == ["/b"]
        assert [s.id for s in silences.list()] == [silence.id]
        assert silences.expire(silence.id)
        wait_for(lambda: len(receiver.got) == 2, what="the alert once unsilenced")
        assert sorted(a.labels["route"] for a in receiver.got[1].alerts) == ["/a", "/b"]
    finally:
        notifier.close()


def test_retryable_failures_are_retried_with_exponential_backoff() -> None:
    receiver = Recording([NotifyError("503", retryable=True)] * 3)
    notifier = _notifier(receiver)
    try:
        notifier.fire(_alert())
        wait_for(lambda: receiver.got, what="the notification after three failures")
        (sender,) = notifier.senders
        assert receiver.calls == 4
        assert sender.waits == [0.01, 0.02, 0.04]
        assert notifier.metrics.outcomes[("recording", "success")] == 1
    finally:
        notifier.close()


def test_backoff_is_capped_and_attempts_are_bounded() -> None:
    receiver = Recording([NotifyError("503", retryable=True)] * 10)
    notifier = _notifier(receiver)
    try:
        notifier.fire(_alert())
        wait_for(lambda: notifier.metrics.outcomes[("recording", "failure")], what="giving up")
        (sender,) = notifier.senders
        assert receiver.calls == 4 and receiver.got == []
        assert sender.waits == [0.01, 0.02, 0.04]
        policy = RetryPolicy(attempts=9, initial_backoff_s=0.5, max_backoff_s=30)
        assert [policy.backoff(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    finally:
        notifier.close()


def test_a_non_retryable_failure_is_not_retried(httpserver: Any) -> None:
    httpserver.expect_request("/hook").respond_with_data("bad", status=400)
    registry = CollectorRegistry()
    notifier = _notifier(
        WebhookReceiver(httpserver.url_for("/hook")), metrics=NotifyMetrics(registry)
    )
    try:
        notifier.fire(_alert())
        wait_for(
            lambda: registry.get_sample_value(
                "dbsight_notifications_total", {"receiver": "webhook", "outcome": "failure"}
            ),
            what="the failure counted",
        )
        assert len(posted(httpserver, "/hook")) == 1
    finally:
        notifier.close()


def test_a_receiver_that_is_down_is_retried_then_counted_as_failed(refused_url: str) -> None:
    registry = CollectorRegistry()
    notifier = _notifier(WebhookReceiver(refused_url), metrics=NotifyMetrics(registry))
    try:
        notifier.fire(_alert())
        wait_for(
            lambda: registry.get_sample_value(
                "dbsight_notifications_total", {"receiver": "webhook", "outcome": "failure"}
            ),
            what="the failure counted",
        )
        assert notifier.senders[0].attempts == FAST.attempts
    finally:
        notifier.close()


def test_a_full_queue_drops_and_counts_and_never_blocks() -> None:
    registry = CollectorRegistry()
    gate = threading.Event()

    class Blocked(Recording):
        def notify(self, notification: Notification) -> None:
            gate.wait(10)
            super().notify(notification)

    receiver = Blocked()
    notifier = _notifier(receiver, queue_size=5, metrics=NotifyMetrics(registry))
    notifier._lock.acquire()  # the dispatcher stops at its next item: the queue fills
    try:
        started = time.monotonic()
        accepted = [notifier.fire(_alert(route=f"/r{n}")) for n in range(50)]
        assert time.monotonic() - started < 1.0
        assert accepted.count(False) >= 44  # at most the queue's 5 (and one being taken)
        dropped = registry.get_sample_value("dbsight_notifications_dropped_total")
        assert dropped == accepted.count(False)
    finally:
        notifier._lock.release()
        gate.set()
        notifier.close()


def test_a_hanging_receiver_holds_up_neither_the_caller_nor_the_other_receivers(
    hanging_url: str,
) -> None:
    healthy = Recording()
    notifier = Notifier(
        [WebhookReceiver(hanging_url, name="hanging"), healthy],
        group_wait_s=0.0, group_interval_s=0.1, retry=FAST,
    )  # fmt: skip
    try:
        for n in range(3):
            assert notifier.fire(_alert(route=f"/r{n}"))
            wait_for(lambda: len(healthy.got) == n + 1, what=f"notification {n + 1}")  # noqa: B023
        hanging, _ = notifier.senders
        assert hanging.attempts == 1 and not hanging.idle()  # still waiting for its answer
    finally:
        notifier.close()


def test_flush_sends_what_waits_for_its_group_timer() -> None:
    receiver = Recording()
    notifier = _notifier(receiver, group_wait_s=3600)
    try:
        notifier.fire(_alert())
        assert notifier.flush(5.0)
        assert len(receiver.got) == 1
    finally:
        notifier.close()


def test_past_its_bound_a_new_alert_is_dropped_and_counted() -> None:
    receiver = Recording()
    notifier = _notifier(receiver, max_alerts=3, group_wait_s=3600)
    try:
        for n in range(5):
            notifier.fire(_alert(route=f"/r{n}"))
        notifier.fire(_alert(route="/r0"))  # one it holds: not new, not dropped
        assert notifier.flush(5.0)
        assert len(notifier.alerts()) == 3 and notifier.metrics.dropped_count == 2
    finally:
        notifier.close()
