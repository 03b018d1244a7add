"""``--verify``: build each advised index for real, run the statements it serves with their
real parameters before and after, and drop the index again unless asked to keep it.

Only reads are run (SELECT, in a READ ONLY transaction that is rolled back), each sample
``runs`` times after one warm-up run, under ``statement_timeout``; a statement's time is the
median. Indexes are built with CREATE INDEX CONCURRENTLY under ``lock_timeout`` (the table
stays writable; a build that fails leaves an invalid index, which is dropped). All advised
indexes are measured together, so a join whose plan needs an index on each side is measured
as it will run. Nothing here runs on the application's connections: the verifier opens its
own, in autocommit.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core._dsn import cannot_connect, first_line
from ..embedded.postgres import quote_ident, quote_literal
from ._candidates import Candidate
from ._costing import usable_samples
from ._hypo import AdvisorError
from ._references import parse_references, strip_list_comments
from ..workload import WorkloadStatement

__all__ = ["Measured", "VerifyResult", "verify_indexes"]


@dataclass(slots=True)
class Measured:
    before_ms: float | None = None
    after_ms: float | None = None
    note: str | None = None


@dataclass(slots=True)
class VerifyResult:
    statements: dict[str, Measured] = field(default_factory=dict)  # by fingerprint
    created: dict[Candidate, str] = field(default_factory=dict)  # -> index name
    kept: set[Candidate] = field(default_factory=set)
    errors: dict[Candidate, str] = field(default_factory=dict)


Run = tuple[str, tuple[str | None, ...] | None]  # (sql, parameters)


def _runs(statement: WorkloadStatement, samples: int) -> list[Run]:
    """What to execute for ``statement``: its samples as (sql, params), or its normalized
    text when it has no parameters. Nothing for a statement whose values are unknown."""
    out: list[Run] = []
    for sample in list(dict.fromkeys(usable_samples(statement)))[:samples]:
        refs = parse_references(sample.sql)
        if refs is None or refs.kind != "SelectStmt":
            continue
        if sample.params is not None and len(sample.params) >= refs.max_param:
            out.append((strip_list_comments(sample.sql), tuple(sample.params[: refs.max_param])))
        elif sample.params is None and refs.max_param == 0:
            out.append((sample.sql, None))
    if not out and not statement.samples:
        refs = parse_references(statement.normalized)
        if refs is not None and refs.kind == "SelectStmt" and refs.max_param == 0:
            out.append((strip_list_comments(statement.normalized), None))
    return out


class _Runner:
    def __init__(self, conn: Any, runs: int, statement_timeout_s: float) -> None:
        self.conn = conn
        self.runs = runs
        self.timeout_ms = int(statement_timeout_s * 1000)

    def time_ms(self, sql: str, params: tuple[str | None, ...] | None) -> float:
        """Median wall time of ``runs`` executions (after a warm-up), fetching every row."""
        times: list[float] = []
        with self.conn.cursor() as cur:
            cur.execute("BEGIN READ ONLY")
            try:
                cur.execute(f"SET LOCAL statement_timeout = {self.timeout_ms}")
                if params is not None:
                    cur.execute(f"PREPARE dbsight_verify AS {sql}")
                    args = ", ".join("NULL" if v is None else quote_literal(v) for v in params)
                    sql = "EXECUTE dbsight_verify" + (f"({args})" if args else "")
                for i in range(self.runs + 1):
                    started = time.perf_counter()
                    cur.execute(sql)
                    if cur.description is not None:
                        cur.fetchall()
                    if i:
                        times.append((time.perf_counter() - started) * 1000.0)
            finally:
                cur.execute("ROLLBACK")
                if params is not None:
                    cur.execute("DEALLOCATE ALL")
        return statistics.median(times)

    def measure(self, runs: list[Run]) -> float | None:
        import psycopg

        medians = []
        for sql, params in runs:
            try:
                medians.append(self.time_ms(sql, params))
            except psycopg.Error:
                continue
        return statistics.median(medians) if medians else None


def verify_indexes(
    dsn: str,
    indexes: Sequence[Candidate],
    served: dict[Candidate, list[WorkloadStatement]],
    *,
    keep: bool,
    runs: int,
    samples: int,
    lock_timeout_s: float,
    statement_timeout_s: float,
    progress: Callable[[str, int, int], None] | None = None,
    drawn: set[str] | frozenset[str] = frozenset(),
) -> VerifyResult:
    """Build ``indexes``, measure the statements in ``served`` before and after, drop the
    indexes unless ``keep``. ``drawn``: fingerprints whose samples are values drawn from the
    column statistics, not from the traffic (said so in their note)."""
    import psycopg

    result = VerifyResult()
    try:
        conn = psycopg.connect(dsn, autocommit=True, application_name="dbsight advise --verify")
    except psycopg.Error as exc:
        raise AdvisorError(cannot_connect(dsn, exc)) from None
    statements: dict[str, WorkloadStatement] = {}
    for group in served.values():
        for statement in group:
            statements[statement.fingerprint] = statement
    plans = {fp: _runs(s, samples) for fp, s in statements.items()}
    runner = _Runner(conn, runs, statement_timeout_s)
    total = 2 * len(plans) + len(indexes)
    done = 0

    def step(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(stage, done, total)

    try:
        for fingerprint, todo in plans.items():
            measured = result.statements[fingerprint] = Measured()
            if not todo:
                statement = statements[fingerprint]
                measured.note = ("a write: not run" if statement.writes
                                 else "no parameter samples: not run")  # fmt: skip
            else:
                measured.before_ms = runner.measure(todo)
                if fingerprint in drawn:
                    measured.note = ("run with values from the column statistics (pg_stats): "
                                     "the workload had no parameters for it")  # fmt: skip
            step("verify: before")
        for candidate in indexes:
            try:
                result.created[candidate] = _create(conn, candidate, lock_timeout_s)
            except psycopg.Error as exc:
                result.errors[candidate] = first_line(exc)
            step("verify: create")
        for fingerprint, todo in plans.items():
            if todo:
                result.statements[fingerprint].after_ms = runner.measure(todo)
            step("verify: after")
    finally:
        for candidate, name in result.created.items():
            if keep:
                result.kept.add(candidate)
                continue
            try:
                conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            except psycopg.Error as exc:
                result.errors[candidate] = f"could not drop {name}: {first_line(exc)}"
        conn.close()
    return result


def _create(conn: Any, candidate: Candidate, lock_timeout_s: float) -> str:
    """Build ``candidate``; its qualified name. A failed build's invalid index is dropped."""
    import psycopg

    base = candidate.name()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = %s::regclass", (candidate.table,),
        )  # fmt: skip
        schema = cur.fetchone()[0]
        name, n = base, 1
        while True:
            cur.execute("SELECT to_regclass(%s)", (f"{quote_ident(schema)}.{quote_ident(name)}",))
            if cur.fetchone()[0] is None:
                break
            n += 1
            name = f"{base[:60]}{n}"
        qualified = f"{quote_ident(schema)}.{quote_ident(name)}"
        cur.execute(f"SET lock_timeout = {int(lock_timeout_s * 1000)}")
        try:
            definition = candidate.definition(candidate.table)
            cur.execute(f"CREATE INDEX CONCURRENTLY {quote_ident(name)} {definition}")
        except psycopg.Error:
            cur.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified}")
            raise
        finally:
            cur.execute("RESET lock_timeout")
    return qualified
