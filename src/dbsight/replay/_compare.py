"""Before against after, per fingerprint, and the rule that calls a statement regressed.

A fingerprint **regressed** when its p95 is at least `REGRESSION_RATIO` (20 %) *and*
`REGRESSION_MS` (1 ms) worse (a 20 % change of a 0.1 ms statement is noise; 1 ms more on a
500 ms one is too), or when it fails more often: more errors than before for the same calls
(for sides of different call counts, a higher error rate), "new errors". Before is the
capture (or, comparing two replays, the first replay's after), after the replay.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ._errors import bad_input
from ._player import Outcome
from ._stats import Side

REGRESSION_RATIO: Final = 0.20
REGRESSION_MS: Final = 1.0


@dataclass(slots=True)
class Sample:
    """A statement as sent (literals or ``$n`` with ``params``): what its plan is asked
    with. Kept in memory, never written out."""

    sql: str
    params: list[Any] | None


@dataclass(slots=True)
class FingerprintResult:
    fingerprint: str
    normalized: str
    before: Side
    after: Side
    regression: bool = False
    reason: str | None = None
    plan: list[Any] | None = None  # EXPLAIN (FORMAT JSON) on the target, constants masked
    plan_error: str | None = None
    findings: list[dict[str, Any]] | None = None  # dbsight.advise.analyze_plan's, when there
    sample: Sample | None = field(default=None, repr=False)

    def judge(self) -> None:
        self.reason = regression_reason(self.before, self.after)
        self.regression = self.reason is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "normalized": self.normalized,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "regression": self.regression,
            "reason": self.reason,
            "plan": self.plan,
            "plan_error": self.plan_error,
            "findings": self.findings,
        }


def regression_reason(before: Side, after: Side) -> str | None:
    """Why ``after`` regressed against ``before`` (see the module docstring), or None."""
    reasons: list[str] = []
    if after.errors and (
        before.calls == 0 or after.errors * before.calls > before.errors * after.calls
    ):
        codes = ", ".join(sorted(after.sqlstates)) or "?"
        reasons.append(f"new errors: {before.errors} -> {after.errors} ({codes})")
    b, a = before.p95_ms, after.p95_ms
    if b is not None and a is not None:
        worse = a - b
        if worse >= REGRESSION_MS and a >= b * (1.0 + REGRESSION_RATIO):
            percent = f"+{worse / b * 100.0:.0f} %" if b > 0 else "from 0"
            reasons.append(f"p95 {b:.2f} ms -> {a:.2f} ms ({percent})")
    return "; ".join(reasons) or None


def from_outcomes(outcomes: Iterable[Outcome]) -> list[FingerprintResult]:
    """Captured against replayed, per fingerprint, over the statements the replay sent."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.statement.fingerprint].append(outcome)
    results: list[FingerprintResult] = []
    for fingerprint, group in groups.items():
        captured = [o.statement for o in group]
        before = Side.of(
            (s.duration_s for s in captured if s.sqlstate is None),
            (s.sqlstate for s in captured if s.sqlstate is not None),
        )
        after = Side.of(
            (o.duration_s for o in group if o.sqlstate is None and o.duration_s is not None),
            (
                o.sqlstate or "08006"
                for o in group
                if o.sqlstate is not None or o.duration_s is None
            ),
        )
        ran = [o for o in group if o.sqlstate is None and o.duration_s is not None]
        slowest = max(ran or group, key=lambda o: o.duration_s or 0.0).statement
        result = FingerprintResult(
            fingerprint, captured[0].normalized, before, after,
            sample=Sample(slowest.sql or "", slowest.params),
        )  # fmt: skip
        result.judge()
        results.append(result)
    return results


def read_report(path: Path) -> dict[str, Any]:
    """A replay's ``--json`` output, checked enough to compare; `ReplayError` otherwise."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise bad_input(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError):
        raise bad_input(f"{path}: not JSON; expected the output of dbsight replay --json") from None
    rows = data.get("fingerprints") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise bad_input(f'{path}: not a dbsight replay report (no "fingerprints" list)')
    for n, row in enumerate(rows):
        if not (
            isinstance(row, dict)
            and isinstance(row.get("fingerprint"), str)
            and isinstance(row.get("normalized"), str)
            and isinstance(row.get("after"), dict)
        ):
            raise bad_input(
                f"{path}: fingerprint #{n + 1} is not a replay result (fingerprint, "
                "normalized, after)"
            )
    return data


def compare_reports(
    a: Mapping[str, Any], b: Mapping[str, Any], names: tuple[str, str]
) -> list[FingerprintResult]:
    """Per fingerprint, ``a``'s after (before) against ``b``'s after (after); a fingerprint
    only one of them replayed has an empty other side. ``b``'s plan goes with a regression."""
    first = {row["fingerprint"]: row for row in a["fingerprints"]}
    second = {row["fingerprint"]: row for row in b["fingerprints"]}
    results: list[FingerprintResult] = []
    for fingerprint in [*first, *(f for f in second if f not in first)]:
        row_a, row_b = first.get(fingerprint), second.get(fingerprint)
        before, after = _after(row_a, names[0]), _after(row_b, names[1])
        normalized = (row_b or row_a or {})["normalized"]
        result = FingerprintResult(fingerprint, normalized, before, after)
        result.judge()
        if result.regression and row_b is not None:
            plan = row_b.get("plan")
            result.plan = plan if isinstance(plan, list) else None
            findings = row_b.get("findings")
            result.findings = findings if isinstance(findings, list) else None
        results.append(result)
    return results


def _after(row: Mapping[str, Any] | None, name: str) -> Side:
    if row is None:
        return Side.empty()
    try:
        return Side.from_dict(row["after"])
    except (ValueError, TypeError) as exc:
        raise bad_input(f"{name}: fingerprint {row['fingerprint']}: {exc}") from None
