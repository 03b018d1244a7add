"""`advise_indexes`: from a workload to a set of indexes, each with the statements it serves,
what it costs the writes and, with ``verify``, the speed-up measured on the database.

1. A HypoPG session of the advisor's own (`_hypo`), one transaction rolled back at the end.
2. Every statement parsed (`_references`), its tables resolved on the catalog (`_catalog`),
   its candidates built (`_candidates`), minus those an existing valid btree covers.
3. Its baseline cost: planned with its samples' real parameters, or its generic plan.
4. A set chosen for the whole workload (`_selection`), weighing each statement by its observed
   total time and each index by its write cost (`_write_cost`).
5. The final set planned once more: which statement each index serves, before → after.
6. With ``verify``, the set built for real and measured (`_verify`).
7. Each advised index emitted as an advice event (kind ``index``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._progress import ProgressCallback as Progress
from ..core._dsn import describe_dsn
from ..workload import Sample, Workload, WorkloadStatement
from ._advice import AdvisedIndex, IndexAdvice, Rejected, ServedStatement
from ._candidates import Candidate, candidates_for, resolve
from ._catalog import Catalog, load_catalog
from ._costing import (
    Coster, PlannedStatement, dominant_values, explains_for, parameters_from_statistics,
)
from ._events import AdviceEvent, emit
from ._hypo import HypoSession
from ._references import parse_references, strip_list_comments
from ._selection import select_indexes
from ._write_cost import TableRates, WriteCost, table_rates, write_cost

__all__ = ["AdvisorOptions", "advise_indexes"]

_PLANNABLE = frozenset({"SelectStmt", "UpdateStmt", "DeleteStmt"})


@dataclass(frozen=True, slots=True)
class AdvisorOptions:
    """Thresholds and limits. ``min_savings``: the planner cost drop a statement needs for an
    index to count as serving it (Dexter's 50 %). ``max_writes_per_read``: a table written
    this many times for each read gets no index. ``min_cost``: statements whose planner cost
    is below it are cheap already (a key lookup, an index that covers them) and get no index
    (Dexter's default, 100). ``index_write_ms`` and ``random_read_ms``:
    the write-cost estimate per index entry (see `_write_cost`)."""

    min_savings: float = 0.5
    min_cost: float = 100.0
    samples_per_statement: int = 5
    dominant_share: float = 0.8
    min_dominant_samples: int = 5
    max_writes_per_read: float = 1000.0
    index_write_ms: float = 0.02
    random_read_ms: float = 0.1
    max_indexes: int = 100
    max_candidates_per_statement: int = 40
    max_statements: int = 1000
    create_extension: bool = False
    verify_runs: int = 5
    verify_samples: int = 3
    lock_timeout_s: float = 5.0
    statement_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_savings < 1.0:
            raise ValueError(f"min_savings must be between 0 and 1, got {self.min_savings}")
        if self.verify_runs < 1 or self.samples_per_statement < 1:
            raise ValueError("verify_runs and samples_per_statement must be at least 1")


def advise_indexes(
    dsn: str,
    workload: Workload,
    *,
    verify: bool = False,
    keep: bool = False,
    options: AdvisorOptions | None = None,
    progress: Progress | None = None,
    before_verify: Callable[[Sequence[AdvisedIndex], str], None] | None = None,
) -> IndexAdvice:
    """Indexes for ``workload`` on the database at ``dsn`` (see the module docstring).

    Changes nothing in the database unless ``verify`` (the indexes are built, measured and
    dropped, kept with ``keep``) or ``options.create_extension`` (CREATE EXTENSION hypopg).
    ``before_verify(indexes, where)`` is called before anything is built. Raises
    `AdvisorError` when HypoPG is missing or the database cannot be reached."""
    options = options or AdvisorOptions()
    started = time.perf_counter()
    advice = IndexAdvice(statements=len(workload))
    session = HypoSession.open(dsn, create_extension=options.create_extension)
    try:
        run = _Run(session, workload, options, advice, progress)
        run.plan()
        run.choose()
    finally:
        advice.explains = session.explains
        advice.round_trips = session.round_trips
        session.close()
    if verify and advice.indexes:
        if before_verify is not None:
            before_verify(advice.indexes, describe_dsn(dsn))
        _verify(dsn, advice, run.planned, run.catalog.written, keep=keep, options=options,
                progress=progress)  # fmt: skip
    advice.elapsed_s = time.perf_counter() - started
    for index in advice.indexes:
        emit(_event(index))
    return advice


class _Run:
    def __init__(self, session: HypoSession, workload: Workload, options: AdvisorOptions,
                 advice: IndexAdvice, progress: Progress | None) -> None:  # fmt: skip
        self.session = session
        self.workload = workload
        self.options = options
        self.advice = advice
        self.progress = progress
        self.coster = Coster(session)
        self.catalog = Catalog()
        self.planned: dict[str, PlannedStatement] = {}
        self._rates: dict[str, TableRates] = {}
        self._costs: dict[Candidate, WriteCost] = {}

    def _note(self, kind: str, message: str, **about: Any) -> None:
        self.advice.findings.append({"kind": kind, "message": message, **about})

    def _tick(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    # -- 2 and 3: statements, candidates, baselines ------------------------------------
    def plan(self) -> None:
        options = self.options
        names = {t for s in self.workload for t in s.tables}
        self.catalog = load_catalog(self.session.conn, names)
        for table in self.catalog.tables.values():
            if not table.analyzed:
                self._note("not_analyzed", f"{table.name} has no statistics (never analyzed): "
                           "the planner's estimates, and so this advice, may be off; "
                           f"run ANALYZE {table.name}", table=table.name)  # fmt: skip
        plannable = ("select", "update", "delete")
        reads = [s for s in self.workload.by_total_time() if s.operation in plannable]
        generic = 0
        statements = reads[: options.max_statements]
        for done, statement in enumerate(statements, 1):
            self._tick("parse", done, len(statements))
            about = {"fingerprint": statement.fingerprint, "normalized": statement.normalized}
            refs = parse_references(statement.normalized)
            if refs is None or refs.kind not in _PLANNABLE:
                self._note("unparsed", "not one SELECT, UPDATE or DELETE the advisor can plan",
                           **about)  # fmt: skip
                continue
            uses = resolve(refs, self.catalog)
            if not uses:
                if any(not _system(t) for t in refs.tables):
                    self._note("unknown_tables", "none of its tables is in this database", **about)
                continue  # no table, or only the system catalogs: nothing to index
            explains, is_generic = explains_for(statement, refs, options.samples_per_statement)
            generic += is_generic
            planned = PlannedStatement(statement, refs, uses, explains, is_generic)
            dominant = dominant_values(
                statement, uses, self.catalog.written,
                min_samples=options.min_dominant_samples, share=options.dominant_share,
            )  # fmt: skip
            for name, use in uses.items():
                mine = {col: value for (table, col), value in dominant.items() if table == name}
                for candidate in candidates_for(use, mine):
                    if not any(candidate.covered_by(ix.columns, ix.descending, ix.include)
                               for ix in use.table.btrees()):  # fmt: skip
                        planned.candidates.append(candidate)
            planned.candidates = planned.candidates[: options.max_candidates_per_statement]
            self.planned[statement.fingerprint] = planned
        if len(reads) > options.max_statements:
            self._note("truncated", f"only the {options.max_statements} statements with the most "
                       f"total time were weighed, of {len(reads)}")  # fmt: skip
        if generic:
            self._note("generic_plan", f"{generic} statement(s) had no parameter samples: "
                       "planned with generic plans (a capture with capture_params gives real "
                       "values)")  # fmt: skip
        self._tick("baseline", 0, 1)
        self.coster.prepare((s, ()) for s in self.planned.values())
        for fingerprint, planned in list(self.planned.items()):
            planned.base = self.coster.get(planned, ())
            if planned.base is None:
                self._note("explain_failed", "EXPLAIN failed (the text may need values or "
                           "types the advisor does not have)", fingerprint=fingerprint,
                           normalized=planned.statement.normalized)  # fmt: skip
                del self.planned[fingerprint]
        self._tick("baseline", 1, 1)
        self.advice.analyzed = len(self.planned)
        for planned in self.planned.values():
            if planned.base is not None and planned.base.cost < options.min_cost:
                planned.candidates = []  # cheap already: nothing to gain worth an index

    # -- write cost ----------------------------------------------------------------------
    def rates(self, table: str) -> TableRates:
        if table not in self._rates:
            written = [w for w, name in self.catalog.written.items() if name == table]
            self._rates[table] = table_rates(self.workload, written)
        return self._rates[table]

    def write_cost(self, candidate: Candidate) -> WriteCost:
        if candidate not in self._costs:
            rates = self.rates(candidate.table)
            size = self.session.size(candidate)
            self._costs[candidate] = write_cost(
                rates, size, shared_buffers=self.catalog.shared_buffers_bytes,
                index_write_ms=self.options.index_write_ms,
                random_read_ms=self.options.random_read_ms, window_s=self.workload.window_s,
            )  # fmt: skip
        return self._costs[candidate]

    def too_written(self, table: str) -> str | None:
        """Why ``table`` gets no index at all, if it is written far more than read."""
        rates = self.rates(table)
        ratio = rates.writes_per_read
        if ratio is None or ratio < self.options.max_writes_per_read:
            return None
        per = "for each read" if not math.isinf(ratio) else "and never read"
        times = f"{ratio:,.0f} times {per}" if not math.isinf(ratio) else per
        unit = "/min" if self.workload.window_s else " in the workload"
        return (f"{table} is written {times} ({rates.writes_per_minute:,.1f} writes{unit} "
                f"against {rates.reads_per_minute:,.1f} reads{unit}): every write would "
                "maintain the index, for reads too rare to pay for it")  # fmt: skip

    def penalty(self, candidate: Candidate) -> float:
        if self.too_written(candidate.table):
            return math.inf
        return self.write_cost(candidate).overhead_ms

    # -- 4 and 5: the set -----------------------------------------------------------------
    def choose(self) -> None:
        statements = [s for s in self.planned.values() if s.candidates]
        selection = select_indexes(
            statements, self.coster, min_savings=self.options.min_savings,
            penalty=self.penalty, max_indexes=self.options.max_indexes,
            progress=lambda done, total: self._tick("candidates", done, total),
        )  # fmt: skip
        self._tick("final", 0, 1)
        final = frozenset(selection.chosen)
        self.coster.prepare((s, final) for s in statements)
        total_ms = sum(s.weight_ms for s in self.planned.values()) or 1.0
        rejected: dict[Candidate, Rejected] = {}
        for candidate in selection.chosen:
            served = []
            index_only = 0
            for statement in statements:
                evaluation = self.coster.get(statement, final)
                if evaluation is None or candidate not in evaluation.used:
                    continue
                fraction = statement.fraction(evaluation)
                if fraction < self.options.min_savings:
                    continue
                assert statement.base is not None
                served.append((statement, evaluation.cost, fraction))
                index_only += candidate in evaluation.index_only
            if not served:
                rejected[candidate] = Rejected(candidate, "no plan uses it once the other "
                                               "advised indexes exist")  # fmt: skip
                continue
            served.sort(key=lambda item: -item[0].weight_ms)
            saved = sum(s.weight_ms * f for s, _, f in served)
            cost = self.write_cost(candidate)
            before = sum(s.base.cost for s, _, _ in served if s.base)
            after = sum(c for _, c, _ in served)
            share = sum(s.weight_ms for s, _, _ in served) / total_ms
            reason = (f"serves {len(served)} statement(s), {share:.0%} of the workload's "
                      f"observed time; planner cost {before:,.1f} → {after:,.1f} "
                      f"({1 - after / before if before else 0:.0%} less)")  # fmt: skip
            if index_only:
                reason += (f"; {'INCLUDE lets it' if candidate.include else 'it can'} answer "
                           f"{index_only} of them from the index alone (index-only scan)")
            if candidate.where:
                reason += (f"; partial: at least {self.options.dominant_share:.0%} of the "
                           f"samples ask for {candidate.where[0]} = this value")  # fmt: skip
            if cost.rates.writes:
                per = cost.unit
                reason += (f"; its table takes {cost.rates.writes_per_minute:,.1f} writes{per}: "
                           f"~{cost.overhead_ms * cost.per_minute:,.2f} ms{per} of index upkeep "
                           f"against ~{saved * cost.per_minute:,.1f} ms{per} saved")  # fmt: skip
            self.advice.indexes.append(AdvisedIndex(
                index=candidate,
                statements=[
                    ServedStatement(
                        fingerprint=s.fingerprint, normalized=s.statement.normalized,
                        calls=s.statement.calls, total_time_ms=s.weight_ms,
                        cost_before=s.base.cost if s.base else 0.0, cost_after=c,
                        generic_plan=s.generic,
                    ) for s, c, _ in served
                ],
                write_overhead=cost.to_dict(saved), reason=reason, saved_ms=saved,
            ))  # fmt: skip
        self.advice.indexes.sort(key=lambda i: -i.saved_ms)
        for candidate, replacement in selection.pruned.items():
            why = (f"made pointless by {replacement.label(values=False)}, which serves its "
                   "statements as well" if replacement else "its statements do as well "
                   "without it once the other advised indexes exist")  # fmt: skip
            rejected.setdefault(candidate, Rejected(candidate, why))
        self._rejected_alone(statements, final, rejected)
        # What the writes ruled out first: the rejections a reader most needs to see.
        self.advice.rejected = sorted(
            rejected.values(), key=lambda r: (not self.too_written(r.index.table), r.index)
        )
        self._tick("final", 1, 1)

    def _rejected_alone(self, statements: list[PlannedStatement], final: frozenset[Candidate],
                        rejected: dict[Candidate, Rejected]) -> None:  # fmt: skip
        """Each statement's best index on its own, when it would have served the statement
        but is not advised: why not (its table's writes, or the set serving it otherwise)."""
        for statement in statements:
            best, best_cost = None, math.inf
            for candidate in statement.candidates:
                evaluation = self.coster.get(statement, [candidate])
                if evaluation is not None and evaluation.cost < best_cost:
                    best, best_cost = candidate, evaluation.cost
            if best is None or best in final:
                continue
            evaluation = self.coster.get(statement, [best])
            if statement.fraction(evaluation) < self.options.min_savings:
                continue
            entry = rejected.get(best)
            if entry is None:
                why = self.too_written(best.table)
                cost = self.write_cost(best)
                saved = statement.weight_ms * statement.fraction(evaluation)
                if why is None:
                    served = self.coster.get(statement, final)
                    minimum = self.options.min_savings
                    if served is not None and statement.fraction(served) >= minimum:
                        why = "the advised set serves its statements" + (": " + ", ".join(
                            c.label(values=False) for c in sorted(served.used)
                        ) if served.used else "")  # fmt: skip
                    else:
                        why = self._why_not(statement, best, final, cost)
                entry = rejected[best] = Rejected(best, why, write_overhead=cost.to_dict(saved))
            if statement.fingerprint not in entry.fingerprints:
                entry.fingerprints.append(statement.fingerprint)

    def _why_not(self, statement: PlannedStatement, best: Candidate,
                 final: frozenset[Candidate], cost: WriteCost) -> str:  # fmt: skip
        """Why ``best`` is not advised although it would serve ``statement`` on its own and
        the advised set does not: its writes, the cap, or the set already taking most of
        what it would save."""
        now = self.coster.get(statement, final)
        then = self.coster.get(statement, final | {best})
        base = statement.base.cost if statement.base else 0.0
        if now is None or then is None or base <= 0:
            return "it could not be planned together with the advised indexes"
        if then.cost > (1.0 - self.options.min_savings) * now.cost:
            return ("with the advised indexes in place it no longer halves the cost of any "
                    "statement")  # fmt: skip
        saved = statement.weight_ms * (now.cost - then.cost) / base
        if cost.overhead_ms >= saved:
            return (f"its write cost (~{cost.overhead_ms * cost.per_minute:,.2f} ms{cost.unit} "
                    f"of index upkeep) outweighs the read time it would add to the advised "
                    f"set's (~{saved * cost.per_minute:,.2f} ms{cost.unit})")  # fmt: skip
        if len(final) >= self.options.max_indexes:
            return (f"not among the {self.options.max_indexes} indexes that save the most "
                    "(max_indexes)")  # fmt: skip
        return ("what it would add to the advised set, over all the statements on its table, "
                "does not pay for its writes")  # fmt: skip


def _runnable(planned: PlannedStatement, table_of: dict[str, str], n: int) -> WorkloadStatement:
    """The statement as verification runs it: with its samples, or, when the workload has no
    values for its parameters, with values its columns hold (`parameters_from_statistics`)."""
    statement = planned.statement
    if not planned.generic or statement.writes:
        return statement
    drawn = parameters_from_statistics(planned, table_of, n)
    if not drawn:
        return statement
    text = strip_list_comments(statement.normalized)
    return replace(statement, samples=[Sample(text, values) for values in drawn])


def _verify(dsn: str, advice: IndexAdvice, planned: dict[str, PlannedStatement],
            table_of: dict[str, str], *, keep: bool, options: AdvisorOptions,
            progress: Progress | None) -> None:  # fmt: skip
    from ._verify import verify_indexes

    runnable = {
        fp: _runnable(p, table_of, options.verify_samples) for fp, p in planned.items()
    }
    drawn = {fp for fp, s in runnable.items() if s is not planned[fp].statement}
    served = {
        index.index: [runnable[s.fingerprint] for s in index.statements]
        for index in advice.indexes
    }
    result = verify_indexes(
        dsn, [i.index for i in advice.indexes], served, keep=keep, runs=options.verify_runs,
        samples=options.verify_samples, lock_timeout_s=options.lock_timeout_s,
        statement_timeout_s=options.statement_timeout_s, progress=progress, drawn=drawn,
    )  # fmt: skip
    advice.verified = True
    for index in advice.indexes:
        index.verified = index.index in result.created
        index.created_name = result.created.get(index.index)
        index.kept = index.index in result.kept
        index.verify_error = result.errors.get(index.index)
        for statement in index.statements:
            measured = result.statements.get(statement.fingerprint)
            if measured is not None:
                statement.measured_before_ms = measured.before_ms
                statement.measured_after_ms = measured.after_ms
                statement.measure_note = measured.note


def _system(table: str) -> bool:
    return table.startswith(("pg_", "information_schema.", "pg_catalog."))


def _event(index: AdvisedIndex) -> AdviceEvent:
    c = index.index
    speedups = [s.speedup for s in index.statements if s.speedup]
    summary = (f"create index on {c.label(values=False)}: serves {len(index.statements)} "
               "statement(s)")  # fmt: skip
    if speedups:
        summary += f", measured {max(speedups):,.1f}× faster"
    return AdviceEvent(
        kind="index", severity="warning", key=f"index:{c.table}:{','.join(c.columns)}",
        summary=summary,
        details={
            "table": c.table, "columns": list(c.columns), "include": list(c.include),
            "partial_on": c.where[0] if c.where else None,
            "fingerprints": [s.fingerprint for s in index.statements],
            "estimated_saved_ms": round(index.saved_ms, 3),
            "speedup": max(speedups) if speedups else None,
            "index": c.label(values=False),
            "verified": index.verified,
            # per statement served: the planner's costs and, verified, the measured times
            "statements": [
                {key: value for key, value in s.to_dict().items() if key != "normalized"}
                for s in index.statements
            ],
        },
    )  # fmt: skip
