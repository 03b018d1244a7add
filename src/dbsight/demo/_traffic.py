"""Traffic for the sample service: a weighted mix of its endpoints from concurrent clients.

Each of ``concurrency`` tasks sends one request after another until the time is up, so the
service sees a steady, realistic mix: mostly cheap lookups, some writes, now and then the
N+1 listing, the missing-index lookups and the heavy report.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from ._schema import COUPONS, SampleSize

# method, path, JSON body
Request = tuple[str, str, dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route of the mix: how often it is picked and how a request to it is made."""

    route: str
    weight: int
    make: Callable[[random.Random, SampleSize], Request]


def _new_order(rng: random.Random, size: SampleSize) -> Request:
    items = [
        {"product_id": rng.randint(1, size.products), "quantity": rng.randint(1, 3)}
        for _ in range(rng.randint(1, 3))
    ]
    body = {"customer_id": rng.randint(1, size.customers), "items": items}
    return "POST", "/orders", body


MIX: tuple[Endpoint, ...] = (
    Endpoint("/customers/{customer_id}", 30,
             lambda r, s: ("GET", f"/customers/{r.randint(1, s.customers)}", None)),
    Endpoint("/products/{product_id}", 20,
             lambda r, s: ("GET", f"/products/{r.randint(1, s.products)}", None)),
    Endpoint("/customers/{customer_id}/orders", 15,
             lambda r, s: ("GET", f"/customers/{r.randint(1, s.customers)}/orders", None)),
    Endpoint("/orders/{order_id}", 10,
             lambda r, s: ("GET", f"/orders/{r.randint(1, s.orders)}", None)),
    Endpoint("/orders", 6, _new_order),
    Endpoint("/orders/recent", 6, lambda r, s: ("GET", "/orders/recent?limit=20", None)),
    Endpoint("/coupons/{code}", 4,
             lambda r, s: ("GET", f"/coupons/{r.choice(COUPONS)}", None)),
    Endpoint("/customers/lookup?email=", 3,
             lambda r, s: ("GET", f"/customers/lookup?email=customer"
                                  f"{r.randint(1, s.customers)}%40example.com", None)),
    Endpoint("/products/{product_id}/sales", 3,
             lambda r, s: ("GET", f"/products/{r.randint(1, s.products)}/sales", None)),
    Endpoint("/reports/revenue", 1, lambda r, s: ("GET", "/reports/revenue?days=30", None)),
    Endpoint("/ping", 2, lambda r, s: ("GET", "/ping", None)),
)  # fmt: skip


@dataclass
class RouteTally:
    """What the clients saw of one route."""

    requests: int = 0
    failures: int = 0  # 5xx responses and transport errors
    latencies_s: list[float] = field(default_factory=list)

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_s) * 1e3 if self.latencies_s else 0.0


@dataclass
class TrafficResult:
    elapsed_s: float = 0.0
    routes: dict[str, RouteTally] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(t.requests for t in self.routes.values())

    @property
    def failures(self) -> int:
        return sum(t.failures for t in self.routes.values())


async def _client_loop(
    client: httpx.AsyncClient,
    size: SampleSize,
    rng: random.Random,
    deadline: float,
    think_s: float,
    result: TrafficResult,
    prefix: str,
) -> None:
    weights = [e.weight for e in MIX]
    while time.monotonic() < deadline:
        if think_s > 0:
            pause = rng.expovariate(1 / think_s)
            await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            if time.monotonic() >= deadline:
                break
        endpoint = rng.choices(MIX, weights)[0]
        method, path, body = endpoint.make(rng, size)
        tally = result.routes.setdefault(prefix + endpoint.route, RouteTally())
        started = time.perf_counter()
        try:
            response = await client.request(method, prefix + path, json=body)
            failed = response.status_code >= 500
        except httpx.HTTPError:
            failed = True
        tally.latencies_s.append(time.perf_counter() - started)
        tally.requests += 1
        tally.failures += failed


async def drive_traffic(
    client: httpx.AsyncClient,
    size: SampleSize,
    *,
    duration_s: float,
    concurrency: int = 8,
    rate: float | None = None,
    console: Console | None = None,
    seed: int = 7,
    prefix: str = "",
) -> TrafficResult:
    """Send the mix for ``duration_s`` from ``concurrency`` clients, with a progress bar.

    ``rate``: about that many requests per second in all, each client pausing a random
    (exponential) time between requests, as users do; None: every client as fast as it can.
    ``prefix``: where the shop's routes are (``/v1/shop`` on the platform).
    """
    result = TrafficResult()
    started = time.monotonic()
    deadline = started + duration_s
    think_s = concurrency / rate if rate else 0.0
    workers = [
        asyncio.create_task(
            _client_loop(client, size, random.Random(seed + n), deadline, think_s, result, prefix)
        )
        for n in range(concurrency)
    ]
    progress = Progress(
        TextColumn("[bold]traffic[/bold] {task.description}"),
        BarColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    def show(task: TaskID) -> None:
        elapsed = time.monotonic() - started
        progress.update(
            task,
            completed=min(elapsed, duration_s),
            description=f"{result.requests:>7} requests  "
            f"{result.requests / max(elapsed, 1e-9):>6.0f}/s  {result.failures} failed",
        )

    try:
        with progress:
            task = progress.add_task("", total=duration_s)
            while not all(w.done() for w in workers):
                show(task)
                await asyncio.wait(workers, timeout=0.25)
            show(task)
        await asyncio.gather(*workers)  # re-raises a worker's unexpected error
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    result.elapsed_s = time.monotonic() - started
    return result
