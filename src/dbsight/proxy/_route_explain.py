"""Where the proxy's router sends a statement, and why, in words: what ``dbsight analyze``
shows.

The verdict is the router's own: `Router.unit` judges the statement sent as a simple Query,
with the same hints, settings, transaction starts and read-only rules as for a client. This
module adds the reason (``SqlInfo.obstacle`` when the text is not read-only) and what
needed the server's catalog: the volatility of the functions a SELECT calls, whether an
operator symbol has a volatile user-defined operator, and what each relation read is (a view
may call a volatile function). With a database (`explain_route_on`) the router asks it, as the
proxy does; without one (`explain_route`) those are listed as unchecked, and the target is
where the statement goes if each of them turns out well.
"""

from __future__ import annotations

import dataclasses
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..sql import SqlInfo, analyze
from ._backend import BackendConnection, BackendSpec
from ._router import (
    _HINT,
    _NOT_ON_REPLICA,
    _PRIMARY_SETTING,
    _READ_ONLY_TRANSACTION,
    _WRITING_BUILTINS,
    Lookup,
    Router,
    TransactionStart,
    Unit,
    vouchable,
)
from ._volatility import Execute

Target = Literal["primary", "replica"]
# Lookups before a verdict: functions, operators, relations, and views over views.
_MAX_LOOKUPS = 8


@dataclass(frozen=True, slots=True)
class RouteExplanation:
    """``target``: where the statement goes; ``reason``: why, in words; ``unchecked``: what
    the verdict depends on but could not be asked of a database (any of them may still send
    the statement to the primary)."""

    target: Target
    reason: str
    unchecked: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "reason": self.reason, "unchecked": list(self.unchecked)}


def query_message(sql: str) -> bytes:
    """``sql`` as a simple-protocol Query message, the way a client sends it."""
    body = sql.encode("utf-8") + b"\x00"
    return b"Q" + struct.pack(">i", len(body) + 4) + body


def _judge(router: Router, sql: str, now: float) -> Unit | Lookup:
    return router.unit(query_message(sql), 0, lambda name: None, now)


def explain_route(sql: str) -> RouteExplanation:
    """The router's verdict on ``sql`` from its text alone (no database to ask)."""
    router = Router()
    now = time.monotonic()
    return _explain(sql, router, _judge(router, sql, now), now)


async def explain_route_on(sql: str, execute: Execute) -> RouteExplanation:
    """The router's verdict on ``sql``, asking the database ``execute`` runs queries on what
    the text alone cannot tell (as the proxy asks its primary)."""
    router = Router()
    now = time.monotonic()
    judged = _judge(router, sql, now)
    for _ in range(_MAX_LOOKUPS):
        if isinstance(judged, Unit):
            break
        await router.resolve(judged, execute, now)
        judged = _judge(router, sql, now)
    return _explain(sql, router, judged, now)


async def explain_route_at(sql: str, url: str, timeout_s: float = 10.0) -> RouteExplanation:
    """`explain_route_on` a new connection to the PostgreSQL at ``url``
    (``postgresql://user:password@host:port/database``), closed afterwards. Raises ValueError
    for a URL that is not one, and what `BackendConnection.connect` raises."""
    from ._config import Upstream

    upstream = Upstream.from_url(url)
    spec = BackendSpec(
        host=upstream.host,
        port=upstream.port,
        user=upstream.user or "postgres",
        database=upstream.database or upstream.user or "postgres",
        password=upstream.password,
        application_name="dbsight-analyze",
        connect_timeout_s=timeout_s,
    )
    connection = await BackendConnection.connect(spec)
    try:
        return await explain_route_on(sql, connection.execute)
    finally:
        await connection.close()


# -- the reasons ---------------------------------------------------------------------------
def _explain(sql: str, router: Router, judged: Unit | Lookup, now: float) -> RouteExplanation:
    explained = _reasoned(sql, router, now)
    if isinstance(judged, Unit) and judged.replica != (explained.target == "replica"):
        # the router's verdict is what the proxy does; the words must not contradict it
        target: Target = "replica" if judged.replica else "primary"
        return RouteExplanation(target, f"the router's verdict ({explained.reason})")
    return explained


def _reasoned(sql: str, router: Router, now: float) -> RouteExplanation:
    if _READ_ONLY_TRANSACTION.match(sql) and not _NOT_ON_REPLICA.search(sql):
        return RouteExplanation("replica", "a READ ONLY transaction: it runs on a replica whole")
    hint = _HINT.search(sql) if "dbsight:" in sql else None
    if hint is not None:
        if hint.group(1).lower() == "primary":
            return RouteExplanation("primary", "a /* dbsight:primary */ comment")
        if vouchable(sql):
            return RouteExplanation(
                "replica", "a /* dbsight:replica */ comment (it vouches for the functions "
                "called and for freshness)"
            )
        return RouteExplanation(
            "primary",
            f"a /* dbsight:replica */ comment cannot move it: {analyze(sql).obstacle}",
        )
    if _PRIMARY_SETTING.search(sql) is not None:
        return RouteExplanation(
            "primary", "it reads transaction_read_only, which drivers ask to find the primary"
        )
    if TransactionStart.begin(sql, b"") is not None:
        return RouteExplanation(
            "primary",
            "a transaction start without READ ONLY: the transaction runs on the primary",
        )
    info = analyze(sql)
    if not info.read_only and (not info.functions or info.operation != "select"):
        return RouteExplanation("primary", info.obstacle or "not provably read-only")
    return _catalog_verdict(info, router, now)


def _catalog_verdict(info: SqlInfo, router: Router, now: float) -> RouteExplanation:
    """A read-only text, or a SELECT whose only obstacle is its function calls: what the
    catalog says of its functions, operators and relations decides."""
    volatility = router.volatility
    functions = {
        name: volatility.verdict(dataclasses.replace(info, functions=(name,), operators=()), now)
        for name in info.functions
    }
    operators = (
        volatility.verdict(dataclasses.replace(info, read_only=True, functions=()), now)
        if info.operators
        else True
    )
    relations = {name: router.relations.verdict((name,), now) for name in info.tables}

    writing = [name for name in info.functions if name in _WRITING_BUILTINS]
    if writing:  # what the server would say of them: no need to ask
        return RouteExplanation("primary", f"calls {_calls(writing)}, a built-in that writes")
    volatile = [name for name, ok in functions.items() if ok is False]
    if volatile:
        return RouteExplanation(
            "primary",
            f"calls {_calls(volatile)}: VOLATILE (it may write), or no such function",
        )
    if operators is False:
        return RouteExplanation(
            "primary",
            f"uses the operator {_listed(info.operators)}, which a volatile user-defined "
            "operator has",
        )
    unsafe = [name for name, ok in relations.items() if ok is False]
    if unsafe:
        return RouteExplanation(
            "primary",
            f"reads {_listed(unsafe)}: a view that is not read-only, a temporary or unlogged "
            "table, or no such relation",
        )

    unchecked = []
    pending_functions = [name for name, ok in functions.items() if ok is None]
    if pending_functions:
        unchecked.append(
            f"the volatility of {_calls(pending_functions)}: a VOLATILE one (what CREATE "
            "FUNCTION makes unless told otherwise) or a missing one sends it to the primary"
        )
    if operators is None:
        unchecked.append(
            f"whether a user-defined operator {_listed(info.operators)} is volatile (the "
            "built-in ones are not)"
        )
    pending_relations = [name for name, ok in relations.items() if ok is None]
    if pending_relations:
        unchecked.append(
            f"what {_listed(pending_relations)} {'is' if len(pending_relations) == 1 else 'are'}"
            ": a view calling a volatile function, a temporary or unlogged table, or no such "
            "relation sends it to the primary"
        )

    if info.functions:
        known = "non-volatile" if not pending_functions else "user"
        reason = f"a SELECT calling only {known} functions ({_calls(list(info.functions))})"
    elif info.operation == "select":
        reason = "plain SELECT: no locking clause, no writes, only read-only built-in functions"
    else:
        reason = "read-only: SHOW, or EXPLAIN without ANALYZE of a plain SELECT"
    checked = [name for name, ok in relations.items() if ok]
    if checked:
        reason += f"; {_listed(checked)}: tables or read-only views"
    return RouteExplanation("replica", reason, tuple(unchecked))


def _calls(names: Sequence[str]) -> str:
    return _listed([f"{name}()" for name in names])


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names)
