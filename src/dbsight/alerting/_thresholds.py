"""What the alerts compare with: one typed object, read from a TOML or YAML file and flags.

Every field has the default the shipped rules use (seed 002's thresholds where it had one).
Values that no rule could ever reach are refused here, with one line naming the setting: a
p95 above a histogram's last finite bucket (``histogram_quantile`` never returns more than
that bound), or a latency objective between two bucket bounds (the ratio of fast requests can
only be read at a bound).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..export.client_metrics import EXTERNAL_API_DURATION_BUCKETS
from ..export.http_metrics import HTTP_DURATION_BUCKETS
from ..export.prometheus import DURATION_BUCKETS as DB_DURATION_BUCKETS
from ..instrument._decorator import DURATION_BUCKETS as FUNCTION_DURATION_BUCKETS
from ._rules import parse_duration

# Labels dbsight's own families carry: the label that tells services apart must be another one
# (``service`` is the remote service of ``external_api_*``).
_METRIC_LABELS = frozenset(
    "system operation table outcome route pool state function method status backend result "
    "service sqlstate error_class reason role server le".split()
)


class AlertConfigError(ValueError):
    """A threshold or objective that cannot be used; the message is one line."""


class Thresholds(BaseModel):
    """Every threshold and objective of dbsight's alert rules (see docs/alerts.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_label: str = Field("job", description="label the alerts aggregate and group by")
    target_jobs: tuple[str, ...] = Field((), description="jobs whose `up == 0` alerts (all: empty)")
    # HTTP server
    http_latency_p95_critical_s: float = Field(5.0, gt=0)
    http_latency_p95_warning_s: float = Field(1.0, gt=0)
    http_error_ratio_critical: float = Field(0.05, gt=0, lt=1)
    http_error_ratio_warning: float = Field(0.01, gt=0, lt=1)
    active_requests: float = Field(100, gt=0)
    throughput_drop: float = Field(0.5, gt=0, lt=1, description="fraction of the traffic lost")
    throughput_offset: str = Field("1d", description="compared with the same window this long ago")
    throughput_min_rps: float = Field(1.0, ge=0, description="traffic then, below which no alert")
    # external APIs
    external_latency_p95_critical_s: float = Field(10.0, gt=0)
    external_latency_p95_warning_s: float = Field(3.0, gt=0)
    external_error_ratio_critical: float = Field(0.5, gt=0, lt=1)
    external_errors_per_s_warning: float = Field(0.1, ge=0)
    # cache
    cache_hit_ratio_critical: float = Field(0.5, gt=0, lt=1)
    cache_hit_ratio_warning: float = Field(0.7, gt=0, lt=1)
    # database
    db_latency_p95_s: float = Field(0.1, gt=0)
    slow_queries_per_s: float = Field(0.1, ge=0)
    db_errors_per_s: float = Field(0.05, ge=0)
    deadlocks_per_5m: float = Field(0.0, ge=0, description="deadlocks (40P01) in 5 minutes")
    serialization_failures_per_s: float = Field(0.1, ge=0, description="40001 per second")
    resource_errors_per_5m: float = Field(0.0, ge=0, description="class 53 errors in 5 minutes")
    n_plus_one_per_s: float = Field(0.0, ge=0)
    pool_saturation: float = Field(0.9, gt=0, le=1)
    # background work (@db_observer)
    function_errors_per_10m: float = Field(0.0, ge=0)
    function_duration_p95_s: float = Field(10.0, gt=0)
    # proxy
    pool_timeouts_per_5m: float = Field(0.0, ge=0)
    client_errors_per_s: float = Field(0.1, ge=0)
    rejections_per_s: float = Field(0.1, ge=0)
    replica_lag_s: float = Field(10.0, gt=0, description="the proxy's max_replica_lag_s")
    # service level objectives
    slo_availability: float = Field(0.999, gt=0, lt=1)
    slo_latency_ms: float = Field(500, gt=0)
    slo_latency_target: float = Field(0.99, gt=0, lt=1)

    @field_validator("service_label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", value):
            raise ValueError(f"{value!r} is not a Prometheus label name")
        if value in _METRIC_LABELS:
            raise ValueError(f"{value!r} is a label of dbsight's own metrics; use job or another")
        return value

    @field_validator("target_jobs")
    @classmethod
    def _jobs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for job in value:
            if not job or any(c in job for c in '"\\|'):
                raise ValueError(f"{job!r} is not a job name")
        return value

    @field_validator("throughput_offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        seconds = parse_duration(value)
        if seconds < 3600:
            raise ValueError("compare with at least an hour ago (1h, 1d, 1w)")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> Thresholds:
        for name, buckets in (
            ("http_latency_p95_critical_s", HTTP_DURATION_BUCKETS),
            ("http_latency_p95_warning_s", HTTP_DURATION_BUCKETS),
            ("external_latency_p95_critical_s", EXTERNAL_API_DURATION_BUCKETS),
            ("external_latency_p95_warning_s", EXTERNAL_API_DURATION_BUCKETS),
            ("db_latency_p95_s", DB_DURATION_BUCKETS),
            ("function_duration_p95_s", FUNCTION_DURATION_BUCKETS),
        ):
            if getattr(self, name) >= buckets[-1]:
                raise ValueError(
                    f"{name}: {getattr(self, name):g} s is not below the histogram's last "
                    f"bucket ({buckets[-1]:g} s), so its p95 could never exceed it"
                )
        bounds_ms = [round(bound * 1000, 6) for bound in HTTP_DURATION_BUCKETS]
        if round(self.slo_latency_ms, 6) not in bounds_ms:
            listed = ", ".join(f"{b:g}" for b in bounds_ms)
            raise ValueError(
                f"slo_latency_ms: {self.slo_latency_ms:g} is not a bucket bound of "
                f"http_server_request_duration_seconds; pick one of {listed} (ms)"
            )
        for low, high in (
            ("http_latency_p95_warning_s", "http_latency_p95_critical_s"),
            ("http_error_ratio_warning", "http_error_ratio_critical"),
            ("external_latency_p95_warning_s", "external_latency_p95_critical_s"),
        ):
            if getattr(self, low) >= getattr(self, high):
                raise ValueError(f"{low} must be below {high}")
        for name in ("slo_availability", "slo_latency_target"):
            # the fastest burn alert needs 14.4 times the budget to be a ratio below 1
            if 14.4 * (1 - getattr(self, name)) >= 1:
                raise ValueError(
                    f"{name}: {getattr(self, name):g} leaves a budget no 14.4x burn rate fits "
                    f"in; use more than {1 - 1 / 14.4:.4f}"
                )
        if self.cache_hit_ratio_critical >= self.cache_hit_ratio_warning:
            raise ValueError("cache_hit_ratio_critical must be below cache_hit_ratio_warning")
        return self

    @property
    def slo_latency_s(self) -> float:
        return self.slo_latency_ms / 1000


def load_thresholds(path: Path | None = None, **overrides: Any) -> Thresholds:
    """The thresholds of ``path`` (TOML, or YAML by its ``.yml``/``.yaml`` suffix; keys are the
    field names, at the top level or under ``[alerts]``), then ``overrides`` that are not None.
    Raises `AlertConfigError` with one line."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read(path))
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Thresholds(**values)
    except ValidationError as exc:
        raise AlertConfigError(_one_line(exc, path)) from None


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AlertConfigError(f"{path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() in (".yml", ".yaml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as exc:  # tomllib and yaml errors: the parser's message, on one line
        message = " ".join(str(exc).split())
        raise AlertConfigError(f"{path}: not valid {_kind(path)}: {message}") from None
    if not isinstance(data, dict):
        raise AlertConfigError(f"{path}: expected a table of thresholds, got {type(data).__name__}")
    section = data.get("alerts", data)
    if not isinstance(section, dict):
        raise AlertConfigError(f"{path}: [alerts] must be a table of thresholds")
    return dict(section)


def _kind(path: Path) -> str:
    return "YAML" if path.suffix.lower() in (".yml", ".yaml") else "TOML"


def _one_line(exc: ValidationError, path: Path | None) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "not a threshold dbsight knows (see docs/alerts.md)"
        problems.append(f"{where}: {message}" if where else message)
    prefix = f"{path}: " if path is not None else ""
    return prefix + "; ".join(problems)
