"""Each rule of the plan analyzer on real plans of a real PostgreSQL: one case that fires,
one that does not."""

from __future__ import annotations

import json
import re

import pytest

from dbsight.advise import PlanFinding, TableStats, analyze_plan

from plan_helpers import explain, table_stats


def kinds(findings: list[PlanFinding], kind: str) -> list[PlanFinding]:
    return [finding for finding in findings if finding.kind == kind]


def found(kind: str, dsn: str, sql: str, *settings: str) -> list[PlanFinding]:
    """The ``kind`` findings of the EXPLAIN ANALYZE plan of ``sql`` under ``settings``."""
    return kinds(analyze_plan(explain(dsn, sql, *settings)), kind)


# -- sequential scans ------------------------------------------------------------------
def test_seq_scan_removing_nearly_every_row_is_critical(plan_db: str) -> None:
    plan = explain(plan_db, "SELECT * FROM big WHERE val = 4242", "enable_indexscan = off")
    [finding] = kinds(analyze_plan(plan), "seq_scan")
    assert finding.severity == "critical"
    assert finding.relation == "big" and finding.node == "Seq Scan"
    assert finding.message == "Seq Scan on big removes 99.9 % of 100,000 rows"
    assert finding.numbers["columns"] == ["val"]
    assert "big (val)" in (finding.suggestion or "")


def test_seq_scan_removing_most_rows_is_a_warning(plan_db: str) -> None:
    plan = explain(plan_db, "SELECT * FROM big WHERE id % 4 = 0")
    [finding] = kinds(analyze_plan(plan), "seq_scan")
    assert finding.severity == "warning"
    assert finding.message == "Seq Scan on big removes 75.0 % of 100,000 rows"


def test_seq_scan_keeping_its_rows_or_of_a_small_table_is_fine(plan_db: str) -> None:
    assert not found("seq_scan", plan_db, "SELECT * FROM big WHERE id % 4 <> 0")
    # removes 99.8 %, but of 1,000 rows
    assert not found("seq_scan", plan_db, "SELECT * FROM tiny WHERE val = 7")


def test_a_parallel_seq_scan_counts_the_rows_of_every_worker(plan_db: str) -> None:
    parallel = (
        "max_parallel_workers_per_gather = 2", "parallel_setup_cost = 0",
        "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
    )  # fmt: skip
    [finding] = found("seq_scan", plan_db, "SELECT * FROM big WHERE val = 4242", *parallel)
    assert finding.node == "Parallel Seq Scan"
    # the rows per process are rounded as PostgreSQL prints them
    pattern = r"Parallel Seq Scan on big removes (99.9|100.0) % of (99,99\d|100,00\d) rows"
    assert re.fullmatch(pattern, finding.message)


def test_seq_scan_without_analyze_uses_the_tables_size(plan_db: str) -> None:
    plan = explain(plan_db, "SELECT * FROM big WHERE val = 4242", analyze=False)
    assert not kinds(analyze_plan(plan), "seq_scan")  # no size, no finding
    stats = table_stats(plan_db, ["big"])
    assert stats["big"].reltuples == 100_000
    [finding] = kinds(analyze_plan(plan, table_stats=stats), "seq_scan")
    assert finding.severity == "critical" and finding.numbers["estimated"] is True
    assert finding.message == "Seq Scan on big would remove an estimated 99.9 % of 100,000 rows"


def test_messages_hold_no_constant_of_the_statement(plan_db: str) -> None:
    plan = explain(plan_db, "SELECT * FROM big WHERE pad = 'secret-4242' OR val = 987654")
    findings = analyze_plan(plan)
    assert kinds(findings, "seq_scan")
    text = json.dumps([finding.to_dict() for finding in findings])
    assert "secret" not in text and "987654" not in text
    assert kinds(findings, "seq_scan")[0].numbers["columns"] == ["pad", "val"]


# -- row misestimates ------------------------------------------------------------------
def test_correlated_columns_make_a_misestimate(plan_db: str) -> None:
    # a = b always: the planner multiplies the selectivities, 100,000 / 200 / 200 = 2.5 rows
    plan = explain(plan_db, "SELECT * FROM big WHERE a = 7 AND b = 7")
    [finding] = kinds(analyze_plan(plan), "misestimate")
    assert finding.severity == "warning"  # 500 rows against 2 or 3: about 200x
    assert finding.relation == "big"
    assert 100 < finding.numbers["factor"] <= 1000
    assert finding.numbers["actual_rows"] == 500
    assert "estimated" in finding.message and "got 500" in finding.message


def test_a_mild_misestimate_is_info_and_a_good_estimate_nothing(plan_db: str) -> None:
    # a = b, but only one of them compared with a range: 1/200 * 1/2 of the rows expected
    plan = explain(plan_db, "SELECT * FROM big WHERE a = 7 AND b < 100")
    assert not kinds(analyze_plan(plan), "misestimate")  # 250 expected, 500 found: 2x
    ten = ", ".join(str(n) for n in range(7, 17))
    [finding] = found("misestimate", plan_db, f"SELECT * FROM big WHERE a = 7 AND b IN ({ten})")
    assert finding.severity == "info"  # 500 rows against 25: 10x to 100x
    assert 10 < finding.numbers["factor"] <= 100


def test_a_stale_table_is_critical_and_asks_for_analyze(plan_db: str) -> None:
    plan = explain(plan_db, "SELECT * FROM stale WHERE kind = 1")
    findings = analyze_plan(plan)
    [misestimate] = kinds(findings, "misestimate")
    assert misestimate.severity == "critical" and misestimate.relation == "stale"
    assert misestimate.message == "Seq Scan on stale estimated 1 row and got 50,000 (50,000x more)"
    assert not kinds(findings, "stale_statistics")  # without the table's statistics
    stats = table_stats(plan_db, ["stale"])
    assert stats["stale"].n_mod_since_analyze == 50_000
    findings = analyze_plan(plan, table_stats=stats)
    [stale] = kinds(findings, "stale_statistics")
    assert stale.severity == "critical" and stale.suggestion == "ANALYZE stale"
    assert stale.message.startswith("stale had 50,000 rows changed since its last ANALYZE")
    assert findings[0].severity == "critical"


def test_a_misestimate_on_a_freshly_analyzed_table_is_not_stale(plan_db: str) -> None:
    plan = explain(plan_db, "SELECT * FROM big WHERE a = 7 AND b = 7")
    findings = analyze_plan(plan, table_stats=table_stats(plan_db, ["big"]))
    assert kinds(findings, "misestimate") and not kinds(findings, "stale_statistics")


def test_a_table_never_analyzed_is_stale() -> None:
    assert TableStats("t", n_live_tup=10, n_mod_since_analyze=0).stale
    assert not TableStats("t", 1000, 50, last_autoanalyze="2026-01-01").stale
    assert TableStats("t", 1000, 101, last_analyze="2026-01-01").stale


# -- spills ----------------------------------------------------------------------------
def test_a_sort_spilling_to_disk_suggests_work_mem(plan_db: str) -> None:
    plan = explain(plan_db, "SELECT * FROM big ORDER BY pad", "work_mem = '64kB'")
    [finding] = kinds(analyze_plan(plan), "disk_spill")
    assert finding.node == "Sort" and finding.relation == "big"
    assert finding.numbers["disk_kb"] > 1000
    assert finding.numbers["sort_method"] == "external merge"
    value = finding.numbers["suggested_work_mem"]
    assert value.endswith("MB") and f"work_mem = '{value}'" in (finding.suggestion or "")
    # and with that much memory the sort stays in memory
    plan = explain(plan_db, "SELECT * FROM big ORDER BY pad", f"work_mem = '{value}'")
    assert not kinds(analyze_plan(plan), "disk_spill")


def test_a_hash_in_batches_is_a_spill(plan_db: str) -> None:
    sql = "SELECT count(*) FROM big b1 JOIN big b2 ON b2.id = b1.val"
    forced = ("enable_mergejoin = off", "enable_nestloop = off", "hash_mem_multiplier = 1")
    [finding] = found("disk_spill", plan_db, sql, *forced, "work_mem = '64kB'")
    assert finding.node == "Hash" and finding.numbers["batches"] > 1
    assert "batches on disk" in finding.message
    assert not found("disk_spill", plan_db, sql, *forced, "work_mem = '64MB'")


def test_a_hash_aggregate_spilling_to_disk(plan_db: str) -> None:
    sql = "SELECT val, count(*) FROM big GROUP BY val"
    forced = ("enable_sort = off", "hash_mem_multiplier = 1")
    [finding] = found("disk_spill", plan_db, sql, *forced, "work_mem = '64kB'")
    assert finding.node == "Aggregate" and finding.relation == "big"
    assert finding.numbers["disk_kb"] > 0 and "spilled" in finding.message
    assert not found("disk_spill", plan_db, sql, *forced, "work_mem = '256MB'")


# -- nested loops, bitmaps, heap fetches ---------------------------------------------------
NESTED = "SELECT count(*) FROM {outer} s JOIN big b ON b.id = s.id"
NO_HASH = ("enable_hashjoin = off", "enable_mergejoin = off")


def test_a_nested_loop_of_thousands_of_inner_scans(plan_db: str) -> None:
    [finding] = found("nested_loop", plan_db, NESTED.format(outer="small"), *NO_HASH)
    assert finding.severity == "warning" and finding.relation == "big"
    assert finding.numbers["loops"] == 2000
    assert finding.message == "Nested Loop runs its inner Index Only Scan on big 2,000 times" or (
        finding.message == "Nested Loop runs its inner Index Scan on big 2,000 times"
    )
    estimated = explain(plan_db, NESTED.format(outer="small"), *NO_HASH, analyze=False)
    [finding] = kinds(analyze_plan(estimated), "nested_loop")
    assert finding.severity == "info" and finding.numbers["estimated"] is True


def test_a_nested_loop_of_few_inner_scans_is_fine(plan_db: str) -> None:
    sql = NESTED.format(outer="(SELECT * FROM small WHERE id <= 50)")
    assert not kinds(analyze_plan(explain(plan_db, sql, *NO_HASH)), "nested_loop")


BITMAP = ("enable_seqscan = off", "enable_indexscan = off", "enable_indexonlyscan = off")


def test_lossy_bitmap_heap_blocks(plan_db: str) -> None:
    sql = "SELECT count(*) FROM wide WHERE grp < 600"
    [finding] = found("lossy_bitmap", plan_db, sql, *BITMAP, "work_mem = '64kB'")
    assert finding.relation == "wide" and finding.numbers["lossy_blocks"] > 0
    assert "lossy heap blocks" in finding.message
    assert not found("lossy_bitmap", plan_db, sql, *BITMAP, "work_mem = '64MB'")


def test_index_only_scan_fetching_from_the_heap(plan_db: str) -> None:
    sql = "SELECT count(id) FROM {table} WHERE id < 5000"
    forced = ("enable_seqscan = off", "enable_bitmapscan = off")
    plan = explain(plan_db, sql.format(table="unvacuumed"), *forced)
    [finding] = kinds(analyze_plan(plan), "heap_fetches")
    assert finding.node == "Index Only Scan" and finding.relation == "unvacuumed"
    assert finding.numbers["share"] == 1.0
    assert finding.suggestion == "VACUUM unvacuumed to update its visibility map"
    plan = explain(plan_db, sql.format(table="vacuumed"), *forced)
    assert not kinds(analyze_plan(plan), "heap_fetches")


# -- where the time goes -------------------------------------------------------------------
def test_one_node_taking_most_of_the_time(plan_db: str) -> None:
    plan = explain(plan_db, "SELECT count(*) FROM big WHERE pad LIKE '%abc%'")
    [finding] = kinds(analyze_plan(plan), "dominant_node")
    assert finding.node == "Seq Scan" and finding.relation == "big"
    assert finding.numbers["share"] > 0.5
    assert "of the statement's time" in finding.message


def test_no_dominant_node_in_a_plan_of_one_node_or_without_analyze(plan_db: str) -> None:
    assert not kinds(analyze_plan(explain(plan_db, "SELECT * FROM big")), "dominant_node")
    sql = "SELECT count(*) FROM big WHERE pad LIKE '%abc%'"
    assert not kinds(analyze_plan(explain(plan_db, sql, analyze=False)), "dominant_node")


# -- input -------------------------------------------------------------------------------
def test_text_input_and_order(plan_db: str) -> None:
    plan = explain(plan_db, "SELECT * FROM stale WHERE kind = 1 ORDER BY id", "work_mem = '64kB'")
    findings = analyze_plan(json.dumps(plan), table_stats=table_stats(plan_db, ["stale"]))
    ranks = ["critical", "warning", "info"]
    order = [ranks.index(finding.severity) for finding in findings]
    assert order == sorted(order)
    assert {f.kind for f in findings} >= {"misestimate", "stale_statistics", "disk_spill"}
    for finding in findings:
        assert set(finding.to_dict()) >= {
            "kind", "severity", "node", "relation", "message", "numbers", "suggestion"
        }


@pytest.mark.parametrize("bad", ["", "[]", "{}", '{"Plan": 3}', "not json", 42])
def test_not_a_plan_is_a_value_error(bad: object) -> None:
    with pytest.raises(ValueError):
        analyze_plan(bad)


@pytest.mark.parametrize(
    ("condition", "columns"),
    [
        ("((status <> 'x'::text) AND (created_at > (now() - '30 days'::interval)))",
         ["status", "created_at"]),
        ("(('abc'::text = name) AND (x > 3))", ["name", "x"]),
        ("(lower(email) = $1)", ["email"]),
        ("((i.product_id)::text ~~ 'a%'::text)", ["product_id"]),
        ('("Weird Col" = 1)', ["Weird Col"]),
        ("(ts > '2020-01-01 00:00:00+00'::timestamp with time zone)", ["ts"]),
        ("(NOT (hashed SubPlan 1))", []),
    ],
)  # fmt: skip
def test_filter_columns_keep_names_and_drop_constants(condition: str, columns: list[str]) -> None:
    from dbsight.advise._plan_rules import filter_columns

    assert filter_columns(condition) == columns
