"""Reading sqlcommenter comments (the proxy's side): where a comment may be, how its values
are encoded, what is taken from it and what is not."""

from __future__ import annotations

import pytest

from dbsight.core._comment_context import CommentContext, split_comment
from dbsight.core._sqlcomment import format_comment
from dbsight.sql import analyze

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("sql", "body"),
    [
        ("SELECT 1 /*route='%2Fx'*/", "SELECT 1"),
        ("SELECT 1 /*route='%2Fx'*/;\n", "SELECT 1;\n"),
        ("SELECT 1; /*route='%2Fx'*/", "SELECT 1;"),
        ("/*route='%2Fx'*/ SELECT 1", "SELECT 1"),
        ("  /* route = '%2Fx' */\nSELECT 1", "SELECT 1"),
        ("SELECT /* hint */ 1 /*route='%2Fx'*/", "SELECT /* hint */ 1"),
    ],
)
def test_the_comment_is_split_off_wherever_the_spec_allows_it(sql: str, body: str) -> None:
    stripped, comment = split_comment(sql)
    assert stripped == body
    assert comment is not None and comment.route == "/x"
    assert analyze(stripped).fingerprint == analyze(sql).fingerprint


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "SELECT 1 /* a comment of the application's */",
        "SELECT '/*route=''x''*/'",
        "SELECT 1 /* outer /*route='x'*/",  # nested: not a sqlcommenter comment
        "SELECT /*route='x'*/ 1",  # in the middle
        "/*+ IndexScan(t) */ SELECT * FROM t",
    ],
)
def test_other_comments_are_left_alone(sql: str) -> None:
    assert split_comment(sql) == (sql, None)


def test_what_dbsight_writes_is_read_back() -> None:
    pairs = {
        "route": "/users/{id}",
        "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "traceparent": TRACEPARENT,
        "tracestate": "vendor=opaque,other=1",
    }
    _, comment = split_comment("SELECT * FROM users WHERE id = $1 " + format_comment(pairs))
    assert comment is not None
    assert comment.route == "/users/{id}"
    assert comment.request_id == pairs["request_id"]
    assert (comment.trace_id, comment.span_id, comment.sampled) == (
        "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", True,
    )
    assert comment.tracestate == (("vendor", "opaque"), ("other", "1"))
    assert comment.tags == pairs


def test_keys_of_other_libraries() -> None:
    _, rails = split_comment(
        "SELECT 1 /*application='shop',controller='orders',action='show',"
        "db_driver='pg',framework='rails%3A7.1'*/"
    )
    assert rails is not None
    assert rails._replace(tags={}) == CommentContext(route="orders#show", app="shop", tags={})
    assert rails.tags["framework"] == "rails:7.1"
    _, django = split_comment(
        "SELECT 1 /*app_name='polls',controller='index',framework='django%3A4.2',"
        f"route='%5Epolls%2F%24',traceparent='{TRACEPARENT[:-2]}00'*/"
    )
    assert django is not None
    assert (django.route, django.app, django.sampled) == ("^polls/$", "polls", False)


def test_escapes_and_encodings() -> None:
    _, comment = split_comment("SELECT 1 /*route='it\\'s%20%2A%2F'*/")
    assert comment is not None and comment.route == "it's */"
    _, pyformat = split_comment("SELECT %s /*route='%%2Fa'*/")
    assert pyformat is not None and pyformat.route == "/a"


def test_untrusted_values_of_the_wrong_shape_are_dropped() -> None:
    _, comment = split_comment(
        "SELECT 1 /*request_id='a b',traceparent='00-00000000000000000000000000000000-"
        "b7ad6b7169203331-01',route='%0Aforged'*/"
    )
    assert comment is not None  # a sqlcommenter comment, saying nothing usable
    assert comment._replace(tags={}) == CommentContext(tags={})
    assert comment.tags["request_id"] == "a b"


def test_parsed_once_per_comment_text() -> None:
    sql = "SELECT 1 /*route='%2Fcached'*/"
    assert split_comment(sql)[1] is split_comment("SELECT 2 /*route='%2Fcached'*/")[1]
