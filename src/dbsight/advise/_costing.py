"""Planner costs of statements under sets of hypothetical indexes, each computed once.

A statement's plan depends only on the indexes of the tables it reads, so a cost is cached
by (statement, the set's indexes on its tables): the greedy selection asks for the same
combination many times, the database is asked once. Requests are grouped by index set and
sent in batches (`HypoSession.evaluate`).

A statement with samples is planned with each of up to `samples_per_statement` of them (its
real parameters) and costs their mean; one without samples gets its generic plan.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..workload import Sample, WorkloadStatement
from ._candidates import Candidate, TableUse
from ._hypo import Explain, HypoSession, IndexSetError, PlanResult
from ._references import StatementRefs, parse_references, strip_list_comments

__all__ = [
    "Coster", "Evaluation", "PlannedStatement", "dominant_values", "explains_for",
    "parameters_from_statistics", "usable_samples",
]

Config = frozenset[Candidate]


@dataclass(frozen=True, slots=True)
class Evaluation:
    cost: float
    used: frozenset[Candidate]
    existing: frozenset[str]
    index_only: frozenset[Candidate] = frozenset()


@dataclass(slots=True)
class PlannedStatement:
    """A workload statement the advisor can plan: its references on the catalog's tables,
    how to EXPLAIN it, its weight (observed total time, ms) and its candidates."""

    statement: WorkloadStatement
    refs: StatementRefs
    uses: dict[str, TableUse]
    explains: tuple[Explain, ...]
    generic: bool
    candidates: list[Candidate] = field(default_factory=list)
    base: Evaluation | None = None

    @property
    def fingerprint(self) -> str:
        return self.statement.fingerprint

    @property
    def tables(self) -> frozenset[str]:
        return frozenset(self.uses)

    @property
    def weight_ms(self) -> float:
        return self.statement.total_time_s * 1000.0

    def fraction(self, evaluation: Evaluation | None) -> float:
        """How much of the cost ``evaluation`` saves against the baseline (0 … 1)."""
        if evaluation is None or self.base is None or self.base.cost <= 0:
            return 0.0
        return max(0.0, 1.0 - evaluation.cost / self.base.cost)


def usable_samples(statement: WorkloadStatement) -> list[Sample]:
    """The samples whose parameters are text (or NULL): what can be written into EXECUTE.
    A value a capture kept as bytes (``{"hex": ...}``) is of no use here."""
    return [
        s for s in statement.samples
        if isinstance(s.sql, str)
        and (s.params is None or all(v is None or isinstance(v, str) for v in s.params))
    ]  # fmt: skip


def _spread(samples: Sequence[Sample], n: int) -> list[Sample]:
    """Up to ``n`` distinct samples spread over the list (not just the first few)."""
    distinct = list(dict.fromkeys(samples))
    if len(distinct) <= n:
        return distinct
    step = len(distinct) / n
    return [distinct[int(i * step)] for i in range(n)]


def explains_for(
    statement: WorkloadStatement, refs: StatementRefs, samples_per_statement: int
) -> tuple[tuple[Explain, ...], bool]:
    """How to plan ``statement``: with its samples (real values) when it has usable ones,
    else its generic plan. Returns (explains, generic)."""
    explains: list[Explain] = []
    for sample in _spread(usable_samples(statement), samples_per_statement):
        sample_refs = parse_references(sample.sql)
        if sample_refs is None or sample_refs.kind != refs.kind:
            continue  # not one statement of the same kind: never sent to the database
        sql = strip_list_comments(sample.sql).strip().rstrip(";").rstrip()
        if sample.params is not None:
            if len(sample.params) < sample_refs.max_param:
                continue
            explains.append(Explain(sql, params=tuple(sample.params[: sample_refs.max_param])))
        elif sample_refs.max_param == 0:
            explains.append(Explain(sql))
    if explains:
        return tuple(explains), False
    text = strip_list_comments(statement.normalized)
    if refs.max_param == 0:
        return (Explain(text),), False
    return (Explain(text, generic=True, nparams=refs.max_param),), True


def dominant_values(
    statement: WorkloadStatement, uses: dict[str, TableUse], table_of: dict[str, str],
    *, min_samples: int, share: float, limit: int = 200,
) -> dict[tuple[str, str], str | None]:  # fmt: skip
    """(table, column) → the value that ``share`` or more of the statement's samples compare
    the column to with ``=`` (None: IS NULL). Only a value PostgreSQL's statistics list among
    the column's most common values counts: a category (a status), never one user's value."""
    counts: dict[tuple[str, str], Counter[str | None]] = defaultdict(Counter)
    seen = 0
    for sample in usable_samples(statement)[:limit]:
        refs = parse_references(sample.sql)
        if refs is None:
            continue
        seen += 1
        for ref, (kind, raw) in refs.values.items():
            written = refs.aliases.get(ref.qualifier) if ref.qualifier else None
            names = [table_of.get(written, "")] if written else list(uses)
            for name in names:
                use = uses.get(name)
                if use is None or ref.column not in use.eq:
                    continue
                value: str | None
                if kind == "param":
                    index = int(raw) - 1
                    if sample.params is None or not 0 <= index < len(sample.params):
                        continue
                    value = sample.params[index]
                    if value is None:
                        continue  # `col = NULL` matches nothing: no partial index to draw
                elif kind == "null":
                    value = None
                else:
                    value = raw
                counts[(name, ref.column)][value] += 1
    found: dict[tuple[str, str], str | None] = {}
    if seen < min_samples:
        return found
    for (name, column), counter in counts.items():
        value, n = counter.most_common(1)[0]
        common = uses[name].table.common.get(column, frozenset())
        if n >= share * seen and (value is None or value in common):
            found[(name, column)] = value
    return found


def parameters_from_statistics(planned: PlannedStatement, table_of: dict[str, str],
                               n: int) -> list[tuple[str, ...]]:  # fmt: skip
    """Up to ``n`` parameter tuples for a statement the workload has no values for: each
    ``$k`` compared with ``=`` (or IN) to a column takes values the column holds, spread over
    its statistics (most common values, histogram bounds); LIMIT 10, OFFSET 0. Empty when a
    parameter has no such source (a range bound, an expression)."""
    refs = planned.refs
    sources: dict[int, list[str]] = {k: [v] for k, v in refs.limits.items()}
    for ref, (kind, raw) in refs.values.items():
        if kind != "param":
            continue
        if ref.qualifier is not None:
            written = refs.aliases.get(ref.qualifier)
            uses = [planned.uses[table_of[written]]] if written in table_of and \
                table_of[written] in planned.uses else []  # fmt: skip
        else:
            uses = [u for u in planned.uses.values() if ref.column in u.table.columns]
        for use in uses[:1]:
            values = use.table.known_values.get(ref.column)
            if values:
                sources.setdefault(int(raw), values)
    if refs.max_param == 0 or any(k not in sources for k in range(1, refs.max_param + 1)):
        return []
    out: list[tuple[str, ...]] = []
    for i in range(n):
        out.append(tuple(
            sources[k][int((i + 0.5) * len(sources[k]) / n) % len(sources[k])]
            for k in range(1, refs.max_param + 1)
        ))  # fmt: skip
    return list(dict.fromkeys(out))


class Coster:
    def __init__(self, session: HypoSession) -> None:
        self.session = session
        self._cache: dict[tuple[str, Config], Evaluation | None] = {}
        self.requests = 0

    @staticmethod
    def _key(statement: PlannedStatement, config: Iterable[Candidate]) -> tuple[str, Config]:
        tables = statement.tables
        return statement.fingerprint, frozenset(c for c in config if c.table in tables)

    def prepare(self, pairs: Iterable[tuple[PlannedStatement, Iterable[Candidate]]]) -> None:
        """Plan every (statement, index set) not planned yet, grouped by set."""
        groups: dict[Config, dict[str, PlannedStatement]] = defaultdict(dict)
        for statement, config in pairs:
            key = self._key(statement, config)
            if key not in self._cache:
                groups[key[1]][statement.fingerprint] = statement
        for config, statements in groups.items():
            planned = list(statements.values())
            self.requests += len(planned)
            try:
                results = self.session.evaluate(sorted(config), [s.explains for s in planned])
            except IndexSetError:  # a candidate HypoPG refuses: the set is worth nothing
                results = [None] * len(planned)
            for statement, runs in zip(planned, results):
                self._cache[(statement.fingerprint, config)] = _evaluation(runs)

    def get(self, statement: PlannedStatement, config: Iterable[Candidate]) -> Evaluation | None:
        key = self._key(statement, config)
        if key not in self._cache:
            self.prepare([(statement, key[1])])
        return self._cache[key]


def _evaluation(runs: list[PlanResult] | None) -> Evaluation | None:
    if not runs:
        return None
    cost = sum(r.cost for r in runs) / len(runs)
    used = frozenset().union(*(r.used for r in runs))
    existing = frozenset().union(*(r.existing for r in runs))
    index_only = frozenset().union(*(r.index_only for r in runs))
    return Evaluation(cost, used, existing, index_only)
