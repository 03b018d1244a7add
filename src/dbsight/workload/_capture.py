"""A workload from a capture file written by ``dbsight proxy --capture`` (the format is
described in `dbsight.proxy._capture`): its statement records added up per fingerprint.

Calls, total time, rows, errors (records with a SQLSTATE) and routes are counted; the p95 is
that of the durations themselves (numpy's ``linear`` method, as everywhere in dbsight; past
`EXACT_DURATIONS` calls of one fingerprint from the same log-bucketed histogram as the
statistics table, within 1.96 %). Samples come from the records that carry the statement's
own text (``"sql"``) and, for ``$n`` placeholders, its parameter values (``"params"``), both
written only with ``capture_params``: a reservoir of `MAX_SAMPLES` per fingerprint, each
record as likely to be kept as any other, so values that dominate the traffic dominate the
samples. The backups ``path.N`` written by rotation are read first, the oldest first.
"""

from __future__ import annotations

import json
import math
import random
import re
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, NamedTuple

from .._progress import ProgressCallback as Progress
from ..stats import _histogram
from ._errors import WorkloadError
from ._filter import UTILITY, is_utility
from ._model import MAX_SAMPLES, Sample, Workload, WorkloadStatement

__all__ = ["CaptureLine", "capture_files", "capture_lines", "capture_records", "from_capture"]

# Durations kept per fingerprint for exact percentiles; past this, the histogram.
EXACT_DURATIONS: Final = 100_000
# The same capture gives the same samples, so the same advice.
_SEED: Final = 12
# Progress is told at most once per this many bytes read.
PROGRESS_BYTES: Final = 4 * 2**20

# json.loads without its type and encoding checks: a capture is ASCII JSON, a line at a time
_decode = json.JSONDecoder().decode



def capture_files(path: Path | str, *, rotated: bool = True) -> list[Path]:
    """The files of a capture in the order they were written: the backups ``path.N``
    (``path.1`` the newest) from the oldest, then ``path``."""
    path = Path(path)
    files: list[tuple[int, Path]] = []
    if rotated:
        pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
        try:
            siblings = list(path.parent.iterdir())
        except OSError as exc:
            raise WorkloadError(f"cannot read capture {path}: {exc.strerror or exc}") from None
        for sibling in siblings:
            match = pattern.fullmatch(sibling.name)
            if match is not None and sibling.is_file():
                files.append((int(match.group(1)), sibling))
    ordered = [file for _, file in sorted(files, reverse=True)]
    if path.exists() or not ordered:
        ordered.append(path)  # a missing path with no backups either is the error below
    return ordered


class CaptureLine(NamedTuple):
    """A non-blank line of a capture: where it stands, and the record it holds (a JSON object
    with a ``type``), or None and ``problem`` when it holds none. ``last``: the last line of
    its file (a capture still being written can end in a line cut short)."""

    file: Path
    number: int
    record: dict[str, Any] | None
    problem: str | None
    last: bool


def capture_lines(
    path: Path | str, *, rotated: bool = True, progress: Progress | None = None
) -> Iterator[CaptureLine]:
    """Every non-blank line of a capture, its backups first (see `capture_files`), for the
    readers that say where a bad line is; `capture_records` for those that skip it. A file
    that cannot be read is a `WorkloadError`. ``progress("reading capture", bytes_read,
    bytes_total)`` is told as the files are read."""
    files = capture_files(path, rotated=rotated)
    total = sum(_size(file) for file in files)
    done = told = 0
    for file in files:
        try:
            handle = open(file, "rb")  # noqa: SIM115 - closed below, after the generator's loop
        except OSError as exc:
            raise WorkloadError(f"cannot read capture {file}: {exc.strerror or exc}") from None
        with handle:
            held: CaptureLine | None = None  # one line behind, to know which one is last
            try:
                for number, line in enumerate(handle, 1):
                    done += len(line)
                    if progress is not None and done - told >= PROGRESS_BYTES:
                        told = done
                        progress("reading capture", done, max(total, done))
                    if not line.strip():
                        continue
                    if held is not None:
                        yield held
                    held = _line(file, number, line)
            except OSError as exc:
                raise WorkloadError(f"cannot read capture {file}: {exc.strerror or exc}") from None
            if held is not None:
                yield held._replace(last=True)
    if progress is not None:
        progress("reading capture", done, max(total, done))


def _line(file: Path, number: int, line: bytes) -> CaptureLine:
    try:
        record = _decode(line.decode())
    except ValueError:  # UnicodeDecodeError too
        return CaptureLine(file, number, None, "not JSON", False)
    if not isinstance(record, dict) or not isinstance(record.get("type"), str):
        return CaptureLine(file, number, None, "not a capture record (no type)", False)
    return CaptureLine(file, number, record, None, False)


def capture_records(
    path: Path | str,
    *,
    rotated: bool = True,
    corrupt: list[int] | None = None,
    progress: Progress | None = None,
) -> Iterator[dict[str, Any]]:
    """Every record of a capture (JSON objects with a ``type``), its backups first; lines
    that are not such records (a line cut short by a crash, say) are skipped and counted in
    ``corrupt[0]`` when given. A file that cannot be read is a `WorkloadError`.
    ``progress("reading capture", bytes_read, bytes_total)`` is told as the files are read."""
    counter = corrupt if corrupt is not None else [0]
    if not counter:
        counter.append(0)
    for line in capture_lines(path, rotated=rotated, progress=progress):
        if line.record is None:
            counter[0] += 1
        else:
            yield line.record


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0  # reported when it is opened


class _Statement:
    """One fingerprint's records, added up."""

    __slots__ = (
        "normalized", "calls", "total", "durations", "hist", "low", "high", "rows", "rows_seen",
        "errors", "routes", "samples", "offered",
    )

    def __init__(self, normalized: str) -> None:
        self.normalized = normalized
        self.calls = 0
        self.total = 0.0
        self.durations: array[float] | None = array("d")
        self.hist: dict[int, int] = {}
        self.low = math.inf
        self.high = 0.0
        self.rows = 0
        self.rows_seen = False
        self.errors = 0
        self.routes: dict[str, int] = {}
        self.samples: list[Sample] = []
        self.offered = 0  # records that carried a usable sample

    def add_duration(self, duration: float) -> None:
        self.calls += 1
        self.total += duration
        self.low = min(self.low, duration)
        self.high = max(self.high, duration)
        durations = self.durations
        if durations is not None:
            durations.append(duration)
            if len(durations) > EXACT_DURATIONS:
                self.hist = _histogram.bucket_counts(durations)
                self.durations = None
        else:
            index = _histogram.bucket_index(duration)
            self.hist[index] = self.hist.get(index, 0) + 1

    def p95(self) -> float | None:
        if not self.calls:
            return None
        if self.durations is not None:
            return _histogram.exact_quantiles(self.durations, (0.95,))[0]
        return _histogram.quantiles(self.hist, (0.95,), self.low, self.high)[0]

    def offer(self, sample: Sample, rng: random.Random) -> None:
        """Reservoir sampling (Vitter's algorithm R): the n-th sample replaces a random one
        of the reservoir with probability MAX_SAMPLES / n."""
        self.offered += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(sample)
            return
        slot = rng.randrange(self.offered)
        if slot < MAX_SAMPLES:
            self.samples[slot] = sample


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _sample(record: dict[str, Any]) -> Sample | None | bool:
    """The record's sample; None when it has none, False when its parameters cannot be
    written as text (binary values of a type the capture could not decode)."""
    sql = record.get("sql")
    if not isinstance(sql, str) or not sql:
        return None
    params = record.get("params")
    if params is None:
        return Sample(sql)
    if not isinstance(params, list):
        return False
    values: list[str | None] = []
    for value in params:
        if value is None or isinstance(value, str):
            values.append(value)
        elif isinstance(value, bool):
            values.append("true" if value else "false")
        elif isinstance(value, int | float):
            values.append(repr(value) if isinstance(value, float) else str(value))
        else:  # {"hex": ...}: bytes of an unknown type, no faithful text for the planner
            return False
    return Sample(sql, tuple(values))


def from_capture(
    path: Path | str, *, rotated: bool = True, progress: Progress | None = None
) -> Workload:
    """The workload of a capture file (see the module docstring); `WorkloadError` when it
    cannot be read, or holds lines but no capture record at all. ``progress(stage, done,
    total)`` is told of the bytes read."""
    path = Path(path)
    if path.is_dir():
        raise WorkloadError(f"cannot read capture {path}: it is a directory")
    corrupt = [0]
    rng = random.Random(_SEED)
    statements: dict[str, _Statement] = {}
    info: dict[str, tuple[str, tuple[str, ...]]] = {}  # fingerprint: operation, tables
    left_out: set[str] = set()  # utility statements: counted in skipped, not kept
    first_at, last_at = math.inf, -math.inf
    records = 0
    skipped: dict[str, int] = {}
    for record in capture_records(path, rotated=rotated, corrupt=corrupt, progress=progress):
        records += 1
        if record["type"] != "statement":
            continue
        fingerprint, normalized = record.get("fingerprint"), record.get("normalized")
        duration = _number(record.get("duration_s"))
        if not isinstance(fingerprint, str) or not isinstance(normalized, str) or duration is None:
            corrupt[0] += 1
            continue
        at = _number(record.get("at"))
        if at is not None:
            first_at, last_at = min(first_at, at), max(last_at, at)
        if fingerprint in left_out:
            skipped[UTILITY] += 1
            continue
        entry = statements.get(fingerprint)
        if entry is None:
            operation, tables = _analysis(normalized)
            if is_utility(operation, normalized):
                left_out.add(fingerprint)
                skipped[UTILITY] = skipped.get(UTILITY, 0) + 1
                continue
            info[fingerprint] = (operation, tables)
            statements[fingerprint] = entry = _Statement(normalized)
        entry.add_duration(max(duration, 0.0))
        if record.get("sqlstate"):
            entry.errors += 1
        else:
            rows = record.get("rows")
            if isinstance(rows, int) and not isinstance(rows, bool):
                entry.rows += rows
                entry.rows_seen = True
        route = record.get("route")
        if isinstance(route, str):
            entry.routes[route] = entry.routes.get(route, 0) + 1
        sample = _sample(record)
        if sample is False:
            skipped["undecodable_params"] = skipped.get("undecodable_params", 0) + 1
        elif sample is not None:
            entry.offer(sample, rng)  # type: ignore[arg-type]
    if corrupt[0] and not records:
        raise WorkloadError(
            f"{path} is not a dbsight capture: none of its lines is a capture record "
            "(write one with dbsight proxy --capture FILE)"
        )
    if corrupt[0]:
        skipped["corrupt_lines"] = corrupt[0]
    window = last_at - first_at if last_at > first_at else None
    workload = Workload(window_s=window, skipped=skipped)
    for fingerprint, entry in statements.items():
        operation, tables = info[fingerprint]
        workload.add(
            WorkloadStatement(
                fingerprint=fingerprint,
                normalized=entry.normalized,
                operation=operation,
                tables=tables,
                calls=entry.calls,
                total_time_s=entry.total,
                p95_s=entry.p95(),
                rows=entry.rows if entry.rows_seen else None,
                errors=entry.errors,
                routes=entry.routes,
                samples=entry.samples,
                sources=("capture",),
                instrumented=True,
            )
        )
    return workload


def _analysis(normalized: str) -> tuple[str, tuple[str, ...]]:
    """Operation and tables of a captured statement, from its normalized text (the capture
    does not write them; the text is literal-free and parses as well as the original)."""
    from ..sql import analyze

    info = analyze(normalized, "postgresql")
    return info.operation, info.tables
