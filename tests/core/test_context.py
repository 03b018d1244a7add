import asyncio
import threading

from dbsight.core import current_request, request_scope
from dbsight.core._context import current_function, function_scope


def test_request_scope_sets_and_restores():
    assert current_request() is None
    with request_scope(route="/users/{id}") as ctx:
        assert current_request() is ctx
        assert len(ctx.request_id) == 32
        with request_scope("inner") as inner:
            assert current_request() is inner
        assert current_request() is ctx
    assert current_request() is None


def test_request_scope_is_per_task():
    seen = {}

    async def handler(name):
        with request_scope(name):
            await asyncio.sleep(0.01)
            seen[name] = current_request().request_id

    async def main():
        await asyncio.gather(handler("a"), handler("b"))

    asyncio.run(main())
    assert seen == {"a": "a", "b": "b"}


def test_threads_start_without_a_request():
    seen = []
    with request_scope("outer"):
        t = threading.Thread(target=lambda: seen.append(current_request()))
        t.start()
        t.join()
    assert seen == [None]


def test_function_scope_nests():
    with function_scope("outer"):
        with function_scope("inner"):
            assert current_function() == "inner"
        assert current_function() == "outer"
    assert current_function() is None
