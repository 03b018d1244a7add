"""``dbsight advise`` for people: the advised indexes as a table (index, statements served,
cost before → after, measured speed-up, write overhead, reason), then the rejected
candidates, then the findings; and the progress of the run on stderr when it is a terminal.
Statements appear as normalized text only."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from rich.console import Console
from rich.table import Table

from .._progress import ProgressCallback
from .._progress import progress_on as shared_progress
from ._advice import AdvisedIndex, IndexAdvice

__all__ = ["describe_verify", "progress_on", "render_advice"]

MAX_REJECTED_SHOWN = 20
_STAGES = {
    "parse": "reading statements",
    "baseline": "planning as they are",
    "candidates": "weighing candidates",
    "final": "planning the chosen set",
    "verify: before": "measuring before",
    "verify: create": "building indexes",
    "verify: after": "measuring after",
}


def progress_on(console: Console) -> AbstractContextManager[ProgressCallback | None]:
    """The advisor's ``progress(stage, done, total)`` drawn on ``console`` when it is a
    terminal (a bar per stage); None otherwise."""
    return shared_progress("advise", console, describe=lambda stage: _STAGES.get(stage, stage))


def describe_verify(indexes: Sequence[AdvisedIndex], where: str, keep: bool) -> str:
    lines = [f"dbsight advise --verify will build {len(indexes)} index(es) on {where} "
             "(CREATE INDEX CONCURRENTLY, with lock_timeout), run the statements they serve "
             "with their sampled parameters (or values from the column statistics) before and "
             "after (reads only, in read-only transactions rolled back), and "
             + ("keep the indexes (--keep):" if keep else "drop the indexes again:")]  # fmt: skip
    lines.extend(f"  {index.create}" for index in indexes)
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f} ms"


def _speedup(index: AdvisedIndex) -> str:
    parts = []
    for statement in index.statements:
        if statement.speedup is not None:
            parts.append(f"{statement.speedup:,.1f}× ({_ms(statement.measured_before_ms)} → "
                         f"{_ms(statement.measured_after_ms)})")  # fmt: skip
        elif statement.measure_note:
            parts.append(statement.measure_note)
    if any(s.speedup is not None and s.measure_note for s in index.statements):
        parts.append("(run with values from the column statistics)")
    if index.verify_error:
        parts.append(f"not built: {index.verify_error}")
    return "\n".join(parts) or "—"


def render_advice(advice: IndexAdvice, console: Console) -> None:
    if advice.indexes:
        table = Table(title="Advised indexes", show_lines=True, expand=False)
        for column in ("index", "statements served", "cost before → after", "measured speed-up",
                       "write overhead", "reason"):  # fmt: skip
            table.add_column(column, overflow="fold")
        for index in advice.indexes:
            served = "\n".join(
                f"{s.normalized}  ({s.calls:,} calls, {s.total_time_ms:,.0f} ms)"
                for s in index.statements
            )
            costs = "\n".join(
                f"{s.cost_before:,.1f} → {s.cost_after:,.1f}" for s in index.statements
            )
            overhead = index.write_overhead
            per = "/min" if overhead.get("window_s") else " in all"
            writes = (f"{overhead['writes_per_minute']:,.1f} writes{per}\n"
                      f"~{overhead['estimated_write_ms_per_minute']:,.2f} ms{per} upkeep\n"
                      f"{overhead['index_size_bytes'] / 1024:,.0f} kB")  # fmt: skip
            name = index.create.removeprefix("CREATE INDEX CONCURRENTLY ")
            if index.kept:
                name += "\n(kept)"
            table.add_row(name, served, costs, _speedup(index), writes, index.reason)
        console.print(table)
    else:
        console.print("No index to advise: no candidate lowers a statement's planner cost "
                      "enough to pay for itself.")  # fmt: skip
    if advice.rejected:
        rejected = Table(title="Rejected", show_lines=False)
        rejected.add_column("index", overflow="fold")
        rejected.add_column("reason", overflow="fold")
        for entry in advice.rejected[:MAX_REJECTED_SHOWN]:
            rejected.add_row(entry.index.label(values=False), entry.reason)
        more = len(advice.rejected) - MAX_REJECTED_SHOWN
        if more > 0:
            rejected.caption = f"and {more} more (--json lists them all)"
        console.print(rejected)
    if advice.findings:
        findings = Table(title="Findings", show_lines=False)
        findings.add_column("kind")
        findings.add_column("about", overflow="fold")
        findings.add_column("finding", overflow="fold")
        for finding in advice.findings:
            about = finding.get("normalized") or finding.get("table") or ""
            findings.add_row(finding["kind"], about, finding["message"])
        console.print(findings)
    console.print(
        f"{advice.analyzed} of {advice.statements} statements planned, "
        f"{advice.explains:,} EXPLAINs in {advice.round_trips:,} round trips, "
        f"{advice.elapsed_s:,.1f} s."
    )
