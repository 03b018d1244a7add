"""A proxy configured only by its TOML file alerts: the ``[proxy]`` table's alert keys build
its notifier (``dbsight proxy --config``, no DBSIGHT_ variable), and they win over the
variables; a bad combination fails at start-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from notify_helpers import free_port, posted, wait_for

from dbsight.core import ConfigError
from dbsight.proxy import ProxyConfig, ProxyServer


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"dbsight proxy exited: {proc.communicate()[1].decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.05)


def test_a_proxy_configured_by_toml_only_delivers_its_slow_statement_alert(
    pg_dsn: str, httpserver: Any, tmp_path: Path
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    port = free_port()
    config = tmp_path / "dbsight.toml"
    config.write_text(
        "[proxy]\n"
        f'listen = "127.0.0.1:{port}"\n'
        f'upstream = "{pg_dsn}"\n'
        f'alert_webhook_url = "{httpserver.url_for("/hook")}"\n'
        "alert_slow_query_ms = 200\n"
        "alert_group_wait_s = 0\n"
        "alert_group_interval_s = 0.5\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBSIGHT_")}
    env["DBSIGHT_SERVICE_NAME"] = "pgproxy"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbsight.cli", "proxy", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        _wait_port(port, proc)
        proxied = pg_dsn.replace(pg_dsn.split("@", 1)[1].split("/", 1)[0], f"127.0.0.1:{port}")
        with psycopg.connect(proxied, autocommit=True) as conn:
            conn.execute("SELECT pg_sleep(0.3), 'toml-literal'")
        (body,) = wait_for(lambda: posted(httpserver, "/hook"), 15, "the proxy's alert")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (alert,) = body["alerts"]
    assert alert["labels"]["alertname"] == "DbsightSlowQuery"
    assert alert["labels"]["service"] == "pgproxy"
    assert "pg_sleep" in alert["annotations"]["statement"]
    assert "toml-literal" not in str(body)


def test_the_file_wins_over_the_variables_and_keeps_the_others(
    fresh_runtime: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dbsight._runtime import get_runtime
    from dbsight.notify import notifier_sink

    monkeypatch.setenv("DBSIGHT_ALERT_SLOW_QUERY_MS", "5000")
    monkeypatch.setenv("DBSIGHT_SERVICE_NAME", "from-env")
    config = tmp_path / "dbsight.toml"
    config.write_text(
        '[proxy]\nlisten = "127.0.0.1:0"\n'
        'alert_webhook_url = "http://127.0.0.1:9/hook"\nalert_slow_query_ms = 250\n'
        'alert_smtp_host = "127.0.0.1"\nalert_smtp_from = "proxy@x.test"\n'
        'alert_smtp_to = "ops@x.test"\nalert_smtp_username = "proxy"\n'
        'alert_smtp_password = "pw-in-file"\n'
    )
    server = ProxyServer(ProxyConfig.load(config))
    settings = get_runtime().settings
    assert settings.alert_slow_query_ms == 250  # the file's
    assert settings.service_name == "from-env"  # the variable's, untouched by the file
    assert settings.alert_smtp_password is not None
    assert settings.alert_smtp_password.get_secret_value() == "pw-in-file"
    assert "pw-in-file" not in repr(server.config)
    sink = notifier_sink(get_runtime().sinks)
    assert sink is not None
    assert sorted(s.name for s in sink.notifier.senders) == ["email", "webhook"]


def test_bad_alert_keys_fail_at_start_up(fresh_runtime: Any, tmp_path: Path) -> None:
    config = tmp_path / "dbsight.toml"
    config.write_text('[proxy]\nalert_webhook_url = "hooks.local/x"\nalert_smtp_port = 0\n')
    with pytest.raises(ConfigError) as raised:
        ProxyConfig.load(config)
    assert "alert_webhook_url" in str(raised.value) and "alert_smtp_port" in str(raised.value)
    config.write_text('[proxy]\nalert_smtp_host = "127.0.0.1"\n')  # no sender, no recipient
    with pytest.raises(ConfigError, match="go together"):
        ProxyServer(ProxyConfig.load(config))


def test_the_keys_are_the_settings_alert_fields_with_their_types_and_bounds() -> None:
    from dbsight.core import Settings
    from dbsight.proxy._alert_settings import ALERT_SETTINGS, ProxyAlertSettings

    alert_fields = {name for name in Settings.model_fields if name.startswith("alert")}
    assert set(ALERT_SETTINGS) == alert_fields == set(ProxyAlertSettings.model_fields)
    for name in ALERT_SETTINGS:
        mine, theirs = ProxyAlertSettings.model_fields[name], Settings.model_fields[name]
        assert mine.metadata == theirs.metadata, name
        assert mine.annotation == theirs.annotation | None, name  # type: ignore[operator]
        assert mine.default is None
