"""`report_json`: everything a report shows, as one JSON-ready document; `build_report`
renders the same document as HTML, so both say the same and both keep to the same privacy.

Privacy: statements are shown as their normalized text only. Unless the inputs say
``include_query_bodies``, a slow query's ``sql``/``params`` are dropped (with its error
message, which may quote them), its plan is redacted as the slow log redacts it (the
constants in its conditions masked; plans from a remote summary are already), the
constants of an index's predicate are masked and a check's query texts are normalized.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..export.slowlog import _mask_constants, redact_plan
from ._inputs import ReportInputs
from ._merge import capture_statements, combine, merge_summaries
from ._timeline import Timeline, from_capture, from_slow

TOP_N = 20
TOP_ORDERS = {  # the report's four rankings: key, and whether a statement belongs
    "total_time": ("total_time_s", lambda e: True),
    "calls": ("calls", lambda e: True),
    "mean_time": ("mean_time_s", lambda e: True),
    "errors": ("errors", lambda e: (e.get("errors") or 0) > 0),
}
_QUERY_KEYS = frozenset({"query", "sql", "statement"})


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def findings_of(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A slow record's or statement's plan findings (on the record or its plan summary)."""
    found = record.get("findings")
    if not found:
        found = (record.get("plan_summary") or {}).get("findings")
    return [dict(f) for f in found or () if isinstance(f, Mapping)]


def _private_slow(record: Mapping[str, Any], bodies: bool) -> dict[str, Any]:
    out = dict(record)
    out["findings"] = findings_of(record)
    if bodies:
        return out
    had_bodies = "sql" in out or "params" in out
    out.pop("sql", None)
    out.pop("params", None)
    if had_bodies:
        out.pop("error_message", None)  # with bodies it quotes the statement's values
    if out.get("plan") is not None:
        out["plan"] = redact_plan(out["plan"])
    return out


def _private_advice(advice: Mapping[str, Any], bodies: bool) -> dict[str, Any]:
    out = dict(advice)
    if bodies:
        return out
    indexes = []
    for index in advice.get("indexes") or ():
        index = dict(index)
        if index.get("where"):  # a partial index's predicate names a value from the traffic
            index["where"] = _mask_constants(str(index["where"]))
            index["create"] = _mask_constants(str(index.get("create") or ""))
            index["values_masked"] = True
        indexes.append(index)
    out["indexes"] = indexes
    return out


def _normalized(text: str) -> str:
    from ..sql import analyze

    try:
        return analyze(text, "postgresql").normalized
    except Exception:  # text the parser gives up on: every constant masked instead
        return _mask_constants(text)


def _private_checks(checks: Mapping[str, Any], bodies: bool) -> dict[str, Any]:
    out = dict(checks)
    if bodies:
        return out
    results = []
    for check in checks.get("checks") or ():
        check = dict(check)
        check["items"] = [
            {
                key: _normalized(value) if key in _QUERY_KEYS and isinstance(value, str) else value
                for key, value in item.items()
            }
            if isinstance(item, Mapping)
            else item
            for item in check.get("items") or ()
        ]
        results.append(check)
    out["checks"] = results
    return out


def _time_range(
    statements: list[dict[str, Any]], timeline: Any, n_plus_one: list[dict[str, Any]]
) -> tuple[float | None, float | None]:
    starts = [e["first_seen"] for e in statements if e.get("first_seen")]
    ends = [e["last_seen"] for e in statements if e.get("last_seen")]
    ends += [f["last_seen"] for f in n_plus_one if f.get("last_seen")]
    if timeline is not None and timeline.buckets:
        starts.append(timeline.start)
        ends.append(timeline.end)
    return (min(starts) if starts else None, max(ends) if ends else None)


def report_json(inputs: ReportInputs) -> dict[str, Any]:
    """The report as a JSON-ready document (what ``dbsight report --json`` prints)."""
    return assemble(inputs)[0]


def assemble(inputs: ReportInputs) -> tuple[dict[str, Any], Timeline | None]:
    """`report_json`'s document, and its timeline for the plots."""
    bodies = inputs.include_query_bodies
    merged = merge_summaries(inputs.summaries)
    statements = combine(merged, capture_statements(inputs.captured), inputs.workload)
    slow = [
        _private_slow(record, bodies)
        for record in (inputs.slow if inputs.slow is not None else merged.slow)
    ]
    n_plus_one = inputs.n_plus_one if inputs.n_plus_one is not None else merged.n_plus_one
    timeline = inputs.timeline or from_capture(inputs.captured) or from_slow(slow)
    start, end = _time_range(statements, timeline, n_plus_one)
    totals = dict(merged.totals)
    if not inputs.summaries and statements:  # a capture or workload alone: its own totals
        totals = {
            "fingerprints": len(statements),
            "calls": sum(e.get("calls") or 0 for e in statements),
            "errors": sum(e.get("errors") or 0 for e in statements),
            "rows": sum(e.get("rows") or 0 for e in statements),
            "total_time_s": sum(e.get("total_time_s") or 0.0 for e in statements),
        }
    top = {}
    for order, (key, keep) in TOP_ORDERS.items():
        chosen = [e for e in statements if keep(e) and e.get(key) is not None]
        chosen.sort(key=lambda e, key=key: float(e[key]), reverse=True)  # type: ignore[misc]
        top[order] = [e["fingerprint"] for e in chosen[:TOP_N]]
    document = {
        "generated_at": _iso(inputs.generated_at),
        "sources": list(inputs.sources),
        "services": merged.services,
        "instances": len(inputs.summaries),
        "workers": merged.workers,
        "time_range": {"from": _iso(start), "to": _iso(end)},
        "totals": totals,
        "statements": statements,
        "top": top,
        "timeline": timeline.to_dict() if timeline is not None else None,
        "slow": slow,
        "n_plus_one": list(n_plus_one),
        "advice": _private_advice(inputs.advice, bodies) if inputs.advice is not None else None,
        "checks": _private_checks(inputs.checks, bodies) if inputs.checks is not None else None,
    }
    return document, timeline
