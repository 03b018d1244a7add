"""The analysis commands of the ``dbsight`` command line: ``check``, ``replay``, ``report``
and ``advise``. `dbsight.cli` registers them on its app (their docstrings are their help);
each imports its package only when it runs."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ._progress import progress_on

__all__ = ["advise", "check", "replay", "report"]


def _advice_log_off(command: Callable[..., None]) -> Callable[..., None]:
    """These commands print what they found; their advice events are for the notifiers of
    a long-running process (a service, the proxy), not JSON lines on the command's stderr.
    The level is restored when the command ends (it may run inside another program)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        logger = logging.getLogger("dbsight.advice")
        level = logger.level
        logger.setLevel(logging.CRITICAL + 1)
        try:
            command(*args, **kwargs)
        finally:
            logger.setLevel(level)

    return run


def _fail_on(value: str) -> str:
    name = value.strip().lower()
    if name not in ("none", "info", "warning", "critical"):
        raise typer.BadParameter(f"{value!r} is not one of none, info, warning, critical")
    return name


@_advice_log_off
def check(
    dsn: Annotated[
        str,
        typer.Option(metavar="DSN", help="The PostgreSQL to check, as postgresql://user@host:port/db."),
    ],
    replica: Annotated[
        list[str] | None,
        typer.Option(metavar="DSN", help="A streaming replica of it (repeatable): an index "
                     "scanned on a replica is not unused.", show_default="none"),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (name, title, severity, "
                           "status, summary, items and hint of each check).")
    ] = False,
    fail_on: Annotated[
        str,
        typer.Option(callback=_fail_on, metavar="LEVEL",
                     help="Exit 1 when a check of this severity or graver failed: critical, "
                     "warning (warning and critical) or info (any); none never fails on a "
                     "finding."),
    ] = "none",
    long_query_s: Annotated[
        float, typer.Option(min=0.0, help="A query running this many seconds is long.")
    ] = 60.0,
    idle_in_transaction_s: Annotated[
        float, typer.Option(min=0.0, help="A session idle in transaction this long fails.")
    ] = 60.0,
    blocked_s: Annotated[
        float, typer.Option(min=0.0, help="A session waiting this long for a lock is blocked.")
    ] = 5.0,
    unused_index_min_bytes: Annotated[
        int, typer.Option(min=0, help="Unused indexes smaller than this are not reported.")
    ] = 10 * 1024 * 1024,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=3600.0, help="statement_timeout of each check's "
                            "queries, in seconds.")
    ] = 10.0,
) -> None:
    """Check a PostgreSQL database for what PgHero checks, with its thresholds.

    Unused, duplicate and invalid indexes, sequences past 90 % of their range,
    transaction-ID wraparound, tables of 10,000 rows or more read by sequential scans, the
    cache hit ratio (99 %), connections, sessions idle in transaction, queries running over
    60 s and the sessions blocking others, dead tuples and stale statistics. Only reads (read-only
    transactions under a statement timeout); the statements that would fix a finding (DROP
    INDEX CONCURRENTLY, VACUUM ...) are printed, never run. The exit status is 0 unless
    --fail-on is given and a check at or above that severity failed (1), or the database
    cannot be reached (1). A check that cannot run (e.g. permission denied) is listed as an
    error and does not fail the run.
    """
    from .check import CheckError, CheckThresholds, run_checks
    from .check._render import render_report
    from .core._dsn import invalid_dsn


    for value, hint in ((dsn, "--dsn"), *((r, "--replica") for r in replica or ())):
        problem = invalid_dsn(value)
        if problem:
            raise typer.BadParameter(problem, param_hint=hint)
    thresholds = CheckThresholds(
        long_query_s=long_query_s, idle_in_transaction_s=idle_in_transaction_s,
        blocked_s=blocked_s, unused_index_min_bytes=unused_index_min_bytes,
    )  # fmt: skip
    try:
        # one bar, named after the check running ("" once all have run)
        with progress_on("check", describe=lambda name: name or "done", single=True) as progress:
            report = run_checks(
                dsn, replicas=replica or (), thresholds=thresholds, timeout_s=timeout,
                progress=progress,
            )  # fmt: skip
    except CheckError as exc:
        sys.stderr.write(f"dbsight check: {exc}\n")
        raise typer.Exit(1) from None
    if json_output:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        render_report(report, Console())
    failed = [] if fail_on == "none" else report.failed(fail_on)
    if failed and not json_output:
        Console(stderr=True).print(
            f"dbsight check: {len(failed)} check(s) at or above {fail_on} failed: "
            + ", ".join(c.name for c in failed), markup=False, highlight=False, soft_wrap=True,
        )
    raise typer.Exit(1 if failed else 0)


@_advice_log_off
def replay(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="A capture written by dbsight proxy --capture with capture_params on.",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            metavar="DSN",
            help="The PostgreSQL to replay against, as postgresql://user@host:port/db (a "
            "copy: with --allow-writes the capture's writes run there).",
            show_default=False,
        ),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Time scale of the capture's pace: 2 plays twice as fast, 0 as fast as "
            "the target answers.",
        ),
    ] = 1.0,
    concurrency: Annotated[
        int, typer.Option(min=1, max=1000, help="Sessions played at once (a connection each).")
    ] = 10,
    allow_writes: Annotated[
        bool,
        typer.Option(
            "--allow-writes",
            help="Also send writes and DDL (otherwise skipped and counted).",
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON.")
    ] = False,
    compare_reports: Annotated[
        tuple[Path, Path] | None,
        typer.Option(
            "--compare",
            metavar="A.json B.json",
            help="Compare two replays' --json reports (A's replayed times against B's) "
            "instead of replaying.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Replay a captured workload against a database and report what regressed.

    Each captured session is played on a connection of its own, in its order, with its
    transactions, at the capture's pace scaled by --speed. Read-only statements,
    transaction control and SET are sent; writes and DDL only with --allow-writes. Per
    statement (normalized, never with its values): captured and replayed p50/p95/p99 and
    errors; a statement regressed when its p95 is at least 20 % and 1 ms worse, or it has
    new errors, and its plan on the target is shown. --compare A.json B.json compares two
    earlier reports the same way.
    """
    import asyncio

    from .replay import ReplayError, compare, render, replay_async

    if compare_reports is not None:
        if file is not None or target is not None:
            raise typer.BadParameter("--compare takes two reports, no capture and no --target")
    elif file is None:
        raise typer.BadParameter("a capture file to replay, or --compare A.json B.json")
    elif target is None:
        raise typer.BadParameter("the database to replay against", param_hint="--target")
    err = Console(stderr=True)
    try:
        if compare_reports is not None:
            report = compare(*compare_reports)
            sides = ("A", "B")
        else:
            assert file is not None and target is not None
            with progress_on("replay", err, single=True) as progress:
                report = asyncio.run(replay_async(
                    file, target, speed=speed, concurrency=concurrency,
                    allow_writes=allow_writes, progress=progress,
                ))  # fmt: skip
            sides = ("captured", "replayed")
    except ReplayError as exc:
        err.print(f"dbsight replay: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2 if exc.usage else 1) from None
    if json_output:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    out = Console()
    if compare_reports is not None:
        out.print(f"A: {compare_reports[0]}\nB: {compare_reports[1]}", markup=False, highlight=False)
    render(report, out, before=sides[0], after=sides[1])


@_advice_log_off
def report(
    from_: Annotated[
        list[str] | None,
        typer.Option(
            "--from",
            metavar="URL",
            help="A running dbsight (an instrumented service, or the proxy's admin port) whose "
            "/metrics/summary is read; repeatable: several instances are merged.",
            show_default=False,
        ),
    ] = None,
    workload: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="A capture written by dbsight proxy --capture (its rotated files too): "
            "real durations and the statements over time.",
            show_default=False,
        ),
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option(
            metavar="DSN",
            help="The PostgreSQL the statements ran on (postgresql://...): its checks, "
            "pg_stat_statements and index advice for the workload. Read only.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Where to write the report.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="The report's content as JSON (on stdout unless -o names a file)."
        ),
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="DBSIGHT_ADMIN_TOKEN", help="Bearer token, when an endpoint requires one."
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=300.0, help="Seconds to wait for each summary.")
    ] = 10.0,
) -> None:
    """One self-contained HTML file (no script, nothing fetched when opened): top statements
    by total time, calls, mean and errors, their latency, the traffic over time, slow queries
    with their plans and findings, index advice, database checks and N+1 findings.

    Statements are shown normalized and plans redacted: no literal or parameter value goes
    into the file.
    """
    from .report import ReportError, build_report, gather, report_json, summary_url

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if not (from_ or workload or dsn):
        err.print("dbsight report: nothing to report: give --from URL, --workload FILE or --dsn DSN",
                  markup=False)  # fmt: skip
        raise typer.Exit(2)
    if output is None and not as_json:
        err.print("dbsight report: give -o FILE for the HTML report (or --json)", markup=False)
        raise typer.Exit(2)
    if dsn is not None and not dsn.startswith(("postgresql://", "postgres://")):
        raise typer.BadParameter("expected a postgresql:// URL", param_hint="--dsn")
    for url in from_ or ():
        try:
            summary_url(url)
        except ReportError as exc:
            raise typer.BadParameter(str(exc).removeprefix("--from "), param_hint="--from") from None
    try:
        with progress_on("report", err) as progress:
            inputs = gather(
                from_ or [], workload, dsn, token=token, timeout_s=timeout, progress=progress,
                warn=lambda message: err.print(f"dbsight report: {message}", markup=False),
            )  # fmt: skip
    except ReportError as exc:
        err.print(f"dbsight report: {exc}", markup=False)
        raise typer.Exit(1) from None
    text = (
        json.dumps(report_json(inputs), indent=2, default=str) + "\n"
        if as_json
        else build_report(inputs)
    )
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        err.print(f"dbsight report: cannot write {output}: {exc.strerror or exc}", markup=False)
        raise typer.Exit(1) from None
    err.print(f"dbsight report: wrote {output}", markup=False)


@_advice_log_off
def advise(
    dsn: Annotated[
        str, typer.Option(help="The PostgreSQL to advise on (postgresql://user@host:port/db); "
                          "it needs HypoPG.")
    ],
    workload: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="A capture written by dbsight proxy --capture (with "
                     "capture_params, statements are planned with their real parameters)."),
    ] = None,
    from_url: Annotated[
        str | None,
        typer.Option("--from", metavar="URL", help="A running dbsight: an instrumented "
                     "service or the proxy's admin port (its /metrics/summary)."),
    ] = None,
    pg_stat_statements: Annotated[
        bool,
        typer.Option("--pg-stat-statements",
                     help="The statements pg_stat_statements holds for --dsn's database."),
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(envvar="DBSIGHT_ADMIN_TOKEN", help="Bearer token for --from."),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Build each advised index for real (CREATE INDEX "
                     "CONCURRENTLY), measure the statements it serves before and after, "
                     "then drop it. Changes the database: use a staging copy."),
    ] = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="With --verify: keep the indexes it built.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the advice as one JSON document.")
    ] = False,
    create_extension: Annotated[
        bool,
        typer.Option("--create-extension", help="Run CREATE EXTENSION hypopg when HypoPG is "
                     "installed on the server but not enabled in the database (changes it)."),
    ] = False,
    min_savings: Annotated[
        float,
        typer.Option(min=1.0, max=99.0, help="Planner cost drop, in percent, a statement "
                     "needs for an index to count as serving it."),
    ] = 50.0,
) -> None:
    """Index advice with HypoPG for a workload: which indexes to create, the statements each
    serves, its cost before and after, its write cost, and with --verify the measured speed-up.

    Statements are weighted by their observed total time and planned with the parameter
    values seen in traffic (generic plans without them); hypothetical indexes are chosen as
    a set for the whole workload, including both sides of a join, partial and covering
    (INCLUDE) indexes. Nothing is created in the database without --verify (or
    --create-extension). Sources can be combined; they are joined by fingerprint. Progress
    goes to stderr; statements are shown normalized.
    """
    try:
        import psycopg  # noqa: F401  (the "analysis" extra)
    except ModuleNotFoundError as exc:
        Console(stderr=True).print(
            f"dbsight advise needs {exc.name!r}, which is not installed: "
            "pip install 'dbsight[analysis]'"
        )
        raise typer.Exit(2) from None
    from .advise._cli import AdviseRequest, run_advise

    request = AdviseRequest(
        dsn=dsn, workload=workload, from_url=from_url, pg_stat_statements=pg_stat_statements,
        token=token, verify=verify, keep=keep, json=json_output,
        create_extension=create_extension, min_savings=min_savings / 100.0,
    )  # fmt: skip
    raise typer.Exit(run_advise(request))
