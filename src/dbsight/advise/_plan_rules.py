"""The rules of the plan analyzer, one function per finding kind, with the thresholds the
plan viewers use (PEV2, explain.depesz.com, pganalyze).

Every message is built from node types, relation and column names and numbers: a plan's
conditions quote the statement's constants and parameters, so their text never goes into a
finding (`filter_columns` keeps only the column names of a Filter).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

from ._plan_model import PlanFinding, Severity, TableStats
from ._plan_nodes import PASS_THROUGH, Node, PlanTree

__all__ = ["RULES", "misestimate_factor", "stale_statistics"]

# Row misestimate: max(actual/estimated, estimated/actual) over these is info/warning/critical.
MISESTIMATE = ((1000.0, "critical"), (100.0, "warning"), (10.0, "info"))
# Sequential scans: tables of at least this many rows, filters removing more than these.
SEQ_SCAN_MIN_ROWS = 10_000
SEQ_SCAN_REMOVED = ((0.9, "critical"), (0.5, "warning"))
NESTED_LOOP_MIN_LOOPS = 1_000
HEAP_FETCH_SHARE = 0.4
DOMINANT_SHARE = 0.5

Rule = Callable[[PlanTree, Mapping[str, TableStats]], list[PlanFinding]]


def _n(value: float) -> str:
    """300000 -> ``300,000``."""
    return f"{round(value):,}"


def _rows(value: float) -> str:
    return f"{_n(value)} row" + ("" if round(value) == 1 else "s")


def _pct(share: float) -> str:
    """Rounded down: a scan that keeps one row of 100,000 removes 99.9 %, not 100.0 %."""
    return f"{math.floor(share * 1000 + 1e-9) / 10:.1f} %"


def _tier(value: float, tiers: tuple[tuple[float, str], ...]) -> Severity | None:
    for bound, severity in tiers:
        if value > bound:
            return severity  # type: ignore[return-value]
    return None


def _on(node: Node) -> str:
    relation = node.relation
    return f"{node.label} on {relation}" if relation else node.label


# -- row misestimates ------------------------------------------------------------------
def misestimate_factor(node: Node) -> float | None:
    """max(actual/estimated, estimated/actual), both per loop and at least 1; None when the
    node has no ANALYZE figures or never ran."""
    if not node.analyzed or not node.executed:
        return None
    actual, estimated = max(node.actual_rows, 1.0), max(node.plan_rows, 1.0)
    return max(actual / estimated, estimated / actual)


def _misestimated(node: Node) -> float | None:
    """The node's factor when it counts: not under a Limit (which stops its subtree early,
    so fewer rows than estimated is expected) and not a node that passes its child's rows on."""
    if node.under_limit or node.type in PASS_THROUGH:
        return None
    factor = misestimate_factor(node)
    return factor if factor is not None and factor > MISESTIMATE[-1][0] else None


def misestimates(tree: PlanTree, stats: Mapping[str, TableStats]) -> list[PlanFinding]:
    """Where an estimate goes wrong first: a node whose own estimate is off while its
    children's are not (a bad estimate below makes every node above it look off too)."""
    findings = []
    for node in tree.nodes:
        factor = _misestimated(node)
        if factor is None:
            continue
        if any(_misestimated(below) for child in node.children for below in child.walk()):
            continue
        severity = _tier(factor, MISESTIMATE)
        assert severity is not None
        direction = "more" if node.actual_rows >= node.plan_rows else "fewer"
        findings.append(
            PlanFinding(
                kind="misestimate",
                severity=severity,
                node=node.label,
                relation=node.relation_below(),
                message=(
                    f"{_on(node)} estimated {_rows(node.plan_rows)} and got "
                    f"{_n(node.actual_rows)} ({factor:,.0f}x {direction})"
                    + (f" in each of {_n(node.loops)} loops" if node.loops > 1 else "")
                ),
                numbers={
                    "estimated_rows": node.plan_rows,
                    "actual_rows": node.actual_rows,
                    "loops": node.loops,
                    "factor": round(factor, 1),
                },
                suggestion=(
                    "the planner chose this plan for the wrong row count: check the "
                    "table's statistics (ANALYZE), correlated columns (CREATE STATISTICS) "
                    "or a condition it cannot estimate"
                ),
                node_index=node.index,
            )
        )
    return findings


def stale_statistics(
    findings: list[PlanFinding], tree: PlanTree, stats: Mapping[str, TableStats]
) -> list[PlanFinding]:
    """A misestimate of 10x or more on a table never analyzed, or changed by more than 10 %
    of its rows since: its statistics are the likely cause."""
    out: list[PlanFinding] = []
    seen: set[str] = set()
    for finding in findings:
        relation = finding.relation
        if finding.kind != "misestimate" or relation is None or relation in seen:
            continue
        table = stats.get(relation)
        if table is None or not table.stale:
            continue
        seen.add(relation)
        factor = float(finding.numbers.get("factor") or 0.0)
        if table.never_analyzed:
            why = "was never analyzed"
        else:
            share = (table.n_mod_since_analyze or 0) / max(table.n_live_tup or 0, 1)
            why = (
                f"had {_n(table.n_mod_since_analyze or 0)} rows changed since its last "
                f"ANALYZE ({_pct(share)} of {_n(table.n_live_tup or 0)})"
            )
        out.append(
            PlanFinding(
                kind="stale_statistics",
                severity="critical" if factor > MISESTIMATE[0][0] else "warning",
                node=finding.node,
                relation=relation,
                message=f"{relation} {why}; its estimate is off {factor:,.0f}x",
                numbers={
                    "factor": factor,
                    "n_live_tup": table.n_live_tup,
                    "n_mod_since_analyze": table.n_mod_since_analyze,
                    "never_analyzed": table.never_analyzed,
                },
                suggestion=f"ANALYZE {relation}",
                node_index=finding.node_index,
            )
        )
    return out


# -- sequential scans ------------------------------------------------------------------
# A Filter's text holds the statement's constants: only identifiers compared with something
# are kept, after every quoted literal and every cast is gone.
_QUOTED = re.compile(r"'(?:[^']|'')*'")
_CAST = re.compile(
    r'::\s*(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*'
    r"(?:\s+(?:varying|precision|with\s+time\s+zone|without\s+time\s+zone))?)(?:\[\])?"
)
_TOKEN = re.compile(
    r'"(?:[^"]|"")+"(?:\.(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*))*'
    r'|[A-Za-z_][\w$]*(?:\.(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*))*'
    r"|<>|!=|<=|>=|!~~\*?|~~\*?|!~\*?|~\*?|@>|<@|&&|\|\||[=<>]|\$\d+|\S"
)
_OPERATORS = frozenset(
    {"=", "<>", "!=", "<", ">", "<=", ">=", "~~", "~~*", "!~~", "!~~*", "~", "~*", "!~",
     "!~*", "@>", "<@", "&&", "IS", "IN"}
)  # fmt: skip
_NOT_COLUMNS = frozenset(
    {"and", "or", "not", "null", "true", "false", "any", "all", "some", "is", "in", "array",
     "distinct", "from", "subplan", "initplan", "hashed", "returns", "unknown"}
)  # fmt: skip


def filter_columns(condition: object) -> list[str]:
    """Column names compared in a plan condition such as ``((status <> 'x'::text) AND
    (o.created_at > $1))`` -> ``["status", "created_at"]``; never a constant."""
    if not isinstance(condition, str):
        return []
    tokens = _TOKEN.findall(_CAST.sub("", _QUOTED.sub("''", condition)))
    columns: list[str] = []
    for index, token in enumerate(tokens):
        if not (token[0].isalpha() or token[0] in '_"') or token.lower() in _NOT_COLUMNS:
            continue
        after = next((t for t in tokens[index + 1 :] if t != ")"), "")
        before = next((t for t in reversed(tokens[:index]) if t != "("), "")
        if after == "(" or not (after.upper() in _OPERATORS or before.upper() in _OPERATORS):
            continue
        name = re.split(r'\.(?=(?:[^"]*"[^"]*")*[^"]*$)', token)[-1]
        name = name[1:-1].replace('""', '"') if name.startswith('"') else name
        if name not in columns:
            columns.append(name)
    return columns


def seq_scans(tree: PlanTree, stats: Mapping[str, TableStats]) -> list[PlanFinding]:
    """A sequential scan of a table of 10,000 rows or more whose Filter throws most of them
    away: with ANALYZE from the rows it removed, without it from the estimate against the
    table's size (``table_stats``)."""
    findings = []
    for node in tree.nodes:
        if node.type != "Seq Scan" or "Filter" not in node.raw or node.relation is None:
            continue
        table = stats.get(node.relation)
        table_rows = table.rows if table is not None else None
        if node.analyzed:
            if not node.executed:
                continue
            read = node.actual_rows + node.removed_by_filter  # per loop, as printed
            removed_share = node.removed_by_filter / read if read else 0.0
            if node.processes > 1:  # each process read its share of the table
                read *= node.loops
            rows = table_rows if table_rows else read
            estimated = False
        else:
            if not table_rows:
                continue  # without ANALYZE, the table's size is needed
            rows, estimated = table_rows, True
            kept = node.plan_rows * (node.processes if node.processes > 1 else 1)
            removed_share = max(0.0, 1.0 - kept / table_rows)
        if rows < SEQ_SCAN_MIN_ROWS:
            continue
        severity = _tier(removed_share, SEQ_SCAN_REMOVED)
        if severity is None:
            continue
        columns = filter_columns(node.get("Filter"))
        # the loops of a parallel scan are its processes, each reading a share
        repeated = node.analyzed and node.loops > 1 and node.processes == 1
        loops = f", {_n(node.loops)} times" if repeated else ""
        verb = "would remove an estimated" if estimated else "removes"
        on = f"({', '.join(columns)})" if columns else "the filtered columns"
        findings.append(
            PlanFinding(
                kind="seq_scan",
                severity=severity,
                node=node.label,
                relation=node.relation,
                message=f"{_on(node)} {verb} {_pct(removed_share)} of {_n(rows)} rows{loops}",
                numbers={
                    "rows": rows,
                    "removed_share": round(removed_share, 4),
                    "loops": node.loops if node.analyzed else None,
                    "estimated": estimated,
                    "columns": columns,
                },
                suggestion=f"an index on {node.relation} {on} would read only the rows kept",
                node_index=node.index,
            )
        )
    return findings


# -- memory ----------------------------------------------------------------------------
def _work_mem(needed_kb: float) -> str:
    """A ``work_mem`` value that holds ``needed_kb``: the next power of two in MB (4MB at
    least, PostgreSQL's default)."""
    mb = max(4, 2 ** math.ceil(math.log2(max(needed_kb / 1024.0, 1.0))))
    return f"{mb}MB"


def _sort_disk_kb(node: Node) -> float:
    """kB a Sort wrote to disk, the workers' included."""
    spilled = 0.0
    for part in [node.raw, *(node.get("Workers") or ())]:
        if not isinstance(part, dict):
            continue
        method = str(part.get("Sort Method") or "")
        if part.get("Sort Space Type") == "Disk" or method.startswith("external"):
            spilled += float(part.get("Sort Space Used") or 0)
    return spilled


def disk_spills(tree: PlanTree, stats: Mapping[str, TableStats]) -> list[PlanFinding]:
    """Sorts, hashes and hash aggregates that did not fit in ``work_mem`` and went to disk."""
    findings = []
    for node in tree.nodes:
        if node.type in ("Sort", "Incremental Sort"):
            spilled = _sort_disk_kb(node)
            if not spilled and "external" not in str(node.get("Sort Method") or ""):
                continue
            # tuples in memory take more room than on disk: twice the spill, rounded up
            needed = 2 * spilled
            what = f"{node.label} spilled {_n(spilled)} kB to disk ({node.get('Sort Method')})"
            numbers = {"disk_kb": spilled, "sort_method": node.get("Sort Method")}
        elif node.type == "Hash" and int(node.get("Hash Batches") or 1) > 1:
            batches = int(node.get("Hash Batches") or 1)
            peak = float(node.get("Peak Memory Usage") or 0)
            needed = peak * batches
            what = f"Hash{_over(node)} used {batches} batches on disk (peak {_n(peak)} kB each)"
            numbers = {"batches": batches, "peak_kb": peak,
                       "original_batches": node.get("Original Hash Batches")}  # fmt: skip
        elif node.type == "Aggregate" and float(node.get("Disk Usage") or 0) > 0:
            spilled = float(node.get("Disk Usage") or 0)
            needed = float(node.get("Peak Memory Usage") or 0) + spilled
            batches = node.get("HashAgg Batches")
            what = f"HashAggregate{_over(node)} spilled {_n(spilled)} kB to disk"
            numbers = {"disk_kb": spilled, "batches": batches}
        else:
            continue
        value = _work_mem(needed)
        findings.append(
            PlanFinding(
                kind="disk_spill",
                severity="warning",
                node=node.label,
                relation=node.relation_below(),
                message=f"{what}: work_mem is too small",
                numbers={**numbers, "suggested_work_mem": value},
                suggestion=(
                    f"raise work_mem to {value} for this statement "
                    f"(SET LOCAL work_mem = '{value}') or for its role"
                ),
                node_index=node.index,
            )
        )
    return findings


def _over(node: Node) -> str:
    relation = node.relation_below()
    return f" over {relation}" if relation else ""


# -- loops, bitmaps, heap fetches ------------------------------------------------------
def nested_loops(tree: PlanTree, stats: Mapping[str, TableStats]) -> list[PlanFinding]:
    """A Nested Loop whose inner side runs 1,000 times or more (as measured with ANALYZE,
    as the outer side's estimated rows without)."""
    findings = []
    for node in tree.nodes:
        if node.type != "Nested Loop" or len(node.children) < 2:
            continue
        outer, inner = node.children[0], node.children[1]
        if inner.analyzed:
            loops, estimated = inner.loops, False
        else:
            loops, estimated = outer.plan_rows, True
        if loops < NESTED_LOOP_MIN_LOOPS:
            continue
        relation = inner.relation_below()
        inner_name = f"{inner.label} on {relation}" if relation else inner.label
        verb = "would run" if estimated else "runs"
        findings.append(
            PlanFinding(
                kind="nested_loop",
                severity="info" if estimated else "warning",
                node=node.label,
                relation=relation,
                message=f"Nested Loop {verb} its inner {inner_name} {_n(loops)} times",
                numbers={"loops": loops, "estimated": estimated,
                         "inner_time_ms": round(inner.total_time_ms, 3) if inner.analyzed
                         else None},  # fmt: skip
                suggestion=(
                    "one pass would do: a hash or merge join (often chosen once the outer "
                    "side's estimate is right), or an index that makes each inner lookup cheap"
                ),
                node_index=node.index,
            )
        )
    return findings


def lossy_bitmaps(tree: PlanTree, stats: Mapping[str, TableStats]) -> list[PlanFinding]:
    findings = []
    for node in tree.nodes:
        lossy = float(node.get("Lossy Heap Blocks") or 0)
        if node.type != "Bitmap Heap Scan" or lossy <= 0:
            continue
        exact = float(node.get("Exact Heap Blocks") or 0)
        share = lossy / (lossy + exact)
        findings.append(
            PlanFinding(
                kind="lossy_bitmap",
                severity="warning",
                node=node.label,
                relation=node.relation,
                message=(
                    f"{_on(node)} read {_n(lossy)} lossy heap blocks ({_pct(share)} of "
                    f"{_n(lossy + exact)}), rechecking every row in them"
                ),
                numbers={"lossy_blocks": lossy, "exact_blocks": exact},
                suggestion="raise work_mem so that the bitmap keeps one bit per row",
                node_index=node.index,
            )
        )
    return findings


def heap_fetches(tree: PlanTree, stats: Mapping[str, TableStats]) -> list[PlanFinding]:
    """An Index Only Scan that went to the table for more than 40 % of its rows: the
    visibility map is out of date (the table needs a VACUUM)."""
    findings = []
    for node in tree.nodes:
        if node.type != "Index Only Scan" or not node.analyzed:
            continue
        rows = node.actual_rows_total  # Heap Fetches is a total over the loops
        fetches = float(node.get("Heap Fetches") or 0)
        if rows <= 0 or fetches / rows <= HEAP_FETCH_SHARE:
            continue
        share = min(fetches / rows, 1.0)
        findings.append(
            PlanFinding(
                kind="heap_fetches",
                severity="warning",
                node=node.label,
                relation=node.relation,
                message=(
                    f"{_on(node)} fetched {_n(fetches)} of its {_n(rows)} rows from the "
                    f"table ({_pct(share)})"
                ),
                numbers={"heap_fetches": fetches, "rows": rows, "share": round(share, 4)},
                suggestion=f"VACUUM {node.relation or 'the table'} to update its visibility map",
                node_index=node.index,
            )
        )
    return findings


def dominant_nodes(tree: PlanTree, stats: Mapping[str, TableStats]) -> list[PlanFinding]:
    """The node that takes more than half of the statement's time (by its own time, net of
    its children's); a plan of one node is not worth saying so."""
    total = tree.statement_time_ms
    if not tree.analyzed or total <= 0 or len(tree.nodes) < 2:
        return []
    node = max(tree.nodes, key=lambda n: n.exclusive_time_ms)
    share = node.exclusive_time_ms / total
    if share <= DOMINANT_SHARE:
        return []
    return [
        PlanFinding(
            kind="dominant_node",
            severity="info",
            node=node.label,
            relation=node.relation_below(),
            message=(
                f"{_on(node)} takes {_pct(min(share, 1.0))} of the statement's time "
                f"({node.exclusive_time_ms:,.1f} of {total:,.1f} ms)"
            ),
            numbers={
                "time_ms": round(node.exclusive_time_ms, 3),
                "statement_ms": round(total, 3),
                "share": round(min(share, 1.0), 4),
            },
            suggestion=None,
            node_index=node.index,
        )
    ]


RULES: tuple[Rule, ...] = (
    misestimates,
    seq_scans,
    disk_spills,
    nested_loops,
    lossy_bitmaps,
    heap_fetches,
    dominant_nodes,
)
