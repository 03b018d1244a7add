"""The statements a `Recorder` holds for its batched observers: a lean statement ended onto
the queue (`LeanEnding.ended`, what ``Recorder.ended`` runs for every statement the proxy
relays) and a batch taken off it (`take`, at each flush). When every batched observer takes
`LeanEvent`s (dbsight's own sinks), a statement with its analysis and outside a request is
held as its `LeanEvent`, made here: no tuple made to be turned into one at the fold.

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
import time
from collections import deque
from typing import Any

from .. import _hot
from . import _lean
from ._context import _function, _request

_time = time.time

# Successful statements held for the batched observers before they fold them.
BATCH = 64
# (a power of two) analyses `LeanEnding` remembers the fingerprint of, by their objects'
# addresses: the statements of a transaction, or of clients taking turns, each read their
# analysis's fingerprint once, not at every statement
RECENT = 16


class LeanEnding:
    """`Recorder.ended` for one recorder: ``cutoff`` and ``gate`` are its ``lean_cutoff`` and
    ``lean_gate`` (the recorder sets them whenever its observers change), ``pending`` its
    queue of held statements."""

    __slots__ = (
        "recorder", "pending", "cutoff", "gate", "gate_map", "gate_key", "events", "settings",
        "_append", "_clock", "_fingerprints",
    )  # fmt: skip

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
        # every batched observer takes `LeanEvent`s: a statement is held as its event
        # (``settings``: the recorder's (app, keep_params), as `lean_events` is given them)
        self.events = False
        self.settings: tuple[str | None, bool] = (None, False)
        # the wall clock's offset from perf_counter's, read as a batch begins; and the
        # fingerprints of the analyses seen last (see `RECENT`), each slot an (analysis,
        # fingerprint) pair replaced whole: threads that hold statements at once never give
        # one the other's
        self._clock = 0.0
        self._fingerprints: list[tuple[Any, Any]] = [(None, None)] * RECENT

    def set_events(self, events: bool, settings: tuple[str | None, bool]) -> None:
        """Whether statements are held as `LeanEvent`s, made with the recorder's ``settings``
        (its ``_lean_events``, ``(app, keep_params)``)."""
        self.events = events
        self.settings = settings

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
        now = _hot.perf_counter()
        duration = now - started
        request = _hot.context_value(_request)
        if duration < self.cutoff and (
            self.gate_map.get(self.gate_key) is False if self.gate_map is not None
            else self.gate is None or self.gate() is False
        ):  # fmt: skip
            if request is None and info is not None and self.events:
                self._hold_event(begun, system, info, state, started, now, duration, rows)
                return
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

    def _hold_event(
        self, begun: tuple[Any, ...], system: str, info: Any, state: Any, started: float,
        now: float, duration: float, rows: int | None,
    ) -> None:
        """Hold the statement as the `LeanEvent` `lean_events` would make of it at the fold
        (its request None: the route is the only field read from one)."""
        pending = self.pending
        if not pending or self._clock == 0.0:  # (a batch begins: the offset, read for it)
            self._clock = _time() - now
        slot = (_hot.address(info) >> 4) & (RECENT - 1)  # (objects are 16-byte aligned)
        known = self._fingerprints[slot]
        if known[0] is info:
            fingerprint = known[1]
        else:
            fingerprint = info.fingerprint
            self._fingerprints[slot] = (info, fingerprint)
        self._append(_lean.new_event(
            system, fingerprint, duration, rows, self._clock + started, None,
            state.database if state is not None else None, begun,
            _hot.context_value(_function), info, self.settings,
        ))  # fmt: skip  # (``begun``, a `LeanStart`: `LeanEvent.full` adds the rest)
        if len(pending) >= BATCH:
            self.recorder.flush()


def take(pending: deque[Any], n: int) -> list[Any]:
    """The first ``n`` statements of ``pending``, taken off it one by one: fewer when another
    thread's flush took some of them since ``n`` was counted."""
    popleft = pending.popleft
    batch: list[Any] = []
    try:
        for _ in range(n):
            batch.append(popleft())
    except IndexError:  # (the rest is in that other batch)
        pass
    return batch
