"""The statements a `Recorder` holds for its batched observers: a lean statement ended onto
the queue (`LeanEnding.ended`, what ``Recorder.ended`` runs for every statement the proxy
relays) and a batch taken off it (`take`, at each flush).

Its own module so that it can be compiled (see `dbsight._compiled`; typed by the ``.pxd``
next to it): the proxy's compiled exchange then ends each statement without a Python frame.
Without the extension this same source runs as Python. Thread safety is the queue's: one
``append`` adds a statement and one ``popleft`` takes one (a `collections.deque` loses
neither when several threads do so at once, with or without a GIL), so a statement appended
while a batch is taken waits for the next flush, and two threads flushing at once never take
the same statement twice.
"""

from __future__ import annotations

import functools
from collections import deque
from typing import Any

from .. import _hot
from ._context import _function, _request

# Successful statements held for the batched observers before they fold them.
BATCH = 64


class LeanEnding:
    """`Recorder.ended` for one recorder: ``cutoff`` and ``gate`` are its ``lean_cutoff`` and
    ``lean_gate`` (the recorder sets them whenever its observers change), ``pending`` its
    queue of held statements."""

    __slots__ = ("recorder", "pending", "cutoff", "gate", "gate_map", "gate_key", "_append")

    def __init__(self, recorder: Any, pending: deque[Any]) -> None:
        self.recorder = recorder
        self.pending = pending
        self._append = pending.append  # (looked up once, not at each statement)
        self.cutoff = -1.0
        self.gate: Any = None
        # a gate that is one dictionary's ``get`` of one key (the query log's: its logger's
        # cache of levels), asked as the lookup itself, with no call (`set_gate`)
        self.gate_map: dict[Any, Any] | None = None
        self.gate_key: Any = None

    def set_gate(self, gate: Any) -> None:
        """The recorder's ``lean_gate`` (None, or a callable: its statements may be held
        when it returns False)."""
        self.gate = gate
        self.gate_map = self.gate_key = None
        if (
            type(gate) is functools.partial
            and len(gate.args) == 1
            and not gate.keywords
            and type(getattr(gate.func, "__self__", None)) is dict
            and getattr(gate.func, "__name__", None) == "get"
        ):
            self.gate_map = gate.func.__self__
            self.gate_key = gate.args[0]

    def ended(self, begun: tuple[Any, ...], rows: int | None) -> None:
        """Hold the statement begun as ``begun`` (a `LeanStart`) with how it went, or, when
        it ran slow or an observer wants it now, hand its event to the recorder at once."""
        sql, system, source, info, state, params, explain, started = begun
        duration = _hot.perf_counter() - started
        request = _hot.context_value(_request)
        if duration < self.cutoff and (
            self.gate_map.get(self.gate_key) is False if self.gate_map is not None
            else self.gate is None or self.gate() is False
        ):  # fmt: skip
            if request is not None:
                self.recorder._account_begun(request, begun, duration)
            # (one tuple made, not two joined; None: see `LeanStatement`, its start on the
            # wall clock is read when it is folded)
            self._append((sql, system, source, info, state, params, explain, started, request,
                          _hot.context_value(_function), None, duration, rows))  # fmt: skip
            if len(self.pending) >= BATCH:
                self.recorder.flush()
            return
        self.recorder._finish_begun(begun, rows, request, duration)


def take(pending: deque[Any], n: int) -> list[Any]:
    """The first ``n`` statements of ``pending``, taken off it one by one."""
    popleft = pending.popleft
    return [popleft() for _ in range(n)]
