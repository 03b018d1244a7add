"""`dbsight check` for a person: a table of every check, then what failed with its objects and
the statements that would fix it (printed for a person to run, never run by dbsight)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._report import CheckReport, CheckResult

__all__ = ["render_report"]

MAX_ITEMS = 10
_STATUS = {"ok": "[green]ok[/]", "failed": "[bold red]FAILED[/]", "error": "[magenta]error[/]"}
_SEVERITY = {"critical": "[red]critical[/]", "warning": "[yellow]warning[/]", "info": "info"}
# Shown elsewhere (the heading, the SQL) or too long for a line
_HIDDEN = {"schema", "table", "index", "size_bytes", "blockers", "fingerprint", "pid"}


def render_report(report: CheckReport, console: Console) -> None:
    table = Table(title=f"Checks of {escape(report.database)} at {report.checked_at}",
                  title_justify="left", expand=False)  # fmt: skip
    table.add_column("Status", no_wrap=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Summary", overflow="fold")
    for check in report.checks:
        table.add_row(
            _STATUS[check.status], escape(check.title), _SEVERITY[check.severity],
            escape(check.summary),
        )  # fmt: skip
    console.print(table)
    for check in report.checks:
        if check.failed:
            _details(check, console)


def _details(check: CheckResult, console: Console) -> None:
    console.print()
    console.print(f"[bold]{escape(check.title)}[/] ({_SEVERITY[check.severity]}): "
                  f"{escape(check.summary)}")  # fmt: skip
    for finding in check.findings[:MAX_ITEMS]:
        console.print(f"  [cyan]{escape(finding.object)}[/]  {escape(_line(finding.item))}")
        for blocker in finding.item.get("blockers") or ():
            console.print(f"      blocked by pid {blocker['pid']}: {escape(_line(blocker))}")
    if len(check.findings) > MAX_ITEMS:
        console.print(f"  ... and {len(check.findings) - MAX_ITEMS} more (--json lists them all)")
    if check.hint:
        console.print(escape(check.hint), style="dim", highlight=False, soft_wrap=True)


def _line(item: dict[str, Any]) -> str:
    parts = []
    for key, value in item.items():
        if key in _HIDDEN or value is None or value == "":
            continue
        if isinstance(value, dict):
            value = " ".join(str(v) for v in value.values() if v is not None)
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)
