"""Replay a capture, or compare two replays: the report, and a regression event for each
regressed statement (`dbsight.advise.emit`, kind ``regression``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..advise import AdviceEvent, emit
from ..core._dsn import describe_dsn
from ._compare import compare_reports, from_outcomes, read_report
from ._explain import explain_regressions
from ._player import PlayOptions, Progress, play
from ._policy import SKIP_REASONS
from ._reader import read_capture
from ._report import ReplayReport


async def replay_async(
    capture: str | Path,
    target: str,
    *,
    speed: float = 1.0,
    concurrency: int = 10,
    allow_writes: bool = False,
    explain: bool = True,
    progress: Progress | None = None,
) -> ReplayReport:
    """Play the capture at ``capture`` (written by ``dbsight proxy --capture`` with
    ``capture_params``) against ``target`` and report, per fingerprint, captured against
    replayed latency and errors; with ``explain``, each regressed statement's plan on the
    target. Raises `ReplayError` for an unreadable capture or an unreachable target."""
    options = PlayOptions(speed=speed, concurrency=concurrency, allow_writes=allow_writes)
    recorded = read_capture(capture)
    result = await play(recorded, target, options, progress)
    # Transaction control is sent to keep the transactions, but compared only when the
    # writes ran too: a COMMIT of the reads left is not the COMMIT that was captured.
    compared = [o for o in result.outcomes if allow_writes or not o.control]
    results = from_outcomes(compared)
    if explain:
        await explain_regressions(target, results)
    skipped = {key: result.skipped.get(key, 0) for key in SKIP_REASONS}
    report = ReplayReport(
        results,
        skipped,
        describe_dsn(target),
        {
            "capture": str(recorded.path),
            "sessions": result.sessions,
            "statements": {
                "captured": recorded.statement_count,
                "sent": len(result.outcomes),
                "transaction_control": len(result.outcomes) - len(compared),
                "skipped": sum(skipped.values()),
            },
            "transactions_aligned": result.boundaries_added,
            "speed": speed,
            "concurrency": concurrency,
            "allow_writes": allow_writes,
            "duration_s": round(result.wall_s, 3),
        },
    )
    _emit_regressions(report)
    return report


def replay(capture: str | Path, target: str, **options: object) -> ReplayReport:
    """`replay_async` on an event loop of its own (same options)."""
    return asyncio.run(replay_async(capture, target, **options))  # type: ignore[arg-type]


def compare(a: str | Path, b: str | Path) -> ReplayReport:
    """Two replays' ``--json`` reports: per fingerprint, ``a``'s after against ``b``'s after,
    with the same regression rule (``b``'s plan with each regression)."""
    first, second = read_report(Path(a)), read_report(Path(b))
    results = compare_reports(first, second, (str(a), str(b)))
    skipped = second.get("skipped")
    report = ReplayReport(
        results,
        dict(skipped) if isinstance(skipped, dict) else {},
        second.get("target") if isinstance(second.get("target"), str) else None,
        {"compare": {"a": str(a), "b": str(b)}},
    )
    _emit_regressions(report)
    return report


def _emit_regressions(report: ReplayReport) -> None:
    for r in report.regressions:
        emit(
            AdviceEvent(
                kind="regression",
                severity="warning",
                key=f"regression:{r.fingerprint}",
                summary=f"{r.normalized[:120]}: {r.reason}",
                details={
                    "fingerprint": r.fingerprint,
                    "normalized": r.normalized,
                    "before": r.before.to_dict(),
                    "after": r.after.to_dict(),
                    "target": report.target,
                },
            )
        )
