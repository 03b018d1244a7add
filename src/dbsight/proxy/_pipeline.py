"""The proxy's request pipeline: the ``[[proxy.pipeline]]`` steps a connection and each of its
statements pass before they reach the server.

Five handlers, configured in order, before the last one, the execution itself:

- ``allow``: which users, databases and client networks may connect (checked at login);
- ``rate_limit``: a token bucket per user or per application_name; over the limit a statement
  is rejected, or (``mode = "queue"``) held back until its token is due;
- ``firewall``: DDL from listed users, UPDATE/DELETE without a WHERE clause, listed statement
  fingerprints, and result sets longer than ``max_rows``;
- ``sample``: which share of the statements that get this far are logged and traced: an
  environment profile's rate (dev 100 %, staging 10 %, prod 1 %) or ``rate``, drawn per
  statement (without one, dbsight's settings decide: ``DBSIGHT_ENVIRONMENT``);
- ``log``: each statement that gets this far, and that the sample step before it kept, is
  logged when it ends (one record: who, where, the normalized statement, its duration, rows
  and SQLSTATE; literals only with ``include_query_bodies``).

Sans-IO: `Pipeline` takes what the relay knows (`StatementFacts`, the clock) and returns a
decision: None to go on, a delay in seconds to wait first, or a `Rejection` carrying the
SQLSTATE and message the client gets. It never reads a socket or the clock itself, so every
rule is testable without a server. A statement counts against the rate limits of the steps
before the one that rejects it: it was attempted.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pglast.parser import parse_sql_json
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..core._settings import DEFAULT_SAMPLE_RATES, Environment
from ..sql import SqlInfo

# PostgreSQL's own answer to a client that pg_hba.conf does not admit.
INVALID_AUTHORIZATION = "28000"
# configuration_limit_exceeded: a limit the operator configured, and class 53 ("insufficient
# resources") tells clients and poolers that the condition is transient: retry later.
CONFIGURATION_LIMIT_EXCEEDED = "53400"
# The server's code for what a role is not permitted to do.
INSUFFICIENT_PRIVILEGE = "42501"
# cardinality_violation: what the pg-safeupdate extension (enabled by default on Supabase's
# PostgREST roles) raises for "DELETE requires a WHERE clause", so clients that already handle
# that guard recognise this one.
CARDINALITY_VIOLATION = "21000"
# program_limit_exceeded: the statement itself is too big for this system; unlike class 53,
# running it again cannot succeed.
PROGRAM_LIMIT_EXCEEDED = "54000"

UNIX_SOCKET: Final = "unix"  # the cidrs entry that admits Unix-socket clients
MAX_BUCKETS: Final = 10_000  # token buckets kept per rate_limit step (least recently used go)
MAX_WRITE_CHECKS: Final = 10_000  # unbounded-write verdicts cached, by fingerprint


# -- configuration ------------------------------------------------------------------------------

Name = Annotated[str, Field(min_length=1)]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AllowStep(_Step):
    """Who may connect; an empty list admits any value. ``cidrs`` holds networks
    (``10.0.0.0/8``, ``::1``) and ``"unix"`` for Unix-socket clients."""

    handler: Literal["allow"] = "allow"
    users: list[Name] = []
    databases: list[Name] = []
    cidrs: list[str] = []

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            if value != UNIX_SOCKET:
                try:
                    ipaddress.ip_network(value, strict=False)
                except ValueError:
                    raise ValueError(
                        f"{value!r} is neither a network (like 10.0.0.0/8) nor {UNIX_SOCKET!r}"
                    ) from None
        return values


class RateLimitStep(_Step):
    """At most ``rate`` statements per second per key, with bursts of up to ``burst``."""

    handler: Literal["rate_limit"] = "rate_limit"
    per: Literal["user", "application_name"] = "user"
    rate: float = Field(gt=0, description="statements per second")
    burst: int = Field(ge=1, description="statements allowed at once after a quiet period")
    mode: Literal["reject", "queue"] = "reject"
    max_wait_s: float = Field(1.0, ge=0, description="queue mode: longest delay, then reject")


class FirewallStep(_Step):
    """Statements refused before they reach the server (and ``max_rows``, enforced while
    their rows are relayed)."""

    handler: Literal["firewall"] = "firewall"
    deny_ddl_users: list[Name] = []
    deny_unbounded_writes: bool = False
    deny_fingerprints: list[str] = []
    max_rows: int | None = Field(None, ge=1)

    @field_validator("deny_fingerprints")
    @classmethod
    def _fingerprints(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            fingerprint = value.strip().lower()
            if len(fingerprint) != 16 or any(c not in "0123456789abcdef" for c in fingerprint):
                raise ValueError(
                    f"{value!r} is not a statement fingerprint (16 hex digits, as dbsight shows)"
                )
            out.append(fingerprint)
        return out


class SampleStep(_Step):
    """The share of statements logged and traced from here on: ``environment``'s rate (dev
    1.0, staging 0.1, prod 0.01) or ``rate``; a statement failing is logged all the same."""

    handler: Literal["sample"] = "sample"
    environment: Environment | None = None
    rate: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _one_rate(self) -> SampleStep:
        if (self.environment is None) == (self.rate is None):
            raise ValueError("a sample step names exactly one of environment or rate")
        return self

    @property
    def effective_rate(self) -> float:
        if self.rate is not None:
            return self.rate
        assert self.environment is not None
        return DEFAULT_SAMPLE_RATES[self.environment]


class LogStep(_Step):
    """Each statement that gets here (and that an earlier sample step kept) is logged on
    ``logger`` at ``level`` when it ends."""

    handler: Literal["log"] = "log"
    logger: Name = "dbsight.proxy.statements"
    level: Literal["debug", "info", "warning"] = "info"


PipelineStep = Annotated[
    AllowStep | RateLimitStep | FirewallStep | SampleStep | LogStep,
    Field(discriminator="handler"),
]


# -- decisions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """Why a connection or statement was refused: ``rule`` is ``handler.setting``, ``reason``
    the ``proxy_rejected_total`` label, ``message`` what the client reads."""

    rule: str
    reason: str
    sqlstate: str
    message: str


def _rejection(handler: str, setting: str, reason: str, sqlstate: str, why: str) -> Rejection:
    return Rejection(
        f"{handler}.{setting}",
        reason,
        sqlstate,
        f"dbsight proxy: rejected by {handler} rule {setting}: {why}",
    )


@dataclass(frozen=True)
class StatementFacts:
    """What the relay knows about a statement when the client sends it."""

    user: str | None
    database: str | None
    application_name: str | None
    client_addr: str | None
    sql: str
    info: SqlInfo


# -- allow ----------------------------------------------------------------------------------------


class _Allow:
    __slots__ = ("databases", "networks", "unix", "users")

    def __init__(self, step: AllowStep) -> None:
        self.users = frozenset(step.users)
        self.databases = frozenset(step.databases)
        self.networks = tuple(
            ipaddress.ip_network(c, strict=False) for c in step.cidrs if c != UNIX_SOCKET
        )
        self.unix = UNIX_SOCKET in step.cidrs

    def check(self, user: str | None, database: str | None, addr: str | None) -> Rejection | None:
        if self.users and user not in self.users:
            return self._deny("users", f'user "{user}" is not allowed')
        if self.databases and database not in self.databases:
            return self._deny("databases", f'database "{database}" is not allowed')
        if (self.networks or self.unix) and not self._admits(addr):
            where = "Unix-socket clients are" if addr is None else f"client address {addr} is"
            return self._deny("cidrs", f"{where} not allowed")
        return None

    def _admits(self, addr: str | None) -> bool:
        if addr is None:
            return self.unix
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False  # not an address we can place: not in any allowed network
        candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)  # ::ffff:10.1.2.3 from a dual-stack listener
        return any(c in net for c in candidates for net in self.networks)

    @staticmethod
    def _deny(setting: str, why: str) -> Rejection:
        return _rejection("allow", setting, "allow", INVALID_AUTHORIZATION, why)


# -- rate limit -----------------------------------------------------------------------------------


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class _RateLimit:
    """Token buckets, one per key, at most `MAX_BUCKETS` of them: a key evicted for being the
    least recently used starts again with a full bucket, which only ever errs towards
    admitting. In queue mode the bucket goes into debt: each queued statement reserves the
    next token, so waiting statements are spaced ``1 / rate`` apart."""

    __slots__ = ("buckets", "burst", "max_wait_s", "per", "queue", "rate")

    def __init__(self, step: RateLimitStep) -> None:
        self.per = step.per
        self.rate = step.rate
        self.burst = float(step.burst)
        self.queue = step.mode == "queue"
        self.max_wait_s = step.max_wait_s
        self.buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, facts: StatementFacts, now: float) -> Rejection | float:
        """A token for this statement: 0.0 when it may go now, the delay before it may go,
        or a Rejection."""
        key = (facts.user if self.per == "user" else facts.application_name) or ""
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(self.burst, now)
            if len(self.buckets) > MAX_BUCKETS:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
            elapsed = now - bucket.at
            if elapsed > 0:  # a clock that steps back refills nothing
                bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
                bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        if not self.queue:
            return self._deny("rate", f"{self._who(key)} is over {self._limit()}")
        wait = (1 - bucket.tokens) / self.rate
        if wait > self.max_wait_s:
            return self._deny(
                "max_wait_s",
                f"{self._who(key)} would wait {wait:.3g}s (over {self.max_wait_s:g}s) "
                f"under {self._limit()}",
            )
        bucket.tokens -= 1
        return wait

    def _who(self, key: str) -> str:
        return f'{self.per} "{key}"' if key else f"a client without {self.per}"

    def _limit(self) -> str:
        return f"{self.rate:g} statements/s (burst {self.burst:g})"

    @staticmethod
    def _deny(setting: str, why: str) -> Rejection:
        return _rejection("rate_limit", setting, "rate_limit", CONFIGURATION_LIMIT_EXCEEDED, why)


# -- firewall -------------------------------------------------------------------------------------

# Operations that may hold an UPDATE or DELETE: a data-modifying CTE or a multi-statement text
# makes the operation "update"/"delete"; "other" covers EXPLAIN ANALYZE. DDL (CREATE RULE, a
# BEGIN ATOMIC function body) only defines statements that run later.
_MAY_WRITE: Final = frozenset({"update", "delete", "other"})
_WRITE_TAGS: Final = {"UpdateStmt": "UPDATE", "DeleteStmt": "DELETE"}


def _mentions_row(expr: Any) -> bool:
    """Whether an expression reads the row (a column, or WHERE CURRENT OF a cursor)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            if "ColumnRef" in node or "CurrentOfExpr" in node:
                return True
            stack.extend(v for v in node.values() if type(v) is dict or type(v) is list)
        elif type(node) is list:
            stack.extend(node)
    return False


def _bounds_rows(expr: Any) -> bool:
    """Whether a WHERE clause can single out rows. One that reads no column (``WHERE true``,
    ``1 = 1``, but also ``false`` or ``$1``) cannot, nor an OR with such an arm (``id = 1 OR
    1 = 1``). The verdict is cached by fingerprint, which ignores constants, so it must not
    depend on their values."""
    if type(expr) is not dict:
        return False
    boolean = expr.get("BoolExpr")
    if type(boolean) is dict:
        args = boolean.get("args") or []
        if boolean.get("boolop") == "AND_EXPR":
            return any(_bounds_rows(a) for a in args)
        if boolean.get("boolop") == "OR_EXPR":
            return all(_bounds_rows(a) for a in args)
    return _mentions_row(expr)


def _is_explain_analyze(body: dict[str, Any]) -> bool:
    for option in body.get("options") or ():
        elem = option.get("DefElem") if type(option) is dict else None
        if type(elem) is dict and elem.get("defname") == "analyze":
            return True
    return False


def unbounded_write(sql: str) -> str | None:
    """``"UPDATE"`` or ``"DELETE"`` when ``sql`` has one without a row-bounding WHERE clause
    (anywhere: in a data-modifying CTE, a later statement of the text, EXPLAIN ANALYZE);
    None otherwise, and for text pglast cannot parse: the server will reject that itself."""
    try:
        stack: list[Any] = [json.loads(parse_sql_json(sql))]
        while stack:
            node = stack.pop()
            if type(node) is list:
                stack.extend(node)
                continue
            if type(node) is not dict:
                continue
            for key, value in node.items():
                if type(value) is dict:
                    if key in _WRITE_TAGS and not _bounds_rows(value.get("whereClause")):
                        return _WRITE_TAGS[key]
                    if key == "ExplainStmt" and not _is_explain_analyze(value):
                        continue  # a plain EXPLAIN does not run its statement
                    stack.append(value)
                elif type(value) is list:
                    stack.append(value)
    except Exception:  # noqa: BLE001 - parse errors, too-deep nesting ...: never reject
        return None
    return None


class _Firewall:
    __slots__ = ("ddl_users", "fingerprints", "max_rows", "unbounded", "verdicts")

    def __init__(self, step: FirewallStep) -> None:
        self.ddl_users = frozenset(step.deny_ddl_users)
        self.unbounded = step.deny_unbounded_writes
        self.fingerprints = frozenset(step.deny_fingerprints)
        self.max_rows = step.max_rows
        self.verdicts: OrderedDict[str, str | None] = OrderedDict()

    def check(self, facts: StatementFacts) -> Rejection | None:
        info = facts.info
        if info.operation == "ddl" and facts.user in self.ddl_users:
            return self._deny(
                "deny_ddl_users", "firewall_ddl", INSUFFICIENT_PRIVILEGE,
                f'user "{facts.user}" may not run DDL',
            )  # fmt: skip
        if self.unbounded and info.operation in _MAY_WRITE:
            write = self._unbounded_write(facts)
            if write is not None:
                return self._deny(
                    "deny_unbounded_writes", "firewall_unbounded_write", CARDINALITY_VIOLATION,
                    f"{write} without WHERE",
                )  # fmt: skip
        if info.fingerprint in self.fingerprints:
            return self._deny(
                "deny_fingerprints", "firewall_fingerprint", INSUFFICIENT_PRIVILEGE,
                f"statement fingerprint {info.fingerprint} is denied",
            )  # fmt: skip
        return None

    def _unbounded_write(self, facts: StatementFacts) -> str | None:
        fingerprint = facts.info.fingerprint
        if fingerprint in self.verdicts:
            self.verdicts.move_to_end(fingerprint)
            return self.verdicts[fingerprint]
        verdict = self.verdicts[fingerprint] = unbounded_write(facts.sql)
        if len(self.verdicts) > MAX_WRITE_CHECKS:
            self.verdicts.popitem(last=False)
        return verdict

    @staticmethod
    def _deny(setting: str, reason: str, sqlstate: str, why: str) -> Rejection:
        return _rejection("firewall", setting, reason, sqlstate, why)


# -- sample and log -------------------------------------------------------------------------------


class _Sample:
    __slots__ = ("rate",)

    def __init__(self, step: SampleStep) -> None:
        self.rate = step.effective_rate


class StatementLog:
    """Where a `log` step writes: a logger and a level."""

    __slots__ = ("level", "logger")

    def __init__(self, step: LogStep) -> None:
        self.logger = logging.getLogger(step.logger)
        self.level = logging.getLevelName(step.level.upper())


@dataclass(frozen=True, slots=True)
class Observation:
    """What the sample and log steps decided for one statement: ``sampled`` (None: no
    sample step, dbsight's rates decide) and the logs it goes to when it ends."""

    sampled: bool | None = None
    logs: tuple[StatementLog, ...] = ()


UNOBSERVED: Final = Observation()


# -- the pipeline ---------------------------------------------------------------------------------


class Pipeline:
    """The configured steps, ready to run; see the module docstring.

    ``rejected`` counts every Rejection returned, by reason (``proxy_rejected_total``).
    """

    def __init__(
        self,
        allow: Iterable[_Allow] = (),
        statement_steps: Iterable[_RateLimit | _Firewall] = (),
        observe_steps: Iterable[_Sample | StatementLog] = (),
    ) -> None:
        self._allow = tuple(allow)
        self._statement_steps = tuple(statement_steps)
        self._observe_steps = tuple(observe_steps)
        limits = [
            s.max_rows
            for s in self._statement_steps
            if isinstance(s, _Firewall) and s.max_rows is not None
        ]
        self._max_rows = min(limits) if limits else None
        self.rejected: Counter[str] = Counter()

    @classmethod
    def from_config(cls, steps: Sequence[PipelineStep]) -> Pipeline:
        allow: list[_Allow] = []
        statement_steps: list[_RateLimit | _Firewall] = []
        observe_steps: list[_Sample | StatementLog] = []
        for step in steps:
            if isinstance(step, AllowStep):
                allow.append(_Allow(step))
            elif isinstance(step, RateLimitStep):
                statement_steps.append(_RateLimit(step))
            elif isinstance(step, FirewallStep):
                statement_steps.append(_Firewall(step))
            elif isinstance(step, SampleStep):
                observe_steps.append(_Sample(step))
            else:
                observe_steps.append(StatementLog(step))
        return cls(allow, statement_steps, observe_steps)

    def on_connect(
        self,
        user: str | None,
        database: str | None,
        client_addr: str | None,
        application_name: str | None,
    ) -> Rejection | None:
        """At login (answer a Rejection with a FATAL ErrorResponse): every allow step must
        admit the client. ``client_addr`` is None for a Unix-socket client."""
        for step in self._allow:
            rejection = step.check(user, database, client_addr)
            if rejection is not None:
                return self._count(rejection)
        return None

    def on_statement(self, facts: StatementFacts, now: float) -> Rejection | float | None:
        """Before a statement is forwarded: None to forward it, the seconds to hold it first
        (queue-mode rate limits), or a Rejection to answer instead. ``now`` is monotonic."""
        delay = 0.0
        for step in self._statement_steps:
            if isinstance(step, _RateLimit):
                outcome = step.take(facts, now)
                if isinstance(outcome, Rejection):
                    return self._count(outcome)
                delay = max(delay, outcome)
            else:
                rejection = step.check(facts)
                if rejection is not None:
                    return self._count(rejection)
        return delay or None

    def observe(self, draw: Callable[[], float] = random.random) -> Observation:
        """For a statement the steps before let through: the sample steps' draws and the
        log steps it reaches (a statement an earlier sample step dropped is logged by none)."""
        if not self._observe_steps:
            return UNOBSERVED
        sampled: bool | None = None
        logs: list[StatementLog] = []
        for step in self._observe_steps:
            if isinstance(step, _Sample):
                if sampled is not False:
                    sampled = step.rate >= 1.0 or draw() < step.rate
            elif sampled is not False:
                logs.append(step)
        return Observation(sampled, tuple(logs))

    def row_limit(self, facts: StatementFacts) -> int | None:
        """The most DataRows the relay lets this statement return (the smallest ``max_rows``
        of the firewall steps), or None for no limit."""
        return self._max_rows

    def row_limit_rejection(self, limit: int, *, count: bool = True) -> Rejection:
        """What the client gets, in place of the rest of the result, past ``limit`` rows
        (``count``: count it now; the relay builds it ahead and counts each use itself)."""
        rejection = _rejection(
            "firewall", "max_rows", "firewall_max_rows", PROGRAM_LIMIT_EXCEEDED,
            f"the statement returned more than {limit} rows",
        )  # fmt: skip
        return self._count(rejection) if count else rejection

    def _count(self, rejection: Rejection) -> Rejection:
        self.rejected[rejection.reason] += 1
        return rejection
