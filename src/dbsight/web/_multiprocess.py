"""One service, several worker processes (gunicorn -w N, uvicorn --workers N): ``/metrics``
and ``/metrics/summary`` report the sum over all workers, whichever worker answers.

When a multiprocess directory is configured (``Settings.multiprocess_dir``, else
``$PROMETHEUS_MULTIPROC_DIR``), every worker that serves requests writes two files there,
each atomically (a temporary file renamed over the old one), every `INTERVAL_S` from a
daemon thread and once more at exit:

* ``worker-<pid>-<start>.metrics.json``: the samples of its registry;
* ``worker-<pid>-<start>.summary.json``: its `TOP_FINGERPRINTS` fingerprints by total time
  (with their latencies: the durations themselves while a fingerprint has few calls, else
  its histogram), its recent slow queries and its N+1 findings.

The worker answering a request writes its own files first, then merges its fresh in-memory
state with every other worker's files: counters, histograms and summaries add up over every
worker that ever wrote (an exited worker's counts stay, so totals never go backwards), gauges
(pool connections, say) over live workers only, the statistics with `StatsTable.merge` (the
percentiles are those of every worker's calls together, computed as one table's) and the
N+1 findings with `NPlusOneLog.merge`. Other workers' figures are at most `INTERVAL_S`
(plus the time to write a file) old; a worker killed with SIGKILL loses at most its last
`INTERVAL_S` of counts.

Files count for the workers of one parent process (the gunicorn master): ``<start>`` (the
process start time) tells a worker from a later one that reuses its pid, and the parent
identity in each file keeps a previous run's files out of the sums. The directory still
belongs to one service; empty it when the service starts, as prometheus_client requires.

Merging the summaries from each worker's top `TOP_FINGERPRINTS` (rather than its whole
table, whose copy costs about 0.1 ms per fingerprint every second) is exact for every
fingerprint that is in each worker's top `TOP_FINGERPRINTS`; the summary shows the top 20.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import itertools
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from .. import _runtime
from .._process import pid_alive, process_start_time
from ..export.slowlog import RECENT_SLOW, SlowQuerySink
from ..stats import NPlusOneLog, StatsTable, StatsTotals

logger = logging.getLogger("dbsight")

INTERVAL_S = 1.0
TOP_FINGERPRINTS = 100
ENV_PROMETHEUS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_METRICS_SUFFIX = ".metrics.json"
_SUMMARY_SUFFIX = ".summary.json"

# Types whose samples only grow: summed over every worker that ever wrote, exited ones too.
_CUMULATIVE = frozenset(("counter", "histogram", "summary"))


def multiprocess_dir(settings: Any) -> Path | None:
    """The directory the workers share, or None for a single process."""
    if settings.multiprocess_dir is not None:
        return Path(settings.multiprocess_dir)
    env = os.environ.get(ENV_PROMETHEUS_DIR, "").strip()
    return Path(env) if env else None


# -- who this worker is ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    pid: int
    started: str | None  # process start time (Linux), to tell a reused pid apart
    parent: str  # "<ppid>-<its start time>": the workers of one service share it

    @property
    def stem(self) -> str:
        return f"worker-{self.pid}-{self.started or 0}"

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "started": self.started, "parent": self.parent}


_identity: WorkerIdentity | None = None


def identity() -> WorkerIdentity:
    global _identity
    found = _identity
    if found is None or found.pid != os.getpid():
        pid, ppid = os.getpid(), os.getppid()
        found = _identity = WorkerIdentity(
            pid, process_start_time(pid), f"{ppid}-{process_start_time(ppid) or 0}"
        )
    return found


def _alive(doc: dict[str, Any]) -> bool:
    pid = int(doc["pid"])
    if not pid_alive(pid):
        return False
    started = doc.get("started")
    return started is None or process_start_time(pid) in (started, None)


# -- this worker's state -----------------------------------------------------------------------
def metrics_doc(runtime: Any) -> dict[str, Any]:
    """This worker's registry samples, as written to its ``.metrics.json`` file."""
    families = []
    for metric in runtime.registry.collect():
        families.append(
            {
                "name": metric.name,
                "type": metric.type,
                "help": metric.documentation,
                "unit": metric.unit,
                "samples": [[s.name, s.labels, s.value] for s in metric.samples],
            }
        )
    return {**identity().as_dict(), "families": families}


def summary_doc(runtime: Any) -> dict[str, Any]:
    """This worker's share of ``/metrics/summary``, as written to its ``.summary.json``."""
    n_plus_one = runtime.components.get("n_plus_one")
    return {
        **identity().as_dict(),
        "stats": runtime.stats.snapshot(TOP_FINGERPRINTS),
        "totals": runtime.stats.totals().to_dict(),
        "slow": slow_records(runtime),
        "planned": planned_records(runtime),
        "n_plus_one": n_plus_one.snapshot() if n_plus_one is not None else [],
    }


def _slow_sink(runtime: Any) -> SlowQuerySink | None:
    return next((sink for sink in runtime.sinks if isinstance(sink, SlowQuerySink)), None)


def slow_records(runtime: Any) -> list[dict[str, Any]]:
    """The runtime's recent slow queries, newest first (none without a slow-query sink)."""
    sink = _slow_sink(runtime)
    return sink.recent() if sink is not None else []


def planned_records(runtime: Any) -> list[dict[str, Any]]:
    """The newest slow run with a plan of each fingerprint the slow-query sink keeps one
    for, newest first."""
    sink = _slow_sink(runtime)
    return sink.planned() if sink is not None else []


# -- files -------------------------------------------------------------------------------------
def _write_json(directory: Path, name: str, doc: dict[str, Any]) -> None:
    data = json.dumps(doc, default=str, separators=(",", ":")).encode()
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide it from a reader under another user
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


_write_lock = threading.Lock()


def write_snapshot(runtime: Any, directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write this worker's two files; returns what was written (metrics, summary)."""
    metrics, summary = metrics_doc(runtime), summary_doc(runtime)
    stem = identity().stem
    with _write_lock:  # the writer thread and a request may both write: one at a time
        directory.mkdir(parents=True, exist_ok=True)
        _write_json(directory, stem + _METRICS_SUFFIX, metrics)
        _write_json(directory, stem + _SUMMARY_SUFFIX, summary)
    return metrics, summary


def _others(directory: Path, suffix: str) -> Iterator[tuple[dict[str, Any], bool]]:
    """Each other worker's document (of this service) with whether that worker is alive."""
    me = identity()
    own = me.stem + suffix
    for path in directory.glob(f"worker-*{suffix}"):
        if path.name == own:
            continue
        try:
            doc = json.loads(path.read_bytes())
            if doc.get("parent") != me.parent:
                continue  # another run's (or another service's) file
            yield doc, _alive(doc)
        except (OSError, ValueError, KeyError, TypeError):
            logger.debug("dbsight: skipping unreadable worker file %s", path, exc_info=True)


# -- merging -----------------------------------------------------------------------------------
class MergedRegistry:
    """Metric families summed over workers; what a prometheus_client encoder collects."""

    def __init__(self, families: list[Metric], workers: int) -> None:
        self._families = families
        self.workers = workers

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def merge_families(docs: Iterable[tuple[dict[str, Any], bool]]) -> list[Metric]:
    """Sum the samples of ``(metrics document, worker alive)`` pairs (see the module doc)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]]] = {}
    for doc, alive in docs:
        for family in doc["families"]:
            kind = family["type"]
            if kind not in _CUMULATIVE and not alive:
                continue
            name = family["name"]
            if name not in families:
                families[name] = Metric(name, family["help"], kind, family.get("unit") or "")
                values[name] = {}
            samples = values[name]
            for sample_name, labels, value in family["samples"]:
                key = (sample_name, tuple(sorted(labels.items())))
                found = samples.get(key)
                if found is None:
                    samples[key] = [labels, value]
                elif sample_name.endswith("_created"):  # a timestamp: the earliest
                    found[1] = min(found[1], value)
                elif kind in ("info", "stateset"):  # 0/1 states
                    found[1] = max(found[1], value)
                else:
                    found[1] += value
    for name, metric in families.items():
        metric.samples = [
            Sample(sample_name, labels, value)
            for (sample_name, _), (labels, value) in values[name].items()
        ]
    return list(families.values())


def merged_registry(runtime: Any, directory: Path) -> MergedRegistry:
    """Every worker's metrics summed; this worker's are fresh (and written out first)."""
    own, _ = write_snapshot(runtime, directory)
    docs = [(own, True), *_others(directory, _METRICS_SUFFIX)]
    workers = sum(1 for _, alive in docs if alive)
    return MergedRegistry(merge_families(docs), workers)


@dataclass(frozen=True, slots=True)
class MergedSummary:
    stats: StatsTable
    slow: list[dict[str, Any]]
    n_plus_one: list[dict[str, Any]]
    workers: int
    totals: StatsTotals
    # the newest slow run with a plan of each fingerprint (over the workers), newest first
    planned: list[dict[str, Any]]


def merged_summary(runtime: Any, directory: Path) -> MergedSummary:
    """Every worker's statistics, slow queries and N+1 findings combined."""
    _, own = write_snapshot(runtime, directory)
    docs = [(own, True), *_others(directory, _SUMMARY_SUFFIX)]
    table = StatsTable(max_fingerprints=runtime.settings.stats_max_fingerprints)
    findings = NPlusOneLog()
    totals = StatsTotals()
    for doc, _alive_now in docs:
        table.merge([doc.get("stats") or []])
        findings.merge(doc.get("n_plus_one") or [])
        # a file of an older dbsight has no totals: its listed statements stand in
        worker = doc.get("totals")
        if isinstance(worker, dict):
            totals += StatsTotals.from_dict(worker)
        else:
            totals += _listed_totals(doc.get("stats") or [])
    slow = heapq.nlargest(
        RECENT_SLOW,
        itertools.chain.from_iterable(doc.get("slow") or () for doc, _ in docs),
        key=_ts,
    )
    planned: dict[str, dict[str, Any]] = {}
    for doc, _ in docs:
        for record in doc.get("planned") or ():
            key = str(record.get("fingerprint"))
            if key not in planned or _ts(record) > _ts(planned[key]):
                planned[key] = record
    workers = sum(1 for _, alive in docs if alive)
    # the union of the workers' top fingerprints: a lower bound of the distinct ones
    totals += StatsTotals(fingerprints=len(table))
    newest_first = sorted(planned.values(), key=_ts, reverse=True)
    return MergedSummary(table, slow, findings.snapshot(), workers, totals, newest_first)


def _ts(record: dict[str, Any]) -> str:
    return str(record.get("ts", ""))


def _listed_totals(entries: Iterable[dict[str, Any]]) -> StatsTotals:
    table = StatsTable()
    table.merge([entries])
    return table.totals()


# -- the writer thread -------------------------------------------------------------------------
class _Writer:
    """Writes this worker's files every `INTERVAL_S` while a directory is configured."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._stop = threading.Event()
        self._failed = False
        self._thread = threading.Thread(target=self._loop, name="dbsight-worker-files", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            self.write_current()

    def write_current(self) -> None:
        runtime = _runtime._runtime  # never configure from here: only report what exists
        if runtime is None:
            return
        directory = multiprocess_dir(runtime.settings)
        if directory is None:
            return
        try:
            write_snapshot(runtime, directory)
        except Exception:
            if not self._failed:  # once: a full disk must not fill the log as well
                self._failed = True
                logger.warning("dbsight: cannot write worker files to %s", directory, exc_info=True)

    def stop(self) -> None:
        self._stop.set()


_writer: _Writer | None = None
_single_process: object = None  # the runtime last seen without a multiprocess directory
_writer_lock = threading.Lock()


def ensure_writer() -> None:
    """Start this process's writer thread when the current runtime has a multiprocess
    directory; cheap enough for every request (two global reads once decided)."""
    global _writer, _single_process
    if _writer is not None:
        return
    runtime = _runtime._runtime  # get_runtime() without its call once configured
    if runtime is None:
        runtime = _runtime.get_runtime()
    elif runtime is _single_process:
        return
    if multiprocess_dir(runtime.settings) is None:
        _single_process = runtime
        return
    with _writer_lock:
        if _writer is None:
            _writer = _Writer()


def _forget_parent_writer() -> None:
    # A forked child (a gunicorn worker of a --preload master) has no writer thread of its
    # own yet, only the parent's object: start afresh on its first request.
    global _writer, _single_process, _identity
    _writer, _single_process, _identity = None, None, None


def _final_write() -> None:
    writer = _writer
    if writer is not None and writer.pid == os.getpid():
        writer.stop()
        writer.write_current()


os.register_at_fork(after_in_child=_forget_parent_writer)
atexit.register(_final_write)
