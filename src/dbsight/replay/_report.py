"""A replay's report: the ``--json`` document and the table a person reads.

Both show normalized statements only: the capture's texts and values (``capture_params``)
are what the replay sends, never what it prints. Plans have their constants masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..export.slowlog import summarize_plan
from ._compare import REGRESSION_MS, REGRESSION_RATIO, FingerprintResult
from ._policy import SKIP_REASONS
from ._stats import Side

_STATEMENT_WIDTH = 72


@dataclass(slots=True)
class ReplayReport:
    """``fingerprints`` regressions first, then the slowest after; ``skipped`` the count of
    statements not sent, by reason (`SKIP_REASONS`); ``target`` without its password."""

    fingerprints: list[FingerprintResult]
    skipped: dict[str, int]
    target: str | None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fingerprints.sort(key=_order)

    @property
    def regressions(self) -> list[FingerprintResult]:
        return [r for r in self.fingerprints if r.regression]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprints": [r.to_dict() for r in self.fingerprints],
            "skipped": dict(self.skipped),
            "target": self.target,
            "regressions": len(self.regressions),
            "rule": {"p95_ratio": REGRESSION_RATIO, "p95_ms": REGRESSION_MS, "new_errors": True},
            **self.info,
        }


def _order(result: FingerprintResult) -> tuple[bool, float, str]:
    p95 = result.after.p95_ms
    return (not result.regression, -(p95 if p95 is not None else -1.0), result.fingerprint)


def render(report: ReplayReport, console: Console, *, before: str, after: str) -> None:
    """The table (regressions first), each regression's plan and findings, what was skipped."""
    regressions = report.regressions
    title = (
        f"{len(regressions)} of {len(report.fingerprints)} statements regressed"
        if regressions
        else f"no regression among {len(report.fingerprints)} statements"
    )
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("statement", overflow="fold", ratio=1, min_width=14)
    table.add_column("calls", justify="right", no_wrap=True)
    table.add_column(f"{before}\np50/p95/p99 ms", justify="right", no_wrap=True)
    table.add_column(f"{after}\np50/p95/p99 ms", justify="right", no_wrap=True)
    table.add_column("errors", justify="right", no_wrap=True)
    for r in report.fingerprints:
        mark = Text("REGRESSED", style="bold red") if r.regression else Text("ok", style="green")
        table.add_row(
            mark,
            _short(r.normalized),
            str(max(r.before.calls, r.after.calls)),
            _cells(r.before),
            _cells(r.after),
            f"{r.before.errors}->{r.after.errors}",
        )
    console.print(table)
    for r in regressions:
        console.print(Text.assemble(("regressed ", "bold red"), (_short(r.normalized), "bold")))
        console.print(f"  {r.reason}", markup=False, highlight=False)
        if r.plan is not None:
            summary = summarize_plan(r.plan)
            scans = summary["seq_scans"]
            line = f"  plan on the target: {summary['node_type']}, cost {summary['total_cost']}"
            if scans:
                line += f"; Seq Scan on {', '.join(scans)}"
            console.print(line, markup=False, highlight=False)
        elif r.plan_error:
            console.print(f"  plan: {r.plan_error}", markup=False, highlight=False)
        for finding in r.findings or ():
            message = finding.get("message") if isinstance(finding, dict) else None
            if message:
                console.print(
                    f"  [{finding.get('severity', '')}] {message}", markup=False, highlight=False
                )
    skipped = {k: v for k, v in report.skipped.items() if v}
    if skipped:
        console.print("skipped, not sent:", markup=False, highlight=False)
        for key, count in skipped.items():
            console.print(
                f"  {count:>8}  {SKIP_REASONS.get(key, key)}", markup=False, highlight=False
            )


def _cells(side: Side) -> str:
    return "/".join((_ms(side.p50_ms), _ms(side.p95_ms), _ms(side.p99_ms)))


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _short(normalized: str) -> str:
    limit = 3 * _STATEMENT_WIDTH
    return normalized if len(normalized) <= limit else normalized[: limit - 3] + "..."
