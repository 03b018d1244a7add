"""What the per-statement path reads from the runtime: the monotonic clock (the one
`time.perf_counter` and `time.monotonic` read on Linux) and a context variable's value.

Compiled modules cimport the ``.pxd`` next to this file instead: there the clock is one
``clock_gettime`` and the context variable one ``PyContextVar_Get``, with no Python call;
the values are the same (the clock's seconds are computed as CPython computes them). This
module is what the same sources use as Python.
"""

from __future__ import annotations

from contextvars import ContextVar
from time import monotonic, perf_counter
from typing import Any

__all__ = ["context_value", "monotonic", "perf_counter"]


def context_value(var: ContextVar[Any]) -> Any:
    """``var.get()``: its value, else its default, else None."""
    try:
        return var.get()
    except LookupError:
        return None
