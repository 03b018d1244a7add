"""`dbsight proxy` as a command: TOML config, admin port, SIGTERM."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from dbsight.core import ConfigError
from dbsight.proxy import ProxyConfig, ProxyServer


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


def _first_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The first line ``proc`` writes on stderr ("" if none comes within ``timeout``)."""
    assert proc.stderr is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stderr, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return proc.stderr.readline()


def _dbsight() -> str:
    """The installed ``dbsight`` command, beside this interpreter."""
    return str(Path(sys.executable).with_name("dbsight"))


def test_the_command_says_where_it_listens(pg_dsn: str) -> None:
    """One line on stderr once listening: the real ports (0 was asked), the upstream without
    its password, the pool mode."""
    proc = subprocess.Popen(
        [_dbsight(), "proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
         "--upstream", pg_dsn, "--pool-mode", "transaction", "--pool-size", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = _first_line(proc)
        match = re.fullmatch(
            r"dbsight proxy: listening on 127\.0\.0\.1:(\d+), upstream (\S+), "
            r"pool mode transaction \(pool_size 3 per database and user\), "
            r"admin http://127\.0\.0\.1:(\d+)\n",
            line,
        )
        assert match, line
        port, shown, admin = int(match[1]), match[2], int(match[3])
        parts = urlsplit(pg_dsn)
        assert shown == f"postgresql://{parts.username}@{parts.hostname}:{parts.port}{parts.path}"
        proxied = pg_dsn.replace(parts.netloc.split("@")[-1], f"127.0.0.1:{port}")
        with psycopg.connect(proxied, autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert httpx.get(f"http://127.0.0.1:{admin}/healthz").status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("option", ["--listen", "--admin"])
def test_a_port_in_use_is_one_line_and_a_failure(option: str) -> None:
    """A port another socket holds: one line naming the address and why, exit status 1 (no
    traceback, nothing left running)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        args = {"--listen": "127.0.0.1:0", "--admin": "127.0.0.1:0", option: f"127.0.0.1:{port}"}
        result = subprocess.run(
            [_dbsight(), "proxy", *(item for pair in args.items() for item in pair)],
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert result.returncode == 1
    what = "clients" if option == "--listen" else "admin requests"
    assert result.stderr == (
        f"dbsight proxy: cannot listen for {what} on 127.0.0.1:{port}: address already in use"
        f" (another process holds the port; choose another with {option})\n"
    )
    assert result.stdout == ""


def test_the_help_shows_every_default() -> None:
    """Each option says its default, and the defaults are the configuration's."""
    from typer.testing import CliRunner

    from dbsight.cli import app

    result = CliRunner().invoke(app, ["proxy", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    rows = {
        match[1]: match[2]
        for match in re.finditer(r"(--[a-z-]+)\s.*?(?:\[default: \((.*?)\)\])?\s*│?$",
                                 result.output, re.MULTILINE)
    }
    assert set(rows) >= {"--listen", "--upstream", "--admin", "--admin-token", "--pool-mode",
                         "--pool-size", "--replica", "--capture", "--config", "--help"}
    assert [name for name, default in rows.items() if not default] == ["--help"]
    fields = ProxyConfig.model_fields
    for name in ("listen", "upstream", "pool_mode", "pool_size"):
        assert rows[f"--{name.replace('_', '-')}"] == str(fields[name].default)
    assert fields["admin"].default is None and rows["--admin"] == "off"
    assert fields["capture"].default is None and rows["--capture"] == "off"


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


def test_the_proxy_loads_the_parser_before_its_first_client() -> None:
    """The first statement through a fresh proxy must not pay for compiling the SQL lexer
    (tens of milliseconds, which its recorded duration would include): start() does it."""
    code = (
        "import asyncio\n"
        "from dbsight.proxy import ProxyConfig, ProxyServer\n"
        "from dbsight.sql import warmed\n"
        "async def main():\n"
        "    server = ProxyServer(ProxyConfig(listen='127.0.0.1:0'))\n"
        "    before = warmed()\n"
        "    await server.start()\n"
        "    print(before, warmed())\n"
        "    await server.stop()\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False True"


async def test_a_failed_start_leaves_nothing_listening() -> None:
    """The admin port is taken: start() raises ListenError and the client port it had
    opened is closed again."""
    from dbsight.proxy import ListenError

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        admin = held.getsockname()[1]
        port = _free_port()
        server = ProxyServer(
            ProxyConfig(listen=f"127.0.0.1:{port}", admin=f"127.0.0.1:{admin}")
        )
        with pytest.raises(ListenError, match=f"127.0.0.1:{admin}: address already in use"):
            await server.start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free again
