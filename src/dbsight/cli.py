"""The ``dbsight`` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from . import __version__
from ._cli_help import Command, group, reflow
from .core import ConfigError
from .stats import ORDER_BY, check_order_by

app = group(
    "dbsight",
    "Database observability for Python web services.",
)


def command(function: Callable[..., None]) -> Callable[..., None]:
    """Register ``function`` as a subcommand; its docstring, reflowed, is the help."""
    app.command(cls=Command, help=reflow(function.__doc__))(function)
    return function


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print dbsight's version and exit.",
        ),
    ] = False,
) -> None:
    """Database observability for Python web services."""


DurationOption = Annotated[
    float | None,
    typer.Option(
        "--duration",
        min=1.0,
        help="Run unattended: traffic for this many seconds, the summary, then exit. "
        "Without it the demo keeps serving after the summary until Ctrl-C.",
    ),
]
ScaleOption = Annotated[
    float,
    typer.Option(
        min=0.001, help="Sample data size; 1.0 is 20k customers, 100k orders, ~300k order items."
    ),
]
ConcurrencyOption = Annotated[
    int, typer.Option(min=1, max=256, help="Concurrent clients sending the traffic.")
]
SlowMsOption = Annotated[
    float, typer.Option(min=0.001, help="Slow-query threshold in milliseconds.")
]
RateOption = Annotated[
    float,
    typer.Option(min=0.0, help="Requests per second in all (0: as fast as the service answers)."),
]
PortOption = Annotated[
    int, typer.Option(min=0, max=65535, help="Port of the sample service (0: a free one).")
]
DemoReportOption = Annotated[
    Path | None,
    typer.Option(
        "--report", dir_okay=False,
        help="Where to write the HTML report (default: dbsight-demo.html in the "
        "system's temporary directory).",
    ),
]  # fmt: skip


@command
def demo(
    duration: DurationOption = None,
    scale: ScaleOption = 1.0,
    concurrency: ConcurrencyOption = 8,
    rate: RateOption = 100.0,
    slow_ms: SlowMsOption = 10.0,
    port: PortOption = 0,
    report: DemoReportOption = None,
) -> None:
    """A sample service on a private PostgreSQL, instrumented, under traffic: what dbsight finds.

    Starts an embedded PostgreSQL with a shop schema (over 400k rows at the default scale)
    and an embedded Redis, serves the dbsight reference platform with the sample shop as one
    of its applications (/v1/shop; dbsight instruments the app, its database engine, Redis
    and its HTTP client), sends the shop traffic, and prints what the service's own
    /metrics/summary reports: top statements, slow queries with their EXPLAIN plans, N+1
    patterns; then its recommendations: the indexes the slow endpoints need, verified on the
    demo's database with their measured speed-up, plan findings, failing database checks, and
    an HTML report with all of it. Then it keeps serving until Ctrl-C, or exits with
    --duration. Everything it started (PostgreSQL, Redis, the service, temporary files) is
    removed on exit, also on Ctrl-C.
    """
    try:
        import dbsight_platform.main  # noqa: F401  (the service the demo serves)

        from .demo import DemoConfig, run_demo
    except ModuleNotFoundError as exc:  # fastapi, uvicorn, the platform's: the "demo" extra
        Console(stderr=True).print(
            f"dbsight demo needs {exc.name!r}, which is not installed: "
            "pip install 'dbsight[demo]' (./dev demo installs it)"
        )
        raise typer.Exit(2) from None

    config = DemoConfig(
        duration_s=duration,
        scale=scale,
        concurrency=concurrency,
        rate=rate or None,
        slow_query_threshold_ms=slow_ms,
        port=port,
        **({"report": report} if report is not None else {}),
    )
    raise typer.Exit(run_demo(config))


def _dialect(value: str) -> str:
    from .sql import DIALECT_NAMES

    name = value.strip().lower()
    if name not in DIALECT_NAMES:
        raise typer.BadParameter(
            f"unknown dialect {value!r}; dbsight knows {', '.join(DIALECT_NAMES)}"
        )
    return name


@command
def analyze(
    statement: Annotated[str, typer.Argument(help="The SQL text to analyse.")],
    dialect: Annotated[
        str,
        typer.Option(
            callback=_dialect,
            help="postgresql (or postgres, pg), mysql (or mariadb), sqlite (or sqlite3).",
        ),
    ] = "postgresql",
    database: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="A PostgreSQL (postgresql://user@host:port/db) to ask what the text cannot "
            "tell, as the proxy asks its primary: the volatility of the functions called, "
            "what each relation read is.",
        ),
    ] = None,
) -> None:
    """Show how dbsight classifies a statement: normalized text, fingerprint, tables, whether
    it is read-only (and if not, why), and where the proxy routes it.

    routing (PostgreSQL) is the proxy router's verdict: primary or replica, the reason, and
    what could not be checked without --database (user functions' volatility, whether a
    relation is a view calling a volatile function); each of those may still send the
    statement to the primary.
    """
    from .sql import analyze as analyze_sql

    if database is not None and dialect not in ("postgresql", "postgres", "pg"):
        raise typer.BadParameter("only a PostgreSQL statement is routed", param_hint="--database")
    info = analyze_sql(statement, dialect)
    document: dict[str, Any] = {
        "normalized": info.normalized,
        "fingerprint": info.fingerprint,
        "operation": info.operation,
        "tables": list(info.tables),
        "read_only": info.read_only,
        "not_read_only_because": info.obstacle or None,
    }
    if dialect in ("postgresql", "postgres", "pg"):
        document["routing"] = _routing(statement, database).to_dict()
    Console().print_json(json.dumps(document))


def _routing(statement: str, database: str | None) -> Any:
    """The proxy router's verdict on ``statement``; with ``database``, asking that server."""
    import asyncio

    from .proxy._backend_errors import BackendError
    from .proxy._route_explain import explain_route, explain_route_at

    if database is None:
        return explain_route(statement)
    if not database.startswith(("postgresql://", "postgres://")):
        raise typer.BadParameter("expected a postgresql:// URL", param_hint="--database")
    try:
        return asyncio.run(explain_route_at(statement, database))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--database") from None
    except BackendError as exc:
        Console(stderr=True).print(
            f"dbsight analyze: {str(exc).removeprefix('dbsight proxy: ')}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def _order_by(value: str) -> str:
    try:
        return check_order_by(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(ORDER_BY)}") from None


@command
def top(
    url: Annotated[
        list[str] | None,
        typer.Option(
            help="Base URL of a dbsight HTTP surface: an instrumented service, or the "
            "proxy's admin port. /metrics/summary is read from it. Repeat it for several "
            "instances: their statements are merged by fingerprint. [default: "
            "http://127.0.0.1:9187]",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.1, max=3600.0, help="Seconds between two polls.")
    ] = 2.0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Statements shown.")] = 20,
    sort: Annotated[
        str,
        typer.Option(
            callback=_order_by,
            help=f"Order, largest first: {', '.join(ORDER_BY)} (as dbsight.stats.top's "
            "order_by).",
        ),
    ] = "total_time",
    token: Annotated[
        str | None,
        typer.Option(
            envvar="DBSIGHT_ADMIN_TOKEN", help="Bearer token, when the endpoint requires one."
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=300.0, help="Seconds to wait for an answer.")
    ] = 5.0,
    once: Annotated[
        bool, typer.Option("--once", help="Print one snapshot as plain tables and exit.")
    ] = False,
    width: Annotated[
        int | None, typer.Option(min=40, help="Columns of output (default: the terminal's).")
    ] = None,
) -> None:
    """A live view of the top statements of a running dbsight (its /metrics/summary).

    The header counts every statement; --limit limits the rows. Calls/s and each statement's
    share of the database time are per interval; the latest N+1 findings and slow queries
    (with their plan) follow. An unreachable endpoint is shown and retried (--once: exit 1).
    On a terminal the view is redrawn in place; into a pipe or a file, each poll is printed
    as plain text. Ctrl-C or SIGTERM ends it (status 0).
    """
    try:
        from .top import TopOptions, run_top
    except ModuleNotFoundError as exc:  # httpx: the "demo" extra
        Console(stderr=True).print(
            f"dbsight top needs {exc.name!r}, which is not installed: pip install 'dbsight[demo]'"
        )
        raise typer.Exit(2) from None
    try:
        urls = url or ["http://127.0.0.1:9187"]
        options = TopOptions(
            url=urls[0], more_urls=tuple(urls[1:]), interval_s=interval, limit=limit, sort=sort, token=token,
            timeout_s=timeout, once=once, width=width,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    raise typer.Exit(run_top(options))


def _show_statement_logs(settings: Any) -> None:
    """The pipeline's log steps write where the operator sees them: JSON lines on stderr for
    a logger nothing else handles."""
    import logging

    from .export.logging import configure_json_logging
    from .proxy._pipeline import LogStep

    for step in settings.pipeline:
        if isinstance(step, LogStep) and not logging.getLogger(step.logger).hasHandlers():
            configure_json_logging(step.level.upper(), logger=step.logger)


@command
def proxy(
    listen: Annotated[
        str | None,
        typer.Option(help="Address clients connect to (port 0: a free one).",
                     show_default="127.0.0.1:5433"),
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option(help="The PostgreSQL to relay to, as postgresql://user@host:port/db.",
                     show_default="postgresql://127.0.0.1:5432/postgres"),
    ] = None,
    admin: Annotated[
        str | None,
        typer.Option(help="Admin HTTP address (/metrics, /health, /stats ...), e.g. "
                     "127.0.0.1:9187 (port 0: a free one).", show_default="off"),
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(
            envvar="DBSIGHT_ADMIN_TOKEN",
            help="Bearer token the admin port requires, at least 8 characters long.",
            show_default="none: the admin port is open",
        ),
    ] = None,
    pool_mode: Annotated[
        str | None,
        typer.Option(help="session (a server connection per client) or transaction (lent "
                     "per transaction; the proxy authenticates clients).",
                     show_default="session"),
    ] = None,
    pool_size: Annotated[
        int | None,
        typer.Option(help="Server connections per database and user (pooled).",
                     show_default="20"),
    ] = None,
    replica: Annotated[
        list[str] | None,
        typer.Option(help="A streaming replica for read-only statements, as postgresql://...; "
                     "repeatable; in session mode the proxy then authenticates clients itself.",
                     show_default="none"),
    ] = None,
    capture: Annotated[
        Path | None,
        typer.Option(help="Record the statement stream to this file (JSON lines, rotated).",
                     show_default="off"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="TOML file with the same settings under \\[proxy].",
                     show_default="none"),
    ] = None,
) -> None:
    """A PostgreSQL wire-protocol proxy that observes every statement it relays.

    An option given here wins over the --config file, which wins over the defaults shown.
    Once listening, one line on stderr says where, the upstream and the pool mode.
    """
    import asyncio

    from .proxy import ListenError, ProxyConfig, ProxyServer

    try:
        settings = ProxyConfig.load(
            config,
            listen=listen,
            upstream=upstream,
            admin=admin,
            admin_token=admin_token,
            pool_mode=pool_mode,
            pool_size=pool_size,
            replicas=replica or None,
            capture=capture,
        )
        server = ProxyServer(settings)  # loads the TLS certificates: fails here, not later
    except ConfigError as exc:
        _config_error(exc)
    _show_statement_logs(settings)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass  # the standard event loop
    try:
        asyncio.run(server.serve(started=lambda: typer.echo(server.describe(), err=True)))
    except ListenError as exc:  # a port in use: one line, no traceback
        sys.stderr.write(f"{exc}\n")
        raise SystemExit(1) from None


# The analysis commands (check, replay, report, advise) live in a module of their own; they are
# registered here, before version, so that ``dbsight --help`` lists them in this order.
from ._cli_analysis import advise, check, replay, report  # noqa: E402

for _analysis in (check, replay, report, advise):
    command(_analysis)

# `dbsight alerts export|list`: a group of its own (src/dbsight/_cli_alerts.py)
from ._cli_alerts import alerts_app  # noqa: E402

app.add_typer(alerts_app, name="alerts")

# `dbsight audit init|recent|user|entity|failed|report|purge` (src/dbsight/_cli_audit.py)
from ._cli_audit import audit_app  # noqa: E402

app.add_typer(audit_app, name="audit")

# The Grafana dashboards (`dbsight dashboard export`) and a running instance read from a shell
# (`metrics`, `health`): a module of their own, registered the same way.
from ._cli_dashboards import dashboard_app, health, metrics  # noqa: E402

app.add_typer(dashboard_app)
for _remote in (metrics, health):
    command(_remote)


@command
def version() -> None:
    """Print dbsight's version."""
    typer.echo(__version__)


def _config_error(exc: ConfigError) -> NoReturn:
    """Exit 2 with the error's lines on stderr as they are: a line per bad setting, no
    traceback, no wrapping."""
    sys.stderr.write(f"{exc}\n")
    raise SystemExit(2)


def main() -> None:
    try:
        app()
    except ConfigError as exc:  # dbsight's settings, read by configure() in a command
        _config_error(exc)


if __name__ == "__main__":
    main()
