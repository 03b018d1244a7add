"""Wires settings to sinks: which observers the recorder feeds, and the objects they share.

There is one `Recorder` for the process (instruments bind it once); ``configure()`` swaps
the sinks behind it, so reconfiguring never requires re-instrumenting anything.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry

from .core import Recorder, Settings, load_settings
from .export.logging import QueryLogSink
from .export.prometheus import PrometheusSink
from .export.slowlog import EXITING, FLUSH_TIMEOUT_S, SlowQuerySink
from .export.tracing import TracingSink
from .stats import ParameterSamples, StatsSink, StatsTable

T = TypeVar("T")

recorder = Recorder()
# A forked worker must not fold the statements its parent still held (they would count twice).
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=recorder.flush)
_lock = threading.RLock()


@dataclass
class Runtime:
    """Everything ``configure()`` built: settings, the shared registry and table, the sinks."""

    settings: Settings
    registry: CollectorRegistry
    stats: StatsTable
    sinks: list[Any] = field(default_factory=list)
    user_observers: list[Any] = field(default_factory=list)
    components: dict[str, Any] = field(default_factory=dict)

    def component(self, key: str, factory: Callable[[Runtime], T]) -> T:
        """The runtime's one ``key`` object (say the cache metrics), built by ``factory(self)``
        on first use; integrations beyond the database sinks keep their per-configuration
        state here, so that ``configure()`` replaces it with everything else."""
        found = self.components.get(key)
        if found is None:
            with _lock:
                found = self.components.get(key)
                if found is None:
                    found = self.components[key] = factory(self)
        return found  # type: ignore[no-any-return]

    def flush(self, timeout_s: float, reason: str) -> None:
        """Write what sinks hold back (slow-query lines waiting for their EXPLAIN plan),
        waiting at most ``timeout_s`` for what is in flight."""
        for sink in self.sinks:
            flush = getattr(sink, "flush", None)
            if flush is not None:
                flush(timeout_s, reason)

    def close(self) -> None:
        for item in (*self.sinks, *self.components.values()):
            close = getattr(item, "close", None)
            if close is not None:
                close()


_runtime: Runtime | None = None


# Settings that name where alerts go; with none of them set the notifier is off.
_ALERT_DESTINATIONS = (
    "alertmanager_url", "alert_webhook_url", "alert_slack_webhook_url",
    "alert_pagerduty_routing_key", "alert_smtp_host",
)  # fmt: skip


def _build_sinks(runtime: Runtime, tracer_provider: Any, previous: Runtime | None) -> list[Any]:
    settings = runtime.settings
    sinks: list[Any] = []
    if settings.tracing_enabled:
        tracing = TracingSink(settings, tracer_provider=tracer_provider)
        if tracing.active:
            sinks.append(tracing)
    if settings.metrics_enabled:
        sinks.append(PrometheusSink(settings, runtime.registry, recorder=recorder))
    if settings.stats_enabled:
        sinks.append(StatsSink(runtime.stats))
        if settings.advice_samples:
            sinks.append(_samples(runtime, previous))
    sinks.append(SlowQuerySink(settings, stats=runtime.stats))
    sinks.append(QueryLogSink(settings))
    if any(getattr(settings, name) for name in _ALERT_DESTINATIONS):
        # the notifier's package only where a destination is set: `import dbsight` stays light
        from .notify import NotifierSink, alerting_configured

        if alerting_configured(settings):
            sinks.append(NotifierSink(settings, runtime.registry))
    return sinks


def _samples(runtime: Runtime, previous: Runtime | None) -> ParameterSamples:
    """The parameter sampler: the previous runtime's (bounded anew) while there is one, as
    the statistics it goes with survive a reconfiguration."""
    settings = runtime.settings
    found = parameter_samples(previous) if previous is not None else None
    if found is None:
        return ParameterSamples(
            settings.advice_samples, max_fingerprints=settings.stats_max_fingerprints
        )
    found.resize(settings.advice_samples, settings.stats_max_fingerprints)
    return found


def parameter_samples(runtime: Runtime) -> ParameterSamples | None:
    """The runtime's parameter sampler (None with ``advice_samples=0`` or statistics off)."""
    for sink in runtime.sinks:
        if isinstance(sink, ParameterSamples):
            return sink
    return None


def _statistics(previous: Runtime | None, settings: Settings) -> StatsTable:
    """The previous runtime's table while statistics stay on (bounded anew), else an empty
    one: with statistics off nothing is counted, and stale numbers would mislead."""
    if previous is not None and settings.enabled and settings.stats_enabled:
        previous.stats.resize(settings.stats_max_fingerprints)
        return previous.stats
    return StatsTable(max_fingerprints=settings.stats_max_fingerprints)


def configure(
    settings: Settings | None = None,
    *,
    tracer_provider: Any = None,
    registry: CollectorRegistry | None = None,
) -> Runtime:
    """(Re)configure dbsight. Without arguments, settings come from ``DBSIGHT_*`` (the
    environment, then ./.env); invalid ones raise `ConfigError`, and the previous
    configuration stays.

    ``tracer_provider`` overrides OpenTelemetry's global one for dbsight's spans;
    ``registry`` makes dbsight register its metrics there instead of its own registry.

    The statement statistics (``dbsight.stats``) survive a reconfiguration: a smaller
    ``stats_max_fingerprints`` evicts the least significant statements down to the new
    bound, as the table does when it is full. Turning statistics off (``stats_enabled`` or
    ``enabled`` False) drops them; ``dbsight.stats.reset()`` forgets them on purpose.
    """
    global _runtime
    with _lock:
        settings = settings if settings is not None else load_settings()
        previous = _runtime
        user_observers = previous.user_observers if previous is not None else []
        recorder.flush()  # the statements the old sinks have not folded yet: theirs
        if previous is not None:
            previous.close()
        if registry is None:
            registry = CollectorRegistry(auto_describe=True)
        stats = _statistics(previous, settings)
        runtime = Runtime(settings, registry, stats, user_observers=user_observers)
        runtime.sinks = _build_sinks(runtime, tracer_provider, previous) if settings.enabled else []
        recorder.apply_settings(settings)
        recorder.replace_observers([*runtime.sinks, *runtime.user_observers])
        _runtime = runtime
        _register_exit_hook()
        return runtime


def flush(timeout_s: float = FLUSH_TIMEOUT_S, reason: str = EXITING) -> None:
    """Write what the sinks hold back, waiting at most ``timeout_s`` (see `Runtime.flush`);
    nothing to do before ``configure()``."""
    recorder.flush()
    runtime = _runtime
    if runtime is not None:
        runtime.flush(timeout_s, reason)


def _flush_at_exit() -> None:
    try:
        flush()
    except Exception:  # exiting: nothing to report to, and nothing to break
        pass


_exit_hook = False


def _register_exit_hook() -> None:
    """Once, at the first ``configure()`` (after ``logging`` registered its own exit hook, so
    that this one runs first and its lines still reach the log handlers)."""
    global _exit_hook
    if not _exit_hook:
        _exit_hook = True
        atexit.register(_flush_at_exit)


def get_runtime() -> Runtime:
    """The current runtime, configured from the environment on first use."""
    runtime = _runtime
    if runtime is None:
        with _lock:
            runtime = _runtime if _runtime is not None else configure()
    return runtime


def add_observer(observer: object) -> None:
    """Register a `QueryObserver` (or any object with its hooks) for every instrument."""
    runtime = get_runtime()
    with _lock:
        recorder.add_observer(observer)
        if observer not in runtime.user_observers:
            runtime.user_observers.append(observer)


def remove_observer(observer: object) -> None:
    runtime = get_runtime()
    with _lock:
        recorder.remove_observer(observer)
        if observer in runtime.user_observers:
            runtime.user_observers.remove(observer)


def reset() -> None:
    """Undo ``configure()``: close the sinks and forget observers; the next use reconfigures
    from the environment, as on first use."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
        _runtime = None
        recorder.replace_observers([])
