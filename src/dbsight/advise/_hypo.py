"""The advisor's HypoPG session: a connection of its own, one READ ONLY transaction rolled
back at the end, hypothetical indexes (backend-local, invisible to every other session) and
EXPLAINs. Each batch runs in a savepoint that is rolled back, so the table locks its EXPLAINs
take are let go at once, and ``lock_timeout`` keeps the advisor from queueing behind DDL.

Round trips are what costs here, so each evaluation is one simple-protocol message: reset
the hypothetical indexes, create the set asked for, EXPLAIN every statement asked for (each
sample, or the generic plan) and deallocate what was prepared. A batch that fails is rolled
back to its savepoint and retried statement by statement, so one bad statement costs only its
own answer.

A normalized statement (``$n``, no values) gets PostgreSQL 15's way to a generic plan:
``SET LOCAL plan_cache_mode = force_generic_plan; PREPARE; EXPLAIN EXECUTE s(NULL, ...)`` (a
statement is prepared afresh each time: a cached generic plan would not see the new indexes).
Samples with parameters are EXPLAINed with those values under ``force_custom_plan``; samples
with their literals in the text directly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core._dsn import cannot_connect, first_line
from ..embedded.postgres import quote_literal
from ._candidates import Candidate

__all__ = ["AdvisorError", "Explain", "HypoSession", "IndexSetError", "PlanResult", "check_hypopg"]

# How many EXPLAINs go in one message: enough to save round trips, few enough that a failing
# batch costs little to redo.
BATCH = 64
LOCK_TIMEOUT_MS = 2000


class AdvisorError(Exception):
    """The advisor cannot run: HypoPG missing or not enabled, the database unreachable, ..."""


class IndexSetError(Exception):
    """HypoPG could not create a set of hypothetical indexes (a type without a btree
    operator class, say): nothing can be planned with that set; others still can."""


@dataclass(frozen=True, slots=True)
class Explain:
    """How to plan one run of a statement: its text and, for ``$n``, the parameters
    (``generic``: no values known, NULLs under a generic plan)."""

    sql: str
    params: tuple[str | None, ...] | None = None
    generic: bool = False
    nparams: int = 0

    def script(self, name: str) -> list[str]:
        if self.generic:
            args = ", ".join(["NULL"] * self.nparams)
            return [
                "SET LOCAL plan_cache_mode = force_generic_plan",
                f"PREPARE {name} AS {self.sql}",
                f"EXPLAIN (FORMAT JSON) EXECUTE {name}" + (f"({args})" if args else ""),
                f"DEALLOCATE {name}",
            ]
        if self.params is not None:
            args = ", ".join("NULL" if v is None else quote_literal(v) for v in self.params)
            return [
                "SET LOCAL plan_cache_mode = force_custom_plan",
                f"PREPARE {name} AS {self.sql}",
                f"EXPLAIN (FORMAT JSON) EXECUTE {name}" + (f"({args})" if args else ""),
                f"DEALLOCATE {name}",
            ]
        return [f"EXPLAIN (FORMAT JSON) {self.sql}"]


@dataclass(frozen=True, slots=True)
class PlanResult:
    cost: float
    used: frozenset[Candidate]  # the hypothetical indexes the plan uses
    existing: frozenset[str]  # the names of the real indexes it uses
    index_only: frozenset[Candidate]  # hypothetical indexes read by an Index Only Scan
    plan: dict[str, Any]


def _index_names(plan: Any) -> tuple[set[str], set[str]]:
    """Every index the plan uses, and those of them it reads with an Index Only Scan."""
    found: set[str] = set()
    only: set[str] = set()
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("Index Name")
            if isinstance(name, str):
                found.add(name)
                if node.get("Node Type") == "Index Only Scan":
                    only.add(name)
            stack.extend(node.get("Plans", []))
        elif isinstance(node, list):
            stack.extend(node)
    return found, only


class HypoSession:
    """Open with `open`; `close` rolls everything back and resets HypoPG."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.round_trips = 0
        self.explains = 0
        self._active: tuple[Candidate, ...] = ()
        self.names: dict[str, Candidate] = {}  # hypothetical index name -> candidate
        self.oids: dict[Candidate, int] = {}
        self.sizes: dict[Candidate, int] = {}  # hypopg_relation_size, once created
        self._savepoint = 0

    @classmethod
    def open(cls, dsn: str, *, create_extension: bool = False) -> HypoSession:
        import psycopg

        try:
            conn = psycopg.connect(dsn, autocommit=True, application_name="dbsight advise")
        except psycopg.Error as exc:
            raise AdvisorError(cannot_connect(dsn, exc)) from None
        try:
            _ensure_hypopg(conn, create_extension)
            # Never wait long behind a lock (an ALTER TABLE queued behind the advisor would
            # stall the application's queries behind it), and never write.
            conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
            conn.autocommit = False
            conn.read_only = True
            session = cls(conn)
            with conn.cursor() as cur:
                cur.execute("SELECT hypopg_reset()")
            return session
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        try:
            if not self.conn.closed:
                self.conn.rollback()
                with self.conn.cursor() as cur:
                    cur.execute("SELECT hypopg_reset()")
                self.conn.rollback()
        except Exception:  # closing: the backend's end resets HypoPG anyway
            pass
        finally:
            self.conn.close()

    # -- hypothetical indexes ------------------------------------------------------------
    def _set_script(self, wanted: Sequence[Candidate]) -> list[str]:
        if tuple(wanted) == self._active:
            return []
        parts = ["SELECT hypopg_reset()"]
        if wanted:
            rows = ", ".join(
                f"({i}, {quote_literal('CREATE INDEX ' + c.definition(c.table))})"
                for i, c in enumerate(wanted)
            )
            parts.append(
                "SELECT c.ord, h.indexrelid, h.indexname, hypopg_relation_size(h.indexrelid)"
                " FROM (VALUES " + rows + ") AS c(ord, ddl)"
                " CROSS JOIN LATERAL hypopg_create_index(c.ddl) AS h ORDER BY c.ord"
            )
        return parts

    def size(self, candidate: Candidate) -> int:
        """``hypopg_relation_size`` of ``candidate`` (estimated bytes)."""
        if candidate not in self.sizes:
            try:
                self.evaluate((candidate,), [])
            except IndexSetError:
                return 0
        return self.sizes.get(candidate, 0)

    # -- EXPLAIN -------------------------------------------------------------------------
    def evaluate(
        self, indexes: Sequence[Candidate], jobs: Sequence[Sequence[Explain]]
    ) -> list[list[PlanResult] | None]:
        """Plans of every job (a statement's runs) with exactly ``indexes`` hypothetical;
        None for a job that failed."""
        indexes = tuple(sorted(indexes))
        out: list[list[PlanResult] | None] = []
        pending = list(jobs)
        first = True
        while first or pending:
            chunk, pending = pending[:BATCH], pending[BATCH:]
            prefix = self._set_script(indexes) if first else []
            first = False
            try:
                out.extend(self._run(prefix, chunk, indexes))
            except _BatchError:
                if prefix:  # the index set itself failed: nothing can be planned with it
                    raise IndexSetError(", ".join(c.label(values=False) for c in indexes)) from None
                out.extend(self._one_by_one(chunk, indexes))
        return out

    def _one_by_one(
        self, chunk: Sequence[Sequence[Explain]], indexes: tuple[Candidate, ...]
    ) -> list[list[PlanResult] | None]:
        results: list[list[PlanResult] | None] = []
        for job in chunk:
            try:
                results.extend(self._run([], [job], indexes))
            except _BatchError:
                results.append(None)
        return results

    def _run(
        self, prefix: list[str], chunk: Sequence[Sequence[Explain]],
        indexes: tuple[Candidate, ...],
    ) -> list[list[PlanResult] | None]:  # fmt: skip
        import psycopg

        self._savepoint += 1
        savepoint = f"dbsight_advise_{self._savepoint}"
        parts = [f"SAVEPOINT {savepoint}", *prefix]
        counts: list[int] = []
        for j, job in enumerate(chunk):
            for k, explain in enumerate(job):
                parts.extend(explain.script(f"dbsight_advise_s{j}_{k}"))
            counts.append(len(job))
        # Rolled back, not released: the locks the EXPLAINs took (ACCESS SHARE on each table)
        # go with the savepoint, so the advisor holds none between two round trips.
        parts.append(f"ROLLBACK TO SAVEPOINT {savepoint}")
        parts.append(f"RELEASE SAVEPOINT {savepoint}")
        plans: list[dict[str, Any]] = []
        created: list[tuple[int, int, str, int]] = []
        with self.conn.cursor() as cur:
            try:
                # A newline before each semicolon: a text ending in a `--` comment must not
                # swallow the separator.
                cur.execute("\n;\n".join(parts))
                self.round_trips += 1
                self.explains += sum(counts)
                while True:
                    if cur.description is not None:
                        column = cur.description[0].name
                        if column == "QUERY PLAN":
                            document = cur.fetchone()[0]
                            if isinstance(document, str):
                                document = json.loads(document)
                            plans.append(document[0]["Plan"])
                        elif column == "ord":
                            created.extend(cur.fetchall())
                    if not cur.nextset():
                        break
            except psycopg.Error:
                self.round_trips += 1
                cur.execute(f"ROLLBACK TO SAVEPOINT {savepoint}; DEALLOCATE ALL")
                if prefix:
                    self._active = ()
                raise _BatchError() from None
        if prefix:
            self._active = indexes
            self.oids = {}
            self.names = {}
            for ord_, oid, name, size in created:
                self.names[name] = indexes[ord_]
                self.oids[indexes[ord_]] = int(oid)
                self.sizes[indexes[ord_]] = int(size or 0)
        results: list[list[PlanResult] | None] = []
        at = 0
        for count in counts:
            runs = []
            for plan in plans[at : at + count]:
                names, only = _index_names(plan)
                used = frozenset(self.names[n] for n in names if n in self.names)
                existing = frozenset(n for n in names if n not in self.names)
                index_only = frozenset(self.names[n] for n in only if n in self.names)
                runs.append(PlanResult(float(plan["Total Cost"]), used, existing, index_only, plan))
            results.append(runs)
            at += count
        return results


class _BatchError(Exception):
    pass


def check_hypopg(dsn: str, *, create_extension: bool = False) -> None:
    """Raise `AdvisorError` unless HypoPG is usable in the database at ``dsn`` (created there
    first with ``create_extension``): what a command checks before reading its workload."""
    HypoSession.open(dsn, create_extension=create_extension).close()


def _ensure_hypopg(conn: Any, create_extension: bool) -> None:
    """HypoPG enabled in the database, or an `AdvisorError` that says what to do."""
    import psycopg

    with conn.cursor() as cur:
        cur.execute(
            "SELECT (SELECT installed_version FROM pg_available_extensions WHERE name = 'hypopg'),"
            " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'),"
            " current_database()"
        )
        installed, available, database = cur.fetchone()
        if installed is not None:
            return
        if not available:
            raise AdvisorError(
                "HypoPG is not installed on the database server (no 'hypopg' in "
                "pg_available_extensions): install it (Debian/Ubuntu: postgresql-15-hypopg, "
                "or the package for your PostgreSQL version), then run "
                f"CREATE EXTENSION hypopg in {database!r} or pass --create-extension"
            )
        if not create_extension:
            raise AdvisorError(
                f"HypoPG is installed on the server but not enabled in database {database!r}: "
                "run CREATE EXTENSION hypopg there, or pass --create-extension "
                "(create_extension=True) to let the advisor do it (it changes the database)"
            )
        try:
            cur.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        except psycopg.Error as exc:
            raise AdvisorError(f"CREATE EXTENSION hypopg failed: {first_line(exc)}") from None
