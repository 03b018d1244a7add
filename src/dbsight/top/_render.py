"""The ``dbsight top`` view as a pure function of two polls: no I/O, no clock, so every
state (first poll, rates, a failing endpoint, an empty service) is a unit test.

Everything the service sent is put into cells as `Text`, never as markup: a statement such as
``SELECT a[i] FROM t`` must not turn italic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from ..stats import FingerprintStats
from ._options import SORT_KEYS, TopOptions
from ._rates import IntervalRates, interval_rates
from ._snapshot import Snapshot

UNKNOWN = "–"
# The statement keeps at least this many columns while there are columns to drop for it.
STATEMENT_MIN = 32
# Between two columns of a SIMPLE_HEAD table with one cell of padding each side.
COLUMN_GAP = 3


def render_top(
    previous: Snapshot | None,
    current: Snapshot | None,
    options: TopOptions,
    error: str | None = None,
) -> RenderableType:
    """The view after a poll. ``current`` is the latest good poll (None before the first),
    ``previous`` the good one before it (for the rates), ``error`` why the latest poll
    failed, if it did: the last good data stays on screen under the error."""
    rates = interval_rates(previous, current) if current is not None else None
    parts: list[RenderableType] = [_header(current, rates, options, error)]
    if current is None:
        return Group(*parts)
    parts.append(statements_table(current, rates, options))
    if options.details and current.n_plus_one:
        parts.append(n_plus_one_table(current.n_plus_one[: options.details]))
    if options.details and current.slow:
        plans = {
            stats.fingerprint: stats.plan_summary
            for stats in current.statements
            if stats.plan_summary
        }
        parts.append(slow_table(current.slow[: options.details], plans))
    return Group(*parts)


# -- header ------------------------------------------------------------------------------
def _header(
    current: Snapshot | None, rates: IntervalRates | None, options: TopOptions, error: str | None
) -> RenderableType:
    lines: list[Text] = []
    title = Text("dbsight top", style="bold", no_wrap=True, overflow="ellipsis")
    if current is not None:
        workers = f"{current.workers} worker" + ("s" if current.workers != 1 else "")
        title.append(f"  {current.service}", style="bold cyan")
        if len(options.summary_urls) > 1:
            workers = f"{current.instances} of {len(options.summary_urls)} instances, {workers}"
        title.append(f"  {workers}  {current.generated_at}  ")
    else:
        title.append("  ")
    title.append(_sources(options), style="dim")
    lines.append(title)
    for reason in current.unavailable if current is not None else ():
        lines.append(Text(f"! left out: {reason}", style="bold yellow"))
    if current is not None:
        lines.append(_totals(current, rates, options))
    if error is not None:
        line = Text(f"! {error}", style="bold red")
        retry = "" if options.once else f"retrying every {options.interval_s:g}s"
        if current is not None and retry:
            line.append(f"  (showing the poll of {current.generated_at}; {retry})", style="red")
        elif retry:
            line.append(f"  ({retry})", style="red")
        lines.append(line)
    elif current is None:
        lines.append(Text(f"waiting for the first answer from {_sources(options)}"))
    return Group(*lines)


def _sources(options: TopOptions) -> str:
    urls = options.summary_urls
    return urls[0] if len(urls) == 1 else f"{urls[0]} and {len(urls) - 1} more"


def _totals(current: Snapshot, rates: IntervalRates | None, options: TopOptions) -> Text:
    """Every statement's totals (`fingerprint_count`), not the listed ones': ``--limit``
    limits the rows only."""
    count = fingerprint_count(current)
    listed = f"{count} fingerprint" + ("s" if count != 1 else "")
    if options.once:
        totals = current.totals
        if totals is not None:
            calls, errors = totals.calls, totals.errors
        else:  # a dbsight that sends no totals: the listed statements are all there is
            calls = sum(stats.calls for stats in current.statements)
            errors = sum(stats.errors for stats in current.statements)
        return Text(f"{listed}  {calls} calls  {errors} errors  sorted by {options.sort}")
    text = Text()
    if rates is None:
        text.append("statements/s and errors/s from the next poll on", style="dim")
    else:
        text.append(f"{rates.statements_per_s:.1f}", style="bold")
        text.append(" statements/s  ")
        text.append(f"{rates.errors_per_s:.2f}", style="bold red" if rates.errors_per_s else "bold")
        text.append(" errors/s")
    text.append(f"  {listed}  sorted by {options.sort}  every {options.interval_s:g}s")
    return text


def fingerprint_count(current: Snapshot) -> int:
    """The statements the service counted: its totals', else the listed ones."""
    if current.totals is not None:
        return max(current.totals.fingerprints, len(current.statements))
    return len(current.statements)


# -- tables ------------------------------------------------------------------------------
def statements_table(
    current: Snapshot, rates: IntervalRates | None, options: TopOptions
) -> FittedTable:
    """The top ``options.limit`` statements by ``options.sort``, with their rates in the
    last interval unless ``options.once``."""
    ordered = sorted(current.statements, key=SORT_KEYS[options.sort], reverse=True)
    ordered = ordered[: options.limit]
    columns: list[Column] = []
    if not options.once:
        known = [
            rates.statements.get(stats.fingerprint) if rates is not None else None
            for stats in ordered
        ]
        columns += [
            Column("calls/s", [f"{rate.calls_per_s:.1f}" if rate else UNKNOWN for rate in known]),
            Column(
                "time %", [f"{rate.time_share * 100:.1f}" if rate else UNKNOWN for rate in known]
            ),
        ]
    columns += [
        Column("calls", [str(stats.calls) for stats in ordered]),
        Column("total s", [f"{stats.total_time_s:.2f}" for stats in ordered], drop=5),
        Column("mean ms", [milliseconds(stats.mean_time_s) for stats in ordered]),
        Column("p95 ms", [milliseconds(stats.p95_s) for stats in ordered]),
        Column("p99 ms", [milliseconds(stats.p99_s) for stats in ordered], drop=4),
        Column(
            "rows",
            [str(stats.rows) if stats.rows is not None else UNKNOWN for stats in ordered],
            drop=3,
        ),
        Column(
            "errors",
            [str(stats.errors) for stats in ordered],
            styles=["red" if stats.errors else "" for stats in ordered],
        ),
        Column(
            "route", [main_route(stats) for stats in ordered], numeric=False, drop=2, max_width=24
        ),
    ]
    return FittedTable(
        f"Top {len(ordered)} of {fingerprint_count(current)} statements by {options.sort}",
        columns,
        [stats.normalized for stats in ordered],
        empty="no statement recorded yet",
    )


def n_plus_one_table(findings: Sequence[Mapping[str, Any]]) -> FittedTable:
    """The latest N+1 findings: one statement repeated within one request."""
    return FittedTable(
        "N+1 patterns (latest)",
        [
            Column(
                "route",
                [str(item.get("route") or "") for item in findings],
                numeric=False,
                max_width=32,
            ),
            Column("per request", [str(item.get("count", "")) for item in findings]),
            Column("requests", [str(item.get("requests", "")) for item in findings], drop=2),
            Column(
                "total ms", [f"{_float(item.get('total_ms')):.1f}" for item in findings], drop=1
            ),
        ],
        [item.get("normalized") for item in findings],
    )


def slow_table(
    records: Sequence[Mapping[str, Any]], plans: Mapping[str, Mapping[str, Any] | None]
) -> FittedTable:
    """The latest slow queries with their plan summary and the plan analyzer's first
    (most severe) finding: the record's own, else those the statistics table keeps for the
    statement (only some slow runs are EXPLAINed)."""
    summaries = [
        record.get("plan_summary") or plans.get(str(record.get("fingerprint")))
        for record in records
    ]
    firsts = [first_finding(record, plan) for record, plan in zip(records, summaries, strict=True)]
    return FittedTable(
        "Slow queries (latest)",
        [
            Column("at", [_clock(record.get("ts")) for record in records], numeric=False, drop=2),
            Column("ms", [f"{_float(record.get('duration_ms')):.1f}" for record in records]),
            Column(
                "route",
                [str(record.get("route") or "") for record in records],
                numeric=False,
                drop=1,
                max_width=24,
            ),
            Column(
                "plan",
                [
                    describe_plan(plan) or str(record.get("plan_error") or "")
                    for plan, record in zip(summaries, records, strict=True)
                ],
                numeric=False,
                max_width=48,
                styles=["yellow" if plan and plan.get("seq_scans") else "" for plan in summaries],
            ),
            Column(
                "finding",
                [str(finding.get("message") or "") if finding else "" for finding in firsts],
                numeric=False,
                drop=1,
                max_width=64,
                styles=[SEVERITY_STYLES.get(str((f or {}).get("severity")), "") for f in firsts],
            ),
        ],
        [record.get("normalized") for record in records],
    )


SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow", "info": ""}


def first_finding(
    record: Mapping[str, Any], summary: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The most severe plan finding of a slow record (its own, else its statement's plan
    summary's): the analyzer lists them most severe first."""
    for findings in (record.get("findings"), (summary or {}).get("findings")):
        if findings and isinstance(findings, Sequence) and isinstance(findings[0], Mapping):
            return findings[0]
    return None


@dataclass(frozen=True, slots=True)
class Column:
    """A column of plain cells. When the width is short, the columns with the highest
    ``drop`` go first (0: always shown), so the statement keeps `STATEMENT_MIN` columns."""

    header: str
    cells: list[str]
    numeric: bool = True
    drop: int = 0
    max_width: int | None = None
    styles: list[str] | None = None

    @property
    def width(self) -> int:
        width = max([len(self.header), *map(len, self.cells)])
        return width if self.max_width is None else min(width, self.max_width)


class FittedTable:
    """Columns, then the statement text filling the rest of the line, truncated.

    Which columns fit is decided when rich renders it, for the width it is given: the
    table itself stays a value (no terminal size is read here).
    """

    def __init__(
        self, title: str, columns: list[Column], statements: Sequence[Any], empty: str = ""
    ) -> None:
        self.title = title
        self.columns = columns
        self.statements = [one_line(text) for text in statements]
        self.empty = empty

    def fit(self, width: int) -> list[Column]:
        """The columns shown at ``width``: the droppable ones go, highest ``drop`` first,
        until the statement has `STATEMENT_MIN` columns or only the fixed ones are left."""
        columns = list(self.columns)
        droppable = sorted((c for c in columns if c.drop), key=lambda c: -c.drop)
        while droppable and _used(columns) + STATEMENT_MIN > width:
            columns.remove(droppable.pop(0))
        return columns

    def table(self, width: int) -> Table:
        columns = self.fit(width)
        table = Table(
            title=self.title,
            title_justify="left",
            caption=self.empty if not self.statements else None,
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            padding=(0, 1),
            expand=True,
        )
        for column in columns:
            table.add_column(
                column.header,
                justify="right" if column.numeric else "left",
                no_wrap=True,
                overflow="ellipsis",
                max_width=column.max_width,
            )
        table.add_column("statement", no_wrap=True, overflow="ellipsis", ratio=1)
        for index, statement in enumerate(self.statements):
            cells = [
                Text(column.cells[index], style=column.styles[index] if column.styles else "")
                for column in columns
            ]
            table.add_row(*cells, Text(statement))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)


def _used(columns: list[Column]) -> int:
    """Width of ``columns`` and the gaps after them (`COLUMN_GAP` each, as laid out)."""
    return sum(column.width + COLUMN_GAP for column in columns)


# -- cells -------------------------------------------------------------------------------
def milliseconds(seconds: float) -> str:
    """A duration in ms with the precision that matters at its size."""
    ms = seconds * 1000.0
    if ms < 10.0:
        return f"{ms:.2f}"
    if ms < 1000.0:
        return f"{ms:.1f}"
    return f"{ms:.0f}"


def main_route(stats: FingerprintStats) -> str:
    """The route that ran the statement most often ('' when it ran outside requests)."""
    if not stats.routes:
        return ""
    return max(stats.routes.items(), key=lambda item: item[1])[0]


def one_line(text: Any) -> str:
    """Statement text on one line: the column truncates it to the terminal's width."""
    return " ".join(str(text or "").split())


def describe_plan(summary: Mapping[str, Any] | None) -> str:
    """A plan summary in a few words: ``Seq Scan on orders · cost 5745 · ~88 rows``."""
    if not summary:
        return ""
    scans = [str(scan) for scan in summary.get("seq_scans") or ()]
    words = [f"Seq Scan on {', '.join(scans)}" if scans else str(summary.get("node_type") or "")]
    if summary.get("total_cost") is not None:
        words.append(f"cost {_float(summary['total_cost']):.0f}")
    if summary.get("estimated_rows") is not None:
        words.append(f"~{summary['estimated_rows']} rows")
    return " · ".join(word for word in words if word)


def _clock(timestamp: Any) -> str:
    """``HH:MM:SS`` of a slow-log ``ts`` (``2024-05-01T12:00:00.123Z``, UTC)."""
    text = str(timestamp or "")
    return text[11:19] if len(text) >= 19 and text[10] == "T" else text


def _float(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
