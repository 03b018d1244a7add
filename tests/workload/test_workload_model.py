"""Joining workloads: two views of one traffic (merge) against the traffic of two processes
(combine)."""

from __future__ import annotations

import json

import pytest

from dbsight.workload import MAX_SAMPLES, Sample, Workload, WorkloadStatement


def _statement(calls: int, source: str, **fields: object) -> WorkloadStatement:
    values: dict[str, object] = dict(
        fingerprint="f1", normalized="SELECT * FROM t WHERE a = $1", operation="select",
        tables=("t",), calls=calls, total_time_s=calls * 0.01, sources=(source,),
    )
    values.update(fields)
    return WorkloadStatement(**values)  # type: ignore[arg-type]


def test_merge_counts_a_statement_seen_twice_once() -> None:
    stats = Workload.of([_statement(10, "stats", p95_s=0.02, routes={"/a": 10},
                                    samples=[Sample("x", ("1",))])], window_s=60)
    server = Workload.of([
        _statement(12, "pg_stat_statements", instrumented=False, rows=12),
        _statement(3, "pg_stat_statements", fingerprint="f2", instrumented=False),
    ], window_s=3600)
    merged = stats.merge(server)
    joined = merged.statements["f1"]
    assert joined.calls == 12 and joined.p95_s == 0.02 and joined.rows == 12
    assert joined.sources == ("pg_stat_statements", "stats") and joined.instrumented
    assert joined.routes == {"/a": 10} and joined.samples == [Sample("x", ("1",))]
    assert not merged.statements["f2"].instrumented
    assert merged.window_s == 3600


def test_combine_adds_up_two_processes() -> None:
    a = Workload.of([_statement(10, "summary", p95_s=0.02, rows=10, errors=1,
                                routes={"/a": 10})], window_s=60)
    b = Workload.of([_statement(5, "summary", p95_s=0.05, rows=None, routes={"/a": 3, "/b": 2})],
                    window_s=30)
    b.skipped["utility"] = 4
    both = a.combine(b)
    total = both.statements["f1"]
    assert total.calls == 15 and total.total_time_s == pytest.approx(0.15)
    assert total.p95_s == 0.05 and total.rows == 10 and total.errors == 1
    assert total.routes == {"/a": 13, "/b": 2}
    assert both.window_s == 60 and both.skipped == {"utility": 4}
    assert a.statements["f1"].calls == 10  # the inputs are left as they were


def test_pooled_samples_keep_repeats_and_both_sides() -> None:
    common, rare = Sample("s", ("open",)), Sample("s", ("done",))
    a = _statement(100, "stats", samples=[common] * 15 + [rare])
    b = _statement(50, "capture", samples=[Sample("s", ("other",))] * 10)
    joined = Workload.of([a]).merge(Workload.of([b])).statements["f1"]
    assert len(joined.samples) == MAX_SAMPLES
    assert joined.samples.count(common) >= 8  # repeats say how common a value is
    assert Sample("s", ("other",)) in joined.samples


def test_to_dict_leaves_the_samples_out() -> None:
    workload = Workload.of([_statement(2, "stats", samples=[Sample("SELECT 'secret'")])], 10)
    document = workload.to_dict()
    assert "secret" not in json.dumps(document)
    assert document["statements"][0]["calls"] == 2 and document["window_s"] == 10
