"""The exact-text cache and the masked-text cache."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbsight.sql import analyze, cache_info, clear_cache, set_cache_size
from dbsight.sql._analyze import POSTGRES_SHAPES, SHAPE_HITS, analyze_fresh, shaped_postgres
from dbsight.sql._lexer import scan
from dbsight.sql._shapes import HitCounter, make_entry, recent_slot, shaped, zeroed


def test_exact_hit_returns_the_same_object():
    a = analyze("SELECT * FROM t WHERE id = 1")
    assert analyze("SELECT * FROM t WHERE id = 1") is a
    assert cache_info().hits == 1


def test_inline_literals_share_the_masked_cache():
    first = analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 1;")
    for aid in range(2, 50):
        info = analyze(f"SELECT abalance FROM pgbench_accounts WHERE aid = {aid};")
        assert info is first
    info = cache_info()
    assert info.masked_hits == 48
    assert info.masked_size == 1
    assert info.size == 49


def test_in_lists_of_any_length_share_the_masked_cache():
    first = analyze("SELECT * FROM t WHERE id IN (1, 2)")
    assert analyze("SELECT * FROM t WHERE id IN (5, 6, 7, 8)") is first
    assert analyze("SELECT * FROM t WHERE id IN ('a', 'b', 'c')") is first


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SELECT * FROM t WHERE id = 1", "SELECT * FROM u WHERE id = 2"),
        ("SELECT * FROM t WHERE id = 1", "SELECT * FROM t WHERE idx = 2"),
        ('SELECT * FROM "T" WHERE id = 1', 'SELECT * FROM "t" WHERE id = 2'),
        ('SELECT "a  b" FROM t WHERE id = 1', 'SELECT "a b" FROM t WHERE id = 2'),
        ("SELECT a\u00a0b FROM t WHERE id = 1", "SELECT a b FROM t WHERE id = 2"),
        ("SELECT lower(x) FROM t WHERE id = 1", "SELECT nextval(x) FROM t WHERE id = 2"),
        ("SELECT * FROM t WHERE id = 1", "SELECT * FROM t WHERE id = 2 FOR UPDATE"),
        ("SELECT 1", "SELECT 2; DELETE FROM t"),
        ("SELECT a$1 FROM t", "SELECT a$2 FROM t"),
        ("SELECT x - 1", "SELECT x - -1"),
        ("SELECT 'a'", "SELECT E'a'"),
        ("SELECT 1", "SELECT '1'"),
        ("SELECT data ? 'k' FROM t", "SELECT data = ? FROM t"),
    ],
)
def test_texts_differing_in_more_than_literals_never_share(a, b):
    assert scan(a, "postgresql").key != scan(b, "postgresql").key
    analyze(a)
    analyze(b)
    assert cache_info().masked_hits == 0


@pytest.mark.parametrize(
    ("dialect", "a", "b"),
    [
        # a backslash in a standard string: meaning depends on standard_conforming_strings
        ("postgresql", "SELECT 'a\\', 'b' FROM t", "SELECT 'c\\', 'd' FROM t"),
        ("postgresql", "SELECT 'a'\n'b' FROM t", "SELECT 'c'\n'd' FROM t"),  # continuation
        ("postgresql", "SELECT 1x FROM t", "SELECT 2x FROM t"),  # trailing junk
        ("postgresql", "SELECT 'open", "SELECT 'other open"),
        ("mysql", "SELECT 'a\\'b' FROM t", "SELECT 'c\\'d' FROM t"),  # NO_BACKSLASH_ESCAPES
        ("mysql", 'SELECT "a" FROM t', 'SELECT "b" FROM t'),  # ANSI_QUOTES
        ("mysql", "SELECT 1 /*! FOR UPDATE */", "SELECT 2 /*! FOR UPDATE */"),
    ],
)
def test_unsure_texts_bypass_the_masked_cache(dialect, a, b):
    assert not scan(a, dialect).sure
    analyze(a, dialect)
    analyze(b, dialect)
    info = cache_info()
    assert info.masked_hits == 0 and info.masked_size == 0


def test_failed_parse_does_not_poison_the_masked_cache():
    bad = analyze("SELECT E'\\u00zz' FROM t")  # invalid escape: the server rejects it
    assert bad.operation == "other"
    good = analyze("SELECT E'fine' FROM t")
    assert (good.operation, good.read_only, good.tables) == ("select", True, ("t",))


def test_set_cache_size_bounds_and_disables():
    set_cache_size(2)
    for i in range(10):
        analyze(f"SELECT {i} FROM t{i}")
    info = cache_info()
    assert info.size <= 2 and info.masked_size <= 2 and info.maxsize == 2
    set_cache_size(0)
    a = analyze("SELECT 1 FROM t")
    b = analyze("SELECT 1 FROM t")
    assert a == b and a is not b
    assert cache_info().size == 0
    with pytest.raises(ValueError):
        set_cache_size(-1)


def test_clear_cache():
    analyze("SELECT 1")
    clear_cache()
    info = cache_info()
    assert info.size == 0 and info.masked_size == 0


def test_threads_agree_with_a_single_thread():
    texts = [f"SELECT * FROM t{i % 7} WHERE id = {i} AND s = 'x{i}'" for i in range(300)]
    texts += [f"UPDATE t{i % 5} SET a = {i}" for i in range(100)]
    expected = {t: analyze_fresh(t) for t in texts}
    set_cache_size(64)
    errors: list[str] = []

    def work(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(400):
            t = rnd.choice(texts)
            if analyze(t) != expected[t]:
                errors.append(t)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


# ----------------------------------------------- masked-cache soundness property

_TEMPLATES = [
    "SELECT * FROM t WHERE id = {v} AND name = {v}",
    "SELECT a, b FROM t JOIN u ON u.id = t.u_id WHERE t.x IN ({list}) LIMIT {v}",
    "SELECT * FROM t WHERE x = (SELECT nextval({v})) OR y = {v}",
    "SELECT * FROM t WHERE a > {v} FOR UPDATE",
    "INSERT INTO t (a, b) VALUES ({v}, {v}), ({v}, {v}) RETURNING id",
    "INSERT INTO t (a) VALUES {rows}",
    "UPDATE t SET a = {v} WHERE id = {v}",
    "WITH d AS (DELETE FROM t WHERE id IN ({list}) RETURNING *) SELECT * FROM d",
    "SELECT lower({v}) FROM t WHERE d > now() - interval {v}",
    "SELECT {v}::int + {v}, ARRAY[{v}, {v}], -{v}",
    "SELECT * FROM t WHERE id = ANY({v}) AND j ? {v} AND k IN ({list})",
    "SELECT count(*) FROM t WHERE a BETWEEN {v} AND {v}; SELECT {v}",
    "SELECT * FROM t WHERE (a, b) IN (({v}, {v}), ({v}, {v})) AND c NOT IN ({list})",
    "SELECT position({v} IN {v}), substring({v} FROM {v} FOR {v}) FROM t",
]
# Values by lexical class: texts whose values are drawn from the same classes
# get the same masked key.
_CLASSES = [
    ["1", "42", "0x1F", "1_000", "9999999999"],
    ["1.5", "2e10", ".5", "3.25e-3"],
    ["'x'", "'it''s'", "$$d$$", "$t$q$t$", "'2024-01-01'", "''", "U&'\\0041'"],
    ["E'a\\nb'", "E'zz'", "E''"],
    ["B'101'", "X'FF'"],
    ["$1", "$2", "%s", "%(name)s", ":name", "?"],
    ["NULL"],
    ["true"],
]
_GAPS = [" ", "  ", "\n", "\t ", " /* c */ ", " -- c\n"]


def _render(template: str, rnd: random.Random, classes: list[int], lengths: list[int]) -> str:
    ci = iter(classes)
    li = iter(lengths)
    text = template
    while "{list}" in text:
        n = next(li)
        text = text.replace("{list}", ", ".join("{v}" for _ in range(n)), 1)
    while "{rows}" in text:
        n = next(li)
        text = text.replace("{rows}", ", ".join("({v})" for _ in range(n)), 1)
    while "{v}" in text:
        text = text.replace("{v}", rnd.choice(_CLASSES[next(ci)]), 1)
    return "".join(rnd.choice(_GAPS) if ch == " " else ch for ch in text)


@settings(max_examples=400, deadline=None)
@given(
    template=st.sampled_from(_TEMPLATES),
    classes=st.lists(st.integers(0, len(_CLASSES) - 1), min_size=30, max_size=30),
    lengths=st.tuples(
        st.lists(st.integers(2, 6), min_size=3, max_size=3),
        st.lists(st.integers(2, 6), min_size=3, max_size=3),
    ),
    seeds=st.tuples(st.integers(0, 2**32), st.integers(0, 2**32)),
)
def test_same_masked_key_means_same_analysis(template, classes, lengths, seeds):
    """Two sure texts with one masked key must analyze identically; else the
    masked cache would hand one text the other's answer."""
    a = _render(template, random.Random(seeds[0]), classes, lengths[0])
    b = _render(template, random.Random(seeds[1]), classes, lengths[1])
    sa, sb = scan(a, "postgresql"), scan(b, "postgresql")
    if not (sa.sure and sb.sure and sa.key == sb.key):
        return
    ia, ib = analyze_fresh(a), analyze_fresh(b)
    if ia.operation == "other" or ib.operation == "other":
        return  # a parse failure is never stored in the masked cache
    assert ia == ib, (a, b)


def test_soundness_property_is_not_vacuous():
    rnd = random.Random(7)
    compared = 0
    for _ in range(300):
        template = rnd.choice(_TEMPLATES)
        classes = [rnd.randrange(len(_CLASSES)) for _ in range(30)]
        a = _render(template, rnd, classes, [rnd.randint(2, 6) for _ in range(3)])
        b = _render(template, rnd, classes, [rnd.randint(2, 6) for _ in range(3)])
        sa, sb = scan(a, "postgresql"), scan(b, "postgresql")
        if sa.sure and sb.sure and sa.key == sb.key:
            ia, ib = analyze_fresh(a), analyze_fresh(b)
            if ia.operation != "other" and ib.operation != "other":
                assert ia == ib, (a, b)
                compared += 1
    assert compared > 100


# -- the digit-shape cache: texts that differ only in digits, answered without the lexer --------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SELECT a1 FROM t WHERE id = 1", "SELECT a2 FROM t WHERE id = 1"),
        ("SELECT * FROM t1 WHERE id = 1", "SELECT * FROM t2 WHERE id = 1"),
        ("SELECT $1 FROM t", "SELECT $2 FROM t"),
        ("SELECT x_1 FROM t", "SELECT x_2 FROM t"),
        ("SELECT \u00e91 FROM t", "SELECT \u00e92 FROM t"),
        ("SELECT 1e5 FROM t", "SELECT 1e6 FROM t"),
    ],
)
def test_digits_in_names_are_not_shaped_away(a, b):
    analyze(a)
    assert analyze(b) == analyze_fresh(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ('SELECT "col 1" FROM t', 'SELECT "col 2" FROM t'),
        ("SELECT data ? '1' FROM t", "SELECT data ? '2' FROM t"),
    ],
)
def test_texts_the_shape_cannot_vouch_for_go_through_the_lexer(a, b):
    analyze(a)
    assert analyze(b) == analyze_fresh(b)


def test_numbers_strings_and_comments_share_one_shape():
    first = analyze("SELECT * FROM t1 WHERE id = 12 AND s = 'x 34' /* run 5 */ LIMIT 7")
    again = analyze("SELECT * FROM t1 WHERE id = 98 AND s = 'x 76' /* run 1 */ LIMIT 3")
    assert again is first
    assert again == analyze_fresh("SELECT * FROM t1 WHERE id = 98 AND s = 'x 76' LIMIT 3")


_PIECES = st.sampled_from([
    "SELECT ", "a", "t", "x_", "$", "FROM ", " ", ", ", "(", ")", "'s ", "' ", "--c ", "\n",
    "/* ", "*/", "1", "23", "0", ".", "e", "+", "-", "=", "IN ", "WHERE ", "tbl", "\u00e9",
    "::int", "E'", "\\", ";", "INSERT INTO ", "VALUES ",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=14), st.lists(st.integers(0, 9), min_size=1))
def test_a_shaped_answer_is_the_analysis_of_the_text(pieces, digits):
    """Whatever the text, a text with other digits in the same places is analyzed as if it
    were seen for the first time."""
    text = "".join(pieces)
    analyze(text)
    cycle = iter(digits * (len(text) + 1))
    other = "".join(str(next(cycle)) if c.isdigit() else c for c in text)
    assert analyze(other) == analyze_fresh(other)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=14), st.lists(st.integers(0, 9), min_size=1))
def test_the_proxys_lookup_by_bytes_answers_as_analyze_does(pieces, digits):
    """`shaped_postgres` (the proxy's lookup of a relayed text by its bytes) answers only
    what the analysis of that text is, or nothing."""
    text = "".join(pieces)
    analyze(text)
    cycle = iter(digits * (len(text) + 1))
    other = "".join(str(next(cycle)) if c.isdigit() else c for c in text)
    found = shaped_postgres(other.encode())
    assert found is None or found == analyze_fresh(other)
    # the same lookup by a key its caller made (the pooled relay's, made once per Query)
    encoded = other.encode()
    assert shaped(POSTGRES_SHAPES, SHAPE_HITS, encoded, zeroed(encoded)) == found


def test_the_proxys_lookup_by_bytes_finds_a_shape_seen_and_nothing_else():
    analyze("SELECT * FROM t WHERE id = 12")
    assert shaped_postgres(b"SELECT * FROM t WHERE id = 98") == analyze_fresh(
        "SELECT * FROM t WHERE id = 98"
    )
    assert shaped_postgres(b"SELECT * FROM u WHERE id = 98") is None  # another shape
    analyze('SELECT "c" FROM t WHERE id = 12')  # (not shaped: a quoted name)
    assert shaped_postgres(b'SELECT "c" FROM t WHERE id = 98') is None
    assert shaped_postgres(b"SELECT * FROM t WHERE id = \xff8") is None  # not UTF-8


def test_the_shape_answered_last_answers_first_and_only_for_texts_of_its_shape():
    """`shaped` tries the entry it answered last before making and looking up a key: it
    answers for a text with other literal digits, not for one with other digits in a name
    (same key, another table), not from another cache, and not after the caches are
    cleared."""
    clear_cache()
    analyze("SELECT * FROM t1 WHERE id = 12")
    hits = SHAPE_HITS.hits
    assert shaped_postgres(b"SELECT * FROM t1 WHERE id = 98").tables == ("t1",)
    assert SHAPE_HITS.last is not None and SHAPE_HITS.last_of is POSTGRES_SHAPES
    assert shaped_postgres(b"SELECT * FROM t1 WHERE id = 55") == analyze_fresh(
        "SELECT * FROM t1 WHERE id = 55"
    )
    assert SHAPE_HITS.hits == hits + 2
    assert shaped_postgres(b"SELECT * FROM t2 WHERE id = 55") is None  # (t1's answer: not t2's)
    assert shaped_postgres(b"SELECT * FROM t1 WHERE id = 5") is None  # (a key not seen)
    assert shaped({}, SHAPE_HITS, b"SELECT * FROM t1 WHERE id = 55") is None
    assert SHAPE_HITS.hits == hits + 2
    assert shaped_postgres(b"SELECT * FROM t1 WHERE id = 77").tables == ("t1",)
    clear_cache()
    assert SHAPE_HITS.last is None
    assert shaped_postgres(b"SELECT * FROM t1 WHERE id = 77") is None


def test_statements_of_one_length_keep_entries_of_their_own():
    """A transaction's statements of one length but other words (TPC-B's three UPDATEs) each
    keep the entry they were answered from, in a slot of their own: taking turns, each is
    answered from it (never another's), whatever its digits."""
    clear_cache()
    texts = [
        "UPDATE pgbench_tellers SET tbalance = tbalance + 12 WHERE tid = 5;",
        "UPDATE pgbench_branch SET bbalance = bbalance + 12 WHERE bid = 55;",
    ]
    assert len(texts[0]) == len(texts[1])
    slots = [recent_slot(text.encode()) for text in texts]
    assert slots[0] != slots[1]
    assert recent_slot(texts[0].replace("12", "98").encode()) == slots[0]  # (one shape)
    for text in texts:
        analyze(text)
        assert shaped_postgres(text.encode()) is not None
    for round_ in range(3):
        for text, slot in zip(texts, slots):
            other = text.replace("12", str(70 + round_))
            assert shaped_postgres(other.encode()) == analyze_fresh(other)
            assert SHAPE_HITS.recent[slot][0] == text.encode()  # (its own entry, kept)


def test_two_shapes_of_one_slot_taking_turns_are_both_answered_without_a_key():
    """One statement whose numbers have more digits here and fewer there: two shapes of one
    length and slot, taking turns, each answered from what the counter keeps (the cache
    itself emptied), none from the other's entry."""
    a = b"SELECT c FROM t WHERE a = 12 AND b = 3"
    b = b"SELECT c FROM t WHERE a = 1 AND b = 34"
    assert len(a) == len(b) and recent_slot(a) == recent_slot(b) and zeroed(a) != zeroed(b)
    info_a, info_b = analyze(a.decode()), analyze(b.decode())
    shapes = {zeroed(a): make_entry(a, info_a), zeroed(b): make_entry(b, info_b)}
    counted = HitCounter()
    assert shaped(shapes, counted, a) is info_a and shaped(shapes, counted, b) is info_b
    shapes.clear()  # (from here on only what the counter keeps answers)
    for n in range(5):
        assert shaped(shapes, counted, a.replace(b"12", b"%d" % (20 + n))) is info_a
        assert shaped(shapes, counted, b.replace(b"34", b"%d" % (50 + n))) is info_b
    assert counted.hits == 12
    assert shaped(shapes, counted, b"SELECT c FROM t WHERE a = 1 AND b = 3") is None


def test_the_shape_answered_last_for_a_length_answers_when_statements_take_turns():
    """The statements of a transaction, or of clients taking turns, each find the entry
    answered last for a text of their length without a key made: the analysis of their own
    text, never a same-length text's with other digits in a name, never from another cache,
    and nothing once the caches are cleared."""
    clear_cache()
    texts = [
        "SELECT * FROM t1 WHERE id = 12",
        "UPDATE t1 SET n = 1 WHERE id = 12",
        "DELETE FROM t1 WHERE id = 12 AND n = 3",
    ]
    for text in texts:
        analyze(text)
        assert shaped_postgres(text.encode()) is not None  # (each one's entry, by its length)
    hits, size = SHAPE_HITS.hits, len(SHAPE_HITS.recent)
    for round_ in range(2):
        for text in texts:
            other = text.replace("12", str(40 + round_))
            assert shaped_postgres(other.encode()) == analyze_fresh(other)
            assert SHAPE_HITS.recent[recent_slot(other.encode())] is SHAPE_HITS.last
    assert SHAPE_HITS.hits == hits + 6
    assert shaped_postgres(b"SELECT * FROM t2 WHERE id = 98") is None  # (t1's length, not t1)
    assert shaped({}, SHAPE_HITS, b"UPDATE t1 SET n = 1 WHERE id = 98") is None
    assert SHAPE_HITS.hits == hits + 6
    clear_cache()
    assert SHAPE_HITS.recent == [None] * size
    assert shaped_postgres(b"UPDATE t1 SET n = 1 WHERE id = 98") is None
