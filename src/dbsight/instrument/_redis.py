"""redis-py: ``redis.Redis`` and ``redis.asyncio.Redis`` (however made: directly, from a
``ConnectionPool`` or ``from_url``), their pipelines and transactions.

The client instance gets its own ``execute_command`` (every command method goes through
it) and ``pipeline`` (``transaction()`` uses it too) attributes; ``uninstrument()`` removes
them, so the class's methods show again. A pipeline made by an instrumented client gets
its own ``execute`` and ``immediate_execute_command`` (the commands run at once while
WATCHing); one made before ``instrument()`` or while dbsight is disabled stays plain.

Per command: ``cache_operation_duration_seconds{backend="redis", operation}`` (the lower-case
command name, e.g. ``get``), ``cache_operations_total{backend, operation, result}``, a CLIENT
span (``db.system.name`` "redis", ``db.operation.name``, ``server.address``/``server.port``,
``db.namespace`` the database index; the command with its keys and values as
``db.query.text`` only with ``include_query_bodies``), and the duration added to the current
request's ``cache_time_s``.

Results: read commands (`READ_COMMANDS`) count ``hit`` or ``miss``: a ``None``, ``False`` or
empty collection is a miss (an empty string value is a hit: the key exists). Multi-key reads
count per key: an MGET of 3 keys with 1 found counts 1 hit and 2 misses, likewise HMGET
(per field), SMISMEMBER (per member) and EXISTS (per key named), so the hit ratio is a ratio
of keys, whatever the batching. Other commands count ``ok``; a raised error ``error``.

A pipeline is one operation ``pipeline`` (one round trip: its duration and ok/error; a
transaction is one too, with ``dbsight.redis.transaction`` on its span). Its commands are
also counted under their own names (hit/miss/ok, or error for a failed command's result
with ``raise_on_error=False``) but observed in no duration histogram, having no duration of
their own: ``cache_operations_total{operation="get"}`` counts every GET, pipelined or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..core import current_request
from ..export.client_metrics import CacheMetrics
from ._client import (
    ClientTelemetry,
    WeaklyBound,
    async_wrapper,
    built,
    patch_instance,
    sync_wrapper,
    telemetry_lookup,
)
from ._handle import InstrumentationHandle

BACKEND = "redis"
SYSTEM = "redis"
OBSERVER = "dbsight.redis"
PIPELINE = "pipeline"
HEALTH_TIMEOUT_S = 2.0
# db.query.text (include_query_bodies only) is cut here: a SET may carry megabytes.
MAX_QUERY_TEXT = 2048

_perf_counter = time.perf_counter
_COLLECTIONS = (list, tuple, set, dict)
# a read's counts on its span
_SPAN_COUNTS = {"hit": "dbsight.cache.hits", "miss": "dbsight.cache.misses"}


# -- hit or miss ---------------------------------------------------------------------------
# classify(result, args) -> (hits, misses)
def _found(result: Any, args: tuple[Any, ...]) -> tuple[int, int]:
    if result is None or result is False or (isinstance(result, _COLLECTIONS) and not result):
        return 0, 1
    return 1, 0


def _truthy(result: Any, args: tuple[Any, ...]) -> tuple[int, int]:
    return (1, 0) if result else (0, 1)


def _per_item(result: Any, args: tuple[Any, ...]) -> tuple[int, int]:
    if not isinstance(result, (list, tuple)):
        return _found(result, args)
    misses = sum(1 for item in result if item is None or item is False or item == 0)
    return len(result) - misses, misses


def _exists(result: Any, args: tuple[Any, ...]) -> tuple[int, int]:
    keys = len(args) - 1
    hits = min(int(result), keys)
    return hits, keys - hits


READ_COMMANDS: dict[str, Callable[[Any, tuple[Any, ...]], tuple[int, int]]] = {
    **dict.fromkeys(
        ("get", "getex", "getdel", "hget", "hgetall", "lindex", "lrange", "smembers",
         "zscore", "json.get"),
        _found,
    ),
    **dict.fromkeys(("hexists", "sismember"), _truthy),
    **dict.fromkeys(("mget", "hmget", "smismember", "json.mget"), _per_item),
    "exists": _exists,
}


def _operation(command: Any) -> str:
    if isinstance(command, str):
        return command.lower()
    if isinstance(command, bytes):
        return command.decode("utf-8", "replace").lower()
    return str(command).lower()


def _text(arg: Any) -> str:
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _command_text(args: tuple[Any, ...]) -> str:
    return " ".join(_text(arg) for arg in args)[:MAX_QUERY_TEXT]


# -- per configuration ---------------------------------------------------------------------
class _Telemetry(ClientTelemetry):
    __slots__ = ("metrics",)

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        self.metrics: CacheMetrics | None = None
        if self.enabled and runtime.settings.metrics_enabled:
            self.metrics = built(OBSERVER, CacheMetrics.of, runtime)


_telemetry = telemetry_lookup("redis_telemetry", _Telemetry)


# -- one command, one pipeline ---------------------------------------------------------------
def _outcomes(operation: str, result: Any, args: tuple[Any, ...]) -> tuple[tuple[str, int], ...]:
    """(result label, how many) pairs a command's result counts as."""
    if isinstance(result, Exception):  # a failed command's slot in a pipeline's results
        return (("error", 1),)
    classify = READ_COMMANDS.get(operation)
    if classify is None:
        return (("ok", 1),)
    hits, misses = classify(result, args)
    return (("hit", hits), ("miss", misses))


class _Timed:
    """What a command and a pipeline share: the span, the clock, the request's cache time
    and the failure path."""

    __slots__ = ("tel", "operation", "span", "started")

    def __init__(
        self, tel: _Telemetry, operation: str, server: _Server, attributes: dict[str, Any]
    ) -> None:
        self.tel = tel
        self.operation = operation
        self.span = None
        spans = tel.spans
        if spans is not None:
            attributes.update(server.attributes)
            self.span = spans.start(attributes["db.operation.name"], attributes)
        self.started = _perf_counter()

    def _elapsed(self) -> float:
        duration = _perf_counter() - self.started
        request = current_request()
        if request is not None:
            request.cache_time_s += duration
        return duration

    def fail(self, exc: BaseException) -> None:
        duration = self._elapsed()
        metrics = self.tel.metrics
        if metrics is not None:
            series = metrics.series(BACKEND, self.operation)
            series.observe(duration)
            series.inc("error")
        if self.span is not None and self.tel.spans is not None:
            self.tel.spans.fail(self.span, exc)


class _Command(_Timed):
    """One command sent on its own: timed, counted, traced."""

    __slots__ = ("args",)

    def __init__(self, tel: _Telemetry, server: _Server, args: tuple[Any, ...]) -> None:
        self.args = args
        operation = _operation(args[0])
        attributes: dict[str, Any] = {}
        if tel.spans is not None:
            attributes["db.operation.name"] = operation.upper()
            if tel.include_bodies:
                attributes["db.query.text"] = _command_text(args)
        super().__init__(tel, operation, server, attributes)

    def finish(self, result: Any) -> None:
        duration = self._elapsed()
        operation = self.operation
        outcomes = _outcomes(operation, result, self.args)
        metrics = self.tel.metrics
        if metrics is not None:
            series = metrics.series(BACKEND, operation)
            series.observe(duration)
            for outcome, n in outcomes:
                if n:
                    series.inc(outcome, n)
        span = self.span
        if span is not None:
            for outcome, n in outcomes:
                attribute = _SPAN_COUNTS.get(outcome)
                if attribute is not None:
                    span.set_attribute(attribute, n)
            span.end()


class _Pipeline(_Timed):
    """One pipeline (or transaction) execution: one round trip, ``len(stack)`` commands."""

    __slots__ = ("stack",)

    def __init__(
        self, tel: _Telemetry, server: _Server, stack: list[Any], transaction: bool
    ) -> None:
        self.stack = stack
        attributes: dict[str, Any] = {}
        if tel.spans is not None:
            attributes["db.operation.name"] = "PIPELINE"
            attributes["db.operation.batch.size"] = len(stack)
            attributes["dbsight.redis.transaction"] = transaction
            if tel.include_bodies:
                text = "\n".join(_command_text(args) for args, _ in stack)
                attributes["db.query.text"] = text[:MAX_QUERY_TEXT]
        super().__init__(tel, PIPELINE, server, attributes)

    def finish(self, results: Any) -> None:
        duration = self._elapsed()
        metrics = self.tel.metrics
        if metrics is not None:
            series = metrics.series(BACKEND, PIPELINE)
            series.observe(duration)
            series.inc("ok")
            if isinstance(results, list) and len(results) == len(self.stack):
                for (operation, outcome), n in self._tally(results).items():
                    metrics.series(BACKEND, operation).inc(outcome, n)
        if self.span is not None:
            self.span.end()

    def _tally(self, results: list[Any]) -> dict[tuple[str, str], int]:
        tally: dict[tuple[str, str], int] = {}
        for (args, _options), result in zip(self.stack, results):
            operation = _operation(args[0])
            for outcome, n in _outcomes(operation, result, args):
                if n:
                    key = (operation, outcome)
                    tally[key] = tally.get(key, 0) + n
        return tally


# -- one instrumented client ---------------------------------------------------------------
class _Server:
    """Where one client's commands go (span attributes, the health check's name), and
    whether its instrumentation is still on (pipelines it made outlive ``uninstrument()``)."""

    __slots__ = ("attributes", "name", "is_async", "active")

    def __init__(self, client: Any, is_async: bool) -> None:
        kwargs = client.connection_pool.connection_kwargs
        path = kwargs.get("path")
        attributes: dict[str, Any] = {"db.system": SYSTEM, "db.system.name": SYSTEM}
        if path:
            attributes["server.address"] = self.name = str(path)
        else:
            host = str(kwargs.get("host", "localhost"))
            port = int(kwargs.get("port", 6379))
            attributes["server.address"] = host
            attributes["server.port"] = port
            self.name = f"{host}:{port}"
        attributes["db.namespace"] = str(kwargs.get("db", 0))
        self.attributes = attributes
        self.is_async = is_async
        self.active = True

    def command(self, tel: _Telemetry, args: tuple[Any, ...], kwargs: Any) -> _Command | None:
        return _Command(tel, self, args) if self.active and args else None

    def pipeline(self, tel: _Telemetry, pipe: Any) -> _Pipeline | None:
        if not self.active or pipe is None:
            return None
        stack = pipe.command_stack
        if not stack and not pipe.watching:  # redis-py returns [] without a round trip
            return None
        state = vars(pipe)
        transaction = state.get("is_transaction" if self.is_async else "transaction", False)
        transaction = bool(transaction or pipe.explicit_transaction)
        return _Pipeline(tel, self, list(stack), transaction)

    def instrument_pipeline(self, pipe: Any) -> None:
        wrap = async_wrapper if self.is_async else sync_wrapper
        cls = type(pipe)

        def begin_pipeline(tel: _Telemetry, args: Any, kwargs: Any) -> _Pipeline | None:
            return self.pipeline(tel, execute.target)

        execute = WeaklyBound(cls.execute, pipe)
        pipe.execute = wrap(OBSERVER, execute, _telemetry, begin_pipeline)
        pipe.immediate_execute_command = wrap(
            OBSERVER,
            WeaklyBound(cls.immediate_execute_command, pipe),
            _telemetry,
            self.command,
        )


class RedisHandle(InstrumentationHandle):
    """The handle of an instrumented redis client; ``health_check()`` PINGs its server."""

    __slots__ = ("_server", "_check")

    def __init__(self, client: Any, server: _Server, undo: Callable[[], None]) -> None:
        super().__init__(client, "redis", SYSTEM, undo)
        self._server = server
        self._check: Any = None

    def health_check(self) -> Any:
        """A critical readiness check named ``redis:<host>:<port>`` that PINGs the server,
        the same object on every call; None once uninstrumented.

        The PING goes over a connection of its own, opened as the client's pool opens one
        (address, TLS, credentials, database, timeouts) but without the client's retries,
        and closed after it: a server that refuses connections fails the check at once
        (with the client's retries and backoff it would be a timeout), and the application's
        pool and its cache traffic are left alone (probes are not recorded, like the
        databases' SELECT 1).
        """
        if not self.active:
            return None
        if self._check is None:
            from ..ops.health import HealthCheck

            self._check = HealthCheck(
                f"redis:{self._server.name}",
                _ping(self.target, self._server.is_async),
                timeout_s=HEALTH_TIMEOUT_S,
                critical=True,
            )
        return self._check


def _ping(client: Any, is_async: bool) -> Callable[[], Any]:
    pool = client.connection_pool
    if is_async:
        from redis.asyncio.retry import Retry as AsyncRetry
        from redis.backoff import NoBackoff

        async def ping_async() -> bool:
            connection = pool.connection_class(
                **{**pool.connection_kwargs, "retry": AsyncRetry(NoBackoff(), 0)}
            )
            try:
                await connection.connect()
                await connection.send_command("PING")
                return bool(await connection.read_response())
            finally:
                await connection.disconnect()

        return ping_async

    from redis.backoff import NoBackoff
    from redis.retry import Retry

    def ping() -> bool:
        connection = pool.connection_class(
            **{**pool.connection_kwargs, "retry": Retry(NoBackoff(), 0)}
        )
        try:
            connection.connect()
            connection.send_command("PING")
            return bool(connection.read_response())
        finally:
            connection.disconnect()

    return ping


def instrument_client(client: Any, kind: str) -> RedisHandle:
    """Instrument a ``redis.Redis`` (kind "client") or ``redis.asyncio.Redis``
    ("async_client"); a pipeline is refused (instrument the client that makes it)."""
    if kind == "pipeline":
        raise TypeError(
            "dbsight.instrument(): instrument the redis client, not one of its pipelines; "
            "pipelines made by an instrumented client are instrumented with it"
        )
    server = _Server(client, is_async=kind == "async_client")
    wrap = async_wrapper if server.is_async else sync_wrapper
    make_pipeline = client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        if server.active and _telemetry() is not None:
            server.instrument_pipeline(pipe)
        return pipe

    undo_patch = patch_instance(
        client,
        {
            "execute_command": wrap(
                OBSERVER, client.execute_command, _telemetry, server.command
            ),
            "pipeline": pipeline,
        },
    )

    def undo() -> None:
        server.active = False
        undo_patch()

    return RedisHandle(client, server, undo)
