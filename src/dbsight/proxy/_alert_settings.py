"""The alert settings a proxy's TOML file may carry (``alertmanager_url``, ``alert_*`` under
``[proxy]``): the same names, types and bounds as dbsight's `Settings`, where the proxy's
notifier — dbsight's own, built by the runtime — reads them.

A key set in the file wins over the ``DBSIGHT_`` variable of the same name; an unset one
leaves the variable (or the default) in force. `apply_alert_settings` folds them into the
runtime's settings when the proxy is built, so the proxy's events (a replica out of
rotation, a breaker, a slow statement) reach the destinations the file names.
"""

from __future__ import annotations

from pathlib import Path
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


def _described(name: str) -> Any:
    """The `Settings` field's description, and None (unset: the variable's value)."""
    description = Settings.model_fields[name].description or ""
    return Field(
        None, description=f"{description} Unset: `DBSIGHT_{name.upper()}` or its default."
    )


class ProxyAlertSettings(BaseModel):
    """The alert keys of the ``[proxy]`` table (a base of `ProxyConfig`): the types and
    bounds of `Settings` (tests/notify check that they agree), optional."""

    alertmanager_url: str | None = _described("alertmanager_url")
    alert_webhook_url: str | None = _described("alert_webhook_url")
    alert_slack_webhook_url: str | None = _described("alert_slack_webhook_url")
    alert_pagerduty_routing_key: str | None = _described("alert_pagerduty_routing_key")
    alert_pagerduty_url: str | None = _described("alert_pagerduty_url")
    alert_smtp_host: str | None = _described("alert_smtp_host")
    alert_smtp_port: Annotated[int | None, Field(ge=1, le=65535)] = _described("alert_smtp_port")
    alert_smtp_from: str | None = _described("alert_smtp_from")
    alert_smtp_to: str | None = _described("alert_smtp_to")
    alert_smtp_starttls: bool | None = _described("alert_smtp_starttls")
    alert_smtp_tls: bool | None = _described("alert_smtp_tls")
    alert_smtp_ca_file: Path | None = _described("alert_smtp_ca_file")
    alert_smtp_username: str | None = _described("alert_smtp_username")
    alert_smtp_password: SecretStr | None = _described("alert_smtp_password")
    alert_slow_query_ms: Annotated[float | None, Field(gt=0, le=3_600_000)] = _described(
        "alert_slow_query_ms"
    )
    alert_group_wait_s: Annotated[float | None, Field(ge=0, le=86_400)] = _described(
        "alert_group_wait_s"
    )
    alert_group_interval_s: Annotated[float | None, Field(gt=0, le=86_400)] = _described(
        "alert_group_interval_s"
    )
    alert_repeat_interval_s: Annotated[float | None, Field(gt=0, le=30 * 86_400)] = _described(
        "alert_repeat_interval_s"
    )

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
