"""Workload capture: the sessions, transactions and statements the proxy relays, as JSON lines
a replay tool can play back later.

One JSON object per line, each with a ``type``::

    {"type": "session_start", "session": 7, "at": 1718000000.1, "user": "app", ...}
    {"type": "transaction", "session": 7, "event": "begin", "at": ...}
    {"type": "statement", "session": 7, "at": ..., "duration_s": ..., "normalized": "...",
     "fingerprint": "...", "rows": 1, "sqlstate": null, "in_transaction": true,
     "route": "/orders/{id}", "request_id": "...", "trace_id": "...", "span_id": "..."}
    {"type": "session_end", "session": 7, "at": ...}

Times are wall-clock (``time.time()``). Statements are written as their normalized text, never
with literals; the route, request id and trace of the request that sent them when a
sqlcommenter comment named them. Only when ``include_params`` is set (the user's choice: the
capture then holds literals and values), also what a replay needs to send each statement
again: ``"sql"``, the text as the client sent it (a simple-protocol Query's with its literals,
an extended-protocol Parse's with ``$n``), and ``"params"``, the Bind's values as text (binary
ones decoded by their type, see `_param_text`). A simple Query holding several statements
(``SELECT 1; SELECT 2``) is one record, as it is one request and one round trip: its
``normalized`` covers them all, its ``sql`` is the whole string, replayed once.

Records are kept in memory and written when the buffer passes `BUFFER_BYTES`, or on
``flush()``/``close()``: recording a statement costs an append, not a system call. The file is
rotated by size like ``logging.handlers.RotatingFileHandler`` (``path.1`` is the newest
backup, ``path.<backups>`` the oldest), between lines, so no file passes ``max_bytes`` unless a
single line does. A failed write (disk full, directory gone) drops the buffered records, is
logged once and counted in ``write_errors``/``records_dropped``; it never reaches the caller:
the relay must not fail because of its capture. Not thread-safe: one per event loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Final, Literal

from ._param_text import BoundParams

logger = logging.getLogger("dbsight.proxy.capture")

BUFFER_BYTES: Final = 64 * 1024

_dumps = json.JSONEncoder(separators=(",", ":")).encode  # ASCII only: len() is the byte count


def _param(value: object) -> Any:
    """A parameter as JSON: bytes as their UTF-8 text when they are valid UTF-8 (lossless),
    else ``{"hex": ...}``; anything else JSON cannot hold as its ``str()``."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return {"hex": raw.hex()}
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


class WorkloadCapture:
    """Appends capture records to ``path``; see the module docstring."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 100 * 2**20,
        backups: int = 5,
        include_params: bool = False,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        if backups < 0:
            raise ValueError(f"backups cannot be negative, got {backups}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.include_params = include_params
        self.write_errors = 0
        self.records_dropped = 0
        self._lines: list[str] = []
        self._buffered = 0
        self._file: IO[bytes] | None = None
        self._size = 0  # bytes in the current file

    # -- records ---------------------------------------------------------------------------

    def session_started(
        self,
        session_id: int,
        *,
        user: str | None,
        database: str | None,
        application_name: str | None,
        client_addr: str | None,
        at: float,
    ) -> None:
        self._append(
            {
                "type": "session_start",
                "session": session_id,
                "at": at,
                "user": user,
                "database": database,
                "application_name": application_name,
                "client_addr": client_addr,
            }
        )

    def statement(
        self,
        session_id: int,
        *,
        started_at: float,
        duration_s: float,
        normalized: str,
        fingerprint: str,
        params: Sequence[object] | BoundParams | None,
        rows: int | None,
        sqlstate: str | None,
        in_transaction: bool,
        route: str | None = None,
        request_id: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        sql: str | None = None,
    ) -> None:
        """A finished statement; ``normalized`` is the literal-free text (SqlInfo.normalized),
        ``sqlstate`` None when it succeeded. The request that sent it (route, request id,
        trace and span ids, from its sqlcommenter comment) is written when known. With
        ``include_params``, also ``sql``, the text as sent (a Query's with its literals, a
        Parse's with ``$n``) and ``params`` (a Bind's `BoundParams`: as text)."""
        record: dict[str, Any] = {
            "type": "statement",
            "session": session_id,
            "at": started_at,
            "duration_s": duration_s,
            "normalized": normalized,
            "fingerprint": fingerprint,
            "rows": rows,
            "sqlstate": sqlstate,
            "in_transaction": in_transaction,
        }
        if route is not None:
            record["route"] = route
        if request_id is not None:
            record["request_id"] = request_id
        if trace_id is not None:
            record["trace_id"] = trace_id
            record["span_id"] = span_id
        if self.include_params:
            if sql:
                record["sql"] = sql
            if isinstance(params, BoundParams):
                record["params"] = params.as_text()
            elif params is not None:
                record["params"] = [_param(p) for p in params]
        self._append(record)

    def transaction(
        self, session_id: int, event: Literal["begin", "commit", "rollback"], at: float
    ) -> None:
        self._append({"type": "transaction", "session": session_id, "event": event, "at": at})

    def session_ended(self, session_id: int, at: float) -> None:
        self._append({"type": "session_end", "session": session_id, "at": at})

    # -- writing ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what is buffered; on an OSError the buffer is dropped (see the docstring)."""
        if not self._lines:
            return
        lines, self._lines, self._buffered = self._lines, [], 0
        written = 0
        try:
            chunk: list[str] = []
            chunk_size = 0
            size = self._open()
            for line in lines:
                if size + chunk_size and size + chunk_size + len(line) > self.max_bytes:
                    if chunk:
                        self._write(chunk)
                        written += len(chunk)
                        chunk, chunk_size = [], 0
                    size = self._rotate()
                chunk.append(line)
                chunk_size += len(line)
            self._write(chunk)
            written += len(chunk)
        except OSError as exc:
            self._failed(exc, len(lines) - written)

    def close(self) -> None:
        """Write what is buffered and close the file (a later record opens it again)."""
        self.flush()
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError as exc:
                self._failed(exc, 0)

    def _append(self, record: dict[str, Any]) -> None:
        line = _dumps(record) + "\n"
        self._lines.append(line)
        self._buffered += len(line)
        if self._buffered >= BUFFER_BYTES:
            self.flush()

    def _open(self) -> int:
        """The file, opened for appending if it is not; returns its size."""
        if self._file is None:
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across flushes
            self._size = os.fstat(self._file.fileno()).st_size
        return self._size

    def _write(self, chunk: list[str]) -> None:
        assert self._file is not None
        data = "".join(chunk).encode("ascii")
        self._file.write(data)
        self._file.flush()
        self._size += len(data)

    def _rotate(self) -> int:
        """path -> path.1 -> ... -> path.<backups> (the oldest dropped); a new, empty path."""
        if self._file is not None:
            file, self._file = self._file, None
            file.close()
        if self.backups:
            for n in range(self.backups - 1, 0, -1):
                older = self._backup(n)
                if older.exists():
                    os.replace(older, self._backup(n + 1))
            os.replace(self.path, self._backup(1))
        self._file = open(self.path, "wb")  # noqa: SIM115 - kept open across flushes
        self._size = 0
        return 0

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def _failed(self, exc: OSError, dropped: int) -> None:
        if not self.write_errors:
            logger.error(
                "workload capture: cannot write %s (%s); records are dropped until writing "
                "works again (logged once, counted in write_errors)",
                self.path,
                exc,
            )
        self.write_errors += 1
        self.records_dropped += dropped
        if self._file is not None:  # reopened at the next flush: the disk may have room then
            file, self._file = self._file, None
            with contextlib.suppress(OSError):  # its buffer is what just failed
                file.close()
