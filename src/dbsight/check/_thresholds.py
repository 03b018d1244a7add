"""The limits the checks judge by. The defaults are PgHero's (lib/pghero.rb, database.rb,
methods/*.rb and the dashboard's app/controllers/pg_hero/home_controller.rb) where PgHero has
one; each field says where its value comes from."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["CheckThresholds"]

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class CheckThresholds:
    # Unused indexes: at most this many scans since the statistics reset (PgHero's dashboard
    # asks unused_indexes(max_scans: 0)) and at least this size (PgHero's
    # unused_index_megabytes, 10 MB).
    unused_index_max_scans: int = 0
    unused_index_min_bytes: int = 10 * MB
    # Sequences: last value past this share of the column's (or sequence's) range (PgHero's
    # sequence_danger(threshold: 0.9)).
    sequence_ratio: float = 0.9
    # Transaction-ID wraparound: transactions left before the hard stop at 2^31 - 1,000,000
    # (PgHero's max_value 2,146,483,648). Warning below PgHero's dashboard figure
    # (transaction_id_danger(threshold: 1,500,000,000)), critical below the method's default
    # (10,000,000, from PostgreSQL's "Preventing Transaction ID Wraparound Failures").
    xid_warning_left: int = 1_500_000_000
    xid_critical_left: int = 10_000_000
    # Sequential scans: tables of at least this many live rows whose index use is under this
    # percentage of their scans (PgHero's missing_indexes: n_live_tup >= 10000, < 95).
    seq_scan_min_rows: int = 10_000
    seq_scan_min_index_percent: float = 95.0
    # Cache hit ratio, heap and index (PgHero's cache_hit_rate_threshold, 99 %). Below
    # cache_min_blocks block accesses the ratio is too small a sample to judge (PgHero has no
    # such floor: a fresh database reads everything from disk once).
    cache_hit_ratio: float = 0.99
    cache_min_blocks: int = 1_000
    # Connections: client connections at or above PgHero's total_connections_threshold (500),
    # or at or above this share of the connections the server accepts (max_connections less
    # those reserved for superusers), where a pool starts to be refused.
    total_connections: int = 500
    connections_ratio: float = 0.9
    # Sessions idle in transaction: any idle this long (they hold locks and keep VACUUM from
    # removing rows), or this many at once (PgHero's dashboard: fewer than 100 is good).
    idle_in_transaction_s: float = 60.0
    idle_in_transaction_count: int = 100
    # Long-running queries (PgHero's long_running_query_sec, 60).
    long_query_s: float = 60.0
    # Blocked sessions: waiting on a lock for at least this long. PgHero lists every waiting
    # session; a wait of a few milliseconds on a busy row is normal and would make a CI gate
    # flaky, so dbsight waits 5 s.
    blocked_s: float = 5.0
    # Dead tuples: at least this many, and at least this share of the table's rows (the
    # default autovacuum_vacuum_scale_factor, 0.2: past it autovacuum should have run).
    dead_tuples_min: int = 1_000
    dead_tuples_ratio: float = 0.2
    # Vacuum/analyze: tables of at least this many live rows (PgHero's 10,000-row bar) never
    # analyzed, or with this share of their rows changed since the last analyze (twice the
    # default autovacuum_analyze_scale_factor, 0.1: autoanalyze is lagging).
    maintenance_min_rows: int = 10_000
    stale_analyze_ratio: float = 0.2

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value < 0:
                raise ValueError(f"threshold {item.name} cannot be negative, got {value}")
        for name in ("sequence_ratio", "cache_hit_ratio", "connections_ratio",
                     "dead_tuples_ratio"):  # fmt: skip
            if getattr(self, name) > 1:
                raise ValueError(
                    f"threshold {name} is a ratio of at most 1, got {getattr(self, name)}"
                )
        if self.seq_scan_min_index_percent > 100:
            raise ValueError("threshold seq_scan_min_index_percent is a percentage of at most 100")
