"""@db_observer and ObservableRepository: queries grouped per function, real databases
underneath."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest

import dbsight
from dbsight import _runtime
from dbsight.instrument import function_stats, reset_function_stats


@pytest.fixture(autouse=True)
def _fresh_function_stats() -> None:
    reset_function_stats()


@pytest.fixture
def engine(tmp_path: Any) -> Any:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'obs.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE users (id int PRIMARY KEY, name text)")
        conn.exec_driver_sql("INSERT INTO users VALUES (1, 'ann'), (2, 'bob')")
    yield engine
    engine.dispose()


class UserRepository:
    table = "users"

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def get(self, user_id: int) -> str:
        with self.engine.connect() as conn:
            return str(
                conn.execute(
                    sa.text("SELECT name FROM users WHERE id = :id"), {"id": user_id}
                ).scalar_one()
            )

    def names(self) -> list[str]:
        return [self.get(1), self.get(2)]

    def broken(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT * FROM nowhere"))

    def _private(self) -> int:
        return 1


def test_db_observer_groups_queries_and_records_stats_and_metrics(engine: Any, events: Any) -> None:
    dbsight.instrument(engine)

    @dbsight.db_observer("load_users")
    def load_users() -> list[str]:
        with engine.connect() as conn:
            return [r.name for r in conn.execute(sa.text("SELECT name FROM users ORDER BY id"))] + [
                conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
            ]

    assert load_users() == ["ann", "bob", 2]
    assert load_users.__name__ == "load_users"
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert [e.function for e in events.events] == ["load_users", "load_users", None]

    stats = function_stats()["load_users"]
    assert (stats.calls, stats.errors, stats.queries) == (1, 0, 2)
    assert 0 < stats.db_time_s <= stats.total_time_s

    text = generate_latest(dbsight.get_runtime().registry).decode()
    assert 'db_client_function_duration_seconds_count{function="load_users"} 1.0' in text
    assert 'db_client_function_queries_sum{function="load_users"} 2.0' in text


def test_db_observer_nested_bare_and_errors(engine: Any, events: Any) -> None:
    dbsight.instrument(engine)
    repo = UserRepository(engine)

    @dbsight.db_observer
    def outer() -> list[str]:
        return inner()

    @dbsight.db_observer()
    def inner() -> list[str]:
        return repo.names()

    @dbsight.db_observer("fails")
    def fails() -> None:
        repo.broken()

    assert outer() == ["ann", "bob"]
    stats = function_stats()
    assert stats[f"{__name__}.{outer.__qualname__}"].queries == 2
    assert stats[f"{__name__}.{inner.__qualname__}"].queries == 2
    assert {e.function for e in events.events} == {f"{__name__}.{inner.__qualname__}"}

    with pytest.raises(sa.exc.OperationalError) as caught:
        fails()
    assert type(caught.value.orig).__name__ == "OperationalError"
    assert (function_stats()["fails"].errors, function_stats()["fails"].queries) == (1, 1)


@pytest.mark.asyncio
async def test_db_observer_async_and_span_nesting(pg_dsn: str, span_exporter: Any) -> None:
    exporter, events = span_exporter
    con = await asyncpg.connect(pg_dsn)
    try:
        dbsight.instrument(con)

        @dbsight.db_observer("async_work")
        async def work(n: int) -> int:
            total = 0
            for i in range(n):
                total += await con.fetchval("SELECT $1::int", i)
            return total

        assert await work(3) == 3
        with pytest.raises(ZeroDivisionError):

            @dbsight.db_observer("async_fails")
            async def fails() -> None:
                await con.fetchval("SELECT 1")
                1 / 0  # noqa: B018

            await fails()
    finally:
        await con.close()

    assert [e.function for e in events.events] == ["async_work"] * 3 + ["async_fails"]
    stats = function_stats()
    assert (stats["async_work"].queries, stats["async_fails"].errors) == (3, 1)
    spans = exporter.get_finished_spans()
    (function_span,) = [s for s in spans if s.name == "async_work"]
    assert function_span.kind.name == "INTERNAL"
    children = [
        s
        for s in spans
        if s.parent is not None and s.parent.span_id == function_span.context.span_id
    ]
    assert len(children) == 3 and all(s.kind.name == "CLIENT" for s in children)
    (failed,) = [s for s in spans if s.name == "async_fails"]
    assert failed.status.status_code.name == "ERROR"


def test_metrics_follow_a_new_registry(engine: Any, configure_dbsight: Any) -> None:
    configure_dbsight()
    dbsight.instrument(engine)

    @dbsight.db_observer("f")
    def f() -> None:
        UserRepository(engine).get(1)

    f()
    configure_dbsight()  # a new runtime with a new registry
    f()
    text = generate_latest(dbsight.get_runtime().registry).decode()
    assert 'db_client_function_queries_count{function="f"} 1.0' in text
    assert function_stats()["f"].calls == 2


def test_disabled_observer_is_transparent(engine: Any, configure_dbsight: Any) -> None:
    configure_dbsight(enabled=False)

    @dbsight.db_observer("off")
    def off() -> int:
        return 5

    assert off() == 5
    assert "off" not in function_stats()


def test_observable_repository(engine: Any, events: Any) -> None:
    dbsight.instrument(engine)
    inner = UserRepository(engine)
    repo = dbsight.ObservableRepository(inner)
    assert isinstance(repo, UserRepository)
    assert repo.__wrapped__ is inner and repo.inner is inner
    assert repo.table == "users" and repo.engine is engine  # non-callables pass through
    assert repo._private() == 1

    assert repo.get(2) == "bob"
    assert repo.names() == ["ann", "bob"]
    assert [e.function for e in events.events] == [
        "UserRepository.get",
        "UserRepository.names",
        "UserRepository.names",
    ]
    assert function_stats()["UserRepository.names"].queries == 2
    assert repo.get is repo.get  # wrappers are cached per method

    with pytest.raises(sa.exc.OperationalError):
        repo.broken()
    assert function_stats()["UserRepository.broken"].errors == 1

    repo.table = "people"
    assert inner.table == "people"
    named = dbsight.ObservableRepository(inner, name="users")
    named.get(1)
    assert events.events[-1].function == "users.get"


@pytest.mark.asyncio
async def test_observable_repository_async_methods(pg_dsn: str, events: Any) -> None:
    class Repo:
        def __init__(self, con: Any) -> None:
            self.con = con

        async def one(self) -> int:
            return int(await self.con.fetchval("SELECT 1"))

    con = await asyncpg.connect(pg_dsn)
    try:
        dbsight.instrument(con)
        repo = dbsight.ObservableRepository(Repo(con))
        assert await repo.one() == 1
    finally:
        await con.close()
    assert events.events[0].function == "Repo.one"
    assert _runtime.recorder.failures.counts == {}
