"""The request pipeline's rules, decisions, SQLSTATEs and messages, with an injected clock."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from dbsight.proxy import _pipeline
from dbsight.proxy._pipeline import (
    AllowStep,
    FirewallStep,
    Pipeline,
    PipelineStep,
    RateLimitStep,
    Rejection,
    StatementFacts,
    unbounded_write,
)
from dbsight.sql import analyze

STEPS = TypeAdapter(list[PipelineStep])


def facts(
    sql: str = "SELECT 1", *, user: str | None = "app", application_name: str | None = None
) -> StatementFacts:
    return StatementFacts(user, "appdb", application_name, "127.0.0.1", sql, analyze(sql))


def pipeline(*steps: dict[str, Any]) -> Pipeline:
    return Pipeline.from_config(STEPS.validate_python(list(steps)))


# -- configuration ------------------------------------------------------------------------------


def test_toml_pipeline_tables_parse_in_order() -> None:
    document = tomllib.loads(
        """
        [[proxy.pipeline]]
        handler = "allow"
        users = ["app"]
        cidrs = ["10.0.0.0/8", "unix"]

        [[proxy.pipeline]]
        handler = "rate_limit"
        rate = 50
        burst = 100
        mode = "queue"

        [[proxy.pipeline]]
        handler = "firewall"
        deny_unbounded_writes = true
        max_rows = 1000
        """
    )
    steps = STEPS.validate_python(document["proxy"]["pipeline"])
    assert [type(s) for s in steps] == [AllowStep, RateLimitStep, FirewallStep]
    rate = steps[1]
    assert isinstance(rate, RateLimitStep)
    assert (rate.per, rate.rate, rate.burst, rate.mode, rate.max_wait_s) == (
        "user", 50.0, 100, "queue", 1.0
    )  # fmt: skip


@pytest.mark.parametrize(
    ("step", "field", "message"),
    [
        ({"handler": "throttle"}, "", "'allow', 'rate_limit', 'firewall'"),
        ({"users": ["app"]}, "", "discriminator 'handler'"),
        ({"handler": "allow", "user": ["app"]}, "allow.user", "Extra inputs"),
        ({"handler": "allow", "cidrs": ["10.0.0.0/33"]}, "allow.cidrs", "'10.0.0.0/33'"),
        ({"handler": "allow", "users": [""]}, "allow.users.0", "at least 1 character"),
        ({"handler": "rate_limit", "rate": 0, "burst": 1}, "rate_limit.rate", "greater than 0"),
        ({"handler": "rate_limit", "rate": 1, "burst": 0}, "rate_limit.burst", "greater than"),
        ({"handler": "rate_limit", "burst": 5}, "rate_limit.rate", "Field required"),
        (
            {"handler": "rate_limit", "rate": 1, "burst": 1, "mode": "drop"},
            "rate_limit.mode",
            "'reject' or 'queue'",
        ),
        (
            {"handler": "rate_limit", "rate": 1, "burst": 1, "per": "database"},
            "rate_limit.per",
            "'user' or 'application_name'",
        ),
        ({"handler": "firewall", "max_rows": 0}, "firewall.max_rows", "greater than or equal"),
        (
            {"handler": "firewall", "deny_fingerprints": ["abc"]},
            "firewall.deny_fingerprints",
            "'abc' is not a statement fingerprint",
        ),
    ],
)
def test_config_errors_name_the_bad_field(step: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        STEPS.validate_python([step])
    (error,) = caught.value.errors()
    assert ".".join(str(part) for part in error["loc"][1:]) == field
    assert message in error["msg"]


def test_fingerprints_are_compared_in_lower_case() -> None:
    fingerprint = analyze("DELETE FROM t WHERE id = 1").fingerprint
    p = pipeline({"handler": "firewall", "deny_fingerprints": [f" {fingerprint.upper()} "]})
    assert isinstance(p.on_statement(facts("DELETE FROM t WHERE id = 2"), 0.0), Rejection)


# -- allow --------------------------------------------------------------------------------------


def test_allow_lists_users_and_databases() -> None:
    p = pipeline({"handler": "allow", "users": ["app", "report"], "databases": ["appdb"]})
    assert p.on_connect("app", "appdb", "127.0.0.1", None) is None
    assert p.on_connect("report", "appdb", None, "psql") is None
    assert p.on_connect("intruder", "appdb", "127.0.0.1", None) == Rejection(
        "allow.users",
        "allow",
        "28000",
        'dbsight proxy: rejected by allow rule users: user "intruder" is not allowed',
    )
    assert p.on_connect("app", "postgres", "127.0.0.1", None) == Rejection(
        "allow.databases",
        "allow",
        "28000",
        'dbsight proxy: rejected by allow rule databases: database "postgres" is not allowed',
    )


@pytest.mark.parametrize(
    ("cidrs", "addr", "admitted"),
    [
        (["10.0.0.0/8"], "10.1.2.3", True),
        (["10.0.0.0/8"], "192.168.0.1", False),
        (["10.0.0.0/8"], "::ffff:10.1.2.3", True),  # IPv4-mapped, from a dual-stack listener
        (["10.0.0.1"], "10.0.0.1", True),
        (["10.0.0.5/8"], "10.200.0.1", True),  # host bits are ignored, as in pg_hba.conf
        (["::1/128"], "::1", True),
        (["::1/128"], "127.0.0.1", False),
        (["10.0.0.0/8"], None, False),  # a Unix-socket client needs "unix"
        (["10.0.0.0/8", "unix"], None, True),
        (["unix"], "127.0.0.1", False),
        (["10.0.0.0/8"], "not-an-address", False),
        ([], None, True),  # no list: any client
        ([], "203.0.113.9", True),
    ],
)
def test_allow_cidrs(cidrs: list[str], addr: str | None, admitted: bool) -> None:
    p = pipeline({"handler": "allow", "cidrs": cidrs})
    rejection = p.on_connect("app", "appdb", addr, None)
    assert (rejection is None) is admitted
    if rejection is not None:
        assert (rejection.rule, rejection.sqlstate) == ("allow.cidrs", "28000")
        what = "Unix-socket clients are" if addr is None else f"client address {addr} is"
        assert (
            rejection.message == f"dbsight proxy: rejected by allow rule cidrs: {what} not allowed"
        )


def test_every_allow_step_must_admit() -> None:
    p = pipeline(
        {"handler": "allow", "users": ["app", "admin"]},
        {"handler": "allow", "users": ["admin"], "cidrs": ["10.0.0.0/8"]},
    )
    assert p.on_connect("admin", "appdb", "10.0.0.1", None) is None
    assert p.on_connect("app", "appdb", "10.0.0.1", None) is not None
    assert p.on_connect("admin", "appdb", "127.0.0.1", None) is not None


# -- rate limit ---------------------------------------------------------------------------------


def test_rate_limit_rejects_past_the_burst_and_refills_with_the_clock() -> None:
    p = pipeline({"handler": "rate_limit", "rate": 2, "burst": 3})
    assert [p.on_statement(facts(), 100.0) for _ in range(3)] == [None, None, None]
    rejection = p.on_statement(facts(), 100.0)
    assert rejection == Rejection(
        "rate_limit.rate",
        "rate_limit",
        "53400",
        'dbsight proxy: rejected by rate_limit rule rate: user "app" is over 2 statements/s '
        "(burst 3)",
    )
    assert p.on_statement(facts(), 100.25) is not None  # half a token
    assert p.on_statement(facts(), 100.5) is None  # one token, taken
    assert p.on_statement(facts(), 100.5) is not None
    # a long pause refills up to the burst, not beyond
    assert [p.on_statement(facts(), 200.0) for _ in range(4)][-2:] == [None, rejection]


def test_rate_limits_are_per_key() -> None:
    by_user = pipeline({"handler": "rate_limit", "rate": 1, "burst": 1})
    assert by_user.on_statement(facts(user="a"), 0.0) is None
    assert by_user.on_statement(facts(user="b"), 0.0) is None
    assert by_user.on_statement(facts(user="a"), 0.0) is not None

    by_app = pipeline({"handler": "rate_limit", "per": "application_name", "rate": 1, "burst": 1})
    assert by_app.on_statement(facts(user="a", application_name="web"), 0.0) is None
    assert by_app.on_statement(facts(user="b", application_name="worker"), 0.0) is None
    web_again = by_app.on_statement(facts(user="b", application_name="web"), 0.0)
    assert isinstance(web_again, Rejection)
    assert 'application_name "web" is over 1 statements/s' in web_again.message
    # clients without an application_name share one bucket
    assert by_app.on_statement(facts(user="a"), 0.0) is None
    anonymous = by_app.on_statement(facts(user="b"), 0.0)
    assert isinstance(anonymous, Rejection)
    assert "a client without application_name is over" in anonymous.message


def test_queue_mode_spaces_statements_and_rejects_past_max_wait() -> None:
    p = pipeline(
        {"handler": "rate_limit", "rate": 4, "burst": 2, "mode": "queue", "max_wait_s": 0.5}
    )
    delays = [p.on_statement(facts(), 10.0) for _ in range(4)]
    assert delays == [None, None, 0.25, 0.5]  # each queued statement reserves the next token
    rejection = p.on_statement(facts(), 10.0)  # would wait 0.75 s
    assert rejection == Rejection(
        "rate_limit.max_wait_s",
        "rate_limit",
        "53400",
        'dbsight proxy: rejected by rate_limit rule max_wait_s: user "app" would wait 0.75s '
        "(over 0.5s) under 4 statements/s (burst 2)",
    )
    # the rejected statement reserved nothing: at 10.5 both queued tokens have been used
    assert p.on_statement(facts(), 10.5) == 0.25
    assert p.on_statement(facts(), 11.5) is None


def test_queue_delays_of_several_steps_take_the_longest() -> None:
    p = pipeline(
        {"handler": "rate_limit", "rate": 4, "burst": 1, "mode": "queue"},
        {"handler": "rate_limit", "per": "application_name", "rate": 2, "burst": 1,
         "mode": "queue"},
    )  # fmt: skip
    assert p.on_statement(facts(application_name="web"), 0.0) is None
    assert p.on_statement(facts(application_name="web"), 0.0) == 0.5


def test_token_buckets_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pipeline, "MAX_BUCKETS", 3)
    p = pipeline({"handler": "rate_limit", "rate": 1, "burst": 1})
    for user in ("a", "b", "c"):
        assert p.on_statement(facts(user=user), 0.0) is None
    assert p.on_statement(facts(user="a"), 0.0) is not None  # "a" is now the most recent
    assert p.on_statement(facts(user="d"), 0.0) is None  # evicts "b", the least recent
    assert p.on_statement(facts(user="a"), 0.0) is not None  # still limited
    assert p.on_statement(facts(user="b"), 0.0) is None  # forgotten: a fresh bucket


# -- firewall -----------------------------------------------------------------------------------


def test_ddl_from_a_listed_user_is_denied() -> None:
    p = pipeline({"handler": "firewall", "deny_ddl_users": ["app"]})
    assert p.on_statement(facts("DROP TABLE orders", user="app"), 0.0) == Rejection(
        "firewall.deny_ddl_users",
        "firewall_ddl",
        "42501",
        'dbsight proxy: rejected by firewall rule deny_ddl_users: user "app" may not run DDL',
    )
    assert p.on_statement(facts("CREATE INDEX ON orders (id)", user="app"), 0.0) is not None
    assert p.on_statement(facts("DROP TABLE orders", user="migrator"), 0.0) is None
    assert p.on_statement(facts("DELETE FROM orders", user="app"), 0.0) is None


@pytest.mark.parametrize(
    ("sql", "write"),
    [
        ("DELETE FROM orders", "DELETE"),
        ("UPDATE orders SET paid = true", "UPDATE"),
        ("delete from orders where true", "DELETE"),
        ("DELETE FROM orders WHERE 1 = 1", "DELETE"),
        ("DELETE FROM orders WHERE false", "DELETE"),  # no column: decided by shape, see docs
        ("UPDATE orders SET paid = $1 WHERE $2", "UPDATE"),
        ("DELETE FROM orders WHERE id = 1 OR 1 = 1", "DELETE"),
        ("DELETE FROM orders USING customers", "DELETE"),
        ("WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone", "DELETE"),
        ("WITH t AS (UPDATE orders SET paid = true RETURNING id) INSERT INTO log SELECT id FROM t",
         "UPDATE"),
        ("SELECT 1; UPDATE orders SET paid = true", "UPDATE"),
        ("EXPLAIN (ANALYZE) DELETE FROM orders", "DELETE"),
        ("DELETE FROM orders WHERE id = 1", None),
        ("UPDATE orders SET paid = $1 WHERE id = $2", None),
        ("DELETE FROM orders WHERE true AND id = 1", None),
        ("DELETE FROM orders WHERE NOT paid", None),
        ("UPDATE orders SET paid = true WHERE CURRENT OF c", None),
        ("DELETE FROM orders o WHERE EXISTS (SELECT 1 FROM x WHERE x.id = o.id)", None),
        ("EXPLAIN DELETE FROM orders", None),  # not run
        ("INSERT INTO orders VALUES (1) ON CONFLICT (id) DO UPDATE SET paid = true", None),
        ("SELECT * FROM orders", None),
        ("DELET FROM orders", None),  # does not parse: the server rejects it
        ("DELETE FROM orders WHERE (((", None),
    ],
)  # fmt: skip
def test_unbounded_writes(sql: str, write: str | None) -> None:
    assert unbounded_write(sql) == write
    p = pipeline({"handler": "firewall", "deny_unbounded_writes": True})
    decision = p.on_statement(facts(sql), 0.0)
    if write is None:
        assert decision is None
    else:
        assert decision == Rejection(
            "firewall.deny_unbounded_writes",
            "firewall_unbounded_write",
            "21000",
            "dbsight proxy: rejected by firewall rule deny_unbounded_writes: "
            f"{write} without WHERE",
        )


def test_unbounded_writes_are_allowed_unless_denied() -> None:
    assert pipeline({"handler": "firewall"}).on_statement(facts("DELETE FROM orders"), 0.0) is None


def test_unbounded_write_verdicts_are_cached_by_fingerprint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = pipeline({"handler": "firewall", "deny_unbounded_writes": True})
    calls: list[str] = []

    def counting(sql: str) -> str | None:
        calls.append(sql)
        return unbounded_write(sql)

    monkeypatch.setattr(_pipeline, "unbounded_write", counting)
    first, second = facts("DELETE FROM t WHERE id = 1"), facts("DELETE FROM t WHERE id = 99")
    assert first.info.fingerprint == second.info.fingerprint
    assert p.on_statement(first, 0.0) is None
    assert p.on_statement(second, 0.0) is None
    assert calls == ["DELETE FROM t WHERE id = 1"]


def test_listed_fingerprints_are_denied() -> None:
    fingerprint = analyze("SELECT * FROM orders WHERE customer = 1").fingerprint
    p = pipeline({"handler": "firewall", "deny_fingerprints": [fingerprint]})
    assert p.on_statement(facts("select * from orders where customer = 42"), 0.0) == Rejection(
        "firewall.deny_fingerprints",
        "firewall_fingerprint",
        "42501",
        f"dbsight proxy: rejected by firewall rule deny_fingerprints: statement fingerprint "
        f"{fingerprint} is denied",
    )
    assert p.on_statement(facts("SELECT * FROM orders WHERE id = 1"), 0.0) is None


def test_row_limit_is_the_smallest_max_rows() -> None:
    assert pipeline().row_limit(facts()) is None
    assert (
        pipeline({"handler": "firewall", "deny_unbounded_writes": True}).row_limit(facts()) is None
    )
    p = pipeline(
        {"handler": "firewall", "max_rows": 500},
        {"handler": "firewall", "max_rows": 100},
        {"handler": "firewall"},
    )
    assert p.row_limit(facts()) == 100
    assert p.row_limit_rejection(100) == Rejection(
        "firewall.max_rows",
        "firewall_max_rows",
        "54000",
        "dbsight proxy: rejected by firewall rule max_rows: the statement returned more than "
        "100 rows",
    )
    assert p.rejected == {"firewall_max_rows": 1}


# -- the pipeline -------------------------------------------------------------------------------


def test_no_steps_let_everything_through() -> None:
    p = pipeline()
    assert p.on_connect(None, None, None, None) is None
    assert p.on_statement(facts("DROP TABLE orders"), 0.0) is None


def test_steps_run_in_order() -> None:
    firewall = {"handler": "firewall", "deny_unbounded_writes": True}
    rate = {"handler": "rate_limit", "rate": 1, "burst": 1}
    first_firewall = pipeline(firewall, rate)
    assert first_firewall.on_statement(facts("DELETE FROM t"), 0.0) is not None
    assert first_firewall.on_statement(facts(), 0.0) is None  # the rejected one took no token
    first_rate = pipeline(rate, firewall)
    assert first_rate.on_statement(facts("DELETE FROM t"), 0.0) is not None
    limited = first_rate.on_statement(facts(), 0.0)  # the rejected one was counted
    assert isinstance(limited, Rejection) and limited.reason == "rate_limit"


def test_every_rejection_is_counted_by_reason() -> None:
    p = pipeline(
        {"handler": "allow", "users": ["app"]},
        {"handler": "firewall", "deny_ddl_users": ["app"], "deny_unbounded_writes": True},
        {"handler": "rate_limit", "rate": 1, "burst": 1},
    )
    p.on_connect("intruder", "appdb", "127.0.0.1", None)
    p.on_connect("app", "appdb", "127.0.0.1", None)
    p.on_statement(facts("DROP TABLE t"), 0.0)
    p.on_statement(facts("UPDATE t SET a = 1"), 0.0)
    p.on_statement(facts("DELETE FROM t"), 0.0)
    p.on_statement(facts(), 0.0)
    p.on_statement(facts(), 0.0)
    p.row_limit_rejection(10)
    assert p.rejected == {
        "allow": 1,
        "firewall_ddl": 1,
        "firewall_unbounded_write": 2,
        "rate_limit": 1,
        "firewall_max_rows": 1,
    }


def test_sample_and_log_steps_decide_per_statement_in_order() -> None:
    pipeline = Pipeline.from_config(STEPS.validate_python([
        {"handler": "log", "logger": "all"},
        {"handler": "sample", "environment": "staging"},
        {"handler": "log"},
    ]))
    kept = pipeline.observe(lambda: 0.05)  # under staging's 10 %
    assert kept.sampled is True
    assert [log.logger.name for log in kept.logs] == ["all", "dbsight.proxy.statements"]
    dropped = pipeline.observe(lambda: 0.5)
    assert dropped.sampled is False
    assert [log.logger.name for log in dropped.logs] == ["all"]  # before the sample step
    assert Pipeline.from_config([]).observe() is _pipeline.UNOBSERVED


@pytest.mark.parametrize(
    ("step", "rate"),
    [
        ({"handler": "sample", "environment": "dev"}, 1.0),
        ({"handler": "sample", "environment": "prod"}, 0.01),
        ({"handler": "sample", "rate": 0.25}, 0.25),
    ],
)
def test_sample_rates_by_environment_profile(step: dict[str, Any], rate: float) -> None:
    (parsed,) = STEPS.validate_python([step])
    assert parsed.effective_rate == rate


@pytest.mark.parametrize(
    "step",
    [
        {"handler": "sample"},
        {"handler": "sample", "environment": "prod", "rate": 0.5},
        {"handler": "sample", "environment": "qa"},
        {"handler": "sample", "rate": 1.5},
        {"handler": "log", "level": "trace"},
    ],
)
def test_bad_sample_and_log_steps_are_refused(step: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        STEPS.validate_python([step])
