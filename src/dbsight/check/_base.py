"""What a check is: a name, a title, a severity and a function from a read-only `Context` to
an `Outcome`. The runner turns outcomes into `CheckResult`s, and a failing query into an
``"error"`` result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..sql import analyze
from ._report import Finding, Severity
from ._session import Session
from ._thresholds import CheckThresholds

__all__ = ["Check", "Context", "Finding", "Outcome", "count", "normalized", "plural", "size"]


@dataclass(frozen=True, slots=True)
class Context:
    session: Session
    thresholds: CheckThresholds
    replicas: Sequence[str] = ()
    timeout_s: float = 10.0


@dataclass(slots=True)
class Outcome:
    """What a check saw. ``findings`` are the failing objects (the check fails when there is
    one); ``items`` replaces them in the report when the check shows figures it judged rather
    than objects (connections by state). ``severity`` overrides the check's own when the
    finding is graver than usual (a wraparound close to the hard stop)."""

    summary: str
    findings: list[Finding] = field(default_factory=list)
    hint: str | None = None
    items: list[dict[str, Any]] | None = None
    severity: Severity | None = None


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    title: str
    severity: Severity
    run: Callable[[Context], Outcome]


def normalized(query: str | None) -> str | None:
    """A statement from pg_stat_activity as dbsight shows statements: literals replaced by
    placeholders (the text may be cut at track_activity_query_size: the lexer still masks)."""
    if not query or query.startswith("<"):  # <insufficient privilege>, <IDLE> ...
        return None
    return analyze(query, "postgresql").normalized


def fingerprint(query: str | None) -> str | None:
    if not query or query.startswith("<"):
        return None
    return analyze(query, "postgresql").fingerprint


def size(n_bytes: float | None) -> str:
    """``n_bytes`` for a person: 8 kB, 12.3 MB, 1.2 GB."""
    value = float(n_bytes or 0)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def count(n: float) -> str:
    return f"{int(n):,}"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (words or word + 's')}"
