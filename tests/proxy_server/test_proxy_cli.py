"""`dbsight proxy` as a command: TOML config, admin port, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from dbsight.core import ConfigError
from dbsight.proxy import ProxyConfig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dbsight proxy exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def test_config_file_and_command_line(tmp_path: Path) -> None:
    path = tmp_path / "dbsight.toml"
    path.write_text(
        '[proxy]\nlisten = "127.0.0.1:6543"\nupstream = "postgresql://app@db.local:5544/shop"\n'
        'admin = "127.0.0.1:9999"\n'
    )
    config = ProxyConfig.load(path, listen="127.0.0.1:7000", upstream=None)
    assert config.listen_address == ("127.0.0.1", 7000)  # the command line wins
    upstream = config.upstream_server
    assert (upstream.host, upstream.port, upstream.user, upstream.database) == (
        "db.local", 5544, "app", "shop"
    )
    assert config.admin_address == ("127.0.0.1", 9999)
    path.write_text('[proxy]\nlisten = "nowhere"\nbogus = 1\n')
    with pytest.raises(ConfigError) as raised:
        ProxyConfig.load(path)
    assert "listen" in str(raised.value) and "bogus" in str(raised.value)


def test_a_bad_proxy_setting_is_one_line_naming_where_it_was_written(tmp_path: Path) -> None:
    path = tmp_path / "dbsight.toml"
    path.write_text(
        '[proxy]\nlisten = "127.0.0.1:99999"\npool_size = "x"\npoolsize = 3\n'
        'upstream = "mysql://app:hunter2@db/shop"\n'
    )
    with pytest.raises(ConfigError) as raised:
        ProxyConfig.load(path, pool_mode="statement")
    lines = str(raised.value).splitlines()
    assert lines == [
        f"invalid proxy setting listen ({path}): port 99999 is out of range (0 to 65535), "
        "got '127.0.0.1:99999'",
        f"invalid proxy setting upstream ({path}): must be a postgresql:// URL, "
        "got 'mysql://***@db/shop'",
        "invalid proxy setting pool_mode (command line): must be 'session' or 'transaction', "
        "got 'statement'",
        f"invalid proxy setting pool_size ({path}): must be a whole number from 1 to 100000, "
        "got 'x'",
        f"unknown proxy setting poolsize ({path}); did you mean pool_size?",
    ]
    assert "hunter2" not in str(raised.value) and "Value error" not in str(raised.value)
    with pytest.raises(ConfigError, match=r"^invalid proxy settings: tls_cert and tls_key go"):
        ProxyConfig.load(None, tls_cert=tmp_path / "cert.pem")


@pytest.mark.parametrize(
    "replicas",
    [
        '[[proxy.replicas]]\nurl = "postgresql://app@r1.local/shop"\n'
        '[[proxy.replicas]]\nurl = "postgresql://app@r2.local/shop"\n',
        '[[replicas]]\nurl = "postgresql://app@r1.local/shop"\n'
        '[[replicas]]\nurl = "postgresql://app@r2.local/shop"\n',
        'replicas = ["postgresql://app@r1.local/shop", "postgresql://app@r2.local/shop"]\n',
    ],
)
def test_replicas_in_the_config_file(tmp_path: Path, replicas: str) -> None:
    path = tmp_path / "dbsight.toml"
    head = '[proxy]\nupstream = "postgresql://app@db.local/shop"\n'
    path.write_text(head + replicas)  # ([[replicas]]: top-level tables after [proxy])
    config = ProxyConfig.load(path)
    assert [server.host for server in config.replica_servers] == ["r1.local", "r2.local"]
    path.write_text(head + "[[proxy.replicas]]\nhost = \"r1.local\"\n")
    with pytest.raises(ConfigError, match="replica 1 has no url"):
        ProxyConfig.load(path)


def test_proxy_command_serves_observes_and_stops_on_sigterm(pg_dsn: str, tmp_path: Path) -> None:
    port, admin = _free_port(), _free_port()
    config = tmp_path / "dbsight.toml"
    config.write_text(f'[proxy]\nupstream = "{pg_dsn}"\nadmin = "127.0.0.1:{admin}"\n')
    env = {**os.environ, "DBSIGHT_ADMIN_TOKEN": "s3cret-token"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbsight.cli", "proxy", "--config", str(config),
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        _wait_port(port, proc)
        _wait_port(admin, proc)
        proxied = pg_dsn.replace(pg_dsn.split("@", 1)[1].split("/", 1)[0], f"127.0.0.1:{port}")
        with psycopg.connect(proxied, autocommit=True) as conn:
            assert conn.execute("SELECT 40 + %s", (2,)).fetchone() == (42,)
            with httpx.Client(base_url=f"http://127.0.0.1:{admin}") as http:
                assert http.get("/metrics").status_code == 401
                auth = {"Authorization": "Bearer s3cret-token"}
                wanted = 'db_client_operations_total{operation="select",outcome="ok"'
                deadline = time.monotonic() + 10  # recorded just after the answer is relayed
                while wanted not in http.get("/metrics", headers=auth).text:
                    assert time.monotonic() < deadline, "the statement is not in /metrics"
                    time.sleep(0.05)
                clients = http.get("/stats/clients", headers=auth).json()["clients"]
                assert [c["state"] for c in clients] == ["active"]
                assert http.get("/health/ready", headers=auth).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_help_names_the_config_table() -> None:
    """Square brackets are markup to the help's renderer: the table's name must survive it."""
    from typer.testing import CliRunner

    from dbsight.cli import app

    result = CliRunner().invoke(app, ["proxy", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "same settings under [proxy]." in result.output


def test_the_command_shows_the_pipeline_log_steps_output() -> None:
    """A log step's logger that nothing handles gets JSON lines on stderr from `dbsight proxy`
    (one the application already handles is left alone)."""
    import logging

    from dbsight.cli import _show_statement_logs

    unhandled = logging.getLogger("dbsight.test.cli")
    unhandled.propagate = False  # (pytest handles the root logger)
    handled = logging.getLogger("dbsight.test.own")
    own = logging.NullHandler()
    handled.addHandler(own)
    settings = ProxyConfig(
        upstream="postgresql://app@db.local/shop",
        pipeline=[{"handler": "log", "logger": unhandled.name, "level": "info"},
                  {"handler": "log", "logger": handled.name}],
    )
    try:
        _show_statement_logs(settings)
        assert len(unhandled.handlers) == 1 and unhandled.level == logging.INFO
        assert handled.handlers == [own]
    finally:
        for logger in (unhandled, handled):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
