"""Shared fixtures for the instrument tests: a configured dbsight that collects every event."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lean_observers import Batched

import dbsight
from dbsight.core import QueryObserver, Settings


class Collector(QueryObserver):
    """Keeps every event (and its context, and the exception being handled on error)."""

    name = "tests.collector"

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.contexts: list[Any] = []
        self.raised: list[BaseException | None] = []
        self._lock = threading.Lock()

    def after_query(self, ctx: Any, event: Any) -> None:
        with self._lock:
            self.events.append(event)
            self.contexts.append(ctx)
            self.raised.append(None)

    def on_error(self, ctx: Any, event: Any) -> None:
        with self._lock:
            self.events.append(event)
            self.contexts.append(ctx)
            # the recorder is called from the instrument's ``except`` block
            self.raised.append(sys.exc_info()[1])

    def clear(self) -> None:
        with self._lock:
            self.events.clear()
            self.contexts.clear()
            self.raised.clear()

    def of(self, operation: str) -> list[Any]:
        return [e for e in self.events if e.operation == operation]

    def matching(self, text: str) -> list[Any]:
        return [e for e in self.events if text in e.sql]

    def sql(self) -> list[str]:
        return [e.sql for e in self.events]


@pytest.fixture
def dbsight_runtime() -> Iterator[Callable[..., None]]:
    """``dbsight_runtime(**settings, tracer_provider=None)``: configures dbsight (EXPLAIN off
    unless asked for) with its own sinks; afterwards every handle is uninstrumented and
    dbsight is left unconfigured again."""
    from dbsight import _runtime
    from dbsight.instrument import uninstrument_all

    def configure(tracer_provider: Any = None, **overrides: Any) -> None:
        overrides.setdefault("explain_slow_queries", False)
        dbsight.configure(Settings(**overrides), tracer_provider=tracer_provider)

    yield configure
    uninstrument_all()
    with _runtime._lock:
        if _runtime._runtime is not None:
            _runtime._runtime.close()
        _runtime._runtime = None
        _runtime.recorder.replace_observers([])
        _runtime.recorder.failures.counts.clear()


@pytest.fixture
def configure_dbsight(
    dbsight_runtime: Callable[..., None],
) -> Callable[..., Collector]:
    """``configure_dbsight(**settings, tracer_provider=None) -> Collector``: `dbsight_runtime`
    with a collecting observer."""

    def configure(tracer_provider: Any = None, **overrides: Any) -> Collector:
        dbsight_runtime(tracer_provider=tracer_provider, **overrides)
        collector = Collector()
        dbsight.add_observer(collector)
        return collector

    return configure


@pytest.fixture
def events(configure_dbsight: Callable[..., Collector]) -> Collector:
    """dbsight configured with default settings (EXPLAIN off), collecting events."""
    return configure_dbsight()


@pytest.fixture
def span_exporter(configure_dbsight: Callable[..., Collector]) -> Iterator[tuple[Any, Collector]]:
    """(InMemorySpanExporter, Collector) with an SDK tracer provider given to configure()."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    collector = configure_dbsight(tracer_provider=provider)
    yield exporter, collector
    provider.shutdown()


class RaisingObserver(QueryObserver):
    name = "tests.raising"

    def after_query(self, ctx: Any, event: Any) -> None:
        raise RuntimeError("observer bug")


@pytest.fixture
def raising_observer(events: Collector) -> Iterator[RaisingObserver]:
    observer = RaisingObserver()
    dbsight.add_observer(observer)
    yield observer
    dbsight.remove_observer(observer)


@pytest.fixture(params=[False, True], ids=["no-bodies", "bodies"])
def lean_collector(request: Any, dbsight_runtime: Callable[..., None]) -> Batched:
    """A batched observer like dbsight's own sinks (the lean path stays open), with query
    bodies kept or not, slow statements explained."""
    dbsight_runtime(include_query_bodies=request.param, explain_slow_queries=True)
    collector = Batched()
    dbsight.add_observer(collector)
    return collector
