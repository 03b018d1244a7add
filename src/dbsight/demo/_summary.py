"""Rich tables from what the service reports at ``/metrics/summary`` (and from the traffic).

The demo reads dbsight's findings over HTTP, as an operator would, rather than from the
in-process tables: what it prints is what any instrumented service serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._traffic import TrafficResult

STATEMENT_WIDTH = 80


def _short(text: Any, width: int = STATEMENT_WIDTH) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_plan(summary: Mapping[str, Any] | None) -> str:
    """A plan summary in a few words: ``Seq Scan on order_items (cost 5745, ~88 rows)``."""
    if not summary:
        return ""
    scans = list(summary.get("seq_scans") or ())
    head = f"Seq Scan on {', '.join(scans)}" if scans else str(summary.get("node_type") or "")
    details = []
    if summary.get("total_cost") is not None:
        details.append(f"cost {float(summary['total_cost']):.0f}")
    if summary.get("estimated_rows") is not None:
        details.append(f"~{summary['estimated_rows']} rows")
    return f"{head} ({', '.join(details)})" if details else head


def first_finding(
    record: Mapping[str, Any], plan: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The plan analyzer's most severe finding for a slow record: its own, else that of the
    plan summary the statistics table keeps (the analyzer lists them most severe first)."""
    for findings in (record.get("findings"), (plan or {}).get("findings")):
        if findings and isinstance(findings[0], Mapping):
            return findings[0]
    return None


_SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow"}


def _plan_cell(plan: str, finding: Mapping[str, Any] | None) -> Text:
    """The plan in a few words and, under it, its first finding."""
    cell = Text(plan)
    if finding and finding.get("message"):
        if plan:
            cell.append("\n")
        cell.append(str(finding["message"]), _SEVERITY_STYLES.get(str(finding.get("severity")), ""))
    return cell


def _main_route(routes: Mapping[str, int] | None) -> str:
    if not routes:
        return ""
    return max(routes.items(), key=lambda item: item[1])[0]


def traffic_table(result: TrafficResult) -> Table:
    table = Table(
        title=f"Traffic: {result.requests} requests in {result.elapsed_s:.1f}s "
        f"({result.requests / max(result.elapsed_s, 1e-9):.0f}/s), {result.failures} failed"
    )
    for column in ("route", "requests", "failed", "p50 ms"):
        table.add_column(column, justify="left" if column == "route" else "right")
    for route, tally in sorted(result.routes.items(), key=lambda kv: -kv[1].requests):
        table.add_row(route, str(tally.requests), str(tally.failures), f"{tally.p50_ms:.1f}")
    return table


def top_table(top: Iterable[Mapping[str, Any]], limit: int = 10) -> Table:
    table = Table(title="Top statements by total time")
    for column in ("calls", "total ms", "mean ms", "p95 ms", "rows", "route", "statement"):
        table.add_column(column, justify="left" if column in ("route", "statement") else "right")
    for row in list(top)[:limit]:
        table.add_row(
            str(row.get("calls", 0)),
            f"{row.get('total_time_s', 0.0) * 1e3:.1f}",
            f"{row.get('mean_time_s', 0.0) * 1e3:.2f}",
            f"{row.get('p95_s', 0.0) * 1e3:.2f}",
            "–" if row.get("rows") is None else str(row["rows"]),
            _main_route(row.get("routes")),
            _short(row.get("normalized")),
        )
    return table


def slow_table(
    slow: Iterable[Mapping[str, Any]],
    threshold_ms: float,
    plans: Mapping[str, Mapping[str, Any]] | None = None,
) -> Table:
    """Slow statements grouped by fingerprint: the recent records repeat the same few.

    Only one slow run per statement and EXPLAIN interval gets a plan; ``plans`` (fingerprint
    -> the plan summary the statistics table keeps) fills in for the records without one.
    """
    plans = plans or {}
    groups: dict[str, dict[str, Any]] = {}
    for record in slow:
        fingerprint = str(record.get("fingerprint"))
        group = groups.setdefault(
            fingerprint,
            {
                "count": 0,
                "worst_ms": 0.0,
                "record": record,
                "plan": plans.get(fingerprint),
                "plan_error": None,
            },
        )
        group["count"] += 1
        group["worst_ms"] = max(group["worst_ms"], float(record.get("duration_ms") or 0.0))
        if group["plan"] is None and record.get("plan_summary"):
            group["plan"] = record["plan_summary"]
        if group.get("finding") is None:
            group["finding"] = first_finding(record, group["plan"])
        if record.get("plan_error"):
            group["plan_error"] = record["plan_error"]
    table = Table(
        title=f"Slow queries (>= {threshold_ms:g} ms; the most recent, by statement) "
        "with their EXPLAIN plans and the plan analyzer's first finding"
    )
    for column in ("seen", "worst ms", "route", "plan", "statement"):
        table.add_column(column, justify="right" if column in ("seen", "worst ms") else "left")
    # the shapes that are slow again and again first; a one-off is more likely a hiccup
    for group in sorted(groups.values(), key=lambda g: (-g["count"], -g["worst_ms"])):
        record = group["record"]
        plan = describe_plan(group["plan"]) or str(group["plan_error"] or "")
        finding = group.get("finding") or first_finding(record, group["plan"])
        table.add_row(
            str(group["count"]),
            f"{group['worst_ms']:.1f}",
            str(record.get("route") or ""),
            _plan_cell(plan, finding),
            _short(record.get("normalized"), 60),
        )
    return table


def n_plus_one_table(findings: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(title="N+1 patterns (one statement repeated within a request)")
    for column in ("route", "per request", "requests", "total ms", "statement"):
        table.add_column(column, justify="left" if column in ("route", "statement") else "right")
    for finding in findings:
        table.add_row(
            str(finding.get("route") or ""),
            str(finding.get("count", "")),
            str(finding.get("requests", "")),
            f"{float(finding.get('total_ms') or 0.0):.1f}",
            _short(finding.get("normalized"), 70),
        )
    return table


def print_summary(
    console: Console, summary: Mapping[str, Any], traffic: TrafficResult, threshold_ms: float
) -> None:
    """Traffic, top statements, slow queries and N+1 findings, one table each."""
    console.print(traffic_table(traffic))
    console.print(top_table(summary.get("top") or ()))
    slow = summary.get("slow") or ()
    if slow:
        plans = {
            str(row.get("fingerprint")): row["plan_summary"]
            for row in summary.get("top") or ()
            if row.get("plan_summary")
        }
        console.print(slow_table(slow, threshold_ms, plans))
    else:
        console.print(f"[dim]no statement reached the slow-query threshold ({threshold_ms:g} ms)")
    findings = summary.get("n_plus_one") or ()
    if findings:
        console.print(n_plus_one_table(findings))
    else:
        console.print("[dim]no N+1 pattern found")
