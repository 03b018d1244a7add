"""``CircuitBreaker`` (sans-IO, clock passed in): every transition, the sliding window, and
which errors are the server's fault."""

from __future__ import annotations

import pytest

from dbsight.proxy._breaker import CircuitBreaker, is_backend_failure


def breaker(**options: float) -> CircuitBreaker:
    defaults: dict[str, float] = {
        "window_s": 10.0,
        "min_requests": 4,
        "error_rate": 0.5,
        "cooldown_s": 5.0,
        "trial_requests": 2,
    }
    return CircuitBreaker(**{**defaults, **options})  # type: ignore[arg-type]


def feed(cb: CircuitBreaker, outcomes: str, now: float) -> None:
    """Requests at ``now``, each let through and recorded: ``.`` success, ``x`` failure."""
    for outcome in outcomes:
        assert cb.allow(now)
        cb.record(outcome == ".", now)


def opened(now: float = 100.0) -> CircuitBreaker:
    cb = breaker()
    feed(cb, "xxxx", now)
    assert cb.state == "open"
    return cb


def half_open(now: float = 105.0) -> CircuitBreaker:
    cb = opened(now - 5.0)
    assert cb.allow(now)  # the first trial
    assert cb.state == "half_open"
    return cb


# ------------------------------------------------------------------ which errors count


@pytest.mark.parametrize(
    "sqlstate", [None, "08006", "08001", "08P01", "53300", "53100", "57P01", "57P02", "57P03",
                 "58030", "XX000", "XX001"],
)  # fmt: skip
def test_server_failures_count(sqlstate: str | None) -> None:
    assert is_backend_failure(sqlstate)


@pytest.mark.parametrize(
    "sqlstate", ["23505", "42P01", "22012", "40001", "40P01", "25006", "57014", "28P01", "3D000"]
)
def test_sql_errors_do_not_count(sqlstate: str) -> None:
    assert not is_backend_failure(sqlstate)


def test_a_malformed_sqlstate_is_refused() -> None:
    with pytest.raises(ValueError, match="5 characters"):
        is_backend_failure("08")


# ------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window_s", 0),
        ("window_s", -1),
        ("min_requests", 0),
        ("error_rate", 0),
        ("error_rate", 1.5),
        ("cooldown_s", -0.1),
        ("trial_requests", 0),
    ],
)
def test_bad_arguments_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        breaker(**{field: value})


# ------------------------------------------------------------------ closed


def test_a_new_breaker_is_closed_and_lets_everything_through() -> None:
    cb = breaker()
    assert cb.state == "closed" and cb.allow(0.0)
    assert cb.stats() == {
        "state": "closed",
        "failures": 0,
        "requests": 0,
        "opened_at": None,
        "times_opened": 0,
    }


def test_failures_below_min_requests_never_open_it() -> None:
    cb = breaker()
    feed(cb, "xxx", 1.0)
    assert cb.state == "closed"
    assert cb.stats()["failures"] == 3 and cb.stats()["requests"] == 3


def test_opens_when_min_requests_reached_at_the_error_rate() -> None:
    cb = breaker()
    feed(cb, "x.x", 1.0)
    assert cb.state == "closed"
    feed(cb, ".", 2.0)  # 2 of 4 failed: exactly the error rate
    assert cb.state == "open"
    stats = cb.stats()
    assert stats["opened_at"] == 2.0 and stats["times_opened"] == 1


def test_an_error_rate_below_the_threshold_keeps_it_closed() -> None:
    cb = breaker(error_rate=0.3, min_requests=10)
    feed(cb, "xx........", 1.0)  # 20 %
    assert cb.state == "closed"
    feed(cb, "x", 1.0)  # 3 of 11: 27 %
    assert cb.state == "closed"
    cb = breaker(error_rate=0.3, min_requests=10)
    feed(cb, ".......xxx", 1.0)  # 3 of 10: exactly 30 %
    assert cb.state == "open"


def test_failures_slide_out_of_the_window() -> None:
    cb = breaker(window_s=10.0)
    feed(cb, "xxx", 0.0)
    feed(cb, "x", 10.5)  # the first three are older than the window
    assert cb.state == "closed"
    assert cb.stats()["requests"] == 1
    feed(cb, "xxx", 12.0)
    assert cb.state == "open"


def test_outcomes_inside_the_window_still_count() -> None:
    cb = breaker(window_s=10.0)
    feed(cb, "xxx", 0.0)
    feed(cb, "x", 8.9)
    assert cb.state == "open"


def test_stats_with_a_clock_expire_the_window() -> None:
    cb = breaker()
    feed(cb, "x.", 0.0)
    assert cb.stats(5.0)["requests"] == 2
    assert cb.stats(20.0) | {"opened_at": None} == {
        "state": "closed",
        "failures": 0,
        "requests": 0,
        "opened_at": None,
        "times_opened": 0,
    }


def test_memory_is_bounded_by_the_buckets_not_the_requests() -> None:
    cb = breaker(min_requests=1_000_000)
    for i in range(10_000):
        cb.record(i % 3 != 0, i * 0.01)
    assert len(cb._buckets) <= 11
    assert cb.stats()["requests"] <= 1_000


# ------------------------------------------------------------------ open


def test_open_refuses_until_the_cool_down_has_passed() -> None:
    cb = opened(100.0)
    assert not cb.allow(100.0)
    assert not cb.allow(104.9)
    assert cb.state == "open"
    assert cb.allow(105.0)
    assert cb.state == "half_open"


def test_outcomes_arriving_while_open_are_ignored() -> None:
    cb = opened(100.0)
    for _ in range(10):
        cb.record(True, 101.0)  # requests let through before it opened
    assert cb.state == "open"
    assert cb.stats()["opened_at"] == 100.0


def test_a_zero_cool_down_goes_half_open_at_once() -> None:
    cb = breaker(cooldown_s=0)
    feed(cb, "xxxx", 1.0)
    assert cb.state == "open"
    assert cb.allow(1.0) and cb.state == "half_open"


# ------------------------------------------------------------------ half open


def test_half_open_lets_at_most_trial_requests_through_at_a_time() -> None:
    cb = half_open(105.0)
    assert cb.allow(105.1)  # second trial
    assert not cb.allow(105.2)  # both slots taken
    cb.record(True, 105.3)  # one finished: its slot is free
    assert cb.state == "half_open"
    assert cb.allow(105.4)
    assert not cb.allow(105.5)


def test_trial_successes_close_it_with_an_empty_window() -> None:
    cb = half_open(105.0)
    assert cb.allow(105.0)
    cb.record(True, 105.1)
    assert cb.state == "half_open"
    cb.record(True, 105.2)
    assert cb.state == "closed"
    stats = cb.stats()
    assert stats["requests"] == 0 and stats["failures"] == 0 and stats["times_opened"] == 1
    feed(cb, "x", 105.3)  # the failures that opened it are forgotten
    assert cb.state == "closed"


def test_one_trial_failure_opens_it_again_and_restarts_the_cool_down() -> None:
    cb = half_open(105.0)
    assert cb.allow(105.0)
    cb.record(True, 105.5)
    cb.record(False, 106.0)
    assert cb.state == "open"
    assert cb.stats()["opened_at"] == 106.0 and cb.stats()["times_opened"] == 2
    assert not cb.allow(110.9)
    assert cb.allow(111.0) and cb.state == "half_open"


def test_a_trial_without_an_outcome_within_the_window_counts_as_failed() -> None:
    cb = half_open(105.0)
    assert cb.allow(106.0)
    assert not cb.allow(110.0)  # slots taken, the first trial is 5 s old
    assert not cb.allow(115.0)  # 10 s: it hangs (or its outcome was lost)
    assert cb.state == "open"
    assert cb.stats()["opened_at"] == 115.0
    assert cb.allow(120.0) and cb.state == "half_open"


def test_outcomes_in_half_open_without_a_trial_out_are_ignored() -> None:
    cb = opened(100.0)
    assert not cb.allow(104.0)
    assert cb.allow(105.0)
    cb.record(True, 105.1)  # the trial
    cb.record(False, 105.2)  # a request from before the breaker opened
    assert cb.state == "half_open"


# ------------------------------------------------------------------ forced open


def test_force_open_from_closed() -> None:
    cb = breaker()
    feed(cb, "..", 1.0)
    cb.force_open(2.0)
    assert cb.state == "open" and not cb.allow(6.9)
    assert cb.stats()["opened_at"] == 2.0 and cb.stats()["times_opened"] == 1
    assert cb.allow(7.0) and cb.state == "half_open"


def test_force_open_while_open_restarts_the_cool_down_without_counting_twice() -> None:
    cb = opened(100.0)
    cb.force_open(103.0)
    assert not cb.allow(107.0)
    assert cb.allow(108.0)
    assert cb.stats()["times_opened"] == 1


def test_force_open_from_half_open_drops_the_trials() -> None:
    cb = half_open(105.0)
    cb.force_open(106.0)
    assert cb.state == "open" and cb.stats()["times_opened"] == 2
    cb.record(True, 106.5)  # the trial's late outcome
    assert cb.state == "open"
    assert cb.allow(111.0) and cb.allow(111.0) and not cb.allow(111.0)
