"""The proxy's settings: where it listens, the PostgreSQL it relays to, its admin port.

Given on the command line (``dbsight proxy --listen ... --upstream ...``) or in a TOML file
(``--config dbsight.toml``, the same names under ``[proxy]``); the command line wins.
"""

from __future__ import annotations

import ssl
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core._settings import ConfigError
from ..core._settings_errors import problem_lines
from ._alert_settings import ProxyAlertSettings
from ._pipeline import PipelineStep
from ._result_cache import CacheRule

DEFAULT_LISTEN = "127.0.0.1:5433"
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


def split_address(value: str, default_port: int | None = None) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) as a pair; a clear ValueError otherwise."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
    if not port_text:
        if default_port is None:
            raise ValueError("has no port (expected host:port)")
        return host or "127.0.0.1", default_port
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (0 to 65535)")
    return host or "127.0.0.1", port


def _socket_directory(netloc: str) -> str | None:
    """The percent-encoded Unix-socket directory a URL's host part may be (``%2Ftmp``)."""
    host = netloc.rpartition("@")[2]
    if not host.lower().startswith("%2f"):
        return None
    return unquote(host.partition(":")[0])


class Upstream(BaseModel):
    """The PostgreSQL server the proxy relays to (from a ``postgresql://`` URL)."""

    model_config = ConfigDict(frozen=True)

    host: str = "127.0.0.1"
    port: int = 5432
    user: str | None = None
    database: str | None = None
    password: str | None = Field(None, repr=False)  # pooled mode's backend login

    @classmethod
    def from_url(cls, url: str) -> Upstream:
        """A ``postgresql://user:password@host:port/database`` URL; as in libpq, the host may
        be a Unix-socket directory, given as ``?host=/var/run/postgresql`` or percent-encoded
        (``postgresql://%2Fvar%2Frun%2Fpostgresql/db``)."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL")
        query = parse_qs(parts.query)
        host = query.get("host", [""])[-1] or _socket_directory(parts.netloc) or parts.hostname
        host = host or "127.0.0.1"
        try:
            port = int(query["port"][-1]) if "port" in query else parts.port or 5432
        except ValueError:
            raise ValueError("has a bad port") from None
        database = unquote(parts.path.lstrip("/")) or None
        return cls(
            host=host,
            port=port,
            user=unquote(parts.username) if parts.username else None,
            database=database,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    @property
    def display(self) -> str:
        """The server as a URL without its password (for a log line)."""
        user = f"{self.user}@" if self.user else ""
        database = self.database or ""
        if self.host.startswith("/"):  # a Unix-socket directory
            return f"postgresql://{user}/{database}?host={self.host}&port={self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{user}{host}:{self.port}/{database}"


def _replica_urls(tables: Any, path: Path) -> list[str]:
    """The URLs of the TOML file's ``[[replicas]]`` tables (``url = "postgresql://..."``)."""
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: replicas must be [[replicas]] tables with url = ...")
    urls = []
    for number, table in enumerate(tables, 1):
        url = table.get("url") if isinstance(table, dict) else table
        if not isinstance(url, str):
            raise ConfigError(f"{path}: replica {number} has no url = \"postgresql://...\"")
        urls.append(url)
    return urls


class ProxyConfig(ProxyAlertSettings):
    """Everything ``dbsight proxy`` needs; validated at start-up. The alert keys
    (``alertmanager_url``, ``alert_*``) are `ProxyAlertSettings`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = DEFAULT_LISTEN
    upstream: str = "postgresql://127.0.0.1:5432/postgres"
    admin: str | None = None
    admin_token: str | None = Field(None, min_length=8)
    max_message_size: int = Field(DEFAULT_MAX_MESSAGE_SIZE, ge=1024, le=1024**3)
    connect_timeout_s: float = Field(5.0, gt=0, le=300)
    shutdown_grace_s: float = Field(30.0, ge=0, le=3600)
    # TLS towards clients: offered (an SSLRequest is answered 'S') when both are set.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # TLS towards the server, as libpq's sslmode: disable, prefer (when the server offers
    # it), require (encrypted, not verified), verify-full (against upstream_tls_ca).
    upstream_tls: Literal["disable", "prefer", "require", "verify-full"] = "disable"
    upstream_tls_ca: Path | None = None
    # Pooling. "session": one server connection per client for its whole session; the client's
    # login is relayed to the server, unless replicas, cache rules or a request pipeline are
    # set: then the proxy authenticates clients itself (as in transaction mode), holds a
    # pooled primary connection per client and borrows replica connections per read.
    # "transaction": the proxy authenticates clients itself and lends them a pooled server
    # connection (one pool of pool_size per database and user) for each transaction; each
    # client's startup settings go to whichever connection serves it.
    pool_mode: Literal["session", "transaction"] = "session"
    pool_size: int = Field(20, ge=1, le=100_000, description="server connections per pool")
    pool_min_size: int = Field(0, ge=0, le=100_000, description="kept open even when idle")
    pool_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="a client's wait for a server connection; then 53300"
    )
    idle_timeout_s: float | None = Field(600.0, gt=0, description="idle server connection")
    max_lifetime_s: float | None = Field(3600.0, gt=0, description="server connection age")
    # Prepared statements a pooled server connection keeps (each client's Parse is prepared
    # on whichever connection runs it, and stays there for the clients that follow); beyond
    # this many, the ones prepared longest ago are deallocated while the connection is idle.
    max_prepared_statements: int | None = Field(
        200, ge=1, le=100_000, description="prepared statements per pooled server connection"
    )
    # Client authentication by the proxy (see pool_mode); the secrets come from auth_file (PgBouncer's
    # userlist.txt) and/or auth_query (run as the upstream URL's user). The proxy logs in to
    # the server as the client's user with the users file's plaintext password for that user,
    # else the upstream URL's password.
    auth_type: Literal["trust", "md5", "scram-sha-256", "password"] = "trust"
    auth_file: Path | None = None
    auth_query: str | None = None
    # Read/write splitting (both pool modes): streaming replicas of the upstream server, as
    # postgresql:// URLs (the TOML file's [[replicas]] tables with url = ..., or --replica).
    # Provably read-only statements outside transactions go to the least busy replica in
    # rotation; everything else to the primary.
    replicas: list[str] = Field(default_factory=list)
    read_your_writes_s: float = Field(
        2.0, ge=0, le=3600, description="after a write, the session's reads stay on the primary"
    )
    # ... or, with read_your_writes_lsn, until a replica has replayed the write's WAL position
    # (one more round trip on the primary after each writing transaction)
    read_your_writes_lsn: bool = False
    max_replica_lag_s: float = Field(10.0, gt=0, description="a replica further behind leaves")
    max_replica_lag_bytes: int | None = Field(None, gt=0, description="... or further in WAL")
    health_interval_s: float = Field(1.0, gt=0, le=3600)
    health_timeout_s: float = Field(2.0, gt=0, le=300)
    # Circuit breaker per server: open at breaker_error_rate of backend failures among at
    # least breaker_min_requests in breaker_window_s; half-open after breaker_cooldown_s.
    breaker_window_s: float = Field(10.0, gt=0, le=3600)
    breaker_min_requests: int = Field(20, ge=1)
    breaker_error_rate: float = Field(0.5, gt=0, le=1)
    breaker_cooldown_s: float = Field(5.0, gt=0, le=3600)
    # The request pipeline, in order ([[proxy.pipeline]] tables): client allow-list, rate
    # limits, query firewall (dbsight.proxy._pipeline).
    pipeline: list[PipelineStep] = Field(default_factory=list)
    # Result cache (both pool modes): answers of read-only statements matching a rule
    # ([[proxy.cache]] tables: fingerprint = "..." or table = "...", ttl_s = ...).
    cache: list[CacheRule] = Field(default_factory=list)
    cache_max_bytes: int = Field(64 * 2**20, ge=4096)
    # Workload capture: the statement stream as JSON lines (normalized text, timing, session
    # and transaction boundaries; literals never, parameters only with capture_params),
    # rotated by size.
    capture: Path | None = None
    capture_max_bytes: int = Field(100 * 2**20, ge=4096)
    capture_backups: int = Field(5, ge=0, le=1000)
    capture_params: bool = False  # also each statement's text and parameter values: off by default

    @field_validator("listen", "admin")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            split_address(value)
        return value

    @field_validator("upstream")
    @classmethod
    def _upstream(cls, value: str) -> str:
        Upstream.from_url(value)
        return value

    @field_validator("replicas")
    @classmethod
    def _replicas(cls, value: list[str]) -> list[str]:
        for url in value:
            Upstream.from_url(url)
        return value

    def model_post_init(self, __context: Any) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        if self.upstream_tls == "verify-full" and self.upstream_tls_ca is None:
            raise ValueError("upstream_tls = verify-full needs upstream_tls_ca")
        if self.pool_min_size > self.pool_size:
            raise ValueError(
                f"pool_min_size ({self.pool_min_size}) cannot exceed pool_size ({self.pool_size})"
            )
        if self.auth_type != "trust" and self.auth_file is None and self.auth_query is None:
            raise ValueError(f"auth_type = {self.auth_type} needs auth_file or auth_query")
        if self.auth_query is not None and "$1" not in self.auth_query:
            raise ValueError("auth_query must take the user name as parameter $1")

    def client_tls_context(self) -> ssl.SSLContext | None:
        """The server-side context offered to clients, or None when TLS is not configured;
        a missing or unreadable certificate fails here, at start-up."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load tls_cert/tls_key: {exc}") from None
        return context

    def upstream_tls_context(self) -> ssl.SSLContext | None:
        if self.upstream_tls == "disable":
            return None
        if self.upstream_tls == "verify-full":
            try:
                return ssl.create_default_context(cafile=self.upstream_tls_ca)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load upstream_tls_ca: {exc}") from None
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # libpq's "require": encrypted, not verified
        return context

    @property
    def listen_address(self) -> tuple[str, int]:
        return split_address(self.listen)

    @property
    def admin_address(self) -> tuple[str, int] | None:
        return split_address(self.admin) if self.admin is not None else None

    @property
    def upstream_server(self) -> Upstream:
        return Upstream.from_url(self.upstream)

    @property
    def proxy_login(self) -> bool:
        """The proxy authenticates clients and holds the server connections itself: always
        in transaction mode; in session mode when routing, caching or checking statements
        needs connections of its own (to replicas, or to answer in place of the server)."""
        return self.pool_mode == "transaction" or bool(self.replicas or self.cache or self.pipeline)

    @property
    def replica_servers(self) -> list[Upstream]:
        return [Upstream.from_url(url) for url in self.replicas]

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> ProxyConfig:
        """From the ``[proxy]`` table of a TOML file (if given), then ``overrides`` (the
        command line; None values are left out). Raises ConfigError naming what is wrong."""
        data: dict[str, Any] = {}
        if path is not None:
            try:
                document = tomllib.loads(Path(path).read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read proxy config {path}: {exc}") from None
            table = document.get("proxy", document)
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [proxy] must be a table")
            data.update(table)
            if "replicas" in table:  # [[proxy.replicas]] tables (or a list of URLs)
                data["replicas"] = _replica_urls(table["replicas"], path)
            elif "replicas" in document and document is not table:  # [[replicas]] tables
                data["replicas"] = _replica_urls(document["replicas"], path)
        given = {key: value for key, value in overrides.items() if value is not None}
        data.update(given)
        try:
            return cls(**data)
        except ValidationError as exc:
            origin = "command line" if path is None else str(path)

            def source(field: str) -> tuple[str, object] | None:
                return ("command line", given[field]) if field in given else None

            lines = problem_lines(exc, cls.model_fields, "proxy setting", source, origin)
            raise ConfigError("\n".join(lines)) from None
