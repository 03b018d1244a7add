"""The proxy's admin page, in Chromium: a ``dbsight proxy`` in transaction mode with a result
cache rule and a firewall step, under traffic from real PostgreSQL clients. Its admin port
serves the page at ``/`` (behind its admin token): the pools, the servers, the routing
decisions, the cache's hit ratio, clients by state and the rejections are on it, and so
are the statements the proxy relayed. ``/stats/proxy`` is checked as JSON too."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dbsight.proxy._config import ProxyConfig
from dbsight.testing.proxy import RunningProxy

TOKEN = "proxy-admin-token-77"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def proxied(pg_dsn: str) -> Iterator[tuple[RunningProxy, str]]:
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE prices (id int PRIMARY KEY, amount numeric)")
        setup.execute("INSERT INTO prices SELECT g, g * 1.5 FROM generate_series(1, 50) g")
        setup.execute("CREATE TABLE notes (id int, body text)")
    proxy = RunningProxy(ProxyConfig(
        listen="127.0.0.1:0", upstream=pg_dsn, pool_mode="transaction", pool_size=3,
        admin="127.0.0.1:0", admin_token=TOKEN,
        cache=[{"table": "prices", "ttl_s": 60}],
        pipeline=[{"handler": "firewall", "deny_unbounded_writes": True}],
    ))  # fmt: skip
    try:
        yield proxy, str(proxy.dsn(pg_dsn))
    finally:
        proxy.close()


def _traffic(dsn: str, rounds: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(rounds):
            conn.execute("SELECT id, amount FROM prices WHERE id = 7").fetchall()  # cached
            conn.execute("INSERT INTO notes VALUES (%s, 'n')", (i,))
            conn.execute("SELECT count(*) FROM notes WHERE id > %s", (i,)).fetchone()
        with pytest.raises(psycopg.Error):
            conn.execute("DELETE FROM notes")  # the firewall refuses an unbounded write


def test_the_proxy_admin_page_in_chromium(
    proxied: tuple[RunningProxy, str], chromium: Any, artifacts: Path
) -> None:
    proxy, dsn = proxied
    _traffic(dsn, 20)
    admin = f"http://127.0.0.1:{proxy.server.admin_port}"

    stats = httpx.get(admin + "/stats/proxy", headers=AUTH, timeout=10).json()
    assert stats["pool_mode"] == "transaction"
    assert stats["cache"]["hits"] >= 10 and stats["cache"]["hit_ratio"] > 0.5
    assert stats["rejected"] == {"firewall_unbounded_write": 1}
    assert set(stats["clients"]) == {"startup", "idle", "active", "waiting"}
    assert any(r["role"] == "primary" for r in stats["routing"]) or stats["routing"] == []
    assert httpx.get(admin + "/stats/proxy", timeout=10).status_code == 401
    assert httpx.get(admin + "/", timeout=10).status_code == 200  # the files need no token

    # a client that stays connected during the visit: it is listed by its state
    idle = psycopg.connect(dsn, autocommit=True, application_name="web-ui-idle")
    stop = threading.Event()

    def keep_going() -> None:  # traffic while the page is open
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.wait(0.2):
                conn.execute("SELECT id, amount FROM prices WHERE id = 7").fetchall()

    traffic = threading.Thread(target=keep_going, daemon=True)
    traffic.start()
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(admin + "/")
        page.wait_for_selector("#token-form")
        page.fill("#token", TOKEN)
        page.keyboard.press("Enter")
        page.wait_for_selector("#pools table")
        pool = proxy.server.pool_stats()[0]["name"]
        assert pool in page.inner_text("#pools")
        page.wait_for_selector("#servers table")
        assert "primary" in page.inner_text("#servers")
        page.wait_for_selector("#cache")
        assert "hit ratio" in page.inner_text("#cache")
        assert "firewall_unbounded_write" in page.inner_text("#rejections")
        page.wait_for_selector("#clients table")
        assert "web-ui-idle" in page.inner_text("#clients")
        assert page.get_attribute('#nav a[data-view="proxy"]', "aria-current") == "page"
        page.screenshot(path=str(artifacts / "proxy-admin.png"), full_page=True)

        # live: the cache's hits go up with the traffic (cached reads), in the same document
        page.evaluate("window.__sameDocument = true")
        cached = page.inner_text("#cache")
        page.wait_for_function(
            "(before) => document.querySelector('#cache').innerText !== before",
            arg=cached, timeout=20_000,
        )
        assert page.evaluate("window.__sameDocument") is True

        # the statements the proxy relayed, on the statements tab
        page.click('#nav a[data-view=""]')
        page.wait_for_selector("#statements tbody tr")
        listed = " ".join(page.locator("#statements tbody a.sql").all_inner_texts())
        assert "FROM prices WHERE id = $1" in listed and "INSERT INTO notes" in listed
        page.screenshot(path=str(artifacts / "proxy-statements.png"), full_page=True)
        assert not errors, errors
    finally:
        context.close()
        stop.set()
        traffic.join(10)
        idle.close()
