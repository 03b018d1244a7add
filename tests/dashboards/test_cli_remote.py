"""``dbsight metrics --url`` and ``dbsight health --url`` against the running service and the
proxy's admin port (bearer token), an instance that is not ready (a real dbsight
`Endpoints` with a failing check), one that is not there, and bad arguments."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from asgi_server import serve_in_thread
from dashboard_stack import TOKEN, Stack
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from dbsight import HealthCheck
from dbsight.cli import app as cli
from dbsight.web import Endpoints

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def families(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def test_metrics_of_the_service_filtered(stack: Stack) -> None:
    code, out, _ = run("metrics", "--url", stack.service, "--match", "^http_server_")
    assert code == 0
    assert families(out) == {
        "http_server_requests": "counter",
        "http_server_request_duration_seconds": "histogram",
        "http_server_request_db_seconds": "counter",
        "http_server_active_requests": "gauge",
    }
    assert 'http_server_requests_total{method="GET",route="/broken",status="500"}' in out
    code, out, _ = run("metrics", "--url", stack.service + "/metrics/")  # the path given too
    assert code == 0 and "db_client_operations" in families(out)


def test_metrics_of_the_proxy_with_its_token(stack: Stack) -> None:
    code, out, err = run("metrics", "--url", stack.admin, "--match", "proxy_routed_total")
    assert code == 1 and out == ""
    assert err.strip() == (
        f"dbsight metrics: {stack.admin}/metrics answered 401: a token is required or was "
        "refused (--token)"
    )
    code, out, _ = run("metrics", "--url", stack.admin, "--token", TOKEN,
                       "--match", "proxy_routed_total")  # fmt: skip
    assert code == 0 and list(families(out)) == ["proxy_routed"]
    assert 'role="replica"' in out


def test_metrics_no_match_and_bad_pattern(stack: Stack) -> None:
    code, out, err = run("metrics", "--url", stack.service, "--match", "^nothing_like_it")
    assert (code, out) == (1, "")
    assert err == "dbsight metrics: no metric family matches '^nothing_like_it'\n"
    code, _, err = run("metrics", "--url", stack.service, "--match", "(")
    assert code == 2 and err.startswith("dbsight metrics: --match is not a regular expression")


def test_health_ready_service_and_proxy(stack: Stack) -> None:
    code, out, _ = run("health", "--url", stack.service)
    assert code == 0 and out.startswith("ready\n")
    code, out, err = run("health", "--url", stack.admin, "--token", TOKEN)
    assert code == 0, err
    assert "ok   upstream:" in out
    assert run("health", "--url", stack.admin, "--token", TOKEN, "--quiet")[:2] == (0, "")
    code, out, err = run("health", "--url", stack.admin)  # the probes need no token
    assert code == 0 and "ok   upstream:" in out, err


@pytest.fixture
def not_ready() -> Iterator[str]:
    def failing() -> None:
        raise ConnectionRefusedError("the database refused the connection")

    checks = (HealthCheck("database", failing), HealthCheck("cache", lambda: True),
              HealthCheck("mail", lambda: False, critical=False))  # fmt: skip
    with serve_in_thread(Endpoints(checks=checks, handle_checks=False), lifespan="off") as url:
        yield url


def test_health_not_ready_prints_the_checks(not_ready: str) -> None:
    code, out, err = run("health", "--url", not_ready)
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == "not ready"
    assert [line.split()[:2] for line in lines[1:]] == [["ok", "cache"], ["fail", "database"]]
    assert lines[2].endswith(": the database refused the connection")


def test_health_unreachable_and_bad_usage() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    code, out, err = run("health", "--url", f"http://127.0.0.1:{port}")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(
        f"dbsight health: cannot connect to http://127.0.0.1:{port}/health/ready"
    )
    assert run("health", "--url", "127.0.0.1:9187")[0] == 2
    assert run("health", "--url", "http://127.0.0.1:9187/?x=1")[0] == 2
    assert run("health", "--url", "http://x", "--timeout", "0")[0] == 2


def test_health_of_something_else_is_one_line() -> None:
    async def other(scope: dict, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"<html>hello</html>"})  # type: ignore[operator]

    with serve_in_thread(other, lifespan="off") as url:
        code, _, err = run("health", "--url", url)
    assert code == 1 and err.count("\n") == 1
    assert "did not answer a dbsight health report" in err


def test_health_as_a_probe_process(stack: Stack) -> None:
    """What a probe runs: the installed command, its exit status and nothing else."""
    command = [sys.executable, "-c", "from dbsight.cli import main; main()", "health"]
    ready = subprocess.run(
        [*command, "--url", stack.service, "-q"], capture_output=True, timeout=60, check=False
    )
    assert (ready.returncode, ready.stdout, ready.stderr) == (0, b"", b"")
