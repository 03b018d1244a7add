"""``dbsight dashboard export``, ``dbsight metrics`` and ``dbsight health``: the Grafana
dashboards, and a running instance's metrics and readiness read from outside (for scripts
and probes). `dbsight.cli` registers them; each imports what it needs only when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._cli_help import Command, group, reflow

__all__ = ["dashboard_app", "health", "metrics"]

dashboard_app = group(
    "dashboard",
    "Grafana dashboards for dbsight's metrics.",
)

UrlOption = Annotated[
    str,
    typer.Option(
        help="Base URL of a dbsight HTTP surface: an instrumented service (with the prefix "
        "its endpoints are under, if any) or the proxy's admin port."
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        envvar="DBSIGHT_ADMIN_TOKEN", help="Bearer token, when the endpoint requires one."
    ),
]
TimeoutOption = Annotated[
    float, typer.Option(min=0.1, max=300.0, help="Seconds to wait for the answer.")
]


def _err(message: str) -> None:
    typer.echo(message, err=True)


def export(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Directory to write the JSON files to (made when missing).",
        ),
    ],
) -> None:
    """Write the Grafana dashboards, one JSON file per dashboard, named after its uid.

    dbsight-service.json (a service's overview: requests, latency, errors, its database,
    external APIs, cache, background work), dbsight-database.json (statements by table and
    operation, slow ones, N+1, pools) and dbsight-proxy.json (throughput, routing, replicas,
    breakers, result cache, rejections, pools). Each has a $datasource variable (Prometheus),
    $service (the scrape job), alert annotations and a 30 s refresh; point Grafana's
    dashboard provisioning at the directory, or import the files.
    """
    from .dashboards import export_dashboards

    try:
        written = export_dashboards(out)
    except OSError as exc:
        _err(f"dbsight dashboard export: cannot write to {out}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    for path in written:
        typer.echo(str(path))


dashboard_app.command("export", cls=Command, help=reflow(export.__doc__))(export)


def metrics(
    url: UrlOption = "http://127.0.0.1:9187",
    match: Annotated[
        str | None,
        typer.Option(
            help="Only the families whose name (or a sample's, e.g. "
            "..._total) this regular expression finds."
        ),
    ] = None,
    token: TokenOption = None,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Print a running instance's /metrics (Prometheus text), filtered by family name.

    Exits 1 when the instance cannot be read or no family matches --match, 2 for a bad URL
    or pattern.
    """
    from .ops._remote import RemoteError, UsageError, compile_match, filtered_metrics

    try:
        text, count = filtered_metrics(
            url, match=compile_match(match), token=token, timeout_s=timeout
        )
    except UsageError as exc:
        _err(f"dbsight metrics: {exc}")
        raise typer.Exit(2) from None
    except RemoteError as exc:
        _err(f"dbsight metrics: {exc}")
        raise typer.Exit(1) from None
    if count == 0:
        _err(f"dbsight metrics: no metric family matches {match!r}" if match
             else "dbsight metrics: the instance exposes no metrics")  # fmt: skip
        raise typer.Exit(1)
    typer.echo(text, nl=False)


def health(
    url: UrlOption = "http://127.0.0.1:9187",
    token: TokenOption = None,
    timeout: TimeoutOption = 5.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing when ready.")] = False,
) -> None:
    """Exit 0 only when the instance's /health/ready says it is ready: for scripts and probes.

    Not ready: exit 1 with each check's result (the failing ones say why). Unreachable, or an
    answer that is not a dbsight health report: exit 1 with one line. A bad URL: exit 2.
    """
    from .ops._remote import RemoteError, UsageError, readiness

    try:
        verdict = readiness(url, token=token, timeout_s=timeout)
    except UsageError as exc:
        _err(f"dbsight health: {exc}")
        raise typer.Exit(2) from None
    except RemoteError as exc:
        _err(f"dbsight health: {exc}")
        raise typer.Exit(1) from None
    if verdict.ready:
        if not quiet:
            typer.echo("ready" + "".join(f"\n  {line}" for line in verdict.lines))
        return
    _err("not ready" + "".join(f"\n  {line}" for line in verdict.lines))
    raise typer.Exit(1)
