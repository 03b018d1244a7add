"""``dbsight proxy``: the asyncio server around `ClientSession`, and its admin HTTP port.

The admin port serves dbsight's endpoints (``/metrics``, ``/metrics/summary``, ``/health``,
``/healthz``, ``/health/ready``; readiness checks that the upstream server accepts
connections; ``/metrics/alerts`` and the silences, ``/alerts/silences``) plus
``/stats/clients``, ``/stats/pools`` and ``/stats/proxy`` (routing, cache, rejections:
`_admin_stats`), behind an optional bearer token (without one, a silence can be changed from
loopback only), and the web dashboard at ``/`` (its files need no token; the JSON it reads
does).
SIGTERM and SIGINT stop accepting clients, give running sessions ``shutdown_grace_s`` to
finish, then close what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from .._asgi_types import Receive, Scope, Send
from .._runtime import get_runtime
from ..ops.health import HealthCheck
from ..sql import warm_up
from ._admin_stats import proxy_stats
from ._alert_settings import apply_alert_settings
from ._capture import WorkloadCapture
from ._config import ProxyConfig
from ._link import StreamLink, open_link
from ._listen import address_text, bind_socket, listen_error
from ._metrics import ProxyMetrics
from ._pipeline import Pipeline
from ._pooled import PooledSession
from ._server_pools import ServerPools
from ._session import ClientSession, FrontendSession

logger = logging.getLogger("dbsight.proxy")


class ProxyServer:
    """Listens for PostgreSQL clients and relays each to the upstream server."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        # the file's alert keys over DBSIGHT_*: the proxy's notifier is the runtime's
        apply_alert_settings(config)
        self.sessions: set[FrontendSession] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._admin: Any = None
        self._admin_task: asyncio.Task[None] | None = None
        self._admin_socket: socket.socket | None = None
        self._metrics: ProxyMetrics | None = None
        self.started_at = time.time()
        self.clients_total = 0
        self._client_tls = config.client_tls_context()  # a bad certificate fails here
        self._upstream_tls = config.upstream_tls_context()
        # the server connections the proxy holds itself: transaction mode, and session mode
        # with replicas, cache or pipeline (a bad auth_file fails here)
        self.pooling = ServerPools(config) if config.proxy_login else None
        self.pipeline = Pipeline.from_config(config.pipeline) if config.pipeline else None
        self.capture = (
            WorkloadCapture(
                config.capture,
                max_bytes=config.capture_max_bytes,
                backups=config.capture_backups,
                include_params=config.capture_params,
            )
            if config.capture is not None
            else None
        )
        self._flusher: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Listen for clients (and serve the admin port); raises `ListenError` when an
        address cannot be had, after undoing what was started."""
        warm_up("postgresql")  # the parser: loaded now, not by the first client's statement
        try:
            await self._start()
        except BaseException:
            await self.stop(grace_s=0)
            raise

    async def _start(self) -> None:
        runtime = get_runtime()  # dbsight's settings (DBSIGHT_*) and sinks, before the 1st client
        self._metrics = runtime.component("proxy_metrics", ProxyMetrics)
        self._metrics.add(self)
        if self.pooling is not None:
            await self.pooling.start()
        if self.capture is not None:
            self._flusher = asyncio.create_task(self._flush_capture())
        host, port = self.config.listen_address
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: StreamLink(loop, self._accept), host, port
            )
        except OSError as exc:
            raise listen_error(exc, host, port, "clients", "--listen") from None
        if self.config.admin_address is not None:
            await self._start_admin()

    def describe(self) -> str:
        """One line saying where the proxy listens, what it relays to and how (what
        ``dbsight proxy`` prints once started: the real ports when 0 was asked)."""
        config = self.config
        parts = [
            f"dbsight proxy: listening on {address_text(config.listen_address[0], self.port)}",
            f"upstream {config.upstream_server.display}",
        ]
        if config.replicas:
            parts.append(
                "replicas " + " ".join(server.display for server in config.replica_servers)
            )
        mode = f"pool mode {config.pool_mode}"
        if config.proxy_login:
            mode += f" (pool_size {config.pool_size} per database and user)"
        parts.append(mode)
        admin = self.admin_port
        if config.admin_address is not None and admin is not None:
            parts.append(f"admin http://{address_text(config.admin_address[0], admin)}")
        else:
            parts.append("admin off")
        return ", ".join(parts)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def admin_port(self) -> int | None:
        if self._admin_socket is None:
            return None
        return int(self._admin_socket.getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session: FrontendSession
        if self.pooling is not None:
            session = PooledSession(
                self.config, reader, writer, self.pooling, client_tls=self._client_tls,
                pipeline=self.pipeline,
            )
        else:
            session = ClientSession(
                self.config,
                reader,
                writer,
                client_tls=self._client_tls,
                upstream_tls=self._upstream_tls,
            )
        session.capture = self.capture
        self.sessions.add(session)
        self.clients_total += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        except Exception:  # one client's failure never reaches the others
            logger.exception("dbsight proxy: session from %s failed", session.client_addr)
        finally:
            if self.capture is not None and session.exchange is not None:
                self.capture.session_ended(session.session_id, time.time())
            self.sessions.discard(session)
            if task is not None:
                self._tasks.discard(task)

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop accepting, let sessions finish for ``grace_s``, then close them."""
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):  # idle ones end now, the others after their transaction
            session.request_shutdown()
        tasks = set(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.pooling is not None:
            await self.pooling.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self._admin is not None:
            self._admin.should_exit = True
            if self._admin_task is not None:
                await asyncio.gather(self._admin_task, return_exceptions=True)
        if self._admin_socket is not None:
            self._admin_socket.close()
        if self._metrics is not None:
            self._metrics.remove(self)
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self.capture is not None:
            self.capture.close()

    async def _flush_capture(self) -> None:
        """Write the capture's buffered lines every second, so a quiet proxy's file is
        never more than a second behind."""
        assert self.capture is not None
        while True:
            await asyncio.sleep(1.0)
            self.capture.flush()

    async def serve(self, started: Callable[[], None] | None = None) -> None:
        """Run until SIGTERM or SIGINT, then shut down gracefully; ``started`` is called
        once the proxy listens (`start` raises `ListenError` when it cannot)."""
        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        logger.info("%s", self.describe())
        if started is not None:
            started()
        await stop.wait()
        await self.stop()

    # -- admin -------------------------------------------------------------------------
    async def _start_admin(self) -> None:
        import uvicorn

        from ..web import Endpoints
        from ..web._auth import TokenGuard
        from ..web._dashboard import Dashboard

        upstream = self.config.upstream_server
        check = HealthCheck(
            f"upstream:{upstream.host}:{upstream.port}",
            self._upstream_reachable,
            timeout_s=min(self.config.connect_timeout_s, 5.0),
        )
        dashboard = Dashboard("/", "", mode="proxy")
        endpoints = Endpoints(
            checks=(check,), handle_checks=False, app=self._stats_app,
            admin_token=self.config.admin_token, dashboard=dashboard,
        )  # fmt: skip
        # the probes stay open, as in-process: a kubelet or a container healthcheck has no
        # token; the page's files hold no data: a browser loads them without a header
        app = TokenGuard(
            endpoints, self.config.admin_token,
            exempt=frozenset({"/healthz", "/health/ready"}) | dashboard.paths,
        )  # fmt: skip
        host, port = self.config.admin_address or ("127.0.0.1", 0)
        # bound here, not by uvicorn: a port in use is one ListenError, not uvicorn's exit
        self._admin_socket = bind_socket(host, port, "admin requests", "--admin")
        self._admin = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        self._admin_task = asyncio.create_task(self._admin.serve(sockets=[self._admin_socket]))
        while not self._admin.started and not self._admin_task.done():
            await asyncio.sleep(0.01)
        if self._admin_task.done():
            self._admin_task.result()  # raises why the admin port could not start

    async def _upstream_reachable(self) -> None:
        upstream = self.config.upstream_server
        _, writer, _ = await open_link(upstream.host, upstream.port)
        writer.close()
        await writer.wait_closed()

    def clients(self) -> list[dict[str, Any]]:
        return [session.info.to_dict() for session in list(self.sessions)]

    def server_stats(self) -> list[dict[str, Any]]:
        """Each server's role, health, replica lag and circuit breaker (when the proxy holds
        server connections of its own)."""
        return self.pooling.topology.stats() if self.pooling is not None else []

    def listener_stats(self) -> list[dict[str, Any]]:
        """The LISTEN connections of transaction mode and their channels."""
        return self.pooling.listener_stats() if self.pooling is not None else []

    def pool_stats(self) -> list[dict[str, Any]]:
        """What ``/stats/pools`` shows: each transaction pool, or in session mode the one
        server connection per client."""
        if self.pooling is not None:
            return self.pooling.stats()
        upstream = self.config.upstream_server
        active = [s for s in list(self.sessions) if s.info.state == "active"]
        return [{
            "mode": "session",
            "name": f"session:{upstream.host}:{upstream.port}",
            "upstream": f"{upstream.host}:{upstream.port}",
            "server_connections": len(active),
            "idle": 0,
            "used": len(active),
            "connecting": 0,
            "clients": len(self.sessions),
            "clients_total": self.clients_total,
            "started_at": self.started_at,
        }]

    async def _stats_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        body: dict[str, Any]
        if path == "/stats/clients":
            status, body = 200, {"clients": self.clients()}
        elif path == "/stats/pools":
            status, body = 200, {"pools": self.pool_stats(), "servers": self.server_stats(),
                                 "listeners": self.listener_stats()}
        elif path == "/stats/proxy":
            status, body = 200, proxy_stats(self)
        else:
            status, body = 404, {"error": "not found"}
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})
