"""``dbsight alerts silence add|list|expire`` against real servers: an instrumented service's
endpoints (uvicorn on loopback) and the proxy's admin port with its token; an instance that is
not there, a refused token, bad flags, and what each exits with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgi_server import serve_in_thread
from notify_helpers import free_port
from typer.testing import CliRunner

from dbsight.cli import app as cli
from dbsight.notify import silences
from dbsight.web import Endpoints

runner = CliRunner()
TOKEN = "proxy-admin-token"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(
        cli, ["alerts", "silence", *args], env={"DBSIGHT_ADMIN_TOKEN": "", "COLUMNS": "200"}
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def service(fresh_runtime: Any) -> Iterator[str]:
    """An instance's endpoints under /ops, on loopback; the silences cleared afterwards."""
    with serve_in_thread(Endpoints("/ops")) as url:
        yield url + "/ops"
    for silence in silences.list():
        silences.expire(silence.id)


def test_add_list_and_expire(service: str) -> None:
    code, out, err = run(
        "add", "--url", service, "--matcher", "alertname=DbsightSlowQuery",
        "-m", "severity=~warn.*", "--duration", "1h30m", "--comment", "deploy",
        "--created-by", "ana", "--json",
    )  # fmt: skip
    assert code == 0, err
    added = json.loads(out)
    assert added["matchers"] == [
        {"name": "alertname", "value": "DbsightSlowQuery", "isRegex": False, "isEqual": True},
        {"name": "severity", "value": "warn.*", "isRegex": True, "isEqual": True},
    ]
    assert added["createdBy"] == "ana" and added["comment"] == "deploy"
    assert silences.mutes({"alertname": "DbsightSlowQuery", "severity": "warning"})

    code, out, _ = run("list", "--url", service, "--json")
    assert code == 0 and [s["id"] for s in json.loads(out)] == [added["id"]]
    code, out, _ = run("list", "--url", service)
    assert code == 0
    assert added["id"] in out and 'severity=~"warn.*"' in out and "active" in out

    code, out, _ = run("expire", "--url", service, added["id"])
    assert code == 0 and out.strip() == f"silence {added['id']} expired"
    assert silences.list() == []
    code, _, err = run("expire", "--url", service, added["id"])
    assert code == 1 and f"no silence {added['id']} in force" in err


def test_add_prints_the_id_and_end(service: str) -> None:
    code, out, _ = run("add", "--url", service, "-m", "service=shop", "--duration", "30m")
    assert code == 0
    (silence,) = silences.list()
    assert out.startswith(f"silence {silence.id} until ")
    assert silence.created_by  # the user's name by default
    assert 1790 < silence.ends_at - silence.starts_at <= 1800


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-m", "no matcher here"], "not a matcher"),
        (["-m", "a=~("], "a=~'('"),
        (["-m", "a=b", "--duration", "forever"], "duration must be like 2h"),
        (["-m", "a=~.*"], "must not match the empty string"),  # refused by the instance
    ],
)
def test_bad_flags_exit_2(service: str, args: list[str], says: str) -> None:
    code, _, err = run("add", "--url", service, *args)
    assert code == 2 and says in err
    assert silences.list() == []


def test_bad_url_exits_2_and_no_instance_exits_1(fresh_runtime: Any) -> None:
    code, _, err = run("list", "--url", "ftp://somewhere")
    assert code == 2 and "--url must be an http:// or https:// URL" in err
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run("add", "--url", url, "-m", "a=b")
    assert code == 1 and f"cannot connect to {url}/alerts/silences" in err
    code, _, err = run("list", "--url", url)
    assert code == 1 and "cannot connect" in err


def test_the_proxy_admin_port_wants_its_token(pg_dsn: str, fresh_runtime: Any) -> None:
    from dbsight.proxy._config import ProxyConfig
    from dbsight.testing.proxy import RunningProxy

    proxy = RunningProxy(ProxyConfig(
        listen="127.0.0.1:0", upstream=pg_dsn, admin="127.0.0.1:0", admin_token=TOKEN,
    ))  # fmt: skip
    admin = f"http://127.0.0.1:{proxy.server.admin_port}"
    try:
        code, _, err = run("add", "--url", admin, "-m", "backend=replica1")
        assert code == 1 and "answered 401: a token is required or was refused (--token)" in err
        code, _, err = run("list", "--url", admin, "--token", "not-the-token")
        assert code == 1 and "401" in err
        code, out, err = run("add", "--url", admin, "--token", TOKEN, "-m", "backend=replica1",
                             "--json")  # fmt: skip
        assert code == 0, err
        silence_id = json.loads(out)["id"]
        assert silences.mutes({"backend": "replica1"})
        code, out, _ = run("list", "--url", admin, "--token", TOKEN, "--json")
        assert code == 0 and [s["id"] for s in json.loads(out)] == [silence_id]
        code, _, _ = run("expire", "--url", admin, "--token", TOKEN, silence_id)
        assert code == 0 and not silences.mutes({"backend": "replica1"})
    finally:
        proxy.close()
        for silence in silences.list():
            silences.expire(silence.id)
