"""``@db_observer(name)``: group the queries a function runs, time it, count it.

The function runs inside ``function_scope(name)``, so every query it runs carries
``event.function == name``. Per call, a small accumulator in a contextvar counts the queries
and the database time inside it (nested observed functions each count their own and their
callees' queries). Per function name the process keeps calls, errors, total time, queries and
database time (`function_stats()`), and exports two histograms into the current runtime's
registry, re-created when ``configure()`` installs another registry:

* ``db_client_function_duration_seconds{function}``
* ``db_client_function_queries{function}`` (queries per call)

plus ``db_client_function_errors_total{function}``. With a real OpenTelemetry tracer
provider (the one given to ``configure()``, else the global SDK one) each sampled call is an
INTERNAL span named ``name``, made current, so the query spans nest under it.

Exceptions propagate unchanged. Generator functions are observed only while they create the
generator, not while it is iterated.
"""

from __future__ import annotations

import functools
import inspect
import random
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from prometheus_client import CollectorRegistry, Counter, Histogram

from ..core import QueryObserver
from ..core._context import _function
from ._common import get_runtime, recorder

_F = TypeVar("_F", bound=Callable[..., Any])
_perf_counter = time.perf_counter

DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
QUERY_COUNT_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass(slots=True)
class FunctionStats:
    """What one observed function has cost since start (or ``reset_function_stats()``)."""

    function: str
    calls: int = 0
    errors: int = 0
    total_time_s: float = 0.0
    queries: int = 0
    db_time_s: float = 0.0

    @property
    def mean_time_s(self) -> float:
        return self.total_time_s / self.calls if self.calls else 0.0

    @property
    def queries_per_call(self) -> float:
        return self.queries / self.calls if self.calls else 0.0


class _Call:
    """One running call of an observed function; queries add themselves to every open call."""

    __slots__ = ("queries", "db_time_s", "parent")

    def __init__(self, parent: _Call | None) -> None:
        self.queries = 0
        self.db_time_s = 0.0
        self.parent = parent


_current_call: ContextVar[_Call | None] = ContextVar("dbsight_function_call", default=None)


class FunctionQueryCounter(QueryObserver):
    """Adds each query to the observed calls it runs in."""

    name = "dbsight.functions"

    def after_query(self, ctx: Any, event: Any) -> None:
        call = _current_call.get()
        if call is None:
            return
        duration = event.duration_s
        while call is not None:
            call.queries += 1
            call.db_time_s += duration
            call = call.parent

    on_error = after_query


_counter = FunctionQueryCounter()


class _Metrics:
    """The Prometheus side, bound to one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.duration = self._collector(
            Histogram,
            "db_client_function_duration_seconds",
            "Duration of functions observed with @db_observer.",
            buckets=DURATION_BUCKETS,
        )
        self.queries = self._collector(
            Histogram,
            "db_client_function_queries",
            "Queries run per call of a function observed with @db_observer.",
            buckets=QUERY_COUNT_BUCKETS,
        )
        self.errors = self._collector(
            Counter,
            "db_client_function_errors",
            "Calls of functions observed with @db_observer that raised.",
        )
        self.bound: dict[
            str, tuple[Callable[[float], None], Callable[[float], None], Callable[[], None]]
        ] = {}

    def _collector(self, kind: Any, name: str, doc: str, **kwargs: Any) -> Any:
        try:
            return kind(name, doc, ["function"], registry=self.registry, **kwargs)
        except ValueError:  # already registered there (a registry used again after another)
            existing = getattr(self.registry, "_names_to_collectors", {}).get(name)
            if existing is None:
                raise
            return existing

    def children(
        self, name: str
    ) -> tuple[Callable[[float], None], Callable[[float], None], Callable[[], None]]:
        bound = self.bound.get(name)
        if bound is None:
            bound = self.bound[name] = (
                self.duration.labels(name).observe,
                self.queries.labels(name).observe,
                self.errors.labels(name).inc,
            )
        return bound


class _State:
    """Process-wide: per-function statistics and the metrics of the current registry."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stats: dict[str, FunctionStats] = {}
        self.metrics: _Metrics | None = None
        self.counter_runtime: Any = None

    def runtime(self) -> Any:
        runtime = get_runtime()
        if self.counter_runtime is not runtime:
            # The counter is a user observer of the runtime, carried over by configure().
            with self.lock:
                if _counter not in runtime.user_observers:
                    from .._runtime import add_observer

                    add_observer(_counter)
                self.counter_runtime = runtime
        return runtime

    def metrics_for(self, runtime: Any) -> _Metrics | None:
        if not runtime.settings.metrics_enabled:
            return None
        metrics = self.metrics
        if metrics is None or metrics.registry is not runtime.registry:
            with self.lock:
                metrics = self.metrics
                if metrics is None or metrics.registry is not runtime.registry:
                    metrics = self.metrics = _Metrics(runtime.registry)
        return metrics

    def record(self, name: str, seconds: float, call: _Call, failed: bool, runtime: Any) -> None:
        with self.lock:
            stats = self.stats.get(name)
            if stats is None:
                stats = self.stats[name] = FunctionStats(name)
            stats.calls += 1
            stats.total_time_s += seconds
            stats.queries += call.queries
            stats.db_time_s += call.db_time_s
            if failed:
                stats.errors += 1
        metrics = self.metrics_for(runtime)
        if metrics is not None:
            observe_duration, observe_queries, count_error = metrics.children(name)
            observe_duration(seconds)
            observe_queries(call.queries)
            if failed:
                count_error()


_state = _State()


def function_stats() -> dict[str, FunctionStats]:
    """A snapshot of every observed function's statistics, by name."""
    with _state.lock:
        return {
            name: FunctionStats(
                s.function, s.calls, s.errors, s.total_time_s, s.queries, s.db_time_s
            )
            for name, s in _state.stats.items()
        }


def reset_function_stats() -> None:
    with _state.lock:
        _state.stats.clear()


# -- tracing ---------------------------------------------------------------------------------------
def _tracer(runtime: Any) -> Any:
    """The tracer of the tracing sink, if the runtime has an active one."""
    if not runtime.settings.tracing_enabled:
        return None
    for sink in runtime.sinks:
        provider = getattr(sink, "provider", None)
        if provider is not None and getattr(sink, "active", False):
            return provider.get_tracer("dbsight")
    return None


def _start_span(name: str, runtime: Any) -> Any:
    """A current INTERNAL span for the call, or None (no provider, or not sampled)."""
    tracer = _tracer(runtime)
    if tracer is None:
        return None
    from opentelemetry import trace

    parent = trace.get_current_span().get_span_context()
    if parent.is_valid:
        if not parent.trace_flags.sampled:
            return None
    elif random.random() >= runtime.settings.effective_trace_sample_rate:
        return None
    return tracer.start_as_current_span(
        name,
        kind=trace.SpanKind.INTERNAL,
        record_exception=True,
        set_status_on_exception=True,
    )


# -- the decorator ---------------------------------------------------------------------------------
class _Observation:
    """Enter/exit of one observed call (shared by the sync and async wrappers)."""

    __slots__ = ("name", "runtime", "call", "call_token", "function_token", "span_cm", "started")

    def __init__(self, name: str) -> None:
        self.name = name
        runtime = self.runtime = _state.runtime()
        call = self.call = _Call(_current_call.get())
        self.call_token = _current_call.set(call)
        self.function_token = _function.set(name)
        self.span_cm = _start_span(name, runtime) if recorder.active else None
        if self.span_cm is not None:
            self.span_cm.__enter__()
        self.started = _perf_counter()

    def exit(self, exc: BaseException | None) -> None:
        seconds = _perf_counter() - self.started
        try:
            if self.span_cm is not None:
                if exc is None:
                    self.span_cm.__exit__(None, None, None)
                else:
                    self.span_cm.__exit__(type(exc), exc, exc.__traceback__)
        finally:
            _function.reset(self.function_token)
            _current_call.reset(self.call_token)
        if recorder.settings.enabled:
            _state.record(self.name, seconds, self.call, exc is not None, self.runtime)


def _observe(func: _F, name: str) -> _F:
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if not recorder.settings.enabled:
                return await func(*args, **kwargs)
            observation = _Observation(name)
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                observation.exit(exc)
                raise
            observation.exit(None)
            return result

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not recorder.settings.enabled:
            return func(*args, **kwargs)
        observation = _Observation(name)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            observation.exit(exc)
            raise
        observation.exit(None)
        return result

    return wrapper  # type: ignore[return-value]


@overload
def db_observer(name: _F) -> _F: ...
@overload
def db_observer(name: str | None = None) -> Callable[[_F], _F]: ...


def db_observer(name: Any = None) -> Any:
    """Observe a function (sync or async): ``@db_observer("get_user")``, ``@db_observer()``
    or bare ``@db_observer`` (the name is then the function's qualified name)."""
    if callable(name):
        func = name
        return _observe(func, f"{func.__module__}.{func.__qualname__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"db_observer(name): name must be a str, got {type(name).__name__}")

    def decorate(func: _F) -> _F:
        return _observe(func, name or f"{func.__module__}.{func.__qualname__}")

    return decorate
