"""The end of a transaction waits for the cancel of a statement past the firewall's row
limit, without sockets (the cancel's task stands for the one `start` makes): while it is in
flight the end waits and goes on once it is done; one already done is forgotten. The cancel
itself runs against a real server in tests/proxy_route/test_pipeline_proxy.py."""

from __future__ import annotations

import asyncio

from dbsight.proxy._row_limit_cancel import RowLimitCancel


async def _handled(event: asyncio.Event) -> None:
    await event.wait()


async def test_the_end_waits_for_a_cancel_in_flight_then_goes_on() -> None:
    ended: list[str] = []
    cancel = RowLimitCancel(set(), lambda: ended.append("released"))
    handled = asyncio.Event()
    cancel.task = asyncio.get_running_loop().create_task(_handled(handled))
    assert cancel.in_flight()
    assert ended == [] and cancel.task is not None
    handled.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert ended == ["released"] and cancel.task is None


async def test_a_cancel_already_handled_is_forgotten() -> None:
    ended: list[str] = []
    cancel = RowLimitCancel(set(), lambda: ended.append("released"))
    cancel.task = asyncio.get_running_loop().create_task(asyncio.sleep(0))
    await cancel.task
    assert not cancel.in_flight()
    assert cancel.task is None and ended == []
