"""Operating a service: health checks (``/health``, ``/healthz``, ``/health/ready``).

    dbsight.add_health_check(dbsight.HealthCheck("search", ping_search, critical=False))
"""

from .health import (
    CheckResult,
    HealthCheck,
    HealthRegistry,
    HealthReport,
    add_health_check,
    gather_checks,
    handle_checks,
    health_checks,
    remove_health_check,
    run_checks,
)

__all__ = [
    "CheckResult",
    "HealthCheck",
    "HealthRegistry",
    "HealthReport",
    "add_health_check",
    "gather_checks",
    "handle_checks",
    "health_checks",
    "remove_health_check",
    "run_checks",
]
