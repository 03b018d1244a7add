"""redis-py ``Redis`` / ``redis.asyncio.Redis`` instrumentation against a real Redis: cache
metrics with hit/miss, pipelines and transactions, spans, request cache time, errors
re-raised unchanged, exact uninstrument, and the PING health check."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry, Counter, generate_latest
from redis.backoff import NoBackoff
from redis.retry import Retry

import dbsight
from dbsight import _runtime
from dbsight.core import Settings
from dbsight.instrument import live_handles

# The application's tracer: a provider of its own, as an application would have.
APP_TRACER = TracerProvider().get_tracer("app")
SECRET = "s3cr3t-value"


def count(operation: str, result: str) -> float:
    labels = {"backend": "redis", "operation": operation, "result": result}
    value = dbsight.get_runtime().registry.get_sample_value("cache_operations_total", labels)
    return value or 0.0


def observed(operation: str) -> float:
    value = dbsight.get_runtime().registry.get_sample_value(
        "cache_operation_duration_seconds_count", {"backend": "redis", "operation": operation}
    )
    return value or 0.0


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "localhost", parts.port or 6379


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
async def aclient(redis_url: str) -> Any:
    connection = redis.asyncio.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


@pytest.fixture
def spans(span_exporter: Any) -> tuple[InMemorySpanExporter, Any]:
    """(exporter of dbsight's spans, a tracer of the application's own for parent spans)."""
    return span_exporter[0], APP_TRACER


def _reads(c: Any, k: str) -> list[Any]:
    return [
        c.get(k + "a"),
        c.set(k + "a", b"1"),
        c.get(k + "a"),
        c.mget(k + "a", k + "b", k + "c"),
        c.hgetall(k + "h"),
        c.hset(k + "h", "f", "v"),
        c.hgetall(k + "h"),
        c.exists(k + "a", k + "b"),
        c.set(k + "empty", b""),
        c.get(k + "empty"),
        c.delete(k + "a", k + "h", k + "empty"),
    ]


def test_results_are_unchanged_and_reads_count_hits_and_misses(
    client: redis.Redis, redis_prefix: str, events: Any
) -> None:
    plain = _reads(client, redis_prefix)
    handle = dbsight.instrument(client)
    assert (handle.source, handle.system, handle.target) == ("redis", "redis", client)
    assert _reads(client, redis_prefix) == plain

    # GET: a missing key is a miss; an empty string value is a hit (the key exists)
    assert (count("get", "hit"), count("get", "miss")) == (2, 1)
    # MGET and EXISTS count per key
    assert (count("mget", "hit"), count("mget", "miss")) == (1, 2)
    assert (count("exists", "hit"), count("exists", "miss")) == (1, 1)
    assert (count("hgetall", "hit"), count("hgetall", "miss")) == (1, 1)
    # other commands count ok, under the lower-case command name (delete() sends DEL)
    assert (count("set", "ok"), count("hset", "ok"), count("del", "ok")) == (2, 1, 1)
    # the duration histogram counts calls
    assert (observed("get"), observed("mget"), observed("set"), observed("del")) == (3, 1, 2, 1)


def test_errors_are_reraised_unchanged_and_counted(
    client: redis.Redis, redis_prefix: str, events: Any
) -> None:
    key = redis_prefix + "string"
    client.set(key, "x")
    with pytest.raises(redis.ResponseError) as plain:
        client.lpush(key, 1)
    dbsight.instrument(client)
    with pytest.raises(redis.ResponseError) as caught:
        client.lpush(key, 1)
    assert type(caught.value) is type(plain.value)
    assert str(caught.value) == str(plain.value)
    assert str(caught.value).startswith("WRONGTYPE")
    assert (count("lpush", "error"), observed("lpush")) == (1, 1)


def test_pipelines_and_transactions(client: redis.Redis, redis_prefix: str, events: Any) -> None:
    k = redis_prefix

    def transaction(c: Any) -> list[Any]:
        with c.pipeline() as pipe:
            pipe.set(k + "p", "a").get(k + "p").get(k + "missing").mget(k + "p", k + "missing")
            return pipe.execute()  # type: ignore[no-any-return]

    def pipeline_with_error(c: Any) -> list[Any]:
        pipe = c.pipeline(transaction=False)
        pipe.set(k + "s", "x").lpush(k + "s", 1).get(k + "s")
        return pipe.execute(raise_on_error=False)  # type: ignore[no-any-return]

    plain = transaction(client), pipeline_with_error(client)
    dbsight.instrument(client)
    assert transaction(client) == plain[0] == [True, b"a", None, [b"a", None]]
    with_error = pipeline_with_error(client)
    assert [type(r) for r in with_error] == [type(r) for r in plain[1]]
    assert isinstance(with_error[1], redis.ResponseError)

    # one "pipeline" operation per round trip, with its duration
    assert (count("pipeline", "ok"), observed("pipeline")) == (2, 2)
    # its commands counted under their own names, in no duration histogram
    assert (count("get", "hit"), count("get", "miss")) == (2, 1)
    assert (count("mget", "hit"), count("mget", "miss")) == (1, 1)
    assert (count("set", "ok"), count("lpush", "error")) == (2, 1)
    assert observed("get") == observed("set") == 0

    # raise_on_error=True: the pipeline fails as a whole, with redis-py's own error
    pipe = client.pipeline(transaction=False)
    pipe.lpush(k + "s", 1)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        pipe.execute()
    assert count("pipeline", "error") == 1

    # an empty pipeline makes no round trip and is not an operation
    assert client.pipeline().execute() == []
    assert observed("pipeline") == 3


def test_watched_transaction_records_immediate_commands(
    client: redis.Redis, redis_prefix: str, events: Any
) -> None:
    key = redis_prefix + "counter"
    client.set(key, 1)
    dbsight.instrument(client)

    def increment(pipe: Any) -> None:
        value = int(pipe.get(key))  # runs at once: the pipeline is WATCHing
        pipe.multi()
        pipe.set(key, value + 1)

    assert client.transaction(increment, key) == [True]
    assert client.get(key) == b"2"
    assert count("watch", "ok") == observed("watch") == 1
    assert count("get", "hit") == 2 and observed("get") == 2
    assert count("pipeline", "ok") == 1 and count("set", "ok") == 1


def test_clients_from_a_connection_pool_or_host_and_port(
    redis_url: str, redis_prefix: str, spans: Any
) -> None:
    exporter, _ = spans
    host, port = address(redis_url)
    pool = redis.ConnectionPool.from_url(redis_url)
    clients = [redis.Redis(connection_pool=pool), redis.Redis(host=host, port=port, db=0)]
    try:
        for c in clients:
            dbsight.instrument(c)
            assert c.set(redis_prefix + "x", "1") is True
    finally:
        for c in clients:
            c.close()
        pool.disconnect()
    assert count("set", "ok") == 2
    for span in exporter.get_finished_spans():
        assert span.attributes["server.address"] == host
        assert span.attributes["server.port"] == port


def test_spans_are_client_children_without_keys_or_values(
    client: redis.Redis, redis_url: str, redis_prefix: str, spans: Any
) -> None:
    exporter, tracer = spans
    host, port = address(redis_url)
    dbsight.instrument(client)
    key = redis_prefix + SECRET
    client.set(key, "x")
    with tracer.start_as_current_span("GET /items/{id}") as parent:
        client.set(key, SECRET)
        assert client.get(key) == SECRET.encode()
        with client.pipeline() as pipe:
            pipe.get(key).get(redis_prefix + "missing")
            pipe.execute()
        with pytest.raises(redis.ResponseError):
            client.lpush(key, SECRET)

    finished = exporter.get_finished_spans()
    children = [s for s in finished if s.parent is not None]
    assert [s.name for s in children] == ["SET", "GET", "PIPELINE", "LPUSH"]
    for span in children:
        assert span.kind is SpanKind.CLIENT
        assert span.parent.span_id == parent.get_span_context().span_id
        attributes = dict(span.attributes)
        assert attributes["db.system.name"] == "redis"
        assert attributes["server.address"] == host
        assert attributes["server.port"] == port
        assert attributes["db.namespace"] == "0"
        assert "db.query.text" not in attributes
        assert not any(SECRET in str(value) for value in attributes.values())
        assert SECRET not in (span.status.description or "")
    get, pipeline, lpush = children[1:]
    assert get.attributes["db.operation.name"] == "GET"
    assert (get.attributes["dbsight.cache.hits"], get.attributes["dbsight.cache.misses"]) == (1, 0)
    assert pipeline.attributes["db.operation.batch.size"] == 2
    assert pipeline.attributes["dbsight.redis.transaction"] is True
    assert lpush.status.status_code is StatusCode.ERROR
    assert lpush.attributes["error.type"] == "ResponseError"
    # outside any trace, a command is a root span of its own (dev sample rate: 1)
    assert [s.name for s in finished if s.parent is None] == ["SET"]


def test_commands_and_values_are_exported_only_with_query_bodies(
    client: redis.Redis, redis_prefix: str, configure_dbsight: Any
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    configure_dbsight(tracer_provider=provider, include_query_bodies=True)
    dbsight.instrument(client)
    key = redis_prefix + "k"
    client.set(key, SECRET)
    (span,) = exporter.get_finished_spans()
    assert span.attributes["db.query.text"] == f"SET {key} {SECRET}"
    provider.shutdown()


def test_cache_time_grows_inside_a_request(
    client: redis.Redis, redis_prefix: str, events: Any
) -> None:
    dbsight.instrument(client)
    with dbsight.request_scope() as request:
        assert request.cache_time_s == 0.0
        client.get(redis_prefix + "a")
        after_get = request.cache_time_s
        assert after_get > 0.0
        with client.pipeline() as pipe:
            pipe.get(redis_prefix + "a")
            pipe.execute()
        assert request.cache_time_s > after_get
        with pytest.raises(redis.ResponseError):
            client.execute_command("NO-SUCH-COMMAND")
        assert request.cache_time_s > after_get
    assert request.db_time_s == 0.0 and request.queries == 0


def test_uninstrument_restores_the_client_exactly(
    client: redis.Redis, redis_prefix: str, events: Any
) -> None:
    before = dict(vars(client))
    handle = dbsight.instrument(client)
    assert dbsight.instrument(client) is handle
    assert handle in live_handles()
    made_while_instrumented = client.pipeline()
    client.get(redis_prefix + "a")
    handle.uninstrument()
    handle.uninstrument()  # idempotent

    assert vars(client) == before
    assert type(client).execute_command is redis.Redis.execute_command
    assert client.execute_command.__func__ is redis.Redis.execute_command
    assert client.pipeline.__func__ is redis.Redis.pipeline
    client.get(redis_prefix + "a")
    made_while_instrumented.get(redis_prefix + "a")
    assert made_while_instrumented.execute() == [None]
    assert "execute" not in vars(client.pipeline())
    assert (count("get", "miss"), count("pipeline", "ok")) == (1, 0)
    assert dbsight.instrument(client) is not handle


def test_a_pipeline_is_refused_with_a_hint(client: redis.Redis, events: Any) -> None:
    with pytest.raises(TypeError, match="not one of its pipelines"):
        dbsight.instrument(client.pipeline())


def test_disabled_dbsight_records_nothing(
    client: redis.Redis, redis_prefix: str, configure_dbsight: Any
) -> None:
    configure_dbsight(enabled=False)
    dbsight.instrument(client)
    with dbsight.request_scope() as request:
        assert _reads(client, redis_prefix)[3] == [b"1", None, None]
        pipe = client.pipeline()
        assert "execute" not in vars(pipe)  # not even wrapped
    assert request.cache_time_s == 0.0
    assert b"cache_operations" not in generate_latest(dbsight.get_runtime().registry)


def test_a_metrics_failure_never_breaks_the_client(
    client: redis.Redis, redis_prefix: str, configure_dbsight: Any
) -> None:
    configure_dbsight()
    registry = CollectorRegistry()
    Counter("cache_operations", "taken by the application", registry=registry)
    dbsight.configure(Settings(explain_slow_queries=False), registry=registry)
    dbsight.instrument(client)
    assert client.set(redis_prefix + "a", "1") is True
    assert client.get(redis_prefix + "a") == b"1"
    assert _runtime.recorder.failures.counts["dbsight.redis"] == 1


def test_a_result_that_cannot_be_classified_is_returned_unchanged(
    client: redis.Redis, redis_prefix: str, events: Any
) -> None:
    # an application's own response callback may turn EXISTS' count into anything
    client.set_response_callback("EXISTS", lambda response, **options: "not a count")
    dbsight.instrument(client)
    assert client.exists(redis_prefix + "a") == "not a count"
    assert _runtime.recorder.failures.counts["dbsight.redis"] == 1
    assert observed("exists") == 0  # the failed bookkeeping counted nothing half-way


# -- redis.asyncio ------------------------------------------------------------------------
async def test_async_commands_pipelines_and_errors(
    aclient: Any, redis_prefix: str, events: Any
) -> None:
    k = redis_prefix
    await aclient.set(k + "s", "x")
    handle = dbsight.instrument(aclient)
    assert handle.system == "redis" and dbsight.instrument(aclient) is handle
    with dbsight.request_scope() as request:
        assert await aclient.get(k + "s") == b"x"
        assert await aclient.mget(k + "s", k + "missing") == [b"x", None]
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await aclient.lpush(k + "s", 1)
        async with aclient.pipeline() as pipe:
            pipe.set(k + "p", "1").get(k + "p").get(k + "missing")
            assert await pipe.execute() == [True, b"1", None]
    assert request.cache_time_s > 0.0

    assert (count("get", "hit"), count("get", "miss"), observed("get")) == (2, 1, 1)
    assert (count("mget", "hit"), count("mget", "miss")) == (1, 1)
    assert count("lpush", "error") == 1
    assert (count("pipeline", "ok"), observed("pipeline"), count("set", "ok")) == (1, 1, 1)

    handle.uninstrument()
    assert "execute_command" not in vars(aclient) and "pipeline" not in vars(aclient)
    await aclient.get(k + "s")
    assert observed("get") == 1


async def test_async_watched_transaction(aclient: Any, redis_prefix: str, events: Any) -> None:
    key = redis_prefix + "counter"
    await aclient.set(key, 1)
    dbsight.instrument(aclient)

    async def increment(pipe: Any) -> None:
        value = int(await pipe.get(key))
        pipe.multi()
        pipe.set(key, value + 1)

    assert await aclient.transaction(increment, key) == [True]
    assert await aclient.get(key) == b"2"
    assert count("watch", "ok") == 1 and count("get", "hit") == 2
    assert count("pipeline", "ok") == 1


async def test_async_spans(aclient: Any, redis_prefix: str, spans: Any) -> None:
    exporter, tracer = spans
    dbsight.instrument(aclient)
    with tracer.start_as_current_span("job") as parent:
        await aclient.get(redis_prefix + "missing")
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "GET"]
    assert span.parent.span_id == parent.get_span_context().span_id
    assert (span.attributes["dbsight.cache.hits"], span.attributes["dbsight.cache.misses"]) == (
        0,
        1,
    )


# -- health check (dbsight.ops.health) ---------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_health_check_pings_without_counting_the_probe(
    client: redis.Redis, aclient: Any, redis_url: str, events: Any
) -> None:
    from dbsight.ops.health import HealthCheck

    host, port = address(redis_url)
    for target in (client, aclient):
        handle = dbsight.instrument(target)
        check = handle.health_check()
        assert isinstance(check, HealthCheck)
        assert (check.name, check.critical) == (f"redis:{host}:{port}", True)
        assert handle.health_check() is check
        result = await check.run()
        assert result.status == "ok", result.error
        handle.uninstrument()
        assert handle.health_check() is None
    assert count("ping", "ok") == 0

    dead = redis.Redis(
        host="127.0.0.1", port=_closed_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        result = await dbsight.instrument(dead).health_check().run()
    finally:
        dead.close()
    assert result.status == "fail" and "ConnectionError" in (result.error or "")
