"""The digit-shape cache: ``analyze()`` of a text that differs from one seen before only in the
digits of its numbers, without running the lexer again.

A client that inlines its values (``WHERE aid = 48213``, ``LIMIT 20 OFFSET 40``) sends a new
text for nearly every statement: the exact-text caches miss, and each text is lexed (a regular
expression pass with a Python callback a token) only for the masked cache to answer with the
analysis it already holds. Here the text's UTF-8 bytes with every digit turned into ``0`` (one
``bytes.translate``) are the key instead. Two texts with the same key have the same bytes
everywhere but in their digits, at the same places; the lexer masks a digit run that starts
after a byte that cannot continue an identifier (a number, or a run inside a string or a
comment), so where only such runs differ, the masked keys are the same and so is the analysis.
The other digits (in identifiers such as ``t1``, parameter numbers ``$2``, exponents ``1e5``)
are compared with those of the text the entry was made from.

Texts with quoted identifiers (``"col 1"``), backquotes, brackets, ``?`` placeholders (whose
reading depends on what comes before them) or NUL are not shaped, nor are texts longer than
`MAX_SHAPED_LEN`; and only analyses the masked cache itself would keep (the lexer sure of its
reading, the text parsed) are stored.

The proxy looks each relayed statement up here by its bytes (`shaped`), so this module is
compiled when the extensions are built (see `dbsight._compiled`; typed by the ``.pxd`` next
to it); without them the same source runs as Python.
"""

from __future__ import annotations

import re
from typing import Final

from .. import _hot
from ._info import SqlInfo

# Long texts (bulk inserts...) vary in more than their digits: not worth a key of their size.
MAX_SHAPED_LEN: Final = 4096

ZEROS: Final = bytes.maketrans(b"123456789", b"000000000")
# Digit runs right after a byte that continues an identifier (letters, _, $, UTF-8 of
# non-ASCII letters): part of a name or a parameter number, compared digit by digit.
_NAME_DIGITS: Final = re.compile(rb"(?<=[A-Za-z_$\x80-\xff])[0-9]+")

Entry = tuple[bytes, tuple[int, ...], SqlInfo]


RECENT = 256  # (a power of two) entries `HitCounter.recent` keeps (see `recent_slot`)


class HitCounter:
    """The hits `shaped` answers (compiled, a C counter: this runs for every statement the
    proxy relays); `dbsight.sql.cache_info` counts them as the masked cache's. With them the
    entry it answered last (``last``, from the cache ``last_of``): a client's next statement
    is often of the same shape, found then with one pass over its bytes and no key made,
    hashed and looked up (`shaped`); and, for the statements of a transaction or of several
    clients taking turns, the entry answered last for each slot of `recent_slot` (``recent``:
    a text's length and two of its first bytes, so that the statements of a transaction,
    of lengths close to each other, keep entries of their own), and the one before it in
    the slot's neighbour."""

    __slots__ = ("hits", "last", "last_of", "recent")

    def __init__(self) -> None:
        self.hits = 0
        self.last: Entry | None = None
        self.last_of: dict[bytes, Entry] | None = None
        self.recent: list[Entry | None] = [None] * RECENT

    def forget(self) -> None:
        """No hits, and no entry answered last (the caches are being cleared)."""
        self.hits = 0
        self.last = self.last_of = None
        self.recent = [None] * RECENT


def recent_slot(encoded: bytes) -> int:
    """The slot of `HitCounter.recent` for the text whose UTF-8 bytes are ``encoded``: its
    length mixed with its bytes at offsets 7 and 16 (the words after ``UPDATE``, ``SELECT``
    or ``INSERT INTO``; the last byte of a shorter text), a digit read as ``0`` — so the texts
    of one shape (one length per count of digits, the same bytes elsewhere) share a slot."""
    n = len(encoded)
    if n == 0:
        return 0
    a = encoded[7] if n > 7 else encoded[n - 1]
    b = encoded[16] if n > 16 else encoded[n - 1]
    if 48 <= a <= 57:
        a = 48
    if 48 <= b <= 57:
        b = 48
    return (n * 97 + a * 31 + b) & (RECENT - 1)


def shape_key(text: str) -> tuple[bytes, bytes] | None:
    """(the text's UTF-8 bytes, its key), or None for a text that is not shaped."""
    if (
        len(text) > MAX_SHAPED_LEN
        or '"' in text
        or "?" in text
        or "`" in text
        or "[" in text
        or "\x00" in text
    ):
        return None
    try:
        encoded = text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return None
    return encoded, encoded.translate(ZEROS)


def shape_hit(entry: Entry, encoded: bytes) -> SqlInfo | None:
    """The entry's analysis when ``encoded`` (whose key is the entry's) has the same digits
    in names as the text the entry was made from."""
    template, fixed, info = entry
    for i in fixed:
        if encoded[i] != template[i]:
            return None
    return info


def shaped(
    shapes: dict[bytes, Entry], counted: HitCounter, encoded: bytes, key: bytes | None = None
) -> SqlInfo | None:
    """What ``shapes`` (a dialect's shape cache) holds of the text whose UTF-8 bytes are
    ``encoded``, else None; a hit adds one to ``counted.hits`` (the masked cache's, as it
    is that level's answer). ``key``: ``encoded`` with its digits zeroed, when the caller
    has it already (the pooled relay keys what a Query may do to the session by it too).
    ``encoded`` comes third: callers bind the other two once. No `shape_key` checks are
    needed: a text they refuse has a byte no stored key has, and bytes that are not UTF-8
    match no key made from a text's encoding. The entry ``counted`` answered last, when it is
    of ``shapes`` and has ``encoded``'s shape, answers first; then the one it answered last
    for ``encoded``'s slot (`recent_slot`), then the one it answered there before (kept in
    the slot's neighbour, ``slot ^ 1``)."""
    last = counted.last
    mine = counted.last_of is shapes
    if last is not None and mine and _hot.same_shape(encoded, last[0]):
        hit = shape_hit(last, encoded)
        if hit is not None:
            counted.hits += 1
            return hit
    slot = recent_slot(encoded)
    if mine:
        recent = counted.recent
        near = recent[slot]
        if near is not None and near is not last and _hot.same_shape(encoded, near[0]):
            hit = shape_hit(near, encoded)
            if hit is not None:
                counted.last = near
                counted.hits += 1
                return hit
        # the slot's entry before it (one text of several shapes of a length: a number of
        # more digits here, of fewer there), moved back to the slot itself
        other = recent[slot ^ 1]
        if other is not None and other is not last and _hot.same_shape(encoded, other[0]):
            hit = shape_hit(other, encoded)
            if hit is not None:
                recent[slot ^ 1] = near
                recent[slot] = other
                counted.last = other
                counted.hits += 1
                return hit
    entry = shapes.get(zeroed(encoded) if key is None else key)
    if entry is None:
        return None
    if not mine:
        counted.recent = [None] * RECENT
        counted.last_of = shapes
    counted.last = entry
    recent = counted.recent
    recent[slot ^ 1] = recent[slot]
    recent[slot] = entry
    hit = shape_hit(entry, encoded)
    if hit is not None:
        counted.hits += 1
    return hit


def zeroed(encoded: bytes) -> bytes:
    """``encoded`` with every digit turned into ``0``: its key in a shape cache."""
    return _hot.zeroed(encoded)


def make_entry(encoded: bytes, info: SqlInfo) -> Entry:
    fixed = tuple(
        i for m in _NAME_DIGITS.finditer(encoded) for i in range(m.start(), m.end())
    )
    return encoded, fixed, info
