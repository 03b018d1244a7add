"""A circuit breaker per backend: stop sending clients to a server that keeps failing.

Sans-IO: the caller passes the clock (``now``, monotonic seconds) and reports outcomes; the
breaker only decides. Closed, it lets everything through and keeps a sliding window of
outcomes; when the window holds at least ``min_requests`` outcomes and the failed share reaches
``error_rate``, it opens. Open, it refuses everything for ``cooldown_s``; the first ``allow()``
after that makes it half-open, where at most ``trial_requests`` requests are in flight at a
time: ``trial_requests`` successes close it again (with an empty window, so the failures that
opened it do not count twice), one failure opens it again and the cool-down starts over. A
health check that finds the server down opens it at once (``force_open``).

Only failures that are the server's fault count (``is_backend_failure``): a lost connection, a
server shutting down or out of resources. A client's bad SQL (unique violation, missing table,
division by zero) says nothing about the server's health and must never open the breaker.

The window is ``WINDOW_BUCKETS`` buckets of ``window_s / WINDOW_BUCKETS`` seconds, each two
counters: memory does not grow with the request rate, and an outcome leaves the window between
0.9 and 1 ``window_s`` after it was recorded.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

State = Literal["closed", "open", "half_open"]

WINDOW_BUCKETS = 10

# SQLSTATE classes that mean the server (not the statement) failed: connection exception,
# insufficient resources, system error, internal error; and 57P01..57P05 below (shutdown,
# crash, starting up, database dropped, idle session timeout): operator intervention.
_BACKEND_CLASSES = frozenset({"08", "53", "58", "XX"})
_OPERATOR_INTERVENTION = "57P0"


def is_backend_failure(sqlstate: str | None) -> bool:
    """Whether an error is the server's fault (counts against its breaker).

    ``None`` stands for no answer at all: the connection was refused, lost or timed out.
    """
    if sqlstate is None:
        return True
    if len(sqlstate) != 5:
        raise ValueError(f"a SQLSTATE has 5 characters, got {sqlstate!r}")
    return sqlstate[:2] in _BACKEND_CLASSES or sqlstate[:4] == _OPERATOR_INTERVENTION


class CircuitBreaker:
    """One backend's breaker; see the module docstring.

    Contract: every ``allow()`` that returned True is followed by exactly one ``record()``
    once the request is done. A trial (half-open) that gets no outcome within ``window_s``
    counts as failed: the server hangs, or the caller lost the request; either way the
    breaker opens again rather than staying half-open with every trial slot taken.
    """

    def __init__(
        self,
        *,
        window_s: float = 10.0,
        min_requests: int = 20,
        error_rate: float = 0.5,
        cooldown_s: float = 5.0,
        trial_requests: int = 3,
    ) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if min_requests < 1:
            raise ValueError(f"min_requests must be >= 1, got {min_requests}")
        if not 0 < error_rate <= 1:
            raise ValueError(f"error_rate must be in (0, 1], got {error_rate}")
        if not cooldown_s >= 0:
            raise ValueError(f"cooldown_s must be >= 0, got {cooldown_s}")
        if trial_requests < 1:
            raise ValueError(f"trial_requests must be >= 1, got {trial_requests}")
        self.window_s = window_s
        self.min_requests = min_requests
        self.error_rate = error_rate
        self.cooldown_s = cooldown_s
        self.trial_requests = trial_requests

        # The state as of the last call, to read (only `allow`, `record`, `force_open` change
        # it): an open breaker whose cool-down has passed still reads "open" until `allow`
        # is asked. An attribute, not a property: the relay reads it twice per transaction.
        self.state: State = "closed"
        self._bucket_s = window_s / WINDOW_BUCKETS
        self._buckets: deque[list[int]] = deque()  # [bucket index, requests, failures]
        self._newest: list[int] = []  # the newest of them ...
        self._newest_until = float("-inf")  # ... and when its time ends
        self._requests = 0  # totals over the buckets
        self._failures = 0
        self._opened_at: float | None = None
        self._times_opened = 0
        self._trials: deque[float] = deque()  # half-open: when each outstanding trial started
        self._trial_successes = 0

    def allow(self, now: float) -> bool:
        """May a request go to this backend now? (Half-open: True takes a trial slot.)"""
        if self.state == "closed":
            return True
        if self.state == "open":
            assert self._opened_at is not None
            if now - self._opened_at < self.cooldown_s:
                return False
            self.state = "half_open"
            self._trials.clear()
            self._trial_successes = 0
        if self._trials and now - self._trials[0] >= self.window_s:
            self._open(now)
            return False
        if len(self._trials) >= self.trial_requests:
            return False
        self._trials.append(now)
        return True

    def record(self, ok: bool, now: float) -> State | None:
        """The outcome of a request ``allow()`` let through (``ok``: no backend failure);
        returns the state the breaker left when this outcome changed it, else None."""
        state = self.state
        if state == "closed":
            if ok and now < self._newest_until:
                # the usual case, once per transaction: a success in the newest bucket
                # (nothing slides out of the window, the failure rate only falls)
                self._newest[1] += 1
                self._requests += 1
                return None
            self._add(ok, now)
            requests = self._requests
            if requests >= self.min_requests and self._failures / requests >= self.error_rate:
                self._open(now)
        elif state == "half_open" and self._trials:
            # Outcomes arriving while open, or half-open with no trial out, belong to requests
            # let through before the breaker opened: they say nothing about the trials.
            self._trials.popleft()
            if not ok:
                self._open(now)
            else:
                self._trial_successes += 1
                if self._trial_successes >= self.trial_requests:
                    self._close()
        return state if self.state != state else None

    def force_open(self, now: float) -> None:
        """A health check found the backend down: refuse requests from now for ``cooldown_s``
        (restarting the cool-down when already open)."""
        self._open(now)

    def stats(self, now: float | None = None) -> dict[str, Any]:
        """What ``/stats/pools`` shows; with ``now``, the window is first brought up to date
        (otherwise it is as of the last ``record()``)."""
        if now is not None:
            self._expire(self._bucket(now))
        return {
            "state": self.state,
            "failures": self._failures,
            "requests": self._requests,
            "opened_at": self._opened_at,
            "times_opened": self._times_opened,
        }

    # ------------------------------------------------------------------ internals

    def _open(self, now: float) -> None:
        if self.state != "open":
            self._times_opened += 1
        self.state = "open"
        self._opened_at = now
        self._trials.clear()
        self._trial_successes = 0

    def _close(self) -> None:
        self.state = "closed"
        self._buckets.clear()
        self._newest_until = float("-inf")
        self._requests = self._failures = 0
        self._trials.clear()
        self._trial_successes = 0

    def _bucket(self, now: float) -> int:
        return int(now // self._bucket_s)

    def _add(self, ok: bool, now: float) -> None:
        index = self._bucket(now)
        self._expire(index)
        buckets = self._buckets
        # a clock read before the newest bucket's (callers racing) joins the newest bucket
        if not buckets or buckets[-1][0] < index:
            buckets.append([index, 0, 0])
            self._newest = buckets[-1]
            self._newest_until = (index + 1) * self._bucket_s
        bucket = buckets[-1]
        bucket[1] += 1
        self._requests += 1
        if not ok:
            bucket[2] += 1
            self._failures += 1

    def _expire(self, index: int) -> None:
        """Drop the buckets that slid out of the window ending in bucket ``index``."""
        buckets = self._buckets
        oldest = index - WINDOW_BUCKETS
        while buckets and buckets[0][0] <= oldest:
            _, requests, failures = buckets.popleft()
            self._requests -= requests
            self._failures -= failures
