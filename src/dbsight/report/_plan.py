"""EXPLAIN (FORMAT JSON) plans as nested lists: each node a ``<details>`` (keyboard-usable
without script: Tab to its summary, Enter or Space to open it) whose summary names the
node, its relation and its cost, rows and time, with the node's conditions and counters
inside and its child nodes below. The plan's text is escaped; it is redacted beforehand
(see `_document`) unless the report includes query bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ..export.slowlog import plan_root
from . import _format

# Nodes this shallow start open, and those with a finding or above one; others on demand.
OPEN_DEPTH = 2
# The properties shown inside a node, in this order, when the plan has them.
PROPERTIES = (
    "Join Type", "Strategy", "Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond",
    "Join Filter", "Filter", "Rows Removed by Filter", "Rows Removed by Join Filter",
    "Rows Removed by Index Recheck", "Sort Key", "Sort Method", "Sort Space Used",
    "Sort Space Type", "Group Key", "Hash Buckets", "Hash Batches", "Peak Memory Usage",
    "Heap Fetches", "Exact Heap Blocks", "Lossy Heap Blocks", "Workers Planned",
    "Workers Launched", "Shared Hit Blocks", "Shared Read Blocks", "Temp Read Blocks",
    "Temp Written Blocks", "Parent Relationship", "Subplan Name",
)  # fmt: skip


def _label(node: Mapping[str, Any]) -> str:
    text = str(node.get("Node Type") or "?")
    if node.get("Relation Name"):
        text += f" on {node['Relation Name']}"
        alias = node.get("Alias")
        if alias and alias != node["Relation Name"]:
            text += f" {alias}"
    if node.get("Index Name"):
        text += f" using {node['Index Name']}"
    return text


def _figures(node: Mapping[str, Any]) -> str:
    parts = []
    if node.get("Total Cost") is not None:
        parts.append(f"cost {float(node['Total Cost']):,.2f}")
    if node.get("Plan Rows") is not None:
        parts.append(f"~{_format.count(node['Plan Rows'])} rows")
    if node.get("Actual Total Time") is not None:
        loops = int(node.get("Actual Loops") or 1)
        parts.append(f"actual {_format.ms(float(node['Actual Total Time']))}")
        rows = _format.count(node.get("Actual Rows"))
        parts.append(f"{rows} rows" + (f" × {loops:,} loops" if loops > 1 else ""))
    return " · ".join(parts)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _flags(node: Mapping[str, Any], findings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        f
        for f in findings
        if f.get("node") == node.get("Node Type")
        and (f.get("relation") is None or f.get("relation") == node.get("Relation Name"))
    ]


def _leads_to_finding(node: Mapping[str, Any], findings: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a node below ``node`` has a finding: such nodes start open, down to it."""
    if not findings:
        return False
    stack = [c for c in node.get("Plans") or () if isinstance(c, Mapping)]
    while stack:
        child = stack.pop()
        if _flags(child, findings):
            return True
        stack.extend(c for c in child.get("Plans") or () if isinstance(c, Mapping))
    return False


def _node(node: Mapping[str, Any], findings: Sequence[Mapping[str, Any]], depth: int) -> str:
    badges = "".join(
        f' <span class="sev sev-{escape(str(f.get("severity") or "info"))}">'
        f'{escape(str(f.get("kind") or "finding").replace("_", " "))}</span>'
        for f in _flags(node, findings)
    )
    figures = _figures(node)
    summary = (
        f'<span class="node">{escape(_label(node))}</span>'
        + (f' <span class="figures">{escape(figures)}</span>' if figures else "")
        + badges
    )
    rows = "".join(
        f"<dt>{escape(key)}</dt><dd>{escape(_value(node[key]))}</dd>"
        for key in PROPERTIES
        if node.get(key) not in (None, "", [])
    )
    children = [c for c in node.get("Plans") or () if isinstance(c, Mapping)]
    inner = (f'<dl class="props">{rows}</dl>' if rows else "") + (
        '<ul class="plan">' + "".join(_node(c, findings, depth + 1) for c in children) + "</ul>"
        if children
        else ""
    )
    if not inner:
        return f'<li><div class="leaf">{summary}</div></li>'
    flagged = depth < OPEN_DEPTH or _flags(node, findings) or _leads_to_finding(node, findings)
    opened = " open" if flagged else ""
    return f"<li><details{opened}><summary>{summary}</summary>{inner}</details></li>"


def plan_tree(plan: Any, findings: Sequence[Mapping[str, Any]] = ()) -> str:
    """The plan as a nested list (empty string when ``plan`` is not a plan)."""
    try:
        root = plan_root(plan)
    except (ValueError, TypeError):
        return ""
    if root is None:
        return ""
    return f'<ul class="plan plan-root">{_node(root, findings, 0)}</ul>'
