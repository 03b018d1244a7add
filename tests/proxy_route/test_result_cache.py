"""The proxy's result cache store: rules, keys, expiry, LRU bounds, invalidation, write races."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
from pydantic import ValidationError

from dbsight.proxy import protocol as p
from dbsight.proxy._backend import BackendConnection, BackendSpec
from dbsight.proxy._result_cache import _MAX_WRITTEN_TABLES, CacheRule, ResultCache
from dbsight.sql import analyze


def key(text: str, params: bytes = b"") -> bytes:
    return ResultCache.key("app", "shop", '"$user", public', text, params)


def cache(*rules: CacheRule, **options: int) -> ResultCache:
    return ResultCache(rules or (CacheRule(table="orders", ttl_s=10),), **options)


# ---------------------------------------------------------------------- rules


def test_rule_needs_exactly_one_target() -> None:
    with pytest.raises(ValidationError, match="exactly one of fingerprint or table"):
        CacheRule(ttl_s=1)
    with pytest.raises(ValidationError, match="exactly one of fingerprint or table"):
        CacheRule(fingerprint="0123456789abcdef", table="orders", ttl_s=1)


@pytest.mark.parametrize(
    "fields",
    [
        {"table": "orders", "ttl_s": 0},
        {"table": "orders", "ttl_s": -1},
        {"table": "orders", "ttl_s": float("inf")},
        {"table": "orders"},
        {"table": "orders", "ttl_s": 1, "ttl": 2},
        {"table": '"Orders"', "ttl_s": 1},
        {"table": "shop.", "ttl_s": 1},
        {"table": " orders", "ttl_s": 1},
        {"fingerprint": "not-a-fingerprint", "ttl_s": 1},
        {"fingerprint": "0123456789abcdeg", "ttl_s": 1},
    ],
)
def test_bad_rules_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CacheRule.model_validate(fields)


def test_ttl_for_matches_tables_with_or_without_public() -> None:
    store = ResultCache(
        [
            CacheRule(table="orders", ttl_s=5),
            CacheRule(table="public.customers", ttl_s=7),
            CacheRule(table="shop.items", ttl_s=9),
        ]
    )
    assert store.ttl_for(analyze("SELECT * FROM public.orders WHERE id = 1")) == 5
    assert store.ttl_for(analyze("SELECT * FROM orders")) == 5
    assert store.ttl_for(analyze("SELECT * FROM customers")) == 7
    assert store.ttl_for(analyze("SELECT * FROM shop.items")) == 9
    assert store.ttl_for(analyze("SELECT * FROM items")) is None
    assert store.ttl_for(analyze("SELECT * FROM other.orders")) is None
    assert store.ttl_for(analyze("SELECT * FROM shop.orders")) is None


def test_ttl_for_first_matching_rule_wins_and_fingerprints_match() -> None:
    info = analyze("SELECT name FROM customers JOIN orders USING (id) WHERE id = 3")
    same_shape = analyze("SELECT name FROM customers JOIN orders USING (id) WHERE id = 99")
    store = ResultCache(
        [
            CacheRule(fingerprint=info.fingerprint.upper(), ttl_s=1),
            CacheRule(table="orders", ttl_s=2),
        ]
    )
    assert store.ttl_for(same_shape) == 1
    assert store.ttl_for(analyze("SELECT * FROM orders")) == 2


def test_ttl_for_only_read_only_selects() -> None:
    store = cache()
    assert store.ttl_for(analyze("SELECT * FROM orders FOR UPDATE")) is None
    assert store.ttl_for(analyze("SELECT nextval('s'), * FROM orders")) is None
    assert store.ttl_for(analyze("UPDATE orders SET n = 1")) is None
    assert store.ttl_for(analyze("DELETE FROM orders RETURNING *")) is None
    assert store.ttl_for(analyze("SELECT * FROM orders")) == 10


# ---------------------------------------------------------------------- keys


def test_key_differs_for_each_field() -> None:
    base = ("app", "shop", "public", "SELECT * FROM orders WHERE id = $1", b"\x00\x01")
    variants = [
        ("other", *base[1:]),
        (base[0], "other", *base[2:]),
        (*base[:2], "shop, public", *base[3:]),
        (*base[:3], "SELECT * FROM orders WHERE id = $2", base[4]),
        (*base[:4], b"\x00\x02"),
        (None, *base[1:]),
        ("", *base[1:]),
        (*base[:2], None, *base[3:]),
    ]
    keys = {ResultCache.key(*base)} | {ResultCache.key(*v) for v in variants}
    assert len(keys) == len(variants) + 1
    assert ResultCache.key(*base) == ResultCache.key(*base)
    assert len(ResultCache.key(*base)) == 32


def test_key_fields_cannot_run_into_each_other() -> None:
    assert ResultCache.key("ab", "c", None, "q", b"") != ResultCache.key("a", "bc", None, "q", b"")
    assert ResultCache.key(None, None, None, "q1", b"") != ResultCache.key(
        None, None, None, "q", b"1"
    )


def test_key_settings_count_and_do_not_depend_on_order() -> None:
    def with_settings(settings: dict[str, str]) -> bytes:
        return ResultCache.key(
            "app", "shop", '"$user", public', "SELECT now()", b"", settings=settings
        )

    tz = with_settings({"TimeZone": "UTC", "DateStyle": "ISO, MDY"})
    assert tz == with_settings({"DateStyle": "ISO, MDY", "TimeZone": "UTC"})
    assert tz != with_settings({"TimeZone": "Europe/Paris", "DateStyle": "ISO, MDY"})
    assert tz != key("SELECT now()")
    assert with_settings({}) == key("SELECT now()")


# ---------------------------------------------------------------------- get / put


def test_hit_miss_and_expiry_with_the_callers_clock() -> None:
    store = cache()
    k = key("SELECT * FROM orders")
    assert store.get(k, now=100.0) is None
    generation = store.generation(["orders"])
    assert store.put(k, b"answer", ["orders"], ttl_s=10, now=100.0, generation=generation)
    assert store.get(k, now=105.0) == b"answer"
    assert store.get(k, now=109.999) == b"answer"
    assert store.get(k, now=110.0) is None  # expired: dropped
    assert store.entries == 0 and store.size_bytes == 0
    assert (store.hits, store.misses, store.stores) == (2, 2, 1)


def test_put_copies_a_mutable_answer() -> None:
    store = cache()
    k = key("SELECT * FROM orders")
    buffer = bytearray(b"rows")
    assert store.put(k, buffer, ["orders"], 10, 0.0, store.generation(["orders"]))  # type: ignore[arg-type]
    buffer[:] = b"XXXX"
    assert store.get(k, 1.0) == b"rows"


def test_put_replaces_an_entry_under_the_same_key() -> None:
    store = cache()
    k = key("SELECT * FROM orders")
    store.put(k, b"old", ["orders"], 10, 0.0, store.generation(["orders"]))
    store.put(k, b"newer", ["orders"], 10, 0.0, store.generation(["orders"]))
    assert store.get(k, 1.0) == b"newer"
    assert store.entries == 1
    assert store.size_bytes == len(b"newer") + len(k)


def test_put_refuses_a_bad_ttl() -> None:
    store = cache()
    with pytest.raises(ValueError, match="ttl_s"):
        store.put(key("q"), b"a", [], 0, 0.0, store.generation([]))


def test_lru_eviction_keeps_within_max_bytes() -> None:
    k1, k2, k3, k4 = (key(f"SELECT {n} FROM orders") for n in range(4))
    entry = 100 + len(k1)
    store = cache(max_bytes=3 * entry, max_entry_bytes=2 * entry)
    for k in (k1, k2, k3):
        assert store.put(k, b"x" * 100, ["orders"], 60, 0.0, store.generation(["orders"]))
    assert store.size_bytes == 3 * entry
    assert store.get(k1, 1.0) is not None  # k1 is now the most recently used; k2 the least
    assert store.put(k4, b"y" * 100, ["orders"], 60, 1.0, store.generation(["orders"]))
    assert store.get(k2, 2.0) is None
    assert all(store.get(k, 2.0) is not None for k in (k1, k3, k4))
    assert store.evictions == 1
    assert store.size_bytes == 3 * entry
    # a large one pushes out as many as it needs, oldest first
    big = key("SELECT big FROM orders")
    assert store.put(big, b"z" * (2 * entry - len(big)), ["orders"], 60, 2.0, 0)
    assert store.evictions == 3
    assert store.entries == 2 and store.get(k4, 3.0) is not None  # k4 was used last
    assert store.size_bytes <= store.max_bytes


def test_a_cache_smaller_than_the_default_entry_limit_stores_answers_up_to_its_size() -> None:
    # cache_max_bytes may be as small as 4096; the proxy must start with it
    store = ResultCache([CacheRule(table="orders", ttl_s=10)], max_bytes=4096)
    assert store.max_entry_bytes == 4096


def test_entries_over_max_entry_bytes_are_not_stored() -> None:
    k = key("SELECT * FROM orders")
    store = cache(max_entry_bytes=64 + len(k))
    assert store.put(k, b"a" * 64, ["orders"], 10, 0.0, 0)
    other = key("SELECT 2 FROM orders")
    assert not store.put(other, b"a" * 65, ["orders"], 10, 0.0, 0)
    assert store.get(other, 1.0) is None
    assert store.entries == 1 and store.stores == 1


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        ResultCache([], max_bytes=0)
    with pytest.raises(ValueError, match="max_entry_bytes"):
        ResultCache([], max_bytes=100, max_entry_bytes=101)
    with pytest.raises(TypeError, match="CacheRule"):
        ResultCache([{"table": "orders", "ttl_s": 1}])  # type: ignore[list-item]


# ---------------------------------------------------------------------- invalidation


def fill(store: ResultCache, tables_by_text: dict[str, list[str]]) -> dict[str, bytes]:
    keys = {}
    for text, tables in tables_by_text.items():
        keys[text] = key(text)
        assert store.put(keys[text], text.encode(), tables, 60, 0.0, store.generation(tables))
    return keys


def test_invalidation_drops_entries_of_the_written_table() -> None:
    store = cache()
    keys = fill(
        store,
        {
            "orders": ["orders"],
            "public.orders": ["public.orders"],
            "join": ["customers", "public.orders"],
            "customers": ["customers"],
            "items": ["shop.items"],
        },
    )
    assert store.invalidate_tables(["orders"]) == 3
    assert [t for t, k in keys.items() if store.get(k, 1.0) is not None] == ["customers", "items"]
    assert store.invalidate_tables(["public.customers"]) == 1
    assert store.invalidate_tables(["items"]) == 1  # written unqualified: may be shop.items
    assert store.entries == 0 and store.size_bytes == 0
    assert store.invalidations == 5
    assert store.invalidate_tables(["orders"]) == 0
    assert store.invalidate_tables([]) == 0


def test_put_is_refused_when_a_write_raced_the_read() -> None:
    store = cache()
    k = key("SELECT * FROM orders JOIN customers USING (id)")
    tables = ["orders", "customers"]
    generation = store.generation(tables)  # the read is sent
    store.invalidate_tables(["public.customers"])  # a write to one of its tables
    assert not store.put(k, b"old rows", tables, 60, 0.0, generation)
    assert store.get(k, 1.0) is None
    # a read sent after the write stores fine; a write elsewhere does not get in its way
    generation = store.generation(tables)
    store.invalidate_tables(["items"])
    assert store.put(k, b"new rows", tables, 60, 0.0, generation)
    assert store.get(k, 1.0) == b"new rows"


def test_forgetting_many_written_tables_never_lets_a_stale_answer_in() -> None:
    store = cache()
    k = key("SELECT * FROM orders")
    generation = store.generation(["orders"])
    store.invalidate_tables(["orders"])
    for n in range(_MAX_WRITTEN_TABLES):  # the store forgets which tables were written
        store.invalidate_tables([f"t{n}"])
    assert not store.put(k, b"old rows", ["orders"], 60, 0.0, generation)
    assert store.put(k, b"new rows", ["orders"], 60, 0.0, store.generation(["orders"]))


def test_clear_drops_everything_and_refuses_reads_in_flight() -> None:
    store = cache()
    keys = fill(store, {"a": ["orders"], "b": ["customers"]})
    generation = store.generation(["orders"])
    store.clear()
    assert store.entries == 0 and store.size_bytes == 0
    assert all(store.get(k, 1.0) is None for k in keys.values())
    assert not store.put(keys["a"], b"a", ["orders"], 60, 0.0, generation)
    assert store.put(keys["a"], b"a", ["orders"], 60, 0.0, store.generation(["orders"]))


def test_stats() -> None:
    store = cache(max_bytes=1000, max_entry_bytes=500)
    fill(store, {"a": ["orders"]})
    store.get(key("a"), 1.0)
    store.get(key("b"), 1.0)
    store.invalidate_tables(["orders"])
    assert store.stats() == {
        "entries": 0,
        "size_bytes": 0,
        "max_bytes": 1000,
        "max_entry_bytes": 500,
        "rules": 1,
        "hits": 1,
        "misses": 1,
        "stores": 1,
        "evictions": 0,
        "invalidations": 1,
    }


# ---------------------------------------------------------------------- a real server's answer


async def test_stores_a_real_servers_answer_byte_for_byte(pg_dsn: str) -> None:
    parts = urlsplit(pg_dsn)
    spec = BackendSpec(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        database=unquote(parts.path.lstrip("/")),
        password=unquote(parts.password) if parts.password else None,
    )
    text = "SELECT 1 AS a, 'x' AS b"
    conn = await BackendConnection.connect(spec)
    try:
        conn.writer.write(p.encode(p.Query(text)))
        await conn.writer.drain()
        frames: list[p.Frame] = []
        while not frames or frames[-1].type != b"Z":
            frame = conn.parser.next_frame()
            if frame is None:
                data = await conn.reader.read(65536)
                assert data, "the server closed the connection"
                conn.parser.feed(data)
            else:
                frames.append(frame)
    finally:
        await conn.close()
    assert [f.type for f in frames] == [b"T", b"D", b"C", b"Z"]
    answer = b"".join(f.raw or b"" for f in frames[:3])

    info = analyze(text)
    store = ResultCache([CacheRule(fingerprint=info.fingerprint, ttl_s=30)])
    ttl = store.ttl_for(info)
    assert ttl == 30
    k = ResultCache.key(spec.user, spec.database, None, text, b"")
    assert store.put(k, answer, info.tables, ttl, 0.0, store.generation(info.tables))
    cached = store.get(k, 1.0)
    assert cached == answer

    decoded = p.BackendParser()
    decoded.feed(cached)
    messages = []
    while (frame := decoded.next_frame()) is not None:
        messages.append(decoded.decode(frame))
    row_description, data_row, complete = messages
    assert isinstance(row_description, p.RowDescription)
    assert [f.name for f in row_description.fields] == ["a", "b"]
    assert isinstance(data_row, p.DataRow) and data_row.values == (b"1", b"x")
    assert isinstance(complete, p.CommandComplete) and complete.tag == "SELECT 1"
