"""The alert settings a proxy's TOML file may carry (``alertmanager_url``, ``alert_*`` under
``[proxy]``): the same names, types and bounds as dbsight's `Settings`, where the proxy's
notifier — dbsight's own, built by the runtime — reads them.

A key set in the file wins over the ``DBSIGHT_`` variable of the same name; an unset one
leaves the variable (or the default) in force. `apply_alert_settings` folds them into the
runtime's settings when the proxy is built, so the proxy's events (a replica out of
rotation, a breaker, a slow statement) reach the destinations the file names.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator

from ..core._settings import Settings

ALERT_SETTINGS = (
    "alertmanager_url", "alert_webhook_url", "alert_slack_webhook_url",
    "alert_pagerduty_routing_key", "alert_pagerduty_url", "alert_smtp_host", "alert_smtp_port",
    "alert_smtp_from", "alert_smtp_to", "alert_smtp_starttls", "alert_smtp_tls",
    "alert_smtp_ca_file", "alert_smtp_username", "alert_smtp_password", "alert_slow_query_ms",
    "alert_group_wait_s", "alert_group_interval_s", "alert_repeat_interval_s",
)  # fmt: skip


def _like(name: str) -> Any:
    """The `Settings` field's type and bounds, optional (unset: the variable's value)."""
    info = Settings.model_fields[name]
    optional = info.annotation | None  # type: ignore[operator]
    return Annotated[(optional, *info.metadata)] if info.metadata else optional


def _described(name: str) -> Any:
    description = Settings.model_fields[name].description or ""
    return Field(
        None, description=f"{description} Unset: `DBSIGHT_{name.upper()}` or its default."
    )


AlertmanagerUrl = _like("alertmanager_url")
WebhookUrl = _like("alert_webhook_url")
SlackUrl = _like("alert_slack_webhook_url")
RoutingKey = _like("alert_pagerduty_routing_key")
PagerDutyUrl = _like("alert_pagerduty_url")
SmtpHost = _like("alert_smtp_host")
SmtpPort = _like("alert_smtp_port")
SmtpFrom = _like("alert_smtp_from")
SmtpTo = _like("alert_smtp_to")
SmtpStarttls = _like("alert_smtp_starttls")
SmtpTls = _like("alert_smtp_tls")
SmtpCaFile = _like("alert_smtp_ca_file")
SmtpUsername = _like("alert_smtp_username")
SmtpPassword = _like("alert_smtp_password")
SlowQueryMs = _like("alert_slow_query_ms")
GroupWait = _like("alert_group_wait_s")
GroupInterval = _like("alert_group_interval_s")
RepeatInterval = _like("alert_repeat_interval_s")


class ProxyAlertSettings(BaseModel):
    """The alert keys of the ``[proxy]`` table (a base of `ProxyConfig`)."""

    alertmanager_url: AlertmanagerUrl = _described("alertmanager_url")
    alert_webhook_url: WebhookUrl = _described("alert_webhook_url")
    alert_slack_webhook_url: SlackUrl = _described("alert_slack_webhook_url")
    alert_pagerduty_routing_key: RoutingKey = _described("alert_pagerduty_routing_key")
    alert_pagerduty_url: PagerDutyUrl = _described("alert_pagerduty_url")
    alert_smtp_host: SmtpHost = _described("alert_smtp_host")
    alert_smtp_port: SmtpPort = _described("alert_smtp_port")
    alert_smtp_from: SmtpFrom = _described("alert_smtp_from")
    alert_smtp_to: SmtpTo = _described("alert_smtp_to")
    alert_smtp_starttls: SmtpStarttls = _described("alert_smtp_starttls")
    alert_smtp_tls: SmtpTls = _described("alert_smtp_tls")
    alert_smtp_ca_file: SmtpCaFile = _described("alert_smtp_ca_file")
    alert_smtp_username: SmtpUsername = _described("alert_smtp_username")
    alert_smtp_password: SmtpPassword = _described("alert_smtp_password")
    alert_slow_query_ms: SlowQueryMs = _described("alert_slow_query_ms")
    alert_group_wait_s: GroupWait = _described("alert_group_wait_s")
    alert_group_interval_s: GroupInterval = _described("alert_group_interval_s")
    alert_repeat_interval_s: RepeatInterval = _described("alert_repeat_interval_s")

    @field_validator(
        "alertmanager_url", "alert_webhook_url", "alert_slack_webhook_url", "alert_pagerduty_url"
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    def alert_settings(self) -> dict[str, Any]:
        """The alert keys the file sets."""
        return {name: value for name in ALERT_SETTINGS
                if (value := getattr(self, name)) is not None}  # fmt: skip


def apply_alert_settings(config: ProxyAlertSettings) -> None:
    """Reconfigure dbsight with the file's alert keys over its current settings (nothing
    to do when the file sets none, or they are already in force). Raises `ConfigError`
    when the combination is invalid (e-mail without recipients ...)."""
    overrides = config.alert_settings()
    if not overrides:
        return
    from .._runtime import configure, get_runtime

    current = get_runtime().settings
    if all(_same(getattr(current, name), value) for name, value in overrides.items()):
        return
    values = {name: getattr(current, name) for name in type(current).model_fields}
    values.update(overrides)
    configure(Settings(**values))


def _same(left: object, right: object) -> bool:
    if isinstance(left, SecretStr) and isinstance(right, SecretStr):
        return left.get_secret_value() == right.get_secret_value()
    return left == right
