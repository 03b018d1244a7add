"""redis_url / redis_prefix: a Redis server, and a key prefix cleaned up after each test."""

from __future__ import annotations

import os

import pytest
import redis
import redis.asyncio

from dbsight.testing import RedisServer

_seen: dict[str, str] = {}


def test_redis_round_trip(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(redis_prefix + "greeting", "hello")
        client.hset(redis_prefix + "user:1", mapping={"name": "ada"})
        assert client.get(redis_prefix + "greeting") == b"hello"
        assert client.hgetall(redis_prefix + "user:1") == {b"name": b"ada"}
    finally:
        client.close()


async def test_redis_round_trip_async(redis_url: str, redis_prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.rpush(redis_prefix + "queue", "a", "b")
        assert await client.lrange(redis_prefix + "queue", 0, -1) == [b"a", b"b"]
    finally:
        await client.aclose()


def test_first_leaves_keys_behind(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        for i in range(1200):  # more than one SCAN batch / DEL batch
            client.set(f"{redis_prefix}k{i}", i)
    finally:
        client.close()
    _seen["prefix"] = redis_prefix


def test_second_sees_them_cleaned_up(redis_prefix: str, redis_server: RedisServer) -> None:
    if "prefix" not in _seen:
        pytest.skip("runs after test_first_leaves_keys_behind")
    assert redis_prefix != _seen["prefix"]
    assert redis_server.keys(_seen["prefix"]) == []


def test_delete_prefix_only_touches_the_prefix(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    client = redis_server.client()
    other = redis_prefix + "x"  # a different prefix that merely starts like ours
    try:
        client.set(redis_prefix + "a", 1)
        client.set(other + "-unrelated", 1)  # also under redis_prefix: removed at teardown
        client.set("dbsight_test_glob[*]?", 1)
        assert redis_server.delete_prefix("dbsight_test_glob[*]") == 1
        assert client.exists("dbsight_test_glob[*]?") == 0
        assert redis_server.delete_prefix(redis_prefix + "a") == 1
        assert client.exists(other + "-unrelated") == 1
    finally:
        client.delete("dbsight_test_glob[*]?")
        client.close()
    with pytest.raises(ValueError):
        redis_server.delete_prefix("")


def test_default_server_is_private(redis_server: RedisServer) -> None:
    if os.environ.get("DBSIGHT_TEST_REDIS_URL"):
        pytest.skip("DBSIGHT_TEST_REDIS_URL selects an external server")
    assert redis_server.embedded is not None
    assert redis_server.embedded.port != 6379
    client = redis_server.client()
    try:
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()
