"""``analyze()``: two cache levels in front of the parsers.

1. An LRU keyed by the exact ``(text, dialect)`` (``functools.lru_cache``: a
   hit is one C-level dict lookup).
2. On a miss, the text is masked by the one-pass lexer (:mod:`._lexer`).  If
   the lexer is sure of its reading, a second LRU keyed by the masked text
   (identifiers intact, literal classes marked) answers for every text that
   differs only in literal values, placeholder style, whitespace, comments or
   ``IN``/``VALUES`` list lengths -- the case of clients that inline
   literals.  Only successful parses are stored there (so a text the server
   would reject, e.g. for an invalid escape inside a literal, may be given
   the analysis of a valid text of the same shape; never the reverse).
3. Otherwise the text is parsed: pglast for PostgreSQL, sqlglot for the rest.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from hashlib import blake2b
from typing import Any, Final, NamedTuple

from ._cache import LruMap
from ._dialects import Dialect, resolve_dialect
from ._info import SqlInfo
from ._keywords import keyword_operation
from ._lexer import (
    ScanResult,
    apply_rewrites,
    normalized_from_key,
    scanner_built,
    scanner_for,
)
from ._postgres import Analysis, analyze_postgres
from ._shapes import Entry, HitCounter, make_entry, shape_hit, shape_key, shaped

DEFAULT_CACHE_SIZE: Final = 4096
# Longer texts (bulk inserts ...) are analyzed every time, not kept in memory.
MAX_CACHED_LEN: Final = 64 * 1024
# Longer texts are not parsed: operation from the leading keywords, no tables,
# not read-only (the masked cache may still know their shape).  pglast plus the
# JSON walk handle a few hundred KB/s of dense SQL on a slow machine; sqlglot
# (pure Python) is some ten times slower still.
MAX_PG_PARSE_LEN: Final = 256 * 1024
MAX_SQLGLOT_PARSE_LEN: Final = 16 * 1024


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int
    size: int
    masked_hits: int
    masked_misses: int
    masked_size: int


_masked: LruMap[tuple[Dialect, str], SqlInfo] = LruMap(DEFAULT_CACHE_SIZE)


def _text_of(sql: object) -> str:
    if isinstance(sql, str):
        return sql
    if isinstance(sql, bytes):
        return sql.decode("utf-8", errors="replace")
    raise TypeError(f"sql must be str or bytes, not {type(sql).__name__}")


# `SqlInfo.obstacle` of texts that are not parsed, or not as the server may read them.
UNPARSED: Final = "does not parse"
BROKEN: Final = "an unterminated quote or comment, or a NUL character"
AMBIGUOUS: Final = "where its statements end depends on server settings"


def _unparsed(normalized: str, obstacle: str = UNPARSED) -> SqlInfo:
    fingerprint = blake2b(normalized.encode(), digest_size=8).hexdigest()
    return SqlInfo(normalized, fingerprint, "other", (), False, obstacle=obstacle)


def _too_large(normalized: str, key: str, limit: int) -> SqlInfo:
    """Not parsed because of its size: the operation comes from the keywords."""
    fingerprint = blake2b(normalized.encode(), digest_size=8).hexdigest()
    obstacle = f"longer than {limit // 1024} KiB: not parsed"
    return SqlInfo(normalized, fingerprint, keyword_operation(key), (), False, obstacle=obstacle)


def _compute(text: str, d: Dialect, scan: ScanResult) -> tuple[SqlInfo, bool]:
    """Analyze ``text`` with a parser; return the result and whether it parsed."""
    key = scan.key
    normalized = normalized_from_key(key)
    if scan.broken or "\x00" in text:
        # unterminated quote or comment, NUL: the server rejects or truncates
        return _unparsed(normalized, BROKEN), False
    limit = MAX_PG_PARSE_LEN if d == "postgresql" else MAX_SQLGLOT_PARSE_LEN
    if len(text) > limit:
        return _too_large(normalized, key, limit), False
    parse_text = apply_rewrites(text, scan.rewrites)
    analysis: Analysis | None
    try:
        if d == "postgresql":
            analysis = analyze_postgres(parse_text)
        else:
            from ._generic import analyze_sqlglot  # sqlglot takes ~0.2 s to import

            analysis = analyze_sqlglot(parse_text, d, key)
    except Exception:  # parse errors, too-deep nesting ...: never raise
        analysis = None
    if analysis is None:
        return _unparsed(normalized), False
    if scan.ambiguous:
        # the server may split it otherwise: it may call anything (calls: an unnamed one)
        analysis = analysis._replace(
            read_only=False,
            functions=(),
            operators=(),
            calls=(*analysis.calls, ""),
            obstacle=AMBIGUOUS if analysis.read_only or analysis.functions else analysis.obstacle,
        )
    return SqlInfo(normalized, *analysis), True


# The digit-shape caches (`._shapes`), of the dialects whose lexers it was checked against.
_shapes: dict[Dialect, dict[bytes, Entry]] = {"postgresql": {}, "mysql": {}, "sqlite": {}}

# dialect name as callers spell it -> (the dialect, its lexer's scan): one lookup a text
_scanners: dict[str, tuple[Dialect, Callable[[str], ScanResult]]] = {}


def analyze_uncached(sql: str | bytes, dialect: str = "postgresql") -> SqlInfo:
    """:func:`analyze` without the exact-text cache (the masked cache is used)."""
    text = sql if type(sql) is str else _text_of(sql)
    scanner = _scanners.get(dialect)
    if scanner is None:
        d = resolve_dialect(dialect)
        scanner = _scanners[dialect] = (d, scanner_for(d))
    d, scan_text = scanner
    shapes = _shapes.get(d) if _front_max else None
    shaped = shape_key(text) if shapes is not None else None
    if shaped is not None:
        entry = shapes.get(shaped[1])  # type: ignore[union-attr]
        if entry is not None:
            hit = shape_hit(entry, shaped[0])
            if hit is not None:
                SHAPE_HITS.hits += 1  # (the shape level answered: `cache_info` counts it as
                # the masked cache's hit, as it counts `shaped`'s)
                return hit
    scan = scan_text(text)
    cacheable = scan.sure and len(scan.key) <= MAX_CACHED_LEN
    info: SqlInfo | None = None
    if cacheable:
        info = _masked.get((d, scan.key))
    if info is None:
        info, parsed = _compute(text, d, scan)
        if not (cacheable and parsed):
            return info
        _masked.put((d, scan.key), info)
    if shaped is not None:  # what the masked cache keeps, the shape cache keeps too
        if len(shapes) >= _front_max:  # type: ignore[arg-type]
            shapes.clear()  # type: ignore[union-attr]
        shapes[shaped[1]] = make_entry(shaped[0], info)  # type: ignore[index]
    return info


# What the digit-shape cache holds of the PostgreSQL text whose UTF-8 bytes are ``encoded``
# (a statement as the proxy relays it), else None (then `analyze` it): `._shapes.shaped` on
# the PostgreSQL shapes, counted as hits of the masked cache. A partial rather than a
# function that calls it: the proxy calls this for every statement it relays, and so no
# Python frame runs in between when `._shapes` is compiled.
SHAPE_HITS = HitCounter()  # (a C counter: `cache_info` adds it to the masked cache's hits)
shaped_postgres: Callable[[bytes], SqlInfo | None] = functools.partial(
    shaped, _shapes["postgresql"], SHAPE_HITS
)
# The same two, for compiled callers that reach `._shapes.shaped` in C (the proxy's exchange)
POSTGRES_SHAPES: dict[bytes, Any] = _shapes["postgresql"]


def analyze_fresh(sql: str | bytes, dialect: str = "postgresql") -> SqlInfo:
    """:func:`analyze` without any cache (for tests and tools)."""
    text = _text_of(sql)
    d = resolve_dialect(dialect)
    return _compute(text, d, scanner_for(d)(text))[0]


_exact = functools.lru_cache(maxsize=DEFAULT_CACHE_SIZE)(analyze_uncached)

# Per dialect name (as callers spell it), the texts analyzed through `analyze_into`: a plain
# dictionary the recorder looks statements up in, one C-level ``get`` per statement instead
# of a Python call into the LRU cache and its key tuple. Bounded like the exact cache (full:
# emptied, refilled by the next statements), emptied with it, never replaced (holders keep
# references).
_front: dict[str, dict[str | bytes, SqlInfo]] = {}
_front_max = DEFAULT_CACHE_SIZE


def front_cache(dialect: str) -> dict[str | bytes, SqlInfo]:
    """The dictionary of ``dialect``'s analyzed texts: ``front_cache(d).get(sql)`` is
    ``analyze(sql, d)`` for any text that `analyze_into` put there, None otherwise."""
    found = _front.get(dialect)
    if found is None:
        found = _front.setdefault(dialect, {})
    return found


def analyze_into(front: dict[str | bytes, SqlInfo], sql: str | bytes, dialect: str) -> SqlInfo:
    """``analyze(sql, dialect)``, remembered in ``front`` (``front_cache(dialect)``).
    ``front`` is this path's exact-text cache, which the caller has just missed: the text
    goes straight to the lexer and the masked cache, not through the exact LRU as well
    (where a text inlining its literals would only push out the others)."""
    if not _front_max or type(sql) is not str or len(sql) > MAX_CACHED_LEN:
        return analyze(sql, dialect)  # (which also explains a bad argument)
    try:
        info = analyze_uncached(sql, dialect)
    except TypeError:
        return analyze(sql, dialect)
    if len(front) >= _front_max:
        front.clear()
    front[sql] = info
    return info


def analyze(sql: str | bytes, dialect: str = "postgresql") -> SqlInfo:
    """Analyze one SQL text (one or more statements).

    Args:
        sql: the statement text as the client sends it, with any placeholder
            style (``$1``, ``%s``, ``%(name)s``, ``?``, ``:name``); ``bytes``
            are decoded as UTF-8 (invalid bytes replaced).
        dialect: ``"postgresql"`` (aliases ``"postgres"``, ``"pg"``; parsed by
            pglast), ``"mysql"`` (alias ``"mariadb"``) or ``"sqlite"`` (parsed
            by sqlglot); any other name gets sqlglot's default dialect.

    Operations: ``select`` (SELECT, VALUES, TABLE, WITH ... SELECT, COPY ... TO),
    ``insert`` (INSERT incl. ON CONFLICT, COPY ... FROM, MySQL REPLACE/LOAD
    DATA), ``update`` (UPDATE, MERGE), ``delete``, ``ddl`` (CREATE/ALTER/DROP,
    TRUNCATE, COMMENT, GRANT/REVOKE, SELECT INTO, CREATE TABLE AS, REINDEX,
    CLUSTER, REFRESH MATERIALIZED VIEW ...), ``tx`` (BEGIN/START, COMMIT/END,
    ROLLBACK/ABORT, SAVEPOINT, RELEASE, PREPARE TRANSACTION, COMMIT/ROLLBACK
    PREPARED, SET TRANSACTION) and ``other`` (SET, SHOW, RESET, EXPLAIN, CALL,
    DO, LISTEN/NOTIFY, cursors, PREPARE/EXECUTE, LOCK, VACUUM, ANALYZE, empty
    or unparseable text).  A SELECT with a data-modifying CTE reports the
    write (``WITH d AS (DELETE ...) SELECT ...`` is ``delete``).  For several
    statements the most significant wins: ddl > delete > update > insert >
    select > other > tx.

    ``read_only`` is True only when every statement is a SELECT / VALUES /
    TABLE / SHOW (or EXPLAIN without ANALYZE of one) containing no locking
    clause, no INTO, no data-modifying CTE and only allow-listed functions
    and operators.  It assumes the servers' default string rules
    (``standard_conforming_strings`` on; MySQL without NO_BACKSLASH_ESCAPES /
    ANSI_QUOTES): a text whose statement boundaries depend on them is never
    read-only.

    Never raises for any text (unparseable text: operation ``other``, no
    tables, not read-only, fingerprint of the normalized text); raises
    TypeError for a non-str/bytes ``sql`` or a non-str ``dialect``.  Results
    are cached (see :func:`set_cache_size`).
    """
    try:
        if len(sql) <= MAX_CACHED_LEN:
            return _exact(sql, dialect)
        return analyze_uncached(sql, dialect)
    except TypeError:
        _text_of(sql)  # raises the explanatory TypeError for a bad `sql`
        if not isinstance(dialect, str):
            raise TypeError(f"dialect must be a str, not {type(dialect).__name__}") from None
        raise


def mask_literals(sql: str | bytes, dialect: str = "postgresql") -> str:
    """The ``normalized`` form of ``sql`` from the lexer alone (no parsing).

    Cheap (one regex pass): literals and placeholders become ``$1, $2, ...``,
    comments go, whitespace collapses, ``IN``/``VALUES`` lists of values are
    shortened.  Equal to ``analyze(sql, dialect).normalized``.
    """
    return normalized_from_key(scanner_for(resolve_dialect(dialect))(_text_of(sql)).key)


_SAMPLE = "SELECT a FROM t WHERE b = 1"  # what warm_up() parses


def warm_up(dialect: str = "postgresql") -> None:
    """Build the lexer of ``dialect`` and load its parser now, so that the first
    :func:`analyze` does not pay for them (compiling the lexer's patterns takes tens of
    milliseconds; sqlglot, for dialects other than PostgreSQL, longer still). Idempotent
    and cheap once done; caches nothing but the lexer."""
    d = resolve_dialect(dialect)
    if d not in _warm:
        analyze_fresh(_SAMPLE, d)
        _warm.add(d)


def warmed(dialect: str = "postgresql") -> bool:
    """Whether the lexer and parser of ``dialect`` are loaded (by :func:`warm_up`, or by
    a first :func:`analyze`)."""
    d = resolve_dialect(dialect)
    return d in _warm or scanner_built(d)


_warm: set[Dialect] = set()


def set_cache_size(n: int) -> None:
    """Bound both caches to ``n`` entries each (0 disables caching); clears them."""
    global _exact, _front_max
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"cache size must be a non-negative int, not {n!r}")
    _exact = functools.lru_cache(maxsize=n)(analyze_uncached)
    _masked.resize(n)
    _masked.clear()
    SHAPE_HITS.forget()
    _front_max = n
    _clear_front()


def clear_cache() -> None:
    """Forget every cached result."""
    _exact.cache_clear()
    _masked.clear()
    SHAPE_HITS.forget()
    _clear_front()


def _clear_front() -> None:
    for front in _front.values():
        front.clear()
    for shapes in _shapes.values():
        shapes.clear()


def cache_info() -> CacheInfo:
    """Hit/miss counters and sizes of both cache levels."""
    exact = _exact.cache_info()
    return CacheInfo(
        exact.hits,
        exact.misses,
        exact.maxsize or 0,
        exact.currsize,
        _masked.hits + SHAPE_HITS.hits,
        _masked.misses,
        len(_masked),
    )
