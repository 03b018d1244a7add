"""dbsight's settings: one pydantic model, read from ``DBSIGHT_*`` variables and ``./.env``.

Only ``DBSIGHT_`` names are read (see `_settings_env`): an application's own variables and
its ``.env`` are left alone. Settings are read by ``configure()`` (or the first use of
dbsight), never at import. An invalid value fails there with a `ConfigError` of one line per
bad setting, naming the variable, the rule and the value given (see `_settings_errors`), so a
bad deployment stops at start-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ._settings_env import ENV_PREFIX, read_variables
from ._settings_errors import describe_validation_error

Environment = Literal["dev", "staging", "prod"]
SqlCommenterMode = Literal["off", "full", "route"]

# Trace and log sampling per environment; metric counters are never sampled.
DEFAULT_SAMPLE_RATES: dict[str, float] = {"dev": 1.0, "staging": 0.1, "prod": 0.01}


class ConfigError(ValueError):
    """A setting is invalid; the message has a line per bad field: where its value came
    from, what it accepts and what was given."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    enabled: bool = Field(True, description="Master switch; when off every hook is a no-op.")
    service_name: str = Field("app", min_length=1, max_length=200)
    environment: Environment = "dev"

    metrics_enabled: bool = True
    metrics_max_label_values: int = Field(
        100, ge=1, le=10_000, description="Distinct values per open-ended label before 'other'."
    )

    tracing_enabled: bool = Field(
        True, description="Spans per query when an OpenTelemetry SDK tracer provider is present."
    )
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces endpoint; dbsight installs an SDK only when set."
    )
    trace_sample_rate: float | None = Field(
        None, ge=0.0, le=1.0, description="Default from environment: dev 1, staging 0.1, prod 0.01."
    )
    log_sample_rate: float | None = Field(None, ge=0.0, le=1.0)

    stats_enabled: bool = True
    stats_max_fingerprints: int = Field(5_000, ge=10, le=1_000_000)
    advice_samples: int = Field(
        8,
        ge=0,
        le=100,
        description=(
            "Real statements (text and parameter values) kept per PostgreSQL fingerprint, in "
            "memory only and never exported, for the index advisor to plan with; 0 turns "
            "the sampler off."
        ),
    )

    slow_query_threshold_ms: float = Field(500.0, gt=0, le=3_600_000)
    slow_query_log: Path | None = Field(
        None, description="JSON-lines file; when unset, slow queries go to the dbsight.slow logger."
    )
    slow_query_log_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=10 * 1024**3)
    slow_query_log_backups: int = Field(5, ge=0, le=1000)
    explain_slow_queries: bool = True
    explain_timeout_ms: float = Field(2_000.0, gt=0, le=600_000)
    explain_interval_s: float = Field(
        60.0, ge=0, le=86_400, description="At most one EXPLAIN per fingerprint in this interval."
    )
    explain_analyze: bool = Field(
        False,
        description=(
            "EXPLAIN (ANALYZE, BUFFERS) for slow read-only SELECTs: the statement runs again, "
            "on dbsight's own connection, in a transaction that is rolled back, under the "
            "EXPLAIN time-out; the plan analyzer then sees actual rows, loops, time and spills."
        ),
    )
    explain_analyze_sample_rate: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description=(
            "Fraction of the explained slow SELECTs run with ANALYZE when explain_analyze is on "
            "(the others get a plain EXPLAIN)."
        ),
    )

    include_query_bodies: bool = Field(
        False, description="Log and export literal values and parameters (off: privacy)."
    )
    sqlcommenter: SqlCommenterMode = "off"
    admin_token: str | None = Field(
        None,
        min_length=8,
        description=(
            "Bearer token dbsight's HTTP endpoints require (Authorization: Bearer ...); "
            "the probes /healthz and /health/ready stay open. Unset: no token."
        ),
    )

    external_api_services: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Host (or host:port) -> service label of external_api_* metrics, e.g. "
            '{"api.stripe.com": "stripe"}; env as JSON. Other hosts are labelled by host name.'
        ),
    )

    n_plus_one_threshold: int = Field(
        5,
        ge=2,
        le=100_000,
        description="Executions of one statement shape in one request that make an N+1 finding.",
    )
    n_plus_one_min_total_ms: float = Field(
        50.0,
        ge=0,
        le=3_600_000,
        description="Their total time must reach this too: cheap repeats are not reported.",
    )

    # -- alerts (dbsight.notify): off until a destination is set --------------------------
    alertmanager_url: str | None = Field(
        None,
        description=(
            "Base URL of an Alertmanager; dbsight's alerts are POSTed to its /api/v2/alerts "
            "(its grouping, inhibition, silences and routing then apply)."
        ),
    )
    alert_webhook_url: str | None = Field(
        None,
        description="URL that receives alert groups in Alertmanager's webhook format (version 4).",
    )
    alert_slack_webhook_url: str | None = Field(
        None, description="Slack incoming webhook URL; alerts are posted as Block Kit messages."
    )
    alert_pagerduty_routing_key: str | None = Field(
        None, description="PagerDuty Events API v2 routing key (integration key)."
    )
    alert_pagerduty_url: str = Field(
        "https://events.pagerduty.com/v2/enqueue",
        description="PagerDuty Events API v2 endpoint (another one for tests).",
    )
    alert_smtp_host: str | None = Field(
        None, description="SMTP server for alert e-mails (with alert_smtp_from and alert_smtp_to)."
    )
    alert_smtp_port: int = Field(25, ge=1, le=65535, description="Port of the SMTP server.")
    alert_smtp_from: str | None = Field(None, description="Sender address of alert e-mails.")
    alert_smtp_to: str | None = Field(
        None, description="Recipients of alert e-mails, separated by commas."
    )
    alert_smtp_starttls: bool = Field(
        False, description="Upgrade the SMTP connection with STARTTLS before sending."
    )
    alert_slow_query_ms: float = Field(
        1000.0,
        gt=0,
        le=3_600_000,
        description="A statement at least this slow raises a DbsightSlowQuery alert.",
    )
    alert_group_wait_s: float = Field(
        30.0,
        ge=0,
        le=86_400,
        description="Wait before the first notification of a new alert group.",
    )
    alert_group_interval_s: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="Wait before notifying a group again when its alerts changed.",
    )
    alert_repeat_interval_s: float = Field(
        4 * 3600.0,
        gt=0,
        le=30 * 86_400,
        description="Notify a group whose alerts still fire again after this long.",
    )

    audit_retention_days: int = Field(
        90,
        ge=1,
        le=36_500,
        description=(
            "Days an audit record (dbsight.audit) is kept: dbsight.audit.purge() and "
            "`dbsight audit purge` delete older ones."
        ),
    )

    multiprocess_dir: Path | None = Field(
        None,
        description=(
            "Directory shared by the worker processes of one service (gunicorn -w N): each "
            "writes its metrics there every second and /metrics reports the sum over all. "
            "Default: $PROMETHEUS_MULTIPROC_DIR when set. Empty it when the service starts."
        ),
    )

    def __init__(self, **values: Any) -> None:
        """The ``DBSIGHT_*`` variables (environment, then ./.env), overridden by ``values``;
        a misspelt argument is an error, a misspelt variable a warning (see `_settings_env`)."""
        fields = type(self).model_fields
        variables = read_variables(fields)
        from_variables: dict[str, Any] = {
            field: variable.value for field, variable in variables.items() if field not in values
        }
        try:
            super().__init__(**from_variables, **values)
        except ValidationError as exc:
            used = {field: variables[field] for field in from_variables}
            raise ConfigError(describe_validation_error(exc, fields, used)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # __init__ hands over the DBSIGHT_ variables itself: pydantic-settings' own sources
        # would take every name of .env for a setting, and fail on the application's.
        return (init_settings,)

    @classmethod
    def defaults(cls) -> Settings:
        """The defaults, without reading any variable: what dbsight runs with until
        ``configure()``."""
        return cls.model_construct()

    @field_validator("external_api_services", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):  # from a variable
            try:
                value = json.loads(value)
            except ValueError:
                value = None
            if not isinstance(value, dict):
                raise ValueError('must be a JSON object such as {"api.stripe.com": "stripe"}')
        return value

    @field_validator(
        "alertmanager_url", "alert_webhook_url", "alert_slack_webhook_url", "alert_pagerduty_url"
    )
    @classmethod
    def _alert_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("alert_smtp_to")
    @classmethod
    def _smtp_together(cls, value: str | None, info: ValidationInfo) -> str | None:
        """E-mail needs a server, a sender and recipients: one without the others is a
        mistake to report, not a receiver to leave out silently."""
        given = [info.data.get("alert_smtp_host"), info.data.get("alert_smtp_from"), value]
        if any(given) and not all(given):
            raise ValueError("alert_smtp_host, alert_smtp_from and alert_smtp_to go together")
        if value is not None:
            addresses = [address.strip() for address in value.split(",")]
            if not all("@" in address for address in addresses):
                raise ValueError("must be e-mail addresses separated by commas")
        return value

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("external_api_services")
    @classmethod
    def _service_names(cls, value: dict[str, str]) -> dict[str, str]:
        services: dict[str, str] = {}
        for host, name in value.items():
            host, name = host.strip().lower(), name.strip()
            if not host or not 1 <= len(name) <= 100:
                raise ValueError("each entry must map a host to a name of 1 to 100 characters")
            services[host] = name
        return services

    @field_validator("multiprocess_dir")
    @classmethod
    def _a_directory(cls, value: Path | None) -> Path | None:
        if value is not None and value.exists() and not value.is_dir():
            raise ValueError("must be a directory (it exists and is not one)")
        return value

    @property
    def effective_trace_sample_rate(self) -> float:
        if self.trace_sample_rate is not None:
            return self.trace_sample_rate
        return DEFAULT_SAMPLE_RATES[self.environment]

    @property
    def effective_log_sample_rate(self) -> float:
        if self.log_sample_rate is not None:
            return self.log_sample_rate
        return DEFAULT_SAMPLE_RATES[self.environment]

    @property
    def slow_query_threshold_s(self) -> float:
        return self.slow_query_threshold_ms / 1000.0


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment plus overrides; raise `ConfigError` when invalid."""
    return Settings(**overrides)
