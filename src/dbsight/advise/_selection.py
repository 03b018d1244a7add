"""A set of indexes for the whole workload, chosen greedily by benefit.

What adding indexes to the chosen set is worth: for every statement whose planner cost the
addition cuts by at least ``min_savings`` (Dexter's 50 %, now against the set chosen so far:
a smaller drop is within the planner's error, and not worth another index), its observed
total time times the share of its original cost removed. An index's write cost
(`_write_cost`) is subtracted from what it adds.

Moves are single indexes and, for joins, pairs of indexes on two tables of one statement:
an index on either side alone may leave the plan as it was, both together change it. Each
round takes the move that adds most to the set chosen so far, re-evaluating it against that
set first (lazy greedy: a move's gain only shrinks as the set grows, so a stale gain is an
upper bound, and only the top of the queue is re-planned). After the rounds, an index the
others made pointless (no statement's cost at least halves with it, given the rest of the
set) is taken out again.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ._candidates import Candidate
from ._costing import Coster, Evaluation, PlannedStatement

__all__ = ["Selection", "select_indexes"]

Move = frozenset[Candidate]


@dataclass(slots=True)
class Selection:
    chosen: list[Candidate] = field(default_factory=list)
    # a pruned index -> the one that made it pointless
    pruned: dict[Candidate, Candidate | None] = field(default_factory=dict)
    gains: dict[Candidate, float] = field(default_factory=dict)


class _Scorer:
    def __init__(self, statements: list[PlannedStatement], coster: Coster, min_savings: float):
        self.coster = coster
        self.min_savings = min_savings
        self.by_table: dict[str, list[PlannedStatement]] = {}
        for statement in statements:
            for table in statement.tables:
                self.by_table.setdefault(table, []).append(statement)

        self._users: dict[Move, list[PlannedStatement]] = {}

    def affected(self, move: Iterable[Candidate]) -> list[PlannedStatement]:
        """Every statement on the tables of ``move``."""
        seen: dict[str, PlannedStatement] = {}
        for candidate in move:
            for statement in self.by_table.get(candidate.table, []):
                seen[statement.fingerprint] = statement
        return list(seen.values())

    def users(self, move: Move) -> list[PlannedStatement]:
        """The statements whose plan uses an index of ``move`` when it is all there is:
        the only ones its gain is weighed on (a plan that ignores an index alone does not
        take it up when more indexes join it; both sides of a join are a move of their own)."""
        found = self._users.get(move)
        if found is None:
            statements = self.affected(move)
            self.coster.prepare((s, move) for s in statements)
            found = self._users[move] = [
                s for s in statements if (self.coster.get(s, move) or _WORST).used & move
            ]
        return found

    def added(self, statement: PlannedStatement, before: frozenset[Candidate],
              after: frozenset[Candidate]) -> float:  # fmt: skip
        """Read time (ms) going from index set ``before`` to ``after`` saves ``statement``:
        nothing unless its cost drops by ``min_savings`` at least."""
        old = self.coster.get(statement, before)
        new = self.coster.get(statement, after)
        if old is None or new is None or statement.base is None or statement.base.cost <= 0:
            return 0.0
        if new.cost > (1.0 - self.min_savings) * old.cost:
            return 0.0
        return statement.weight_ms * (old.cost - new.cost) / statement.base.cost


def _moves(statements: list[PlannedStatement], coster: Coster) -> list[Move]:
    """Every candidate alone, and for statements on several tables, pairs across two tables
    of their best candidates and join-key candidates."""
    singles: dict[Candidate, None] = {}
    for statement in statements:
        for candidate in statement.candidates:
            singles[candidate] = None
    moves: dict[Move, None] = {frozenset([c]): None for c in singles}
    for statement in statements:
        if len(statement.tables) < 2:
            continue
        per_table: dict[str, list[Candidate]] = {}
        for table in statement.tables:
            mine = [c for c in statement.candidates if c.table == table]
            evaluated = sorted(
                mine, key=lambda c: (coster.get(statement, [c]) or _WORST).cost
            )
            joined = [c for c in mine if c.columns[0] in statement.uses[table].join]
            per_table[table] = list(dict.fromkeys([*evaluated[:1], *joined[:1]]))
        tables = sorted(per_table)
        for i, left in enumerate(tables):
            for right in tables[i + 1 :]:
                for a in per_table[left]:
                    for b in per_table[right]:
                        moves[frozenset([a, b])] = None
    return list(moves)


_WORST = Evaluation(float("inf"), frozenset(), frozenset())


def select_indexes(
    statements: list[PlannedStatement],
    coster: Coster,
    *,
    min_savings: float,
    penalty: Callable[[Candidate], float],
    max_indexes: int,
    progress: Callable[[int, int], None] | None = None,
) -> Selection:
    """The chosen set (in order of choice) and what pruning took out of it."""
    scorer = _Scorer(statements, coster, min_savings)
    # Every candidate alone, on every statement of its table: one round trip per candidate.
    singles = sorted({c for s in statements for c in s.candidates})
    for done, candidate in enumerate(singles, 1):
        coster.prepare((s, [candidate]) for s in scorer.affected([candidate]))
        if progress is not None:
            progress(done, len(singles))
    moves = _moves(statements, coster)
    selection = Selection()
    chosen: frozenset[Candidate] = frozenset()

    def gain(move: Move) -> float:
        new = move - chosen
        if not new:
            return 0.0
        affected = scorer.users(move)
        config = chosen | new
        coster.prepare((s, c) for s in affected for c in (chosen, config))
        added = sum(scorer.added(s, chosen, config) for s in affected)
        return added - sum(penalty(c) for c in new)

    # Pruning can leave a statement with more to gain than it had when a move was last
    # weighed, so the rounds run again on what pruning left, until it takes nothing out.
    tables: set[str] | None = None  # the first round weighs every move; later ones, the tables
    for _ in range(3):                # pruning changed
        heap: list[tuple[float, int, Move]] = []
        for order, move in enumerate(moves):
            if move <= chosen or (tables is not None and not any(c.table in tables for c in move)):
                continue
            value = gain(move)
            if value > 0:
                heap.append((-value, order, move))
        heapq.heapify(heap)
        while heap and len(chosen) < max_indexes:
            _, order, move = heapq.heappop(heap)
            value = gain(move)
            if value <= 0:
                continue
            if heap and value < -heap[0][0] - 1e-9:
                heapq.heappush(heap, (-value, order, move))  # stale: back in the queue
                continue
            new = sorted(move - chosen)
            chosen = chosen | move
            for candidate in new:
                selection.chosen.append(candidate)
                selection.gains[candidate] = value / len(new)
                selection.pruned.pop(candidate, None)
        before = set(selection.pruned)
        if not _prune(selection, scorer, penalty):
            break
        chosen = frozenset(selection.chosen)
        tables = {c.table for c in selection.pruned if c not in before}
    return selection


def _prune(selection: Selection, scorer: _Scorer, penalty: Callable[[Candidate], float]) -> int:
    """Take out, earliest first, each index whose statements do as well without it: none of
    them gains ``min_savings`` from it given the rest of the set, or what they gain does not
    pay for its writes."""
    removed = 0
    for candidate in list(selection.chosen):
        config = frozenset(selection.chosen)
        without = config - {candidate}
        affected = scorer.affected([candidate])
        scorer.coster.prepare((s, c) for s in affected for c in (config, without))
        kept = sum(scorer.added(s, without, config) for s in affected)
        if kept > 0 and kept > penalty(candidate):
            continue
        selection.chosen.remove(candidate)
        replacement = None
        for statement in affected:
            mine = (scorer.coster.get(statement, config) or _WORST).used
            others = (scorer.coster.get(statement, without) or _WORST).used
            if candidate in mine and others:
                # The index on the same table that took over, if there is one.
                replacement = min(others, key=lambda c: (c.table != candidate.table, c))
                break
        selection.pruned[candidate] = replacement
        removed += 1
    return removed
