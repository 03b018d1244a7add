"""What the non-SQL client integrations (redis, httpx) share: their per-configuration
telemetry, method wrappers that time one call, and exact patching of instance attributes.

A wrapper looks up the integration's telemetry in the current runtime on every call (a
configure() takes effect at once; with dbsight disabled that lookup is the whole cost),
asks ``begin`` for a call object, runs the wrapped method and hands its result or exception
to ``call.finish`` / ``call.fail``. Whatever begin/finish/fail raise is counted in
``dbsight_observer_errors_total`` (logged once) and never reaches the application, which
gets the wrapped method's own result or exception.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import update_wrapper
from typing import Any, Protocol, TypeVar

from .._runtime import Runtime, get_runtime, recorder
from ..export.client_spans import ClientSpans
from ._common import mark_coroutine_function

_MISSING = object()
_T = TypeVar("_T")


class ClientTelemetry:
    """One runtime's view for a client integration: whether dbsight is on, and its spans.
    Subclasses add their metrics; ``enabled`` False makes every wrapper a pass-through."""

    __slots__ = ("enabled", "spans", "include_bodies")

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.enabled = settings.enabled
        self.include_bodies = settings.include_query_bodies
        self.spans: ClientSpans | None = ClientSpans.of(runtime) if self.enabled else None


_Tel = TypeVar("_Tel", bound=ClientTelemetry)


def telemetry_lookup(key: str, factory: Callable[[Runtime], _Tel]) -> Callable[[], _Tel | None]:
    """``lookup()`` -> the current runtime's ``key`` telemetry, or None when disabled."""

    def lookup() -> _Tel | None:
        runtime = get_runtime()
        found = runtime.components.get(key)
        if found is None:
            found = runtime.component(key, factory)
        return found if found.enabled else None

    return lookup


def built(name: str, factory: Callable[[Runtime], _T], runtime: Runtime) -> _T | None:
    """``factory(runtime)``, or None (counted as a failure of ``name``) when it raises: a
    metric that cannot be registered must not break the client it observes."""
    try:
        return factory(runtime)
    except Exception as exc:
        recorder.failures.record(name, "setup", exc)
        return None


class Call(Protocol):
    def finish(self, result: Any) -> None: ...
    def fail(self, exc: BaseException) -> None: ...


# begin(telemetry, args, kwargs) -> the call to finish, or None to run the method unobserved
Begin = Callable[[Any, tuple[Any, ...], dict[str, Any]], Call | None]


def _begin(name: str, begin: Begin, tel: Any, args: Any, kwargs: Any) -> Call | None:
    try:
        return begin(tel, args, kwargs)
    except Exception as exc:
        recorder.failures.record(name, "begin", exc)
        return None


def _finish(name: str, call: Call, result: Any) -> None:
    try:
        call.finish(result)
    except Exception as exc:
        recorder.failures.record(name, "finish", exc)


def _fail(name: str, call: Call, error: BaseException) -> None:
    try:
        call.fail(error)
    except Exception as exc:
        recorder.failures.record(name, "fail", exc)


def sync_wrapper(
    name: str, method: Callable[..., Any], lookup: Callable[[], Any], begin: Begin
) -> Callable[..., Any]:
    """Wrap a synchronous ``method`` (a bound method or any callable)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tel = lookup()
        call = _begin(name, begin, tel, args, kwargs) if tel is not None else None
        if call is None:
            return method(*args, **kwargs)
        try:
            result = method(*args, **kwargs)
        except BaseException as exc:
            _fail(name, call, exc)
            raise
        _finish(name, call, result)
        return result

    return update_wrapper(wrapper, method)


def async_wrapper(
    name: str, method: Callable[..., Any], lookup: Callable[[], Any], begin: Begin
) -> Callable[..., Any]:
    """Wrap a ``method`` that returns an awaitable. Disabled, the wrapper hands back the
    method's own awaitable (no second coroutine frame); the call begins when awaited."""

    async def observed(tel: Any, args: Any, kwargs: Any) -> Any:
        call = _begin(name, begin, tel, args, kwargs)
        if call is None:
            return await method(*args, **kwargs)
        try:
            result = await method(*args, **kwargs)
        except BaseException as exc:  # CancelledError included: recorded, then re-raised
            _fail(name, call, exc)
            raise
        _finish(name, call, result)
        return result

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tel = lookup()
        if tel is None:
            return method(*args, **kwargs)
        return observed(tel, args, kwargs)

    return mark_coroutine_function(update_wrapper(wrapper, method))


class WeaklyBound:
    """``function(obj, ...)`` for an ``obj`` held weakly. A wrapper stored on the instance
    whose method it wraps would otherwise keep that instance alive in a reference cycle,
    delaying its ``__del__`` (a redis pipeline returns its connection there) to the GC."""

    __slots__ = ("_function", "_ref", "__weakref__")

    def __init__(self, function: Callable[..., Any], obj: object) -> None:
        self._function = function
        self._ref = weakref.ref(obj)

    @property
    def target(self) -> Any:
        """The object, or None once it is gone."""
        return self._ref()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(self._ref(), *args, **kwargs)


def patch_instance(obj: object, replacements: dict[str, Any]) -> Callable[[], None]:
    """Set attributes on ``obj`` itself; the returned ``undo()`` restores exactly what was
    there before (the previous instance attribute, or none, so the class's shows again)."""
    own = vars(obj)
    previous = {name: own.get(name, _MISSING) for name in replacements}
    for name, value in replacements.items():
        setattr(obj, name, value)

    def undo() -> None:
        for name, value in previous.items():
            if value is _MISSING:
                vars(obj).pop(name, None)
            else:
                setattr(obj, name, value)

    return undo
