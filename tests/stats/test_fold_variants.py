"""The per-statement fold (the lean path's events, the statistics table's and the Prometheus
sink's loops, the parameter sampler's) gives the same statistics, metrics and samples whether
it runs compiled (setup.py's extensions) or as Python (``DBSIGHT_PURE_PYTHON=1``).

One scenario, run in a process of each variant: lean statements held the way instruments hold
them (tuples on ``Recorder.pending``, with fixed timings) mixed with full contexts, a failed
statement, more than `EXACT_SAMPLES` + `PENDING` calls of one fingerprint (its histogram, a
fold of its pending durations), durations on the bucket bounds, below `MIN_DURATION_S` and
beyond the fold's array of buckets, unknown rows and zero rows, routes, databases;
then every reading of the three sinks, compared as JSON.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dbsight import _compiled

FOLD_MODULES = (
    "dbsight.core._lean",
    "dbsight.stats._table_fold",
    "dbsight.export._metrics_fold",
    "dbsight.stats._samples_fold",
)
SRC = Path(_compiled.__file__).resolve().parents[1]


class _State:
    """What a lean statement's ``state`` gives (the proxy's session facts)."""

    def __init__(self, database: str | None) -> None:
        self.database = database
        self.user = "app"
        self.application_name = "pgbench"
        self.client_addr = "127.0.0.1"
        self.explainer = None


def fold_report() -> dict[str, Any]:
    """Run the scenario in this process; every reading of the sinks, JSON-ready."""
    from prometheus_client import CollectorRegistry, generate_latest

    from dbsight.core import PoolRegistry, QueryError, Recorder, RequestContext, Settings
    from dbsight.export import PrometheusSink
    from dbsight.sql import analyze
    from dbsight.stats import ParameterSamples, StatsSink, StatsTable

    settings = Settings(slow_query_threshold_ms=500)
    recorder = Recorder(settings)
    table = StatsTable(max_fingerprints=50)
    registry = CollectorRegistry()
    metrics = PrometheusSink(settings, registry, recorder=recorder, pool_registry=PoolRegistry())
    samples = ParameterSamples(per_fingerprint=3, seed=7)
    for observer in (StatsSink(table), metrics, samples):
        recorder.add_observer(observer)
    assert recorder._lean_events  # dbsight's own sinks only: they get `LeanEvent`s

    texts = [
        "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
        "UPDATE pgbench_tellers SET tbalance = tbalance + 5 WHERE tid = 3",
        "SELECT * FROM users WHERE email = $1",
        "BEGIN",
    ]
    durations = [1e-10, 0.0003, 0.0005, 0.0025, 0.011, 0.5, 0.7, 12.0, 0.000123, 3e9]
    requests = [None, RequestContext("r1", route="/accounts"), RequestContext("r2", route="/t")]
    states = [None, _State("bench"), _State("other")]
    at = 1_700_000_000.0
    for i in range(3300):  # (one fingerprint's histogram past a fold of its pending)
        sql = texts[i % len(texts)] if i % 7 else texts[0].replace("1", str(i))
        duration = durations[i % len(durations)]
        rows = None if i % 5 == 0 else i % 3
        info = analyze(sql) if i % 2 else None  # (None: looked up when the batch is folded)
        if i % 11 == 0:  # a full context among the lean statements
            ctx = recorder.start(sql, "postgresql", "proxy", database="bench")
            ctx.duration_s, ctx.started_at, ctx.rows = duration, at + i, rows
            recorder.pending.append(ctx)
        else:
            recorder.pending.append((
                sql, "postgresql", "proxy", info, states[i % 3], None, False, 0.0,
                requests[i % 3], None, at + i, duration, rows,
            ))  # fmt: skip
        if i % 64 == 63:
            recorder.flush()
    failed = recorder.start(texts[1], "postgresql", "proxy", database="bench")
    failed.duration_s, failed.started_at = 0.02, at + 1000
    failed.error = QueryError(type="UniqueViolation", sqlstate="23505", message="dup")
    recorder.flush()
    table.observe(failed, failed)
    metrics.on_error(failed, failed)

    return {
        "stats": sorted(table.snapshot(), key=lambda entry: entry["fingerprint"]),
        "totals": table.totals().to_dict(),
        "metrics": generate_latest(registry).decode(),
        "samples": {fp: [list(s) for s in taken] for fp, taken in samples.snapshot().items()},
        "calls": {entry["fingerprint"]: samples.calls(entry["fingerprint"])
                  for entry in table.snapshot()},  # fmt: skip
        "sampler": [samples.taken, samples.unusable, samples.bytes],
        "compiled": _compiled.compiled_modules(),
    }


def _report(pure: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != _compiled.PURE_PYTHON_VARIABLE}
    if pure:
        env[_compiled.PURE_PYTHON_VARIABLE] = "1"
    done = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _built(name: str) -> bool:
    stem = SRC / name.replace(".", "/")
    return any(Path(f"{stem}{s}").exists() for s in importlib.machinery.EXTENSION_SUFFIXES)


def test_the_scenario_counts_what_it_fed() -> None:
    report = fold_report()
    assert report["totals"]["calls"] == 3301
    assert report["totals"]["errors"] == 1
    by_calls = max(report["stats"], key=lambda entry: entry["calls"])
    assert by_calls["calls"] > 64 and by_calls["histogram"].get("samples") is None
    assert "db_client_errors_total" in report["metrics"]
    assert report["samples"]


def test_compiled_and_pure_python_fold_alike() -> None:
    if not all(_built(name) for name in FOLD_MODULES):
        pytest.skip("the fold's extensions are not built in this install (no Cython)")
    compiled, pure = _report(pure=False), _report(pure=True)
    assert set(compiled.pop("compiled")) >= set(FOLD_MODULES)
    assert pure.pop("compiled") == []
    assert compiled == pure


if __name__ == "__main__":
    print(json.dumps(fold_report()))
