"""The plan analyzer: EXPLAIN (FORMAT JSON) in, `PlanFinding`s out, most severe first.

Works on plain EXPLAIN output (estimates only: sequential scans against the table's size,
nested loops by their estimated loops) and better on EXPLAIN (ANALYZE, BUFFERS) output
(misestimates, spills, lossy bitmaps, heap fetches, where the time goes). ``table_stats``
(`TableStats` per relation, see `table_stats_query`) gives the table sizes an estimate-only
plan lacks and the analyze history behind the stale-statistics finding.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ._plan_model import SEVERITY_RANK, PlanFinding, TableStats
from ._plan_nodes import parse_plan
from ._plan_rules import RULES, _misestimated, stale_statistics

__all__ = ["analyze_plan", "needs_table_stats", "parse_table_stats", "table_stats_query"]

TableStatsArg = Mapping[str, TableStats] | Iterable[TableStats] | None


def _by_relation(table_stats: TableStatsArg) -> dict[str, TableStats]:
    if table_stats is None:
        return {}
    if isinstance(table_stats, Mapping):
        return dict(table_stats)
    return {stats.relation: stats for stats in table_stats}


def analyze_plan(plan: Any, *, table_stats: TableStatsArg = None) -> list[PlanFinding]:
    """The findings of one plan (EXPLAIN (FORMAT JSON) output as text or parsed, with or
    without ANALYZE), most severe first. ``table_stats``: `TableStats` by relation name (or
    an iterable of them). Raises ValueError when ``plan`` is not such output."""
    tree = parse_plan(plan)
    stats = _by_relation(table_stats)
    findings: list[PlanFinding] = []
    for rule in RULES:
        findings.extend(rule(tree, stats))
    findings.extend(stale_statistics(findings, tree, stats))
    # stable: within a severity, the rules' order (misestimates, scans, spills ...)
    findings.sort(key=lambda finding: SEVERITY_RANK[finding.severity])
    return findings


# -- what an explainer fetches beside the plan ---------------------------------------------
def needs_table_stats(plan: Any) -> list[str]:
    """The relations whose statistics the analysis of ``plan`` would use: those of an
    estimate-only plan's filtered sequential scans (their size), and those under a
    misestimate of an ANALYZE plan (their analyze history). Empty when none would change
    a finding, so the lookup costs nothing for most plans."""
    try:
        tree = parse_plan(plan)
    except ValueError:
        return []
    wanted: list[str] = []
    for node in tree.nodes:
        relation = None
        if not tree.analyzed and node.type == "Seq Scan" and "Filter" in node.raw:
            relation = node.relation
        elif tree.analyzed and _misestimated(node) is not None:
            relation = node.relation_below()
        if relation and relation not in wanted:
            wanted.append(relation)
    return wanted


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_stats_query(relations: Iterable[str]) -> str | None:
    """One statement returning the statistics of ``relations`` (as the plan names them,
    resolved on the search path) as a single JSON array, or None for no relation. The
    names come from the server's own plan and are quoted, so the statement takes no
    parameters and any driver can run it."""
    names = sorted(set(relations))
    if not names:
        return None
    array = "ARRAY[" + ", ".join(_literal(name) for name in names) + "]::text[]"
    return (
        "SELECT coalesce(json_agg(json_build_object("
        "'relation', r.name, 'reltuples', c.reltuples, 'n_live_tup', s.n_live_tup, "
        "'n_mod_since_analyze', s.n_mod_since_analyze, 'last_analyze', s.last_analyze, "
        "'last_autoanalyze', s.last_autoanalyze)), '[]'::json) "
        f"FROM unnest({array}) AS r(name) "
        "JOIN pg_class c ON c.oid = to_regclass(quote_ident(r.name)) "
        "LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid"
    )


def parse_table_stats(value: Any) -> dict[str, TableStats]:
    """The result of `table_stats_query` (JSON text or parsed) by relation name."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode()
    if isinstance(value, str):
        value = json.loads(value)
    out: dict[str, TableStats] = {}
    for row in value or ():
        if isinstance(row, Mapping) and row.get("relation"):
            stats = TableStats.from_row(row)
            out[stats.relation] = stats
    return out

