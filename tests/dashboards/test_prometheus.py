"""The real test: a real Prometheus scrapes an instrumented service and a dbsight proxy under
traffic (conftest.py), and every panel's expression, queried through /api/v1/query, returns
data, except the panels listed below that stay empty until their event happens. The
variables' label_values queries list the scraped jobs and routes."""

from __future__ import annotations

import time

import pytest
from dashboard_checks import LABEL_VALUES, Expression, exported, panel_expressions
from dashboard_stack import PROXY_JOB, SERVICE_JOB, Stack

from dbsight.dashboards import ALERT_ANNOTATION_EXPR

# (dashboard uid, panel title): why the panel is empty under this test's traffic. Each of
# these also says so in its description (Panel.quiet).
EMPTY_UNTIL_EVENT = {
    ("dbsight-database", "Observer errors"):
        "dbsight_observer_errors_total has a series only once an observer hook raised",
    ("dbsight-database", "Alert notifications"):
        "the service under test configures no alert receiver, so its notifier is off",
}  # fmt: skip
JOBS = {"dbsight-service": SERVICE_JOB, "dbsight-database": SERVICE_JOB,
        "dbsight-proxy": PROXY_JOB}  # fmt: skip
# Long enough for the slowest family: a histogram's rate over 10 s needs two scrapes
# after its first observation, and the replica's lag a health round.
DATA_TIMEOUT_S = 40.0


def _with_data(stack: Stack, expression: Expression) -> list[dict]:
    expr = expression.substituted(service=JOBS[expression.dashboard])
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while True:
        result = stack.query(expr)["result"]
        if result or time.monotonic() > deadline:
            return list(result)
        time.sleep(0.5)


def test_every_panel_returns_data(stack: Stack) -> None:
    expressions = panel_expressions()
    empty = []
    for expression in expressions:
        key = (expression.dashboard, expression.panel)
        if key in EMPTY_UNTIL_EVENT:
            continue
        if not _with_data(stack, expression):
            empty.append(f"{key}: {expression.substituted(JOBS[expression.dashboard])}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_listed_panels_are_empty_and_say_so(stack: Stack) -> None:
    """The list above is exact: each listed panel really is empty here (else it belongs
    with the others) and tells the reader when it fills."""
    panels = {(d["uid"], p["title"]): p for d in exported() for p in d["panels"]}
    for expression in panel_expressions():
        key = (expression.dashboard, expression.panel)
        if key in EMPTY_UNTIL_EVENT:
            expr = expression.substituted(service=JOBS[expression.dashboard])
            assert stack.query(expr)["result"] == [], f"{key} has data: drop it from the list"
            assert "Empty until it happens" in panels[key]["description"], key
    # no alert rules run here: the annotation query is valid and (rightly) finds nothing
    assert stack.query(ALERT_ANNOTATION_EXPR)["result"] == []


def test_some_panels_show_what_the_traffic_did(stack: Stack) -> None:
    """Not only series: values that follow from the traffic (an N+1 route, 5xx, refused
    external calls, failing background work, cache hits, routing to the replica)."""

    def values(expr: str) -> dict[str, float]:
        deadline = time.monotonic() + DATA_TIMEOUT_S
        while True:
            found = {
                ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items())): float(s["value"][1])
                for s in stack.query(expr)["result"]
            }
            if any(v > 0 for v in found.values()) or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    def rate(expr: str) -> str:
        return f"sum by (route) (increase({expr}[30s]))"

    assert values(rate('db_client_n_plus_one_total{job="shop"}')).get("route=/orders/recent", 0) > 0
    assert values(rate('http_server_requests_total{job="shop",status="500"}'))["route=/broken"] > 0
    external = values('sum by (status) (increase(external_api_requests_total{job="shop"}[30s]))')
    assert external.get("status=error", 0) > 0 and external.get("status=503", 0) > 0
    jobs = values('sum by (function) (increase(db_client_function_errors_total{job="shop"}[30s]))')
    assert (
        jobs.get("function=invoice_export", 0) > 0 and jobs.get("function=nightly_rollup", 0) == 0
    )
    hits = values('sum(increase(cache_operations_total{job="shop",result="hit"}[30s]))')
    assert next(iter(hits.values())) > 0
    roles = values('sum by (role) (increase(proxy_routed_total{job="proxy"}[30s]))')
    assert roles.get("role=replica", 0) > 0 and roles.get("role=primary", 0) > 0
    rejected = values('sum by (reason) (increase(proxy_rejected_total{job="proxy"}[30s]))')
    assert any(v > 0 for v in rejected.values())
    # the firewall's answer to the DELETE without WHERE is the proxy's own error
    answered = values('sum by (sqlstate) (increase(proxy_client_errors_total{job="proxy"}[30s]))')
    assert answered.get("sqlstate=21000", 0) > 0
    # the server's unique violations, in the service and through the proxy, by SQLSTATE
    for job, table in (("shop", "items"), ("proxy", "proxy_log")):
        failed = values(f'sum by (sqlstate, error_class, table) '
                        f'(increase(db_client_errors_total{{job="{job}"}}[30s]))')  # fmt: skip
        assert failed.get(f"error_class=23,sqlstate=23505,table={table}", 0) > 0, failed
    assert values('sum by (sqlstate) (increase(db_client_errors_total{job="shop"}[30s]))')[
        "sqlstate=42P01"
    ] > 0  # /broken's missing table


@pytest.mark.parametrize("uid", list(JOBS))
def test_variables_list_the_scraped_jobs_and_routes(stack: Stack, uid: str) -> None:
    document = next(d for d in exported() if d["uid"] == uid)
    for variable in document["templating"]["list"][1:]:
        match = LABEL_VALUES.match(variable["definition"])
        assert match is not None
        selector = match["selector"].replace("$service", JOBS[uid])
        deadline = time.monotonic() + DATA_TIMEOUT_S
        while not (values := stack.label_values(match["label"], selector)):
            assert time.monotonic() < deadline, f"{variable['name']}: no values"
            time.sleep(0.5)
        if variable["name"] == "service" and uid == "dbsight-database":
            assert values == [PROXY_JOB, SERVICE_JOB]  # the proxy's statements are there too
        elif variable["name"] == "service":
            assert values == [JOBS[uid]]
        elif uid == "dbsight-service":
            assert {"/items/{item_id}", "/orders/recent", "/broken"} <= set(values)
        else:
            assert values == ["/orders/recent"]
