"""The demo's Recommendations: what dbsight advises after the traffic, from what the service
itself observed — the indexes its slow endpoints need, verified on the demo's own database
with their measured speed-up, the plan analyzer's findings, the database checks that fail —
and the HTML report with all of it.

The advice reads this process's statistics and the real parameters it sampled
(`dbsight.workload.from_stats`), the checks read the database; both are the library calls
``dbsight advise --verify`` and ``dbsight check`` make. Verifying builds each index with
CREATE INDEX CONCURRENTLY and drops it again: the demo's database ends as it started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ._summary import _short, first_finding

# Severity styles, as in the slow-query table.
_STYLES = {"critical": "bold red", "warning": "yellow", "info": ""}


@dataclass
class Recommendations:
    """What `recommend` found; a part that could not be made says why in its ``*_error``."""

    advice: dict[str, Any] | None = None
    advice_error: str | None = None
    checks: dict[str, Any] | None = None
    checks_error: str | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    report: Path | None = None
    report_error: str | None = None


def plan_findings(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The most severe finding of each slow statement's plan, with its route; one per
    statement and kind."""
    plans = {
        str(row.get("fingerprint")): row.get("plan_summary")
        for row in summary.get("top") or ()
        if row.get("plan_summary")
    }
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for record in summary.get("slow") or ():
        fingerprint = str(record.get("fingerprint"))
        finding = first_finding(record, plans.get(fingerprint))
        if finding is None:
            continue
        key = (fingerprint, str(finding.get("kind")))
        found.setdefault(key, {**finding, "route": record.get("route") or ""})
    return list(found.values())


def recommend(
    dsn: str,
    summary: Mapping[str, Any],
    report_path: Path,
    *,
    sources: Iterable[str] = (),
    progress: Callable[[str], None] | None = None,
) -> Recommendations:
    """Advice (verified), checks and the report for the demo's database ``dsn``. Blocking:
    run it in a thread. Never raises for a part that fails; that part says why."""
    from ..advise import AdvisorError, advise_indexes
    from ..check import CheckError, run_checks
    from ..report import ReportInputs, build_report
    from ..workload import from_stats

    note = progress or (lambda _: None)
    result = Recommendations(findings=plan_findings(summary))
    note("index advice: planning the statements with hypothetical indexes (HypoPG)")
    try:
        advice = advise_indexes(dsn, from_stats(), verify=True)
        result.advice = advice.to_dict()
    except AdvisorError as exc:
        result.advice_error = str(exc)
    note("database checks")
    try:
        result.checks = run_checks(dsn).to_dict()
    except CheckError as exc:
        result.checks_error = str(exc)
    note("HTML report")
    inputs = ReportInputs(
        summaries=[dict(summary)], advice=result.advice, checks=result.checks, sources=list(sources)
    )
    try:
        report_path.write_text(build_report(inputs), encoding="utf-8")
        result.report = report_path
    except OSError as exc:
        result.report_error = f"cannot write {report_path}: {exc.strerror or exc}"
    return result


def _routes(summary: Mapping[str, Any]) -> dict[str, str]:
    """Each fingerprint's busiest route."""
    routes: dict[str, str] = {}
    for row in summary.get("top") or ():
        by_route: dict[str, int] = row.get("routes") or {}
        if by_route:
            routes[str(row.get("fingerprint"))] = max(by_route, key=lambda r: by_route[r])
    return routes


def _ms(value: Any) -> str:
    return "" if value is None else f"{float(value):.2f}"


def index_table(advice: Mapping[str, Any], summary: Mapping[str, Any]) -> Table:
    """One row per statement an advised index serves: the index, the route, the planner's
    cost and the measured time before and after."""
    table = Table(title="Indexes to create (verified on the demo's database, then dropped)")
    for name, justify in (
        ("index", "left"), ("route", "left"), ("cost before → after", "right"),
        ("measured ms before → after", "right"), ("faster", "right"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    routes = _routes(summary)
    for index in advice.get("indexes") or ():
        create = str(index.get("create") or "")
        for n, statement in enumerate(index.get("statements") or ()):
            before, after = statement.get("measured_before_ms"), statement.get("measured_after_ms")
            faster = f"{before / after:.0f}×" if before and after else ""
            table.add_row(
                create if n == 0 else "",
                routes.get(str(statement.get("fingerprint")), ""),
                f"{statement.get('cost_before', 0):.0f} → {statement.get('cost_after', 0):.0f}",
                f"{_ms(before)} → {_ms(after)}" if before is not None else "not measured",
                Text(faster, "bold green") if faster else "",
            )
    return table


def findings_table(findings: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(title="Plan findings (the slow statements' EXPLAIN ANALYZE plans)")
    table.add_column("route")
    table.add_column("finding")
    table.add_column("what to do")
    for finding in findings:
        style = _STYLES.get(str(finding.get("severity")), "")
        table.add_row(
            str(finding.get("route") or ""),
            Text(str(finding.get("message") or ""), style),
            _short(finding.get("suggestion") or "", 70),
        )
    return table


def checks_table(checks: Mapping[str, Any]) -> Table | None:
    failed = [c for c in checks.get("checks") or () if c.get("status") == "failed"]
    if not failed:
        return None
    table = Table(title="Database checks that fail")
    table.add_column("check")
    table.add_column("severity")
    table.add_column("summary")
    for check in failed:
        severity = str(check.get("severity") or "")
        table.add_row(
            str(check.get("title") or check.get("name")),
            Text(severity, _STYLES.get(severity, "")),
            _short(check.get("summary") or "", 90),
        )
    return table


def print_recommendations(
    console: Console, found: Recommendations, summary: Mapping[str, Any]
) -> None:
    """The Recommendations section, after the slow queries."""
    console.rule("Recommendations")
    parts: list[Any] = []
    if found.advice is not None:
        if found.advice.get("indexes"):
            parts.append(index_table(found.advice, summary))
        else:
            parts.append(Text("index advice: no index would pay for itself on this workload"))
    else:
        parts.append(Text(f"index advice unavailable: {found.advice_error}", "yellow"))
    if found.findings:
        parts.append(findings_table(found.findings))
    if found.checks is not None:
        table = checks_table(found.checks)
        parts.append(table if table is not None else Text("database checks: all pass"))
    else:
        parts.append(Text(f"database checks unavailable: {found.checks_error}", "yellow"))
    if found.report is not None:
        parts.append(Text(f"HTML report: {found.report}", "bold"))
    else:
        parts.append(Text(f"HTML report not written: {found.report_error}", "yellow"))
    console.print(Group(*parts))
