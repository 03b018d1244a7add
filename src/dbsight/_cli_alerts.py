"""``dbsight alerts``: the alert rules as a Prometheus rule file (``export``), the routing
that goes with them (``export --alertmanager-config``), and a table of them (``list``).
The commands import `dbsight.alerting` only when they run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ._cli_help import Command, Group, reflow

if TYPE_CHECKING:
    from .alerting import Thresholds

alerts_app = typer.Typer(
    name="alerts",
    help="Alert rules for Prometheus and Alertmanager, typed in dbsight and tested with promtool.",
    no_args_is_help=True,
    add_completion=False,
    cls=Group,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", metavar="FILE", dir_okay=False,
        help="Thresholds and objectives from a TOML file (YAML if it ends in .yml/.yaml); "
        "keys as in docs/alerts.md, at the top level or under [alerts].",
    ),
]  # fmt: skip
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", metavar="NAME=VALUE",
        help="One threshold (repeatable), over --config: --set http_latency_p95_warning_s=0.5.",
    ),
]  # fmt: skip
SloAvailabilityOption = Annotated[
    float | None,
    typer.Option(help="Availability objective: the share of requests not answered with a "
                 "5xx.", show_default="0.999"),
]  # fmt: skip
SloLatencyOption = Annotated[
    float | None,
    typer.Option(help="Latency objective in ms: a bucket bound of "
                 "http_server_request_duration_seconds.", show_default="500"),
]  # fmt: skip
SloLatencyTargetOption = Annotated[
    float | None,
    typer.Option(help="Share of requests that must be within --slo-latency-ms.",
                 show_default="0.99"),
]  # fmt: skip
ServiceLabelOption = Annotated[
    str | None,
    typer.Option(help="Label the alerts aggregate and Alertmanager groups by.",
                 show_default="job"),
]  # fmt: skip


def _thresholds(
    config: Path | None,
    settings: list[str] | None,
    slo_availability: float | None,
    slo_latency_ms: float | None,
    slo_latency_target: float | None,
    service_label: str | None,
) -> Thresholds:
    from .alerting import AlertConfigError, load_thresholds

    overrides: dict[str, Any] = {}
    for item in settings or ():
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            _usage(f"--set {item!r}: expected NAME=VALUE")
        overrides[name.strip()] = _value(text.strip())
    flags = {
        "slo_availability": slo_availability, "slo_latency_ms": slo_latency_ms,
        "slo_latency_target": slo_latency_target, "service_label": service_label,
    }  # fmt: skip
    overrides.update({name: flag for name, flag in flags.items() if flag is not None})
    try:
        return load_thresholds(config, **overrides)
    except AlertConfigError as exc:
        _usage(str(exc))


def _value(text: str) -> Any:
    """A --set value as TOML would read it (a number, or a list such as ["api", "proxy"]),
    else the text itself (a duration such as 1d, a label name)."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _usage(message: str) -> NoReturn:
    sys.stderr.write(f"dbsight alerts: {message}\n")
    raise typer.Exit(2)


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"dbsight alerts: {message}\n")
    raise typer.Exit(1)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}")


def export(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", dir_okay=False,
                     help="Write the rule file here.", show_default="standard output"),
    ] = None,
    config: ConfigOption = None,
    settings: SetOption = None,
    slo_availability: SloAvailabilityOption = None,
    slo_latency_ms: SloLatencyOption = None,
    slo_latency_target: SloLatencyTargetOption = None,
    service_label: ServiceLabelOption = None,
    runbook_base: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Where runbook_url points, before #anchor: the URL of "
                     "docs/runbooks.md where your team reads it.",
                     show_default="docs/runbooks.md"),
    ] = None,
    alertmanager_config: Annotated[
        Path | None,
        typer.Option("--alertmanager-config", metavar="FILE", dir_okay=False,
                     help="Also write an Alertmanager configuration routing the alerts by "
                     "severity to receivers critical, warning and info."),
    ] = None,
    critical_url: Annotated[
        str | None, typer.Option(metavar="URL", help="Webhook of the critical receiver.")
    ] = None,
    warning_url: Annotated[
        str | None, typer.Option(metavar="URL", help="Webhook of the warning receiver.")
    ] = None,
    info_url: Annotated[
        str | None, typer.Option(metavar="URL", help="Webhook of the info receiver.")
    ] = None,
) -> None:
    """Write dbsight's alert rules as a Prometheus rule file.

    HTTP latency, errors and throughput, external APIs, the cache, scrape targets, database
    statements and pools, background work, the proxy's pools, errors, replicas and breakers,
    and multi-window burn-rate alerts on the availability and latency objectives, each with
    severity, summary, description and runbook_url. Thresholds come from --config, then
    --set and the --slo-* flags. With --alertmanager-config, also an Alertmanager
    configuration: grouped by alert name and service label, critical inhibiting warning and
    info. A receiver without a --*-url drops what it gets.

    Exit status: 0 written, 2 a bad threshold or flag, 1 a file that cannot be written.
    """
    from .alerting import DEFAULT_RUNBOOK_BASE, alertmanager_config as am_config
    from .alerting import build_rules, rule_file, to_yaml

    t = _thresholds(config, settings, slo_availability, slo_latency_ms, slo_latency_target,
                    service_label)  # fmt: skip
    for option, url in (("--critical-url", critical_url), ("--warning-url", warning_url),
                        ("--info-url", info_url)):  # fmt: skip
        if url is not None and not url.startswith(("http://", "https://")):
            _usage(f"{option}: {url!r} is not an http:// or https:// URL")
    header = "# dbsight alert rules (dbsight alerts export); runbooks: docs/runbooks.md\n"
    text = to_yaml(rule_file(build_rules(t), runbook_base=runbook_base or DEFAULT_RUNBOOK_BASE),
                   header)  # fmt: skip
    if alertmanager_config is not None:
        hooks = {"critical": critical_url, "warning": warning_url, "info": info_url}
        routing = am_config(
            group_label=t.service_label, webhooks={k: v for k, v in hooks.items() if v}
        )
        _write(alertmanager_config, to_yaml(routing, "# dbsight alert routing\n"))
        missing = [name for name, url in hooks.items() if not url]
        if missing:
            sys.stderr.write(
                f"dbsight alerts: receiver(s) {', '.join(missing)} have no URL and drop their "
                "alerts; give --critical-url/--warning-url/--info-url or edit "
                f"{alertmanager_config}\n"
            )
    if output is None:
        sys.stdout.write(text)
    else:
        _write(output, text)


def list_alerts(
    config: ConfigOption = None,
    settings: SetOption = None,
    slo_availability: SloAvailabilityOption = None,
    slo_latency_ms: SloLatencyOption = None,
    slo_latency_target: SloLatencyTargetOption = None,
    service_label: ServiceLabelOption = None,
) -> None:
    """List the alert rules: name, severity, for, threshold and summary.

    With the same --config, --set and --slo-* flags as export, the table shows the
    thresholds the exported file would use.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from .alerting import all_alerts, build_rules

    t = _thresholds(config, settings, slo_availability, slo_latency_ms, slo_latency_target,
                    service_label)  # fmt: skip
    table = Table(box=None, header_style="bold")
    for column in ("alert", "severity", "for", "threshold", "summary"):
        table.add_column(column, overflow="fold")
    for alert in all_alerts(build_rules(t)):
        name = alert.name + "".join(f" {k}={v}" for k, v in alert.labels.items())
        table.add_row(*(Text(cell) for cell in (
            name, alert.severity, alert.for_text, alert.threshold_text(), alert.summary,
        )))  # fmt: skip
    Console().print(table)


alerts_app.command("export", cls=Command, help=reflow(export.__doc__))(export)
alerts_app.command("list", cls=Command, help=reflow(list_alerts.__doc__))(list_alerts)

# `dbsight alerts silence add|list|expire`: a running instance's silences
from ._cli_silences import silence_app  # noqa: E402

alerts_app.add_typer(silence_app, name="silence")
