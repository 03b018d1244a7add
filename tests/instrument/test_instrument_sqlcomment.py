"""sqlcommenter formatting and parsing (pure functions; the server round trip is tested per
client)."""

from __future__ import annotations

import pytest

from dbsight.core import request_scope
from dbsight.core._sqlcomment import (
    append_comment,
    comment_for,
    format_comment,
    has_comment,
    parse_comment,
    traceparent,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"


def test_format_sorts_keys_and_url_encodes() -> None:
    comment = format_comment(
        {"route": "/users/{id}", "request_id": "a b'c", "traceparent": f"00-{TRACE}-{SPAN}-01"}
    )
    assert comment == (
        f"/*request_id='a%20b%27c',route='%2Fusers%2F%7Bid%7D',traceparent='00-{TRACE}-{SPAN}-01'*/"
    )
    assert "*/" not in format_comment({"route": "/*/"})[2:-2]
    assert format_comment({}) == "" and format_comment({"route": ""}) == ""


@pytest.mark.parametrize(
    "value",
    ["/users/{id}", "it's", "a,b=c", "*/ DROP TABLE x; /*", "ünï\\code", "100%"],
)
def test_parse_round_trips(value: str) -> None:
    sql = append_comment("SELECT 1", format_comment({"route": value, "k": "v"}))
    assert parse_comment(sql) == {"route": value, "k": "v"}


def test_parse_escaped_quote_and_percent_doubling() -> None:
    assert parse_comment("SELECT 1 /*route='it\\'s'*/") == {"route": "it's"}
    escaped = append_comment("SELECT %s", format_comment({"route": "/a b"}), escape_percent=True)
    assert escaped == "SELECT %s /*route='%%2Fa%%20b'*/"
    assert parse_comment(escaped) == {"route": "/a b"}


def test_append_before_semicolon_and_not_twice() -> None:
    comment = format_comment({"route": "/x"})
    assert append_comment("SELECT 1;\n", comment) == f"SELECT 1 {comment};\n"
    once = append_comment("SELECT 1", comment)
    assert append_comment(once, format_comment({"route": "/y"})) == once
    assert has_comment(once) and not has_comment("SELECT 1 /* just a comment */")
    assert append_comment("SELECT 1 /* just a comment */", comment).endswith(comment)
    assert append_comment("  copy t FROM STDIN", comment) == "  copy t FROM STDIN"
    assert append_comment("SELECT 1", "") == "SELECT 1"


def test_parse_ignores_non_sqlcommenter_text() -> None:
    assert parse_comment("SELECT 1") == {}
    assert parse_comment("SELECT 1 /* hello */") == {}
    assert parse_comment("SELECT '*/'") == {}


def test_comment_for_modes() -> None:
    assert comment_for("full") == ""  # no request, no span
    with request_scope("rid", route="/r/{id}", trace_id=TRACE, span_id=SPAN):
        assert comment_for("off") == ""
        assert comment_for("route") == "/*route='%2Fr%2F%7Bid%7D'*/"
        assert comment_for("route") is comment_for("route")  # cached per route
        assert parse_comment("x " + comment_for("full")) == {
            "request_id": "rid",
            "route": "/r/{id}",
            "traceparent": f"00-{TRACE}-{SPAN}-01",
        }
    with request_scope("rid"):
        assert comment_for("route") == ""


def test_traceparent_from_current_otel_span() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("s") as span:
        ctx = span.get_span_context()
        assert parse_comment("x " + comment_for("full"))["traceparent"] == traceparent(
            ctx.trace_id, ctx.span_id
        )
    assert traceparent(None, SPAN) is None and traceparent("short", SPAN) is None
