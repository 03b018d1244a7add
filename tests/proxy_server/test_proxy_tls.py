"""TLS towards clients (the proxy's certificate) and towards the server (libpq's sslmodes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbsight.core import ConfigError
from dbsight.embedded._common import chown_tree
from dbsight.proxy import ProxyConfig, ProxyServer


def _self_signed(directory: Path, name: str = "proxy") -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make a test certificate (./dev installs it)")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    key.chmod(0o600)
    return cert, key


def test_clients_get_tls_when_the_proxy_has_a_certificate(
    proxy_factory: Any, pg_dsn: str, tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    proxy = proxy_factory(pg_dsn, tls_cert=cert, tls_key=key)
    with psycopg.connect(proxy.dsn(pg_dsn) + "?sslmode=require", autocommit=True) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
    with psycopg.connect(proxy.dsn(pg_dsn) + "?sslmode=disable", autocommit=True) as conn:
        assert not conn.pgconn.ssl_in_use  # TLS is offered, not imposed
        assert conn.execute("SELECT 3").fetchone() == (3,)


def test_without_a_certificate_tls_is_declined(proxy: Any, pg_dsn: str) -> None:
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(proxy.dsn(pg_dsn) + "?sslmode=require")
    with psycopg.connect(proxy.dsn(pg_dsn) + "?sslmode=prefer", autocommit=True) as conn:
        assert not conn.pgconn.ssl_in_use


def test_a_bad_certificate_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "x.crt").write_text("not a certificate")
    (tmp_path / "x.key").write_text("not a key")
    config = ProxyConfig(tls_cert=tmp_path / "x.crt", tls_key=tmp_path / "x.key")
    with pytest.raises(ConfigError, match="tls_cert"):
        ProxyServer(config)


@pytest.fixture
def private_pg() -> Any:
    """A cluster of this test's own: it gets a certificate and ssl = on."""
    from dbsight.embedded.postgres import EmbeddedPostgres

    server = EmbeddedPostgres(name="dbsight-tls").start()
    try:
        yield server
    finally:
        server.stop()


def test_tls_towards_the_server(proxy_factory: Any, private_pg: Any) -> None:
    dsn = private_pg.dsn("postgres")
    tls_dir = Path(private_pg.workdir) / "tls"
    tls_dir.mkdir()
    cert, key = _self_signed(tls_dir, "server")
    chown_tree(tls_dir, private_pg.account)
    plain = proxy_factory(dsn, upstream_tls="require")
    with pytest.raises(psycopg.OperationalError, match="does not accept TLS"):
        psycopg.connect(plain.dsn(dsn))
    private_pg.execute(
        f"ALTER SYSTEM SET ssl_cert_file = '{cert}'",
        f"ALTER SYSTEM SET ssl_key_file = '{key}'",
        "ALTER SYSTEM SET ssl = on",
        "SELECT pg_reload_conf()",
    )
    proxy = proxy_factory(dsn, upstream_tls="require")
    with psycopg.connect(proxy.dsn(dsn), autocommit=True) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (True,)
    verified = proxy_factory(dsn, upstream_tls="verify-full", upstream_tls_ca=cert)
    with psycopg.connect(verified.dsn(dsn), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    pooled = proxy_factory(  # the pool's own server connections: TLS too
        dsn, upstream_tls="verify-full", upstream_tls_ca=cert, pool_mode="transaction"
    )
    with psycopg.connect(pooled.dsn(dsn), autocommit=True) as conn:
        for _ in range(3):
            row = conn.execute(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
            assert row == (True,)
