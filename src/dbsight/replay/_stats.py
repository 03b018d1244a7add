"""Per-fingerprint latency of one side of a comparison: calls, p50/p95/p99, errors.

Percentiles are numpy's ``linear`` method over the durations of the calls that succeeded
(`dbsight.stats._histogram.exact_quantiles`, the one definition every dbsight quantile
uses); a failed call counts in ``errors``, not in the latency (an error that comes back at
once would otherwise hide a slowdown).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..stats._histogram import exact_quantiles

_QUANTILES = (0.50, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class Side:
    """``p*_ms`` None when no call succeeded; ``sqlstates`` how many calls failed with each
    SQLSTATE (codes only: an error's message may quote a value)."""

    calls: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors: int
    sqlstates: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, durations_s: Iterable[float], sqlstates: Iterable[str]) -> Side:
        """From the successful calls' durations (seconds) and the failed calls' SQLSTATEs."""
        ok = list(durations_s)
        codes: dict[str, int] = {}
        for code in sqlstates:
            codes[code] = codes.get(code, 0) + 1
        errors = sum(codes.values())
        if not ok:
            return cls(errors, None, None, None, errors, codes)
        p50, p95, p99 = exact_quantiles(ok, _QUANTILES)
        return cls(len(ok) + errors, p50 * 1e3, p95 * 1e3, p99 * 1e3, errors, codes)

    @classmethod
    def empty(cls) -> Side:
        return cls(0, None, None, None, 0)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Side:
        def number(key: str) -> float | None:
            value = data.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{key} is not a number")
            return float(value)

        calls, errors = data.get("calls", 0), data.get("errors", 0)
        if not isinstance(calls, int) or not isinstance(errors, int):
            raise TypeError("calls and errors must be whole numbers")
        codes = data.get("sqlstates") or {}
        if not isinstance(codes, dict):
            raise TypeError("sqlstates is not an object")
        return cls(
            calls, number("p50_ms"), number("p95_ms"), number("p99_ms"), errors,
            {str(k): int(v) for k, v in codes.items()},
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return round(value, 4) if value is not None else None

        return {
            "calls": self.calls,
            "p50_ms": rounded(self.p50_ms),
            "p95_ms": rounded(self.p95_ms),
            "p99_ms": rounded(self.p99_ms),
            "errors": self.errors,
            "sqlstates": dict(self.sqlstates),
        }
