"""EXPLAIN (FORMAT JSON) output as a tree of `Node` with the figures the rules compare,
normalized once: totals over loops, time per node net of its children, parallel workers.

PostgreSQL prints ``Actual Rows``, ``Actual Total Time`` and ``Rows Removed by Filter``
per loop (averaged), but ``Heap Fetches`` and the heap block counts as totals; a node under
a Gather runs once in each process, at the same time, so its loops are not consecutive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Node", "PlanTree", "parse_plan"]

# Nodes that hand their child's rows on unchanged: their estimates are their child's.
PASS_THROUGH = frozenset(
    {"Hash", "Materialize", "Memoize", "Sort", "Incremental Sort", "Gather", "Gather Merge",
     "Unique", "Result", "Limit", "LockRows"}
)  # fmt: skip


@dataclass(eq=False)
class Node:
    raw: dict[str, Any]
    index: int
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    processes: int = 1  # > 1 under a Gather: the loops run side by side
    under_limit: bool = False  # a Limit or a Merge Join may stop it before its last row

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    @property
    def type(self) -> str:
        return str(self.raw.get("Node Type") or "?")

    @property
    def relation(self) -> str | None:
        name = self.raw.get("Relation Name")
        return str(name) if name else None

    @property
    def label(self) -> str:
        """``Seq Scan``, ``Parallel Seq Scan``, ``Hash Join``, ``Aggregate``..."""
        kind = self.type
        if self.raw.get("Parallel Aware"):
            kind = f"Parallel {kind}"
        return kind

    def relation_below(self) -> str | None:
        """The node's relation, else the one relation its subtree reads (None for several)."""
        if self.relation:
            return self.relation
        found = {node.relation for node in self.walk() if node.relation}
        return found.pop() if len(found) == 1 else None

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    # -- ANALYZE figures -------------------------------------------------------------
    @property
    def analyzed(self) -> bool:
        return "Actual Loops" in self.raw

    @property
    def loops(self) -> float:
        return float(self.raw.get("Actual Loops") or 0)

    @property
    def executed(self) -> bool:
        return self.loops > 0

    @property
    def plan_rows(self) -> float:
        return float(self.raw.get("Plan Rows") or 0)

    @property
    def actual_rows(self) -> float:
        """Rows per loop (as printed)."""
        return float(self.raw.get("Actual Rows") or 0)

    @property
    def actual_rows_total(self) -> float:
        return self.actual_rows * self.loops

    @property
    def removed_by_filter(self) -> float:
        """Rows per loop the Filter threw away."""
        return float(self.raw.get("Rows Removed by Filter") or 0)

    @property
    def total_time_ms(self) -> float:
        """Wall time of the node and its subtree: loops one after another add up, the
        loops of a parallel node (one per process) overlap."""
        per_loop = float(self.raw.get("Actual Total Time") or 0.0)
        return per_loop * max(1.0, self.loops / self.processes)

    @property
    def exclusive_time_ms(self) -> float:
        """The node's own time: its total minus its children's (never below zero; an
        InitPlan's or a CTE's time may be counted in more than one place)."""
        own = self.total_time_ms - sum(child.total_time_ms for child in self.children)
        return max(0.0, own)


@dataclass
class PlanTree:
    root: Node
    nodes: list[Node]
    execution_time_ms: float | None
    analyzed: bool

    @property
    def statement_time_ms(self) -> float:
        if self.execution_time_ms is not None:
            return self.execution_time_ms
        return self.root.total_time_ms


def _document(plan: Any) -> dict[str, Any]:
    if isinstance(plan, (bytes, bytearray, memoryview)):
        plan = bytes(plan).decode()
    if isinstance(plan, str):
        plan = json.loads(plan)
    if isinstance(plan, list):
        if not plan:
            raise ValueError("the EXPLAIN output is an empty list")
        plan = plan[0]
    if isinstance(plan, dict) and isinstance(plan.get("Plan"), dict):
        return plan
    if isinstance(plan, dict) and "Node Type" in plan:
        return {"Plan": plan}
    raise ValueError("not EXPLAIN (FORMAT JSON) output: no plan node found")


def parse_plan(plan: Any) -> PlanTree:
    """The tree of ``plan`` (EXPLAIN (FORMAT JSON) output as text, bytes or parsed JSON;
    the list, its first element or the top node). Raises ValueError for anything else."""
    document = _document(plan)
    nodes: list[Node] = []

    def build(raw: dict[str, Any], parent: Node | None, processes: int) -> Node:
        node = Node(raw, len(nodes), parent, processes=processes)
        nodes.append(node)
        if parent is not None:
            node.under_limit = parent.under_limit or parent.type in ("Limit", "Merge Join")
        if node.type in ("Gather", "Gather Merge"):
            launched = raw.get("Workers Launched", raw.get("Workers Planned"))
            # the leader runs the plan too (parallel_leader_participation, on by default)
            processes = int(launched or 0) + 1
        for child_raw in raw.get("Plans") or ():
            if isinstance(child_raw, dict):
                node.children.append(build(child_raw, node, processes))
        return node

    root = build(document["Plan"], None, 1)
    execution = document.get("Execution Time")
    return PlanTree(
        root=root,
        nodes=nodes,
        execution_time_ms=float(execution) if execution is not None else None,
        analyzed=root.analyzed,
    )
