"""One receiver's sender: a thread of its own with a small bounded queue, so that a receiver
that hangs or is down holds up nothing but its own notifications. A retryable failure is
retried with exponential backoff up to `RetryPolicy.attempts`; the others are given up at
once (Alertmanager's retry stage)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from ._metrics import NotifyMetrics
from ._receiver import Notification, NotifyError, Receiver

logger = logging.getLogger("dbsight.notify")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1, 2 ...)."""
        return float(min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1)))


class Sender:
    def __init__(
        self,
        receiver: Receiver,
        metrics: NotifyMetrics,
        retry: RetryPolicy,
        *,
        queue_size: int = 64,
    ) -> None:
        self.receiver = receiver
        self.metrics = metrics
        self.retry = retry
        self.attempts = 0  # every try, for the tests and `dbsight alerts`
        self.waits: list[float] = []  # the backoff waits, in order
        self._queue: queue.Queue[Notification | None] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"dbsight-notify-{receiver.name}", daemon=True
        )
        self._thread.start()

    @property
    def name(self) -> str:
        return self.receiver.name

    def submit(self, notification: Notification) -> bool:
        """Queue ``notification``; False (counted as dropped) when the queue is full."""
        with self._busy_lock:
            try:
                self._queue.put_nowait(notification)
            except queue.Full:
                self.metrics.dropped()
                return False
            self._busy += 1
        return True

    def idle(self) -> bool:
        with self._busy_lock:
            return self._busy == 0

    def close(self) -> None:
        self._stop.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass  # the thread sees the stop flag after its current notification

    def _run(self) -> None:
        while not self._stop.is_set():
            notification = self._queue.get()
            if notification is None:
                return
            try:
                self._deliver(notification)
            finally:
                with self._busy_lock:
                    self._busy -= 1

    def _deliver(self, notification: Notification) -> None:
        for attempt in range(1, self.retry.attempts + 1):
            self.attempts += 1
            try:
                self.receiver.notify(notification)
            except NotifyError as exc:
                last_try = not exc.retryable or attempt == self.retry.attempts
                if last_try or self._stop.is_set():
                    logger.warning(
                        "dbsight: notification to %s failed%s: %s", self.name,
                        "" if exc.retryable else " (not retryable)", exc,
                    )  # fmt: skip
                    self.metrics.outcome(self.name, "failure")
                    return
                wait = self.retry.backoff(attempt)
                self.waits.append(wait)
                if self._stop.wait(wait):
                    self.metrics.outcome(self.name, "failure")
                    return
            except Exception:  # a receiver's bug: logged, never retried in a loop
                logger.exception("dbsight: receiver %s failed", self.name)
                self.metrics.outcome(self.name, "failure")
                return
            else:
                self.metrics.outcome(self.name, "success")
                return


def wait_idle(senders: list[Sender], deadline: float) -> bool:
    """Wait until no sender has work left, at most until ``deadline`` (monotonic)."""
    while True:
        if all(sender.idle() for sender in senders):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
