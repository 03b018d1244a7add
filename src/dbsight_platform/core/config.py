"""The platform's settings: one pydantic-settings model, validated once at start-up.

Values come from, in order of precedence: arguments (tests), the process environment, then
``./.env`` (or the file ``PLATFORM_ENV_FILE`` names). Variables are ``PLATFORM_<FIELD>``,
except ``DATABASE_URL`` and ``REDIS_URL``, read under those names as they are (the
``PLATFORM_`` spelling works too).

Three profiles, chosen by ``PLATFORM_ENVIRONMENT``: ``development`` (readable logs, every
trace sampled), ``staging`` and ``production`` (JSON logs, sampled traces, and stricter
rules: no debug, no wildcard CORS, a real JWT secret). Secrets (``jwt_secret`` and the two
URLs, which carry passwords) come from the environment only outside development: a ``.env``
file never supplies them there.

An invalid or missing value stops the start with `SettingsError`, one line per problem,
naming the variable.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "PLATFORM_"
Environment = Literal["development", "staging", "production"]
LogFormat = Literal["json", "text"]
OtlpProtocol = Literal["grpc", "http/protobuf"]

# Fields a .env file may not set outside development (they are, or may hold, secrets).
SECRET_FIELDS = frozenset({"jwt_secret", "database_url", "redis_url"})
# Database URL schemes accepted as they are, and the plain spellings given the async driver.
ASYNC_DATABASE_SCHEMES = ("postgresql+asyncpg", "mysql+aiomysql")
_PLAIN_SCHEMES = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mysql+aiomysql",
}
_DEFAULT_SAMPLE_RATES = {"development": 1.0, "staging": 0.1, "production": 0.01}
_DEV_JWT_SECRET = "development-only-secret-change-me-" + "0123456789abcdef" * 2
# An HMAC key at least as long as the hash's output (RFC 7518 §3.2).
JWT_SECRET_MIN_LENGTH = {"HS256": 32, "HS384": 48, "HS512": 64}


class SettingsError(ValueError):
    """The configuration is invalid; one line per problem, each naming its variable."""


def _default_workers() -> int:
    """(CPU cores * 2) + 1, the rule of seed 004 §8.1.2."""
    return (os.cpu_count() or 1) * 2 + 1


class _DotEnvWithoutSecrets(DotEnvSettingsSource):
    """The ``.env`` source, minus the secret fields when the profile is not development."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        environment = os.environ.get(f"{ENV_PREFIX}ENVIRONMENT") or values.get("environment")
        if environment in (None, "development"):
            return values
        return {
            key: value
            for key, value in values.items()
            # keys are field names or aliases (DATABASE_URL, PLATFORM_DATABASE_URL)
            if key.lower().removeprefix(ENV_PREFIX.lower()) not in SECRET_FIELDS
        }


class Settings(BaseSettings):
    """Everything the platform reads from its environment (see the module docstring)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        populate_by_name=True,
    )

    # -- application
    app_name: str = Field("dbsight-platform", min_length=1, max_length=100)
    environment: Environment = "development"
    debug: bool = False
    docs_enabled: bool = Field(True, description="Serve /docs, /redoc and /openapi.json.")

    # -- database (seed 004 §9.6 pool settings)
    database_url: str = Field(
        validation_alias=AliasChoices("DATABASE_URL", "PLATFORM_DATABASE_URL", "database_url"),
        description="postgresql+asyncpg://... or mysql+aiomysql://...",
    )
    db_pool_size: int = Field(10, ge=1, le=1000)
    db_max_overflow: int = Field(20, ge=0, le=1000)
    db_pool_recycle_s: int = Field(3600, ge=1, le=86_400)
    db_pool_pre_ping: bool = True
    db_pool_timeout_s: float = Field(30.0, gt=0, le=600)
    db_echo: bool = False

    # -- redis
    redis_url: str = Field(
        validation_alias=AliasChoices("REDIS_URL", "PLATFORM_REDIS_URL", "redis_url"),
        description="redis://[:password@]host:port/db or rediss://...",
    )
    redis_max_connections: int = Field(50, ge=1, le=10_000)
    redis_socket_timeout_s: float = Field(2.0, gt=0, le=60)
    redis_key_prefix: str = Field("", max_length=100, description="Prepended to every key.")

    # -- security and HTTP
    cors_origins: list[str] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    https: bool = Field(False, description="Served over HTTPS: send Strict-Transport-Security.")
    hsts_max_age_s: int = Field(31_536_000, ge=0)
    content_security_policy: str = "default-src 'none'; frame-ancestors 'none'"
    gzip_minimum_size: int = Field(1024, ge=0, description="Compress responses over this size.")
    jwt_secret: SecretStr = Field(SecretStr(_DEV_JWT_SECRET))
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_expire_minutes: int = Field(30, ge=1, le=60 * 24 * 30)
    rate_limit_per_minute: int = Field(120, ge=0, le=1_000_000, description="0: no limit.")
    session_ttl_seconds: int = Field(3600, ge=1)
    cache_ttl_seconds: int = Field(300, ge=1)

    # -- observability
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: LogFormat | None = Field(None, description="Default: text in development.")
    log_sample_rate: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Share of requests with an access line (5xx always); default: dbsight's "
        "per profile (development 1, staging 0.1, production 0.01).",
    )
    otel_exporter_endpoint: str | None = Field(
        None, description="OTLP collector, e.g. http://collector:4317; unset: nothing exported."
    )
    otel_exporter_protocol: OtlpProtocol = "grpc"
    otel_service_name: str | None = None
    trace_sample_rate: float | None = Field(None, ge=0.0, le=1.0)

    # -- server
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65_535)
    workers: int = Field(default_factory=_default_workers, ge=1, le=256)
    worker_connections: int = Field(1000, ge=1)
    request_timeout_s: int = Field(30, ge=1, le=3600)
    shutdown_grace_s: float = Field(30.0, ge=0, le=3600)
    keepalive_s: int = Field(5, ge=0, le=300)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env_file = os.environ.get(f"{ENV_PREFIX}ENV_FILE") or ".env"
        dotenv = _DotEnvWithoutSecrets(settings_cls, env_file=env_file)
        return init_settings, env_settings, dotenv, file_secret_settings

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        scheme, sep, rest = value.strip().partition("://")
        if not sep or not rest:
            raise ValueError("must be a URL such as postgresql+asyncpg://user@host:5432/db")
        scheme = _PLAIN_SCHEMES.get(scheme, scheme)
        if scheme not in ASYNC_DATABASE_SCHEMES:
            raise ValueError(
                f"scheme {scheme!r} is not supported; use one of {', '.join(ASYNC_DATABASE_SCHEMES)}"
            )
        return f"{scheme}://{rest}"

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("otel_exporter_endpoint")
    @classmethod
    def _otel_endpoint(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (e.g. http://127.0.0.1:4317)")
        return value.strip()

    @field_validator("cors_origins")
    @classmethod
    def _cors_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"origin {origin!r} must be '*' or start with http(s)://")
        return value

    @model_validator(mode="after")
    def _profile_rules(self) -> Settings:
        secret_length = len(self.jwt_secret.get_secret_value())
        needed = JWT_SECRET_MIN_LENGTH[self.jwt_algorithm]
        if secret_length < needed:
            raise ValueError(
                f"jwt_secret must be at least {needed} characters for {self.jwt_algorithm}"
            )
        if self.environment == "development":
            return self
        problems = []
        if self.debug:
            problems.append(f"debug must be off in {self.environment}")
        if "*" in self.cors_origins:
            problems.append(f"cors_origins may not be '*' in {self.environment}")
        if self.jwt_secret.get_secret_value() == _DEV_JWT_SECRET:
            problems.append(f"jwt_secret must be set (PLATFORM_JWT_SECRET) in {self.environment}")
        if self.db_echo:
            problems.append(f"db_echo must be off in {self.environment}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- derived values
    @property
    def effective_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        return "text" if self.environment == "development" else "json"

    @property
    def effective_trace_sample_rate(self) -> float:
        if self.trace_sample_rate is not None:
            return self.trace_sample_rate
        return _DEFAULT_SAMPLE_RATES[self.environment]

    @property
    def service_name(self) -> str:
        return self.otel_service_name or self.app_name

    @property
    def database_backend(self) -> Literal["postgresql", "mysql"]:
        return "postgresql" if self.database_url.startswith("postgresql") else "mysql"


def _variable(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "settings"
    field = str(loc[0])
    if field in ("database_url", "redis_url"):
        return field.upper()
    return f"{ENV_PREFIX}{field.upper()}"


def describe(error: ValidationError) -> str:
    """One line per problem: the variable, what is wrong (never the value: it may be secret)."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required but not set"
        lines.append(f"{_variable(tuple(item['loc']))}: {message}")
    return "invalid platform settings:\n  " + "\n  ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; raise `SettingsError` describing every problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (``get_settings.cache_clear()`` to read again)."""
    return load_settings()
