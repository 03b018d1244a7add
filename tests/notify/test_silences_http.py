"""Silences over HTTP: ``{prefix}/alerts/silences`` (POST, GET, DELETE) on the in-process
endpoints, who may change them (the admin token, else loopback only), the 400s for bad
input, and the list shared by the processes of one multiprocess directory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from notify_helpers import posted, wait_for

import dbsight
from dbsight._runtime import get_runtime
from dbsight.notify import Alert, Silences, notifier_sink, silences
from dbsight.web import Endpoints


@pytest.fixture
def clean_silences() -> Iterator[Silences]:
    """The process's silence list, empty and unshared before and after the test."""

    def clear() -> None:
        silences.share(None)
        for silence in silences.list():
            silences.expire(silence.id)

    clear()
    yield silences
    clear()


def client(app: Any, host: str = "127.0.0.1", token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://svc", headers=headers)


SILENCE = {
    "matchers": [
        {"name": "alertname", "value": "DbsightSlowQuery", "isRegex": False, "isEqual": True},
        {"name": "route", "value": "/reports/.*", "isRegex": True},
    ],
    "duration": "2h",
    "createdBy": "ops",
    "comment": "nightly reports",
}


async def test_a_silence_is_added_listed_muting_and_expired(
    fresh_runtime: Any, clean_silences: Silences
) -> None:
    app = Endpoints("/ops")
    async with client(app) as http:
        answer = await http.post("/ops/alerts/silences", json=SILENCE)
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert created["matchers"][1] == {
            "name": "route", "value": "/reports/.*", "isRegex": True, "isEqual": True
        }  # fmt: skip
        assert created["createdBy"] == "ops" and created["status"] == {"state": "active"}
        assert created["endsAt"] > created["startsAt"]
        labels = {"alertname": "DbsightSlowQuery", "route": "/reports/daily"}
        assert silences.mutes(labels) and not silences.mutes({**labels, "route": "/orders"})

        listed = (await http.get("/ops/alerts/silences")).json()["silences"]
        assert [s["id"] for s in listed] == [created["id"]]
        one = await http.get(f"/ops/alerts/silences/{created['id']}")
        assert one.status_code == 200 and one.json()["comment"] == "nightly reports"
        alerts = (await http.get("/ops/metrics/alerts")).json()
        assert [s["id"] for s in alerts["silences"]] == [created["id"]]

        gone = await http.delete(f"/ops/alerts/silences/{created['id']}")
        assert gone.status_code == 200 and gone.json()["status"] == {"state": "expired"}
        assert not silences.mutes(labels)
        assert (await http.get(f"/ops/alerts/silences/{created['id']}")).status_code == 404
        assert (await http.delete(f"/ops/alerts/silences/{created['id']}")).status_code == 404


async def test_starts_at_and_ends_at_make_a_pending_silence(
    fresh_runtime: Any, clean_silences: Silences
) -> None:
    start, end = time.time() + 3600, time.time() + 7200
    body = {
        "matchers": [{"name": "service", "value": "shop"}],
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
        "endsAt": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(end)),
    }
    async with client(Endpoints()) as http:
        answer = await http.post("/alerts/silences", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == {"state": "pending"}
    assert not silences.mutes({"service": "shop"})
    assert silences.mutes({"service": "shop"}, start + 1)


async def test_without_a_token_only_loopback_may_change_silences(
    fresh_runtime: Any, clean_silences: Silences
) -> None:
    app = Endpoints()
    async with client(app, host="10.1.2.3") as http:
        refused = await http.post("/alerts/silences", json=SILENCE)
        assert refused.status_code == 403
        assert "admin token" in refused.json()["error"]
        assert (await http.delete("/alerts/silences/anything")).status_code == 403
        assert (await http.get("/alerts/silences")).status_code == 200  # reading stays open
    assert silences.list() == []
    async with client(app, host="::1") as http:
        assert (await http.post("/alerts/silences", json=SILENCE)).status_code == 201
    async with client(app, host="::ffff:127.0.0.1") as http:
        assert (await http.post("/alerts/silences", json=SILENCE)).status_code == 201


async def test_with_a_token_it_is_required_and_enough_from_anywhere(
    fresh_runtime: Any, clean_silences: Silences
) -> None:
    dbsight.configure(dbsight.Settings(admin_token="s3cret-token", tracing_enabled=False))
    app = Endpoints()
    async with client(app, host="127.0.0.1") as http:
        assert (await http.post("/alerts/silences", json=SILENCE)).status_code == 401
        assert (await http.get("/alerts/silences")).status_code == 401
    async with client(app, host="10.1.2.3", token="wrong-token") as http:
        assert (await http.post("/alerts/silences", json=SILENCE)).status_code == 401
    async with client(app, host="10.1.2.3", token="s3cret-token") as http:
        created = await http.post("/alerts/silences", json=SILENCE)
        assert created.status_code == 201
        expired = await http.delete(f"/alerts/silences/{created.json()['id']}")
        assert expired.status_code == 200


def _with(**changes: Any) -> dict[str, Any]:
    body = {**SILENCE, **changes}
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (_with(matchers=[]), "non-empty list"),
        (_with(matchers=[{"name": "alertname"}]), "value must be a string"),
        (_with(matchers=[{"name": "9bad", "value": "x"}]), "label name"),
        (_with(matchers=[{"name": "a", "value": "(", "isRegex": True}]), "a=~'('"),
        (_with(matchers=[{"name": "a", "value": "x", "isRegex": "yes"}]), "true or false"),
        (_with(matchers=[{"name": "a", "value": ".*", "isRegex": True}]), "empty string"),
        (_with(matchers=[{"name": "a", "value": "x", "op": "="}]), "unknown field(s) op"),
        (_with(duraton="2h"), "unknown field(s) duraton"),
        (_with(duration=None), "endsAt or duration"),
        (_with(endsAt="2030-01-01T00:00:00Z"), "endsAt or duration"),
        (_with(duration="2 hours"), "duration must be like 2h"),
        (_with(duration="0s"), "more than 0"),
        (_with(duration=None, endsAt="2001-01-01T00:00:00Z"), "in the future"),
        (_with(duration=None, endsAt="tomorrow"), "endsAt: must be an RFC 3339 time"),
        (_with(comment=5), "comment must be a string"),
        (_with(comment="x" * 1001), "longer than 1000"),
    ],
)
async def test_bad_input_is_a_400_that_names_the_problem(
    fresh_runtime: Any, clean_silences: Silences, body: Any, says: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with client(Endpoints()) as http:
        answer = await http.post(
            "/alerts/silences", content=content, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 400
    assert says in answer.json()["error"]
    assert silences.list() == []


async def test_other_methods_and_sizes_are_refused(
    fresh_runtime: Any, clean_silences: Silences
) -> None:
    async with client(Endpoints()) as http:
        put = await http.put("/alerts/silences", json=SILENCE)
        assert put.status_code == 405 and put.headers["allow"] == "GET, HEAD, POST"
        post_one = await http.post("/alerts/silences/abc", json=SILENCE)
        assert post_one.status_code == 405 and post_one.headers["allow"] == "GET, HEAD, DELETE"
        huge = await http.post("/alerts/silences", content=b"x" * (65 * 1024))
        assert huge.status_code == 413
        # the other endpoints keep answering 405 to a POST
        assert (await http.post("/metrics/alerts")).status_code == 405
    off = Endpoints(summary=False)
    async with client(off) as http:
        assert (await http.get("/alerts/silences")).status_code == 404


async def test_a_silence_posted_over_http_mutes_the_notifier(
    fresh_runtime: Any, clean_silences: Silences, httpserver: Any
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    dbsight.configure(dbsight.Settings(
        alert_webhook_url=httpserver.url_for("/hook"), alert_group_wait_s=0,
        alert_group_interval_s=0.1, tracing_enabled=False, service_name="shop",
    ))  # fmt: skip
    body = {"matchers": [{"name": "alertname", "value": "DbsightMuted"}], "duration": "10m"}
    async with client(Endpoints()) as http:
        assert (await http.post("/alerts/silences", json=body)).status_code == 201
    sink = notifier_sink(get_runtime().sinks)
    assert sink is not None
    for name in ("DbsightMuted", "DbsightHeard"):
        sink.notifier.fire(Alert({"alertname": name, "severity": "warning", "service": "shop"}))
    assert sink.notifier.flush(5.0)
    wait_for(lambda: posted(httpserver, "/hook"), 10, "the unsilenced alert")
    sink.notifier.flush(2.0)
    names = {a["labels"]["alertname"] for b in posted(httpserver, "/hook") for a in b["alerts"]}
    assert names == {"DbsightHeard"}


_WORKER = """
import sys, time
from pathlib import Path
from dbsight.notify import Silences
shared = Silences()
shared.share(Path(sys.argv[1]))
if sys.argv[2] == "add":
    print(shared.add(["alertname=DbsightSlowQuery"], 600, "from a worker").id)
else:
    print(shared.mutes({"alertname": "DbsightSlowQuery"}))
"""


def test_the_workers_of_a_multiprocess_directory_share_their_silences(tmp_path: Path) -> None:
    def worker(action: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _WORKER, str(tmp_path), action],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    here = Silences()
    here.share(tmp_path)
    silence_id = worker("add")  # another process adds ...
    labels = {"alertname": "DbsightSlowQuery"}
    assert here.mutes(labels)  # ... this one mutes
    assert [s.comment for s in here.list()] == ["from a worker"]
    assert here.expire(silence_id)  # this one expires ...
    assert worker("mutes") == "False"  # ... and the others see it
    mine = here.add(["service=shop"], 600)
    other = Silences()
    other.share(tmp_path)
    assert other.get(mine.id) is not None and other.mutes({"service": "shop"})
    here.share(None)  # back to memory, keeping what is in force
    assert here.get(mine.id) is not None


async def test_an_instrumented_app_serves_them_with_a_bounded_route_label(
    fresh_runtime: Any, clean_silences: Silences
) -> None:
    from fastapi import FastAPI

    dbsight.configure(dbsight.Settings(tracing_enabled=False))
    app = FastAPI()

    @app.get("/")
    async def root() -> str:
        return "ok"

    handle = dbsight.instrument(app)
    try:
        async with client(app) as http:
            created = await http.post("/alerts/silences", json=SILENCE)
            assert created.status_code == 201
            silence_id = created.json()["id"]
            assert (await http.delete(f"/alerts/silences/{silence_id}")).status_code == 200
            metrics = (await http.get("/metrics")).text
    finally:
        handle.uninstrument()
    assert 'route="/alerts/silences/{id}"' in metrics
    assert silence_id not in metrics


def test_an_unusable_directory_keeps_the_silences_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    mine = Silences()
    kept = mine.add(["service=shop"], 600)
    mine.share(blocker / "sub")  # cannot be made: logged, not raised
    assert mine.get(kept.id) is not None
    assert mine.add(["service=api"], 600) and len(mine.list()) == 2


async def test_with_a_multiprocess_directory_a_posted_silence_is_in_the_shared_file(
    fresh_runtime: Any, clean_silences: Silences, tmp_path: Path
) -> None:
    dbsight.configure(dbsight.Settings(multiprocess_dir=tmp_path, tracing_enabled=False))
    async with client(Endpoints()) as http:
        created = (await http.post("/alerts/silences", json=SILENCE)).json()
    shared = json.loads((tmp_path / "silences.json").read_text())
    assert [s["id"] for s in shared] == [created["id"]]
    other = Silences()  # another worker of the service
    other.share(tmp_path)
    assert other.mutes({"alertname": "DbsightSlowQuery", "route": "/reports/x"})
    assert other.expire(created["id"])
    async with client(Endpoints()) as http:
        assert (await http.get("/alerts/silences")).json()["silences"] == []
