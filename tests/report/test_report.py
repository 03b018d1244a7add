"""The report's content from real inputs: two running instances of the sample service (one
through a capturing proxy) merged by fingerprint, the proxy's capture, and advice and checks
in their contract shapes; its privacy; its readers' errors."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from report_helpers import Shops
from contract import CHECKS, advice_for

from dbsight.report import (
    ReportError,
    ReportInputs,
    build_report,
    fetch_summary,
    read_capture,
    report_json,
)
from dbsight.stats import StatsTable
from dbsight.stats._histogram import GAMMA, exact_quantiles
from dbsight.workload import Workload, WorkloadStatement


@pytest.fixture(scope="module")
def summaries(shops: Shops) -> list[dict[str, Any]]:
    return [fetch_summary(url) for url in shops.urls]


def _by_fingerprint(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["fingerprint"]: entry for entry in document["top"]}


def _entry(doc: dict[str, Any], fragment: str) -> dict[str, Any]:
    # (the capture also holds the EXPLAINs the services' explainer ran through the proxy)
    (found,) = [
        e for e in doc["statements"]
        if fragment in e["normalized"] and not e["normalized"].startswith("EXPLAIN")
    ]  # fmt: skip
    return found


# -- several instances --------------------------------------------------------------------
def test_two_instances_merge_by_fingerprint(summaries: list[dict[str, Any]]) -> None:
    a, b = (_by_fingerprint(doc) for doc in summaries)
    doc = report_json(ReportInputs(summaries=summaries))
    assert doc["services"] == ["shop-a", "shop-b"] and doc["instances"] == 2
    merged = {entry["fingerprint"]: entry for entry in doc["statements"]}
    shared = a.keys() & b.keys()
    assert len(shared) >= 8
    for fingerprint in shared:
        one, two, both = a[fingerprint], b[fingerprint], merged[fingerprint]
        assert both["calls"] == one["calls"] + two["calls"]
        assert both["errors"] == one["errors"] + two["errors"]
        assert both["total_time_s"] == pytest.approx(one["total_time_s"] + two["total_time_s"])
        assert both["min_time_s"] == min(one["min_time_s"], two["min_time_s"])
        assert both["max_time_s"] == max(one["max_time_s"], two["max_time_s"])
        assert both["sources"] == ["shop-a", "shop-b"] and both["estimated"] is True
        # estimated from both instances' figures (their accuracy: the tests below)
        assert both["min_time_s"] <= both["p50_s"] <= both["p95_s"] <= both["p99_s"]
        assert both["p99_s"] <= both["max_time_s"]
    totals = [s["totals"] for s in summaries]
    assert doc["totals"]["calls"] == sum(t["calls"] for t in totals)
    assert doc["totals"]["errors"] == sum(t["errors"] for t in totals) > 0
    (finding,) = [f for f in doc["n_plus_one"] if f["route"] == "/orders/recent"]
    assert finding["requests"] == sum(
        f["requests"] for s in summaries for f in s["n_plus_one"] if f["route"] == "/orders/recent"
    )
    assert {record["service"] for record in doc["slow"]} == {"shop-a", "shop-b"}
    # the four rankings
    top = doc["top"]
    assert top["total_time"][0] == max(merged.values(), key=lambda e: e["total_time_s"])["fingerprint"]
    assert top["calls"][0] == max(merged.values(), key=lambda e: e["calls"])["fingerprint"]
    insert = _entry(doc, "INSERT INTO orders")
    assert top["errors"] == [insert["fingerprint"]] and insert["errors"] == 6


def test_one_instance_keeps_its_own_percentiles(summaries: list[dict[str, Any]]) -> None:
    doc = report_json(ReportInputs(summaries=summaries[:1]))
    own = _by_fingerprint(summaries[0])
    for entry in doc["statements"]:
        original = own[entry["fingerprint"]]
        assert entry["estimated"] is False and entry["sources"] == ["shop-a"]
        assert (entry["p50_s"], entry["p95_s"], entry["p99_s"]) == (
            original["p50_s"], original["p95_s"], original["p99_s"],
        )  # fmt: skip
        assert entry["calls"] == original["calls"]


def _summary_of(name: str, durations: list[float]) -> dict[str, Any]:
    """A summary document whose one statement ran for ``durations`` (its figures computed
    by a StatsTable, as a service's are)."""
    table = StatsTable()
    table.merge([{
        "fingerprint": "f1", "normalized": "SELECT $1", "calls": len(durations),
        "total_time_s": sum(durations), "min_time_s": min(durations),
        "max_time_s": max(durations), "first_seen": 1.0, "last_seen": 2.0,
        "histogram": {"gamma": GAMMA, "counts": {}, "samples": durations},
    }])  # fmt: skip
    return {"service": name, "top": [s.to_dict() for s in table.top()]}


def test_merged_percentiles_of_few_calls_are_exact() -> None:
    """Up to three calls an instance's minimum, p50 and maximum are its durations: merged,
    the percentiles are those of every call together."""
    for a, b in [([0.002], [0.010]), ([0.001, 0.004], [0.003, 0.02, 0.5]),
                 ([0.0011, 0.0012, 0.009], [0.0007, 0.0013, 0.0021])]:  # fmt: skip
        docs = [_summary_of("a", a), _summary_of("b", b)]
        (entry,) = report_json(ReportInputs(summaries=docs))["statements"]
        exact = exact_quantiles(a + b, (0.5, 0.95, 0.99))
        assert (entry["p50_s"], entry["p95_s"], entry["p99_s"]) == pytest.approx(exact)
        assert entry["estimated"] is True


def test_merged_percentiles_follow_the_pooled_calls() -> None:
    """Two instances' figures of one statement, merged: close to the percentiles of all their
    calls together (the instances computed theirs from 300 durations each)."""
    fast = [0.001 * (1 + (i % 50) / 25) for i in range(300)]  # 1 to 3 ms
    slow = [0.004 * (1 + (i % 30) / 10) for i in range(300)]  # 4 to 15.6 ms
    docs = [_summary_of("a", fast), _summary_of("b", slow)]
    (entry,) = report_json(ReportInputs(summaries=docs))["statements"]
    exact = exact_quantiles(fast + slow, (0.5, 0.95, 0.99))
    assert entry["calls"] == 600
    for key, value in zip(("p50_s", "p95_s", "p99_s"), exact, strict=True):
        assert entry[key] == pytest.approx(value, rel=0.15), key


# -- the capture ---------------------------------------------------------------------------
def test_capture_gives_the_timeline_and_joins_by_fingerprint(
    shops: Shops, summaries: list[dict[str, Any]]
) -> None:
    captured = read_capture(shops.capture)
    lines = [json.loads(x) for x in shops.capture.read_text().splitlines()]
    assert len(captured) == sum(1 for x in lines if x["type"] == "statement") > 100
    doc = report_json(ReportInputs(summaries=summaries, captured=captured))
    timeline = doc["timeline"]
    assert timeline["source"] == "capture"
    assert sum(b["statements"] for b in timeline["buckets"]) == len(captured)
    assert all(b["p95_ms"] is None or b["p95_ms"] > 0 for b in timeline["buckets"])
    # the proxy fingerprints as the service does: shop-b's statements are the capture's
    sales = _entry(doc, "FROM order_items WHERE product_id")
    assert sales["sources"] == ["shop-a", "shop-b", "capture"]
    # what only the proxy saw (asyncpg's connection reset) comes from the capture alone
    reset = _entry(doc, "pg_advisory_unlock_all")
    assert reset["sources"] == ["capture"]
    assert reset["calls"] == sum(1 for r in captured if r.fingerprint == reset["fingerprint"])


def test_capture_alone_is_a_report(shops: Shops) -> None:
    captured = read_capture(shops.capture)
    doc = report_json(ReportInputs(captured=captured))
    assert doc["totals"]["calls"] == len(captured)
    assert doc["instances"] == 0 and doc["statements"]
    html = build_report(ReportInputs(captured=captured))
    assert "as captured by the proxy" in html


def test_timeline_from_the_slow_log_without_a_capture(summaries: list[dict[str, Any]]) -> None:
    doc = report_json(ReportInputs(summaries=summaries))
    assert doc["timeline"]["source"] == "slow log"
    assert sum(b["statements"] for b in doc["timeline"]["buckets"]) == len(doc["slow"])


# -- the HTML ------------------------------------------------------------------------------
def test_html_sections_from_real_and_contract_inputs(
    shops: Shops, summaries: list[dict[str, Any]]
) -> None:
    sales = _entry(report_json(ReportInputs(summaries=summaries)), "WHERE product_id")
    inputs = ReportInputs(
        summaries=summaries,
        captured=read_capture(shops.capture),
        advice=advice_for(sales),
        checks=copy.deepcopy(CHECKS),
        sources=[*shops.urls, str(shops.capture)],
    )
    html = build_report(inputs)
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "src=" not in html and "href=\"http" not in html
    assert "dbsight report: shop-a, shop-b" in html
    # the plan of the slow revenue report, as a tree
    assert '<ul class="plan plan-root">' in html and "Seq Scan on order_items" in html
    # advice: the measured before/after
    assert "CREATE INDEX CONCURRENTLY ON order_items (product_id)" in html
    assert "42× faster" in html and "written 3,000 times per read" in html
    # checks, failing ones first, the critical one before the warning
    assert html.index("Queries running over 60 s") < html.index("Unused indexes")
    assert html.index("Unused indexes") < html.index("Cache hit ratio")
    assert "/orders/recent" in html  # N+1
    assert html.count('<svg class="plot"') >= 2 + 8 + 1  # timeline, histograms, advice


def test_plan_findings_are_shown_on_the_record_and_in_the_tree(
    summaries: list[dict[str, Any]],
) -> None:
    record = next(r for r in summaries[0]["slow"] if r.get("plan") and "p.category" in r["normalized"])
    finding = {
        "kind": "seq_scan", "severity": "critical", "node": "Seq Scan",
        "relation": "order_items", "message": "Seq Scan on order_items removes 99.8 % of rows",
        "numbers": {}, "suggestion": "an index on order_items (order_id)",
    }  # fmt: skip
    html = build_report(ReportInputs(slow=[{**record, "findings": [finding]}]))
    assert "Seq Scan on order_items removes 99.8 % of rows" in html
    assert "→ an index on order_items (order_id)" in html
    node = re.search(r'<span class="node">Seq Scan on order_items[^<]*</span>.*?</summary>', html)
    assert node is not None and "sev sev-critical" in node.group(0)


def test_statements_only_pg_stat_statements_saw_are_marked(
    summaries: list[dict[str, Any]],
) -> None:
    outsider = WorkloadStatement(
        fingerprint="0123456789abcdef", normalized="SELECT count(*) FROM customers",
        operation="select", tables=("customers",), calls=9, total_time_s=50.0,
        sources=("pg_stat_statements",), instrumented=False,
    )  # fmt: skip
    known = summaries[0]["top"][0]
    joined = WorkloadStatement(
        fingerprint=known["fingerprint"], normalized=known["normalized"], operation="select",
        tables=(), calls=1, total_time_s=0.0, sources=("pg_stat_statements",),
    )  # fmt: skip
    inputs = ReportInputs(summaries=summaries, workload=Workload.of([outsider, joined]))
    doc = report_json(inputs)
    entry = _entry(doc, "count(*) FROM customers")
    assert entry["instrumented"] is False and entry["p95_s"] is None
    assert doc["top"]["total_time"][0] == outsider.fingerprint  # 50 s: the most
    assert "pg_stat_statements" in _by_fingerprint({"top": doc["statements"]})[
        known["fingerprint"]
    ]["sources"]
    html = build_report(inputs)
    assert "not instrumented: pg_stat_statements only" in html


def test_no_literal_reaches_the_report(summaries: list[dict[str, Any]]) -> None:
    """A slow record with the statement's text and values (a service with
    include_query_bodies), a plan quoting a value, a partial index's predicate and a check's
    running query: none of their values is in the HTML or the JSON."""
    record = next(r for r in summaries[0]["slow"] if r.get("plan"))
    plan = copy.deepcopy(record["plan"])
    root = plan[0]["Plan"] if isinstance(plan, list) else plan["Plan"]
    root["Filter"] = "(email = 'bob@example.com'::text) AND (id > 424242424242)"
    leaky = {
        **record, "plan": plan, "sql": "SELECT secret_column FROM t WHERE x = 'hunter2'",
        "params": ["hunter2"], "error_message": "value 'hunter2' is wrong",
    }  # fmt: skip
    inputs = ReportInputs(
        summaries=[{**summaries[0], "slow": [leaky]}],
        advice=advice_for(summaries[0]["top"][0]),
        checks=copy.deepcopy(CHECKS),
    )
    html = build_report(inputs)
    text = json.dumps(report_json(inputs))
    for secret in ("bob@example.com", "424242424242", "hunter2", "secret_column",
                   "alice@example.com", "pending-review"):  # fmt: skip
        assert secret not in html and secret not in text, secret
    assert "(email = &#x27;?&#x27;::text) AND (id &gt; ?)" in html
    assert "WHERE status = &#x27;?&#x27;" in html  # the index's predicate, masked
    # with query bodies the plan keeps its values
    inputs.include_query_bodies = True
    assert "bob@example.com" in build_report(inputs)


def test_sections_without_input_are_left_out() -> None:
    html = build_report(ReportInputs())
    assert "Nothing to report." in html
    for anchor in ("timeline", "top", "latency", "slow", "advice", "checks", "n-plus-one"):
        assert f'id="{anchor}"' not in html


def test_failed_parts_say_why() -> None:
    error_advice = {"indexes": [], "rejected": [], "findings": [],
                    "error": "HypoPG is not installed on the server"}  # fmt: skip
    error_checks = {"database": None, "checked_at": None, "checks": [],
                    "error": "cannot connect to 127.0.0.1:1"}  # fmt: skip
    html = build_report(ReportInputs(advice=error_advice, checks=error_checks))
    assert "No advice: HypoPG is not installed on the server" in html
    assert "Not run: cannot connect to 127.0.0.1:1" in html


# -- the readers ---------------------------------------------------------------------------
def test_fetch_summary_errors(shops: Shops) -> None:
    with pytest.raises(ReportError, match=r"answered 404 .*dbsight service or the proxy"):
        fetch_summary(shops.urls[0] + "/elsewhere")
    with pytest.raises(ReportError, match="is not an http:// or https:// URL"):
        fetch_summary("file:///etc/passwd")
    closed = shops.urls[0].rsplit(":", 1)[0] + ":1"
    refused = r"cannot connect to http://127\.0\.0\.1:1/metrics/summary"
    with pytest.raises(ReportError, match=refused):
        fetch_summary(closed, timeout_s=2)
    # the summary URL itself is accepted as well as the base
    assert fetch_summary(shops.urls[0] + "/metrics/summary")["service"] == "shop-a"


def test_read_capture_rotated_truncated_and_broken(tmp_path: Path, shops: Shops) -> None:
    lines = shops.capture.read_text().splitlines()
    statements = [x for x in lines if '"statement"' in x]
    path = tmp_path / "capture.jsonl"
    path.with_name("capture.jsonl.2").write_text("\n".join(statements[:10]) + "\n")
    path.with_name("capture.jsonl.1").write_text("\n".join(statements[10:20]) + "\n")
    path.write_text("\n".join(statements[20:30]) + "\n" + statements[30][:25])  # being written
    records = read_capture(path)
    assert [r.fingerprint for r in records] == [
        json.loads(x)["fingerprint"] for x in statements[:30]
    ]  # oldest file first, the torn last line left out
    assert len(read_capture(path, rotated=False)) == 10
    path.write_text(statements[0][:25] + "\n" + statements[1] + "\n")
    with pytest.raises(ReportError, match=r"capture\.jsonl:1 is not a capture record"):
        read_capture(path)
    with pytest.raises(ReportError, match="no capture file at"):
        read_capture(tmp_path / "missing.jsonl")


def test_the_advisor_gets_the_statements_the_report_shows(
    shops: Shops, summaries: list[dict[str, Any]]
) -> None:
    from dbsight.report._gather import _advice_workload

    captured = read_capture(shops.capture)
    inputs = ReportInputs(summaries=summaries, captured=captured)
    workload = _advice_workload(inputs, None)
    doc = report_json(inputs)
    assert {s.fingerprint for s in workload} == {e["fingerprint"] for e in doc["statements"]}
    sales = _entry(doc, "FROM order_items WHERE product_id")
    statement = workload.statements[sales["fingerprint"]]
    assert (statement.calls, statement.tables, statement.operation) == (
        sales["calls"], ("order_items",), "select",
    )  # fmt: skip
    assert statement.total_time_s == pytest.approx(sales["total_time_s"])
    assert statement.instrumented and "capture" in statement.sources


def test_a_document_that_is_not_a_summary_is_refused(summaries: list[dict[str, Any]]) -> None:
    from dbsight.report._inputs import summary_problem

    assert summary_problem(summaries[0]) is None
    broken = copy.deepcopy(summaries[0])
    broken["top"][2]["calls"] = "many"
    assert summary_problem(broken) == "top[2] has no number 'calls'"
    assert summary_problem({"status": "ok"}) == "no 'top' list"
    assert summary_problem({"top": [], "slow": {}}) == "'slow' is not a list"


def test_plan_findings_of_a_top_statement_are_under_it(summaries: list[dict[str, Any]]) -> None:
    doc = copy.deepcopy(summaries[0])
    entry = next(e for e in doc["top"] if e.get("plan_summary"))
    entry["plan_summary"]["findings"] = [
        {"kind": "dominant_node", "severity": "info", "node": "Sort", "relation": None,
         "message": "Sort takes 62 % of the time", "numbers": {}, "suggestion": None},
        {"kind": "misestimate", "severity": "warning", "node": "Hash Join", "relation": None,
         "message": "Hash Join returned 120 times more rows than estimated", "numbers": {},
         "suggestion": None},
    ]  # fmt: skip
    html = build_report(ReportInputs(summaries=[doc]))
    row = re.search(
        rf'<tr data-fingerprint="{entry["fingerprint"]}">.*?</tr>', html, re.S
    )
    assert row is not None
    warning, info = row.group(0).index("120 times more rows"), row.group(0).index("62 %")
    assert warning < info  # the most severe first


def test_plan_nodes_above_a_finding_start_open(summaries: list[dict[str, Any]]) -> None:
    from dbsight.report._plan import plan_tree

    record = next(r for r in summaries[0]["slow"] if r.get("plan") and "p.category" in r["normalized"])
    finding = {"kind": "seq_scan", "severity": "warning", "node": "Seq Scan",
               "relation": "order_items", "message": "m"}  # fmt: skip
    plain, flagged = plan_tree(record["plan"]), plan_tree(record["plan"], [finding])
    assert plain.count("<details open>") < flagged.count("<details open>")
    # every node from the root down to the flagged one, and that one, is open
    around = _details_around(flagged, "Seq Scan on order_items")
    assert len(around) >= 3 and all(around)
    assert not all(_details_around(plain, "Seq Scan on order_items"))


def _details_around(html: str, text: str) -> list[bool]:
    """Whether each <details> enclosing the first ``text`` is open, outermost first."""
    from html.parser import HTMLParser

    class Finder(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[bool] = []
            self.found: list[bool] | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "details":
                self.stack.append(any(name == "open" for name, _ in attrs))

        def handle_endtag(self, tag: str) -> None:
            if tag == "details":
                self.stack.pop()

        def handle_data(self, data: str) -> None:
            if self.found is None and text in data:
                self.found = list(self.stack)

    finder = Finder()
    finder.feed(html)
    assert finder.found is not None, text
    return finder.found
