"""``dbsight alerts``: the alert rules as a Prometheus rule file (``export``), the routing
that goes with them (``export --alertmanager-config``, with Slack, PagerDuty, e-mail and
webhook receivers), a table of them (``list``), and a running instance's silences
(``silence``, `_cli_silences`). The commands import `dbsight.alerting` only when they run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ._cli_help import Command, group, reflow

if TYPE_CHECKING:
    from .alerting import Thresholds

alerts_app = group(
    "alerts",
    "Alert rules for Prometheus and Alertmanager, typed in dbsight and tested with promtool.",
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
    slack_webhook_url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Slack incoming webhook for critical and warning "
                     "alerts."),
    ] = None,
    slack_channel: Annotated[
        str | None,
        typer.Option(metavar="CHANNEL", help="Slack channel (#ops).",
                     show_default="the webhook's"),
    ] = None,
    pagerduty_routing_key: Annotated[
        str | None,
        typer.Option(metavar="KEY", envvar="DBSIGHT_ALERT_PAGERDUTY_ROUTING_KEY",
                     help="PagerDuty Events API v2 routing key: critical alerts page."),
    ] = None,
    pagerduty_url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Another PagerDuty Events API v2 endpoint.",
                     show_default="Alertmanager's"),
    ] = None,
    email_to: Annotated[
        str | None,
        typer.Option(metavar="ADDRESSES", help="E-mail recipients of info alerts, "
                     "comma-separated (with --smtp-smarthost and --smtp-from)."),
    ] = None,
    smtp_smarthost: Annotated[
        str | None, typer.Option(metavar="HOST:PORT", help="SMTP server Alertmanager sends via.")
    ] = None,
    smtp_from: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Sender of the e-mails.")
    ] = None,
    smtp_auth_username: Annotated[
        str | None, typer.Option(metavar="USER", help="SMTP login (with the password).")
    ] = None,
    smtp_auth_password: Annotated[
        str | None,
        typer.Option(metavar="PASSWORD", envvar="DBSIGHT_ALERT_SMTP_PASSWORD",
                     help="SMTP password; written into the file."),
    ] = None,
    smtp_require_tls: Annotated[
        bool,
        typer.Option("--smtp-require-tls/--no-smtp-require-tls",
                     help="Whether the smarthost must offer STARTTLS."),
    ] = True,
    group_wait: Annotated[
        str, typer.Option(metavar="DURATION", help="Wait before a new group's first notification.")
    ] = "30s",
    group_interval: Annotated[
        str, typer.Option(metavar="DURATION", help="Wait before notifying a changed group again.")
    ] = "5m",
    repeat_interval: Annotated[
        str, typer.Option(metavar="DURATION", help="Notify a group that still fires again after "
                          "this (critical 1h, info 24h).")
    ] = "4h",
) -> None:
    """Write dbsight's alert rules as a Prometheus rule file.

    HTTP latency, errors and throughput, external APIs, the cache, scrape targets, database
    statements and pools, background work, the proxy's pools, errors, replicas and breakers,
    and multi-window burn-rate alerts on the availability and latency objectives, each with
    severity, summary, description and runbook_url. Thresholds come from --config, then
    --set and the --slo-* flags. With --alertmanager-config, also an Alertmanager
    configuration: grouped by alert name and service label, critical inhibiting warning and
    info. Critical alerts go to PagerDuty and Slack, warnings to Slack, info to e-mail (each
    when its flags are given), and each severity to its --*-url webhook; a receiver left
    without any drops what it gets.

    Exit status: 0 written, 2 a bad threshold or flag, 1 a file that cannot be written.
    """
    from .alerting import DEFAULT_RUNBOOK_BASE, build_rules, rule_file, to_yaml
    from .alerting import alertmanager_config as am_config
    from .alerting._routing import receiver_integrations

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
        targets = _targets(
            slack_webhook_url, slack_channel, pagerduty_routing_key, pagerduty_url, email_to,
            smtp_smarthost, smtp_from, smtp_auth_username, smtp_auth_password, smtp_require_tls,
        )  # fmt: skip
        try:
            routing = am_config(
                group_label=t.service_label, webhooks={k: v for k, v in hooks.items() if v},
                group_wait=group_wait, group_interval=group_interval,
                repeat_interval=repeat_interval, **targets,
            )  # fmt: skip
        except ValueError as exc:
            _usage(str(exc))
        _write(alertmanager_config, to_yaml(routing, "# dbsight alert routing\n"))
        missing = [name for name, kinds in receiver_integrations(routing).items() if not kinds]
        if missing:
            sys.stderr.write(
                f"dbsight alerts: receiver(s) {', '.join(missing)} have no URL and drop their "
                "alerts; give --critical-url/--warning-url/--info-url (or Slack, PagerDuty, "
                f"e-mail) or edit {alertmanager_config}\n"
            )
    if output is None:
        sys.stdout.write(text)
    else:
        _write(output, text)


def _targets(
    slack_url: str | None,
    slack_channel: str | None,
    routing_key: str | None,
    pagerduty_url: str | None,
    email_to: str | None,
    smarthost: str | None,
    sender: str | None,
    username: str | None,
    password: str | None,
    require_tls: bool,
) -> dict[str, Any]:
    """The Slack, PagerDuty and e-mail receivers the flags describe; a usage error (exit 2)
    for a bad URL, a flag without the ones it needs, or a bad smarthost or address."""
    from .alerting import EmailTarget, PagerDutyTarget, SlackTarget

    for option, url in (("--slack-webhook-url", slack_url), ("--pagerduty-url", pagerduty_url)):
        if url is not None and not url.startswith(("http://", "https://")):
            _usage(f"{option}: {url!r} is not an http:// or https:// URL")
    if slack_channel is not None and slack_url is None:
        _usage("--slack-channel needs --slack-webhook-url")
    if pagerduty_url is not None and routing_key is None:
        _usage("--pagerduty-url needs --pagerduty-routing-key")
    email_flags = {"--email-to": email_to, "--smtp-smarthost": smarthost, "--smtp-from": sender}
    given = [flag for flag, value in email_flags.items() if value]
    if given and len(given) < len(email_flags):
        _usage(f"{', '.join(email_flags)} go together (got only {', '.join(given)})")
    if (username or password) and not given:
        _usage("--smtp-auth-username and --smtp-auth-password need --email-to")
    targets: dict[str, Any] = {}
    if slack_url:
        targets["slack"] = SlackTarget(slack_url, slack_channel or "")
    if routing_key:
        targets["pagerduty"] = PagerDutyTarget(routing_key, pagerduty_url or "")
    if email_to and smarthost and sender:
        try:
            targets["email"] = EmailTarget(
                email_to, smarthost, sender, username or "", password or "", require_tls
            )
        except ValueError as exc:
            _usage(str(exc))
    return targets


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
